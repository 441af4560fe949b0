#include "io/tensor_table.h"

namespace ms2vllm {

bool TensorTable::Add(TensorInfo&& info) {
  if (index_.contains(info.name)) return false;
  const TensorInfo& entry = tensors_.emplace_back(std::move(info));
  index_.emplace(entry.name, &entry);
  return true;
}

const TensorInfo* TensorTable::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second;
}

std::string ShapeString(const std::vector<uint64_t>& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

}  // namespace ms2vllm
