// Reads tensor elements, whatever their dtype: weight_offset elements as the integers they must
// hold, scale elements as floats.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>

#include "io/dtype.h"
#include "kernels/float_convert.h"

namespace ms2vllm {

// The element at `p` as an integer; nullopt when it is not finite or not integral
// (the script would silently truncate it).
inline std::optional<int64_t> ReadIntegral(DType dtype, const uint8_t* p) {
  auto load = [p]<typename T>(T) {
    T value;
    std::memcpy(&value, p, sizeof(T));
    return value;
  };
  double value = 0;
  switch (dtype) {
    case DType::kI8: return load(int8_t{});
    case DType::kU8: return load(uint8_t{});
    case DType::kI16: return load(int16_t{});
    case DType::kU16: return load(uint16_t{});
    case DType::kI32: return load(int32_t{});
    case DType::kU32: return load(uint32_t{});
    case DType::kI64: return load(int64_t{});
    case DType::kU64: {
      const uint64_t v = load(uint64_t{});
      return v > static_cast<uint64_t>(INT64_MAX) ? std::optional<int64_t>(INT64_MAX) : static_cast<int64_t>(v);
    }
    case DType::kF16: value = kernels::HalfToFloat(load(uint16_t{})); break;
    case DType::kBF16: value = kernels::BFloat16ToFloat(load(uint16_t{})); break;
    case DType::kF32: value = load(float{}); break;
    case DType::kF64: value = load(double{}); break;
    default: return std::nullopt;  // BOOL and FP8 are not offsets
  }
  if (!std::isfinite(value) || value != std::floor(value)) return std::nullopt;
  if (value >= 9.2e18) return INT64_MAX;
  if (value <= -9.2e18) return INT64_MIN;
  return static_cast<int64_t>(value);
}

// A float element for messages and casts; NaN for dtypes that are not floats.
inline double FloatOf(DType dtype, const uint8_t* p) {
  uint16_t half = 0;
  float single = 0;
  double value = 0;
  switch (dtype) {
    case DType::kF32: std::memcpy(&single, p, 4); return single;
    case DType::kF64: std::memcpy(&value, p, 8); return value;
    case DType::kF16: std::memcpy(&half, p, 2); return kernels::HalfToFloat(half);
    case DType::kBF16: std::memcpy(&half, p, 2); return kernels::BFloat16ToFloat(half);
    default: return std::numeric_limits<double>::quiet_NaN();
  }
}

// A finite nonzero scale that a --scales-dtype cast made 0 or infinite: what the conversion warns
// of (kScalesLostInCast) and verify counts.
inline bool LostInCast(double value, double cast) {
  return std::isfinite(value) && value != 0 && (cast == 0 || std::isinf(cast));
}

// SPEC 2's clamp to the signed range of `bits`; counts values moved.
inline int8_t ClampToBits(int64_t value, int bits, uint64_t& clamped) {
  const int64_t low = -(int64_t{1} << (bits - 1));
  const int64_t high = (int64_t{1} << (bits - 1)) - 1;
  if (value < low || value > high) {
    ++clamped;
    value = value < low ? low : high;
  }
  return static_cast<int8_t>(value);
}

}  // namespace ms2vllm
