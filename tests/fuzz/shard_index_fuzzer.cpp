// libFuzzer target: ParseShardIndex on arbitrary text. An accepted index names only plain
// files beside it, each tensor once, and every entry points at a listed shard; its weight_map
// read in runs of a few entries gives the same result as read in one.
#include <cstdint>
#include <string_view>
#include <unordered_set>

#include "io/shard_index.h"
#include "tests/fuzz/fuzz_checks.h"

using ms2vllm::fuzz::Require;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto result = ms2vllm::ParseShardIndex(ms2vllm::fuzz::kLabel, json);
  const size_t run_bytes = size == 0 ? 0 : data[size - 1] % 64;
  auto in_runs = ms2vllm::ParseShardIndex(ms2vllm::fuzz::kLabel, json, run_bytes);
  Require(in_runs.ok() == result.ok(), "read in runs, the index is judged otherwise");
  if (result.ok()) {
    Require(in_runs->shard_files == result->shard_files && in_runs->total_size == result->total_size &&
                in_runs->weight_map.size() == result->weight_map.size(),
            "read in runs, the index differs");
    for (size_t i = 0; i < result->weight_map.size(); ++i) {
      const auto &a = result->weight_map[i], &b = in_runs->weight_map[i];
      Require(a.tensor == b.tensor && a.shard == b.shard, "read in runs, an entry differs", a.tensor);
    }
  }
  if (!result.ok()) {
    ms2vllm::fuzz::CheckError(result.error());
    return 0;
  }
  for (const auto& file : result->shard_files) {
    Require(!file.empty() && file.find('/') == std::string::npos && file.find('\0') == std::string::npos &&
                file != "." && file != "..",
            "shard file is not a plain name", file);
  }
  std::unordered_set<std::string_view> tensors;
  for (const auto& entry : result->weight_map) {
    Require(entry.shard < result->shard_files.size(), "entry names no listed shard", entry.tensor);
    Require(tensors.insert(entry.tensor).second, "tensor listed twice", entry.tensor);
  }
  return 0;
}
