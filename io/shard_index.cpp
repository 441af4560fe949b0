#include "io/shard_index.h"

#include <simdjson.h>

#include "io/json_scan.h"
#include "io/mapped_file.h"

#include <unordered_map>
#include <unordered_set>

namespace ms2vllm {
namespace {

namespace od = simdjson::ondemand;


Status ReadMetadata(od::value value, ShardIndex& index, const std::string& label) {
  od::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) return InvalidInput(label, "\"metadata\" is not an object");
  for (auto field : object) {
    std::string_view key;
    od::value field_value;
    MS2VLLM_TRY(ReadField(field, key, field_value, label, "index"));
    uint64_t total = 0;
    if (key == "total_size" && field_value.get_uint64().get(total) == simdjson::SUCCESS) index.total_size = total;
  }
  return Ok{};
}

Status ReadWeightMap(od::value value, ShardIndex& index, const std::string& label) {
  od::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) return InvalidInput(label, "\"weight_map\" is not an object");
  std::unordered_map<std::string, size_t> shard_of_file;
  std::unordered_set<std::string> seen;
  for (auto field : object) {
    std::string_view key, file;
    od::value field_value;
    MS2VLLM_TRY(ReadField(field, key, field_value, label, "index"));
    if (field_value.get_string().get(file) != simdjson::SUCCESS) {
      return InvalidInput(label, "weight_map entry '" + Printable(key) + "' is not a file name");
    }
    // A NUL would end the path early: "x\u0000y" would open the file x.
    if (file.empty() || file.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos || file == "." ||
        file == "..") {
      return InvalidInput(label, "weight_map entry '" + Printable(key) + "' names '" + Printable(file) +
                                "', not a file beside the index");
    }
    if (!seen.emplace(key).second) return InvalidInput(label, "tensor '" + Printable(key) + "' is listed twice");
    auto [it, inserted] = shard_of_file.emplace(std::string(file), index.shard_files.size());
    if (inserted) index.shard_files.emplace_back(file);
    index.weight_map.push_back({std::string(key), it->second});
  }
  return Ok{};
}

}  // namespace

Result<ShardIndex> ParseShardIndex(const std::string& label, std::string_view json) {
  simdjson::padded_string padded(json);
  od::parser parser;
  od::document document;
  od::object root;
  MS2VLLM_TRY(OpenObject(parser, padded, document, root, label, "index"));
  ShardIndex index;
  bool has_weight_map = false;
  bool has_metadata = false;
  for (auto field : root) {
    std::string_view key;
    od::value value;
    MS2VLLM_TRY(ReadField(field, key, value, label, "index"));
    // Python's json keeps the last of repeated keys, a streaming reader the first: refuse to guess.
    if (key != "metadata" && key != "weight_map") continue;
    bool& seen = key == "metadata" ? has_metadata : has_weight_map;
    if (seen) return InvalidInput(label, "index has \"" + std::string(key) + "\" twice");
    seen = true;
    if (key == "metadata") MS2VLLM_TRY(ReadMetadata(value, index, label));
    if (key == "weight_map") MS2VLLM_TRY(ReadWeightMap(value, index, label));
  }
  MS2VLLM_TRY(CheckNothingAfter(document, label, "index"));
  if (!has_weight_map) return InvalidInput(label, "index has no \"weight_map\"");
  return index;
}

Result<ShardIndex> ReadShardIndex(const std::filesystem::path& path, const std::string& label) {
  MS2VLLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const auto bytes = file.bytes();
  return ParseShardIndex(label, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace ms2vllm
