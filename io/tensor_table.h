// The tensors of a checkpoint, wherever they live: name, type, shape and where the bytes are.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/dtype.h"

namespace ms2vllm {

struct TensorInfo {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<uint64_t> shape;
  uint32_t shard = 0;        // which input file holds it
  uint64_t file_offset = 0;  // absolute offset of its first byte in that file
  uint64_t byte_size = 0;

  uint64_t numel() const {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;  // validated against overflow when the header was read
    return n;
  }
  size_t rank() const { return shape.size(); }
};

// Holds every tensor once: a 200k-tensor MoE checkpoint has 200k entries, so the index keys are
// views of the entries' own names, and the entries live in a deque, whose elements never move.
class TensorTable {
 public:
  TensorTable() = default;
  TensorTable(TensorTable&&) = default;  // the deque's elements, and so the views, stay where they are
  TensorTable& operator=(TensorTable&&) = default;
  TensorTable(const TensorTable&) = delete;  // a copy's index would view the original's names
  TensorTable& operator=(const TensorTable&) = delete;

  // False when the name is already present; `info` is then left as it was.
  bool Add(TensorInfo&& info);
  const TensorInfo* Find(std::string_view name) const;
  bool Contains(std::string_view name) const { return Find(name) != nullptr; }
  const std::deque<TensorInfo>& tensors() const { return tensors_; }
  size_t size() const { return tensors_.size(); }

 private:
  std::deque<TensorInfo> tensors_;
  std::unordered_map<std::string_view, const TensorInfo*> index_;
};

// "[128, 4]"
std::string ShapeString(const std::vector<uint64_t>& shape);

}  // namespace ms2vllm
