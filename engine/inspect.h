// `inspect`: what a checkpoint holds and what it can be converted to, without converting:
// the tensor table, the quantization the tensors show (bit width, group size, symmetry, packed
// layout), which target layouts the plan accepts and why not, and every problem the validators
// find (header, description, offsets, weights mostly outside their label's bit width). Never
// fails: what goes wrong is one of the problems.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/options.h"
#include "io/dtype.h"
#include "io/status.h"

namespace ms2vllm {

struct InspectRequest {
  std::filesystem::path path;                 // file, sharded index or directory (like --model)
  std::optional<std::filesystem::path> json;  // description; found beside the weights when omitted
  PackedMode packed = PackedMode::kAuto;
};

struct InspectedTensor {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<uint64_t> shape;
  uint64_t bytes = 0;
  std::string label;  // from the description; empty when it does not list the tensor
};

// Whether BuildPlan and the offset scan accept one target layout.
struct TargetVerdict {
  std::string target;  // "awq", "gptq" (v1), "gptq_v2"
  bool ok = false;
  std::string reason;  // why not
};

struct Inspection {
  std::filesystem::path weights;  // empty when none was found
  std::optional<std::filesystem::path> description;
  std::vector<std::filesystem::path> files;  // every file read for the tensors
  uint64_t file_bytes = 0;
  std::vector<InspectedTensor> tensors;  // file order, shard by shard
  uint64_t tensor_bytes = 0;

  // A converted model directory: its layout as its config declares it, e.g. "awq, 4-bit, group
  // size 128 (config.json)"; unset for anything else.
  std::optional<std::string> converted_layout;
  std::optional<std::string> model_quant_type;   // as the description says
  std::optional<int64_t> described_group_size;   // as the description says
  std::optional<int> bits;                       // from a plan: unset when no target is possible
  uint64_t linears = 0;                          // quantized linears
  std::optional<uint64_t> group_size;            // in / G; unset when per-channel or unknown
  bool per_channel = false;
  std::optional<std::string> group_size_conflict;
  std::optional<bool> symmetric;                 // every offset 0 or missing; unset when not scanned
  bool offsets_missing = false;                  // no linear has a weight_offset
  std::string packing;                           // "none", "ascendV1 pairs along out", ...
  std::vector<std::string> float_linears;        // linears msModelSlim left in float

  std::vector<TargetVerdict> targets;
  std::vector<std::string> warnings;
  // Each with the exit code a conversion gives; weights mostly clamped, of which a conversion only
  // warns, with 3 (kInvalidInput).
  std::vector<Error> problems;

  // No problem: a conversion would succeed, and not with weights mostly clamped (an unusable
  // output it only warns of).
  bool ok() const { return problems.empty(); }
};

Inspection Inspect(const InspectRequest& request);

}  // namespace ms2vllm
