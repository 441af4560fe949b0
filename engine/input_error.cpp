#include "engine/input_error.h"

#include <string_view>

namespace ms2vllm {

Error NamingTheFile(Error error, const Checkpoint& checkpoint, const Description& description) {
  if (error.code != ErrorCode::kInvalidInput && error.code != ErrorCode::kUnsupported) return error;
  const std::string_view message = error.message;
  if (!description.path.empty() && message.starts_with(description.path + ": ")) return error;
  for (const auto& file : checkpoint.Files()) {
    if (message.starts_with(file.string() + ": ")) return error;  // a read that failed names its file
  }
  const size_t colon = message.find(": ");
  const TensorInfo* tensor = colon == std::string_view::npos ? nullptr : checkpoint.table().Find(message.substr(0, colon));
  const auto& file = tensor != nullptr ? checkpoint.shard(tensor->shard).path() : checkpoint.path();
  error.message = file.string() + ": " + error.message;
  return error;
}

}  // namespace ms2vllm
