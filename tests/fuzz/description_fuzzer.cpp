// libFuzzer target: ParseDescription on arbitrary text, read whole and in runs of a few bytes.
#include <cstdint>
#include <string_view>
#include <unordered_set>

#include "io/description.h"
#include "tests/fuzz/fuzz_checks.h"

using ms2vllm::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto result = ms2vllm::ParseDescription(ms2vllm::fuzz::kLabel, json);
  // Read in runs of a few members (io/object_members.h), the description must give the same result.
  const size_t run_bytes = size == 0 ? 0 : data[size - 1] % 64;
  auto in_runs = ms2vllm::ParseDescription(ms2vllm::fuzz::kLabel, json, run_bytes);
  Require(in_runs.ok() == result.ok(), "read in runs, the description is judged otherwise");
  if (result.ok()) {
    Require(in_runs->entries.size() == result->entries.size(), "read in runs, the entry count differs");
    for (size_t i = 0; i < result->entries.size(); ++i) {
      Require(in_runs->entries[i].name == result->entries[i].name && in_runs->entries[i].label == result->entries[i].label,
              "read in runs, an entry differs", result->entries[i].name);
    }
  }
  if (!result.ok()) {
    ms2vllm::fuzz::CheckError(result.error());
    return 0;
  }
  // A repeated key keeps one entry: names are distinct.
  std::unordered_set<std::string_view> names;
  for (const auto& entry : result->entries) Require(names.insert(entry.name).second, "duplicate entry", entry.name);
  return 0;
}
