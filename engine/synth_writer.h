// Writes a synthetic checkpoint directory through the same layout, executor and staging as a
// conversion: fast, bounded in memory, and complete or absent.
#pragma once

#include <filesystem>

#include "engine/executor.h"
#include "engine/synth_plan.h"

namespace ms2vllm {

struct SynthRequest {
  SynthOptions options;
  std::filesystem::path out_dir;
  uint64_t max_shard_bytes = 0;  // 0: one file
  bool force = false;
  ExecutionSettings execution;
};

struct SynthReport {
  std::filesystem::path weights;      // the .safetensors, or the index when sharded
  std::filesystem::path description;
  uint64_t bytes = 0;
  double seconds = 0;
};

// Writes quant_model_weight_w<b>a16.safetensors (or its shards and index) and
// quant_model_description_w<b>a16.json into out_dir.
Result<SynthReport> WriteSynthCheckpoint(const SynthRequest& request);

}  // namespace ms2vllm
