// The plan: a pure function from (tensor table, description, options) to the ordered list of
// output tensors, each with its source, its transform and its shape (SPEC.md sections 2 and 4).
// No I/O: every rule and every refusal is a plain unit test.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/linear_geometry.h"
#include "engine/options.h"
#include "engine/warnings.h"
#include "io/description.h"
#include "io/dtype.h"
#include "io/status.h"
#include "io/tensor_table.h"

namespace ms2vllm {

enum class TransformKind {
  kCopy,            // bytes unchanged
  kQWeight,         // int8 weight [out, in] -> packed I32 (AWQ or GPTQ layout)
  kQZeros,          // offset [out, G] -> packed I32 zero points
  kQZerosConstant,  // no offset (symmetric): every zero point is 2^(b-1)
  kScales,          // scale [out, G] -> [G, out], optionally cast
  kGenerate,        // synthetic data (ms2vllm synth), no source
};

// What `kGenerate` fills a tensor with (seeded, reproducible per element).
struct GenerateSpec {
  enum class Kind { kInt8Range, kPackedInt4, kFloatRange, kIntegralFloat } kind = Kind::kInt8Range;
  uint64_t seed = 0;
  double low = 0, high = 0;  // inclusive integer range or float range
};

struct OutputTensor {
  std::string name;
  DType dtype = DType::kU8;
  std::vector<uint64_t> shape;
  TransformKind kind = TransformKind::kCopy;
  const TensorInfo* source = nullptr;  // into the plan's TensorTable; null for constants and synthetic data
  LinearGeometry geometry;             // quantized transforms only
  GenerateSpec generate;               // kGenerate only

  uint64_t numel() const;
  uint64_t byte_size() const { return numel() * DTypeSize(dtype); }
};

struct Plan {
  int bits = 4;
  TargetTool target = TargetTool::kAwq;
  GptqFormat gptq_format = GptqFormat::kV1;
  std::vector<OutputTensor> tensors;  // description order
  Warnings warnings;
  // What the model directory's quantization_config needs (SPEC 5).
  std::optional<uint64_t> group_size;          // in / G; nullopt when there is no quantized linear
  bool per_channel = false;                    // G == 1
  std::vector<std::string> float_linears;      // linears msModelSlim left in float
  struct CopiedWeight {
    std::string module;  // the name less ".weight": a linear, the head or an embedding
    std::string label;
    DType dtype;
    std::string LabelAndDType() const { return label + ", " + std::string(DTypeName(dtype)); }
  };
  std::vector<CopiedWeight> other_quantized_weights;  // integer or FP8 weights copied unchanged (W8A8, say)
  std::vector<std::string> float_fused_layers; // vLLM's qkv_proj / gate_up_proj all of whose parts are float
  std::vector<std::string> quantized_heads;    // lm_head converted as a quantized linear: quantization_config.lm_head
  bool all_offsets_missing = true;             // no quantized linear has a weight_offset
  std::vector<std::string> not_in_checkpoint;  // tensors the description lists that the input lacks
  std::vector<std::string> not_in_description; // tensors of the input the description does not list: dropped
  std::optional<std::string> group_size_conflict;  // two linears whose group sizes differ

  uint64_t TotalBytes() const;
};

// `cancel` (the interrupt flag, may be null) is checked per description entry.
Result<Plan> BuildPlan(const TensorTable& table, const Description& description, const PlanOptions& options,
                       const std::atomic<bool>* cancel = nullptr);

}  // namespace ms2vllm
