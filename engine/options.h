// What the user asked for, after flag parsing: the inputs to the plan and the executor.
#pragma once

#include <cstdint>
#include <optional>

namespace ms2vllm {

enum class TargetTool { kAwq, kGptq };
enum class GptqFormat { kV1, kV2 };  // v1 stores zero points minus 1 ("gptq"); v2 stores them as is
enum class PackedMode { kAuto, kYes, kNo };
enum class ScalesDType { kKeep, kF16, kBF16 };

// "awq", "gptq (v1)" or "gptq (v2)", as messages name a target.
inline const char* TargetName(TargetTool target, GptqFormat format) {
  if (target == TargetTool::kAwq) return "awq";
  return format == GptqFormat::kV2 ? "gptq (v2)" : "gptq (v1)";
}

struct PlanOptions {
  TargetTool target = TargetTool::kAwq;
  std::optional<int> w_bit;  // nullopt: taken from the description
  GptqFormat gptq_format = GptqFormat::kV1;
  PackedMode packed = PackedMode::kAuto;
  ScalesDType scales_dtype = ScalesDType::kKeep;
};

}  // namespace ms2vllm
