// Scalar reference kernels: each loop is SPEC.md section 2 written out.
#include "kernels/kernels.h"
#include "kernels/pack_common.h"

namespace ms2vllm::kernels {
namespace {

template <int kBits>
uint64_t PackColsRef(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                     size_t dst_stride) {
  constexpr size_t kPerWord = 32 / kBits;
  uint64_t clamped = 0;
  for (size_t r = 0; r < cols / kPerWord; ++r) {
    for (size_t o = 0; o < rows; ++o) {
      const auto* values = reinterpret_cast<const int8_t*>(src + o * src_stride + r * kPerWord);
      uint32_t word = 0;
      for (size_t j = 0; j < kPerWord; ++j) {
        word |= ShiftValue<kBits>(values[j], clamped) << (kBits * j);
      }
      StoreWord(dst + r * dst_stride + o * 4, word);
    }
  }
  return clamped;
}

template <int kBits>
uint64_t PackRowsRef(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, PackOrder order,
                     uint32_t word_bias, uint8_t* dst, size_t dst_stride) {
  constexpr size_t kPerWord = 32 / kBits;
  const uint8_t* field_source = FieldOrder(order);
  uint64_t clamped = 0;
  for (size_t i = 0; i < cols; ++i) {
    for (size_t c = 0; c < rows / kPerWord; ++c) {
      uint32_t word = 0;
      for (size_t k = 0; k < kPerWord; ++k) {
        const size_t row = c * kPerWord + field_source[k];
        const auto value = static_cast<int8_t>(src[row * src_stride + i]);
        word |= ShiftValue<kBits>(value, clamped) << (kBits * k);
      }
      StoreWord(dst + i * dst_stride + c * 4, word - word_bias);
    }
  }
  return clamped;
}

template <size_t kElemBytes>
void TransposeRef(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                  size_t dst_stride) {
  for (size_t i = 0; i < rows; ++i) {
    for (size_t j = 0; j < cols; ++j) {
      std::memcpy(dst + j * dst_stride + i * kElemBytes, src + i * src_stride + j * kElemBytes, kElemBytes);
    }
  }
}

bool AlwaysSupported() { return true; }

}  // namespace

const KernelTable& ScalarKernels() {
  static constexpr KernelTable kTable{
      "scalar",          &AlwaysSupported,   &PackColsRef<4>,     &PackColsRef<8>,
      &PackRowsRef<4>,   &PackRowsRef<8>,    &TransposeRef<2>,    &TransposeRef<4>,
  };
  return kTable;
}

}  // namespace ms2vllm::kernels
