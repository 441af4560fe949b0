#include "engine/input_error.h"

#include <cstdio>
#include <string>
#include <string_view>

namespace ms2vllm {
namespace {

// A shard given alone (<prefix>-00002-of-00006.safetensors, as transformers and msModelSlim name
// them) lacks what the other shards hold, which surfaces as whichever check meets it first: a
// scale missing, a group size that cannot be told. The likely cause is said with it.
std::string LoneShardHint(const Checkpoint& checkpoint, std::string_view message) {
  if (checkpoint.sharded() || message.find("shard") != std::string_view::npos) return "";
  const std::string name = checkpoint.path().filename().string();
  constexpr std::string_view kTail = "-00000-of-00000.safetensors";
  if (name.size() <= kTail.size()) return "";
  const std::string tail = name.substr(name.size() - kTail.size());
  unsigned number = 0, count = 0;
  char end = 0;
  if (std::sscanf(tail.c_str(), "-%5u-of-%5u.safetensors%c", &number, &count, &end) != 2 || count < 2) return "";
  const std::string index = name.substr(0, name.size() - kTail.size()) + ".safetensors.index.json";
  return " (" + name + " is shard " + std::to_string(number) + " of " + std::to_string(count) +
         ": give its index, " + index + ", or its directory)";
}

}  // namespace

Error NamingTheFile(Error error, const Checkpoint& checkpoint, const Description& description) {
  if (error.code != ErrorCode::kInvalidInput && error.code != ErrorCode::kUnsupported) return error;
  error.message += LoneShardHint(checkpoint, error.message);
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
