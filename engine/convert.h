// The whole conversion: locate and open the inputs, plan, check offsets, lay out, stage the
// outputs, execute, commit. Nothing appears at the target unless everything succeeded.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "engine/executor.h"
#include "engine/layout.h"
#include "engine/options.h"
#include "engine/plan.h"

namespace ms2vllm {

struct ConvertRequest {
  std::filesystem::path model;                  // file, sharded index or directory
  std::optional<std::filesystem::path> json;    // description; found beside the weights when omitted
  std::filesystem::path save_path = "res.safetensors";
  std::optional<std::filesystem::path> out_dir; // a loadable model directory instead of save_path
  std::optional<std::filesystem::path> base_model;
  bool force = false;                           // replace an existing out_dir
  uint64_t max_shard_bytes = 5'000'000'000;     // out_dir only
  bool dry_run = false;                         // plan and check, write nothing
  // Runs on the finished output (the stage's path) before it is moved onto the target, as
  // --verify does: an error leaves the target as it was.
  std::function<Status(const std::filesystem::path& staged)> check_before_commit;
  PlanOptions plan;
  ExecutionSettings execution;
};

struct ConvertReport {
  // The input's tensor table, which plan.tensors[i].source points into: owned here so the plan
  // stays valid (e.g. for --dry-run's printout) after Convert returns and the inputs are closed.
  std::shared_ptr<const TensorTable> sources;
  Plan plan;
  Layout layout;
  Warnings warnings;  // plan, offsets and execution warnings together
  bool symmetric = false;
  uint64_t input_bytes = 0;   // bytes of the input files
  uint64_t output_bytes = 0;  // bytes of the output weight files
  double seconds = 0;
  std::filesystem::path target;
  // --out-dir's base model: --base-model, else the weights' directory, which must then hold a
  // config.json (msModelSlim copies the float model's JSON files beside its weights).
  std::optional<std::filesystem::path> base_model;
  bool base_beside_weights = false;  // base_model is the weights' directory, not --base-model
};

Result<ConvertReport> Convert(const ConvertRequest& request);

}  // namespace ms2vllm
