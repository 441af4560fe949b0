#include "engine/input_error.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
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
  constexpr std::string_view kTail = "-00000-of-00000.safetensors";  // the digits' places
  if (name.size() <= kTail.size()) return "";
  const std::string_view tail = std::string_view(name).substr(name.size() - kTail.size());
  const auto digits = [&](size_t at, unsigned& value) {
    const std::string_view field = tail.substr(at, 5);
    if (!std::all_of(field.begin(), field.end(), [](char c) { return c >= '0' && c <= '9'; })) return false;
    std::from_chars(field.data(), field.data() + field.size(), value);
    return true;
  };
  unsigned number = 0, count = 0;
  if (!tail.starts_with("-") || tail.substr(6, 4) != "-of-" || !tail.ends_with(".safetensors") || !digits(1, number) ||
      !digits(10, count) || number < 1 || number > count || count < 2) {
    return "";
  }
  const std::string index = name.substr(0, name.size() - kTail.size()) + ".safetensors.index.json";
  std::error_code ec;
  const bool indexed = std::filesystem::exists(checkpoint.path().parent_path() / index, ec);
  return " (" + name + " is shard " + std::to_string(number) + " of " + std::to_string(count) + ": give " +
         (indexed ? "its index, " + index + ", or its directory)" : "the whole checkpoint, its index or directory)");
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
