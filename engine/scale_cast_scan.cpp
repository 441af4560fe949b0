#include "engine/scale_cast_scan.h"

#include <cmath>

#include "engine/cancel.h"
#include "engine/element_values.h"
#include "kernels/float_convert.h"

namespace ms2vllm {
namespace {

float CastScale(DType to, float value) {
  return to == DType::kF16 ? kernels::HalfToFloat(kernels::FloatToHalf(value))
                           : kernels::BFloat16ToFloat(kernels::FloatToBFloat16(value));
}

}  // namespace

Status ScanScaleCasts(const Plan& plan, const Checkpoint& checkpoint, Warnings& warnings,
                      const std::atomic<bool>* cancel, bool kept_too) {
  std::vector<uint8_t> bytes;
  for (const auto& tensor : plan.tensors) {
    if (Cancelled(cancel)) return Interrupted();
    if (tensor.kind != TransformKind::kScales || tensor.source == nullptr) continue;
    const bool cast = tensor.dtype != tensor.source->dtype;
    if (!cast && !kept_too) continue;
    const TensorInfo& source = *tensor.source;
    MS2VLLM_TRY(checkpoint.ReadTensor(source, bytes));
    const uint32_t size = DTypeSize(source.dtype);
    uint64_t never_finite = 0, lost = 0;
    for (uint64_t i = 0; i < source.numel(); ++i) {
      const auto value = static_cast<float>(FloatOf(source.dtype, bytes.data() + i * size));  // F32, F16 or BF16
      never_finite += !std::isfinite(value);
      if (!cast) continue;
      const float after = CastScale(tensor.dtype, value);
      lost += LostInCast(value, after);
    }
    if (never_finite) warnings.Add(WarningKind::kNonFiniteScales, source.name, never_finite);
    if (lost) warnings.Add(WarningKind::kScalesLostInCast, source.name, lost);
  }
  return Ok{};
}

}  // namespace ms2vllm
