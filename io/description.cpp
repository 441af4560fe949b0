#include "io/description.h"

#include <simdjson.h>

#include "io/json_scan.h"

#include <charconv>
#include <unordered_map>

#include "io/mapped_file.h"
#include "io/object_members.h"

namespace ms2vllm {
namespace {

namespace od = simdjson::ondemand;


std::optional<int64_t> ReadGroupSize(od::value value) {
  int64_t number = 0;
  if (value.get_int64().get(number) == simdjson::SUCCESS) return number;
  std::string_view text;
  if (value.get_string().get(text) == simdjson::SUCCESS) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (ec == std::errc() && end == text.data() + text.size()) return number;
  }
  return std::nullopt;
}

}  // namespace

Result<Description> ParseDescription(const std::string& label, std::string_view json, size_t run_bytes) {
  json = WithoutByteOrderMark(json);
  Description description;
  description.path = label;
  std::unordered_map<std::string, size_t> position;
  size_t members = 0;
  MS2VLLM_TRY(ForEachMember(
      json, label, "description",
      [&](std::string_view key, od::value value) -> Status {
        if (key == "version") {
          description.has_version = true;
          description.version_first |= members == 0;
        }
        ++members;
        if (key == "group_size") {
          description.group_size = ReadGroupSize(value);
          return Ok{};
        }
        std::string_view text;
        if (value.get_string().get(text) != simdjson::SUCCESS) {  // metadata of any other type, or a mistake
          description.non_string_keys.emplace_back(key);
          return Ok{};
        }
        if (key == "model_quant_type") description.model_quant_type = std::string(text);
        auto [it, inserted] = position.emplace(std::string(key), description.entries.size());
        if (inserted) {
          description.entries.push_back({std::string(key), std::string(text)});
        } else {
          description.entries[it->second].label = std::string(text);
        }
        return Ok{};
      },
      run_bytes));
  return description;
}

Result<Description> LoadDescription(const std::string& path) {
  MS2VLLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const auto bytes = file.bytes();
  // Parsed, an entry takes about 7 times its bytes; a million tensors describe in under 100 MB.
  if (bytes.size() > kMaxDescriptionBytes) {
    return MakeError(ErrorCode::kInvalidInput, path + ": " + std::to_string(bytes.size()) +
                                                   " bytes, over the 256 MB a description of any model stays under");
  }
  return ParseDescription(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace ms2vllm
