#include "engine/synthetic_data.h"

#include <cmath>
#include <cstring>

#include "kernels/float_convert.h"

namespace ms2vllm {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

void StoreNumber(DType dtype, double value, uint8_t* dst) {
  switch (dtype) {
    case DType::kF32: { const float v = static_cast<float>(value); std::memcpy(dst, &v, 4); return; }
    case DType::kF64: std::memcpy(dst, &value, 8); return;
    case DType::kF16: { const uint16_t v = kernels::FloatToHalf(static_cast<float>(value)); std::memcpy(dst, &v, 2); return; }
    case DType::kBF16: { const uint16_t v = kernels::FloatToBFloat16(static_cast<float>(value)); std::memcpy(dst, &v, 2); return; }
    case DType::kI8: case DType::kU8: { const auto v = static_cast<int8_t>(value); std::memcpy(dst, &v, 1); return; }
    case DType::kI16: { const auto v = static_cast<int16_t>(value); std::memcpy(dst, &v, 2); return; }
    case DType::kI32: { const auto v = static_cast<int32_t>(value); std::memcpy(dst, &v, 4); return; }
    case DType::kI64: { const auto v = static_cast<int64_t>(value); std::memcpy(dst, &v, 8); return; }
    default: std::memset(dst, 0, DTypeSize(dtype)); return;
  }
}

}  // namespace

void GenerateBytes(const OutputTensor& tensor, uint64_t begin, uint64_t end, uint8_t* dst) {
  const GenerateSpec& spec = tensor.generate;
  const uint32_t size = DTypeSize(tensor.dtype);
  const uint64_t seed = Mix(spec.seed);
  const auto span = static_cast<uint64_t>(spec.high - spec.low + 1);
  for (uint64_t byte = begin; byte < end; byte += size) {
    const uint64_t random = Mix(seed ^ (byte / size));
    uint8_t* out = dst + (byte - begin);
    switch (spec.kind) {
      case GenerateSpec::Kind::kInt8Range:
        *out = static_cast<uint8_t>(static_cast<int8_t>(static_cast<int64_t>(spec.low) + static_cast<int64_t>(random % span)));
        break;
      case GenerateSpec::Kind::kPackedInt4:
        *out = static_cast<uint8_t>(random);
        break;
      case GenerateSpec::Kind::kFloatRange:
        StoreNumber(tensor.dtype, spec.low + (spec.high - spec.low) * static_cast<double>(random >> 11) * 0x1.0p-53, out);
        break;
      case GenerateSpec::Kind::kIntegralFloat:
        StoreNumber(tensor.dtype, spec.low + static_cast<double>(random % span), out);
        break;
    }
  }
}

}  // namespace ms2vllm
