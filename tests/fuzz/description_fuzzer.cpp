// libFuzzer target: ParseDescription on arbitrary text.
#include <cstdint>
#include <string_view>
#include <unordered_set>

#include "io/description.h"
#include "tests/fuzz/fuzz_checks.h"

using ms2vllm::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto result = ms2vllm::ParseDescription(ms2vllm::fuzz::kLabel, json);
  if (!result.ok()) {
    ms2vllm::fuzz::CheckError(result.error());
    return 0;
  }
  // A repeated key keeps one entry: names are distinct.
  std::unordered_set<std::string_view> names;
  for (const auto& entry : result->entries) Require(names.insert(entry.name).second, "duplicate entry", entry.name);
  return 0;
}
