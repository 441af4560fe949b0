// Small helpers shared by every kernel variant (header-only, inlined into each target).
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/kernels.h"

namespace ms2vllm::kernels {

// Field k of a packed word holds the element at offset kFieldOrder[order][k] of its group.
inline constexpr uint8_t kSequentialOrder[8] = {0, 1, 2, 3, 4, 5, 6, 7};
inline constexpr uint8_t kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

inline const uint8_t* FieldOrder(PackOrder order) {
  return order == PackOrder::kAwq ? kAwqOrder : kSequentialOrder;
}

// SPEC 2 "value shift": clamp to the signed range of kBits, then add 2^(kBits-1).
template <int kBits>
inline uint32_t ShiftValue(int8_t v, uint64_t& clamped) {
  constexpr int kLow = -(1 << (kBits - 1));
  constexpr int kHigh = (1 << (kBits - 1)) - 1;
  int value = v;
  if (value < kLow || value > kHigh) {
    ++clamped;
    value = value < kLow ? kLow : kHigh;
  }
  return static_cast<uint32_t>(value - kLow);
}

inline void StoreWord(uint8_t* dst, uint32_t word) { std::memcpy(dst, &word, 4); }

}  // namespace ms2vllm::kernels
