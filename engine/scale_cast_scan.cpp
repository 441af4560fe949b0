#include "engine/scale_cast_scan.h"

#include <cmath>
#include <cstring>

#include "engine/cancel.h"
#include "kernels/float_convert.h"

namespace ms2vllm {
namespace {

float ReadScale(DType dtype, const uint8_t* at) {
  auto read = [at]<class T>(T value) {
    std::memcpy(&value, at, sizeof(value));
    return value;
  };
  switch (dtype) {
    case DType::kF64: return static_cast<float>(read(double{}));
    case DType::kF16: return kernels::HalfToFloat(read(uint16_t{}));
    case DType::kBF16: return kernels::BFloat16ToFloat(read(uint16_t{}));
    default: return read(float{});  // F32: the plan admits only float scales
  }
}

float CastScale(DType to, float value) {
  return to == DType::kF16 ? kernels::HalfToFloat(kernels::FloatToHalf(value))
                           : kernels::BFloat16ToFloat(kernels::FloatToBFloat16(value));
}

}  // namespace

Status ScanScaleCasts(const Plan& plan, const Checkpoint& checkpoint, Warnings& warnings,
                      const std::atomic<bool>* cancel) {
  std::vector<uint8_t> bytes;
  for (const auto& tensor : plan.tensors) {
    if (Cancelled(cancel)) return Interrupted();
    if (tensor.kind != TransformKind::kScales || tensor.source == nullptr || tensor.dtype == tensor.source->dtype) continue;
    const TensorInfo& source = *tensor.source;
    MS2VLLM_TRY(checkpoint.ReadTensor(source, bytes));
    const uint32_t size = DTypeSize(source.dtype);
    uint64_t never_finite = 0, lost = 0;
    for (uint64_t i = 0; i < source.numel(); ++i) {
      const float value = ReadScale(source.dtype, bytes.data() + i * size);
      const float cast = CastScale(tensor.dtype, value);
      never_finite += !std::isfinite(value);
      lost += std::isfinite(value) && (!std::isfinite(cast) || (value != 0 && cast == 0));
    }
    if (never_finite) warnings.Add(WarningKind::kNonFiniteScales, source.name, never_finite);
    if (lost) warnings.Add(WarningKind::kScalesLostInCast, source.name, lost);
  }
  return Ok{};
}

}  // namespace ms2vllm
