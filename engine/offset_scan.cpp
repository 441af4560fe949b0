#include "engine/offset_scan.h"

#include "engine/cancel.h"
#include "engine/element_values.h"

namespace ms2vllm {
namespace {

std::string NameFew(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < names.size() && i < 3; ++i) text += (i ? ", " : "") + names[i];
  if (names.size() > 3) text += ", ... (" + std::to_string(names.size()) + " tensors)";
  return text;
}

}  // namespace

Result<OffsetScan> ScanOffsets(const Plan& plan, const Checkpoint& checkpoint, Warnings& warnings,
                               const std::atomic<bool>* cancel) {
  OffsetScan scan;
  std::vector<std::string> not_integral, zero_point_zero;
  const bool v1 = plan.target == TargetTool::kGptq && plan.gptq_format == GptqFormat::kV1;
  const int64_t lowest = -(int64_t{1} << (plan.bits - 1));
  uint64_t clamped_total = 0;
  std::vector<uint8_t> bytes;
  for (const auto& tensor : plan.tensors) {
    if (Cancelled(cancel)) return Interrupted();
    if (tensor.kind != TransformKind::kQZeros) continue;
    const TensorInfo& source = *tensor.source;
    MS2VLLM_TRY(checkpoint.ReadTensor(source, bytes));
    const uint32_t size = DTypeSize(source.dtype);
    uint64_t clamped = 0;
    bool integral = true, has_zero_point_zero = false;
    for (uint64_t i = 0; i < source.numel(); ++i) {
      const auto value = ReadIntegral(source.dtype, bytes.data() + i * size);
      if (!value) {
        integral = false;
        break;
      }
      scan.all_zero &= *value == 0;
      has_zero_point_zero |= ClampToBits(*value, plan.bits, clamped) == lowest;
    }
    if (!integral) not_integral.push_back(source.name);
    if (v1 && has_zero_point_zero) zero_point_zero.push_back(source.name);
    if (clamped) warnings.Add(WarningKind::kClampedOffsets, source.name, clamped);
    clamped_total += clamped;
  }
  if (!not_integral.empty()) {
    return MakeError(ErrorCode::kInvalidInput, NameFew(not_integral) +
                                                   ": weight_offset holds values that are not finite integers "
                                                   "(the script would truncate them)");
  }
  if (!zero_point_zero.empty()) {
    const std::string what = NameFew(zero_point_zero) + ": zero point 0 (offset " + std::to_string(lowest) +
                             ") cannot be stored in GPTQ v1, which stores zero points minus 1 (the script corrupts "
                             "neighbouring values); ";
    // Offsets past the range (8-bit values labelled W4A16) clamp in every layout: v2 would not be exact.
    if (clamped_total > 0) {
      return MakeError(ErrorCode::kUnsupported,
                       what + "and " + std::to_string(clamped_total) + " offsets lie outside the " +
                           std::to_string(plan.bits) + "-bit range, so every layout clamps them: is the checkpoint " +
                           std::to_string(plan.bits) + "-bit, as its description says?");
    }
    return MakeError(ErrorCode::kUnsupported, what + "use --gptq-format v2 (checkpoint_format gptq_v2)" +
                                                  std::string(plan.bits == 4 ? " or --target_tool awq" : "") +
                                                  " for an exact result");
  }
  return scan;
}

}  // namespace ms2vllm
