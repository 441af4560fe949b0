#include "io/shard_index.h"

#include <simdjson.h>

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "io/json_scan.h"
#include "io/mapped_file.h"
#include "io/object_members.h"

namespace ms2vllm {
namespace {

namespace od = simdjson::ondemand;

// Collects an index member by member. The weight_map of a 200k-tensor index is ~22 MB of text,
// for which one simdjson parse took 147 MB (heaptrack, its padded copy included);
// ParseShardIndex hands it over in runs.
class IndexReader {
 public:
  explicit IndexReader(const std::string& label) : label_(label) {}

  // A member of the index's top-level object.
  Status Visit(std::string_view key, od::value value) {
    if (key != "metadata" && key != "weight_map") return Ok{};
    MS2VLLM_TRY(Once(key));
    if (key == "metadata") return ForEachField(value, key, [this](std::string_view f, od::value v) { return AddMetadata(f, v); });
    return ForEachField(value, key, [this](std::string_view tensor, od::value file) { return AddEntry(tensor, file); });
  }

  // The text of the metadata object, read in runs of whole fields.
  Status VisitMetadataText(std::string_view object_text, size_t run_bytes) {
    MS2VLLM_TRY(Once("metadata"));
    return ForEachMember(
        object_text, label_, "index", [this](std::string_view f, od::value v) { return AddMetadata(f, v); }, run_bytes);
  }

  // The text of the weight_map object, read in runs of whole entries.
  Status VisitWeightMapText(std::string_view object_text, size_t run_bytes) {
    MS2VLLM_TRY(Once("weight_map"));
    return ForEachMember(
        object_text, label_, "index", [this](std::string_view tensor, od::value file) { return AddEntry(tensor, file); },
        run_bytes);
  }

  Result<ShardIndex> Finish() {
    if (!has_weight_map_) return InvalidInput(label_, "index has no \"weight_map\"");
    // Said here: left to the description's check, it was blamed on the description.
    if (index_.weight_map.empty()) return InvalidInput(label_, "\"weight_map\" is empty: the index names no tensor");
    // Sorted positions find a repeated name in 4 bytes per entry; a set held a second copy of
    // every name, in a node of its own.
    std::vector<uint32_t> order(index_.weight_map.size());
    std::iota(order.begin(), order.end(), 0u);
    const auto& entries = index_.weight_map;
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return entries[a].tensor < entries[b].tensor; });
    const auto repeated = std::adjacent_find(order.begin(), order.end(),
                                             [&](uint32_t a, uint32_t b) { return entries[a].tensor == entries[b].tensor; });
    if (repeated != order.end()) {
      return InvalidInput(label_, "tensor '" + Printable(entries[*repeated].tensor) + "' is listed twice");
    }
    return std::move(index_);
  }

 private:
  // Python's json keeps the last of repeated keys, a streaming reader the first: refuse to guess.
  Status Once(std::string_view key) {
    bool& seen = key == "metadata" ? has_metadata_ : has_weight_map_;
    if (seen) return InvalidInput(label_, "index has \"" + std::string(key) + "\" twice");
    seen = true;
    return Ok{};
  }

  // Each field of `value`, which must be an object; `name` is its key, for the message.
  template <typename FieldVisitor>
  Status ForEachField(od::value value, std::string_view name, FieldVisitor&& visit) {
    od::object object;
    if (value.get_object().get(object) != simdjson::SUCCESS) {
      return InvalidInput(label_, "\"" + std::string(name) + "\" is not an object");
    }
    for (auto field : object) {
      std::string_view key;
      od::value field_value;
      MS2VLLM_TRY(ReadField(field, key, field_value, label_, "index"));
      MS2VLLM_TRY(visit(key, field_value));
    }
    return Ok{};
  }

  Status AddMetadata(std::string_view field, od::value value) {
    uint64_t total = 0;
    if (field == "total_size" && value.get_uint64().get(total) == simdjson::SUCCESS) index_.total_size = total;
    return Ok{};
  }

  Status AddEntry(std::string_view tensor, od::value value) {
    std::string_view file;
    if (value.get_string().get(file) != simdjson::SUCCESS) {
      return InvalidInput(label_, "weight_map entry '" + Printable(tensor) + "' is not a file name");
    }
    // A NUL would end the path early: "x\u0000y" would open the file x.
    if (file.empty() || file.find_first_of(std::string_view("/\0", 2)) != std::string_view::npos || file == "." ||
        file == "..") {
      return InvalidInput(label_, "weight_map entry '" + Printable(tensor) + "' names '" + Printable(file) +
                                      "', not a file beside the index");
    }
    auto [it, inserted] = shard_of_file_.emplace(std::string(file), index_.shard_files.size());
    if (inserted) index_.shard_files.emplace_back(file);
    index_.weight_map.push_back({std::string(tensor), it->second});
    return Ok{};
  }

  const std::string& label_;
  ShardIndex index_;
  std::unordered_map<std::string, size_t> shard_of_file_;
  bool has_weight_map_ = false;
  bool has_metadata_ = false;
};

}  // namespace

Result<ShardIndex> ParseShardIndex(const std::string& label, std::string_view json, size_t run_bytes) {
  json = WithoutByteOrderMark(json);
  IndexReader reader(label);
  const auto visit = [&reader](std::string_view key, od::value value) { return reader.Visit(key, value); };
  const auto members = SplitMembers(json);
  if (!members) {
    MS2VLLM_TRY(ForEachMember(json, label, "index", visit));  // one parse, so simdjson names the problem
    return reader.Finish();
  }
  for (const MemberText& member : *members) {
    if (member.raw_key == "weight_map" && member.value.starts_with('{')) {
      MS2VLLM_TRY(reader.VisitWeightMapText(member.value, run_bytes));
    } else if (member.raw_key == "metadata" && member.value.starts_with('{')) {
      // In runs too: one parse of a metadata object of 384 MB held 1.5 GB.
      MS2VLLM_TRY(reader.VisitMetadataText(member.value, run_bytes));
    } else {
      MS2VLLM_TRY(ForEachMember("{" + std::string(member.text) + "}", label, "index", visit));
    }
  }
  return reader.Finish();
}

Result<ShardIndex> ReadShardIndex(const std::filesystem::path& path, const std::string& label) {
  MS2VLLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const auto bytes = file.bytes();
  return ParseShardIndex(label, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace ms2vllm
