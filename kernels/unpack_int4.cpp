#include "kernels/unpack_int4.h"

namespace ms2vllm::kernels {

void UnpackPairsAlongRows(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                          size_t dst_stride) {
  for (size_t r = 0; r < rows / 2; ++r) {
    const uint8_t* packed = src + r * src_stride;
    uint8_t* even = dst + (2 * r) * dst_stride;
    uint8_t* odd = even + dst_stride;
    for (size_t c = 0; c < cols; ++c) {
      even[c] = static_cast<uint8_t>(LowNibble(packed[c]));
      odd[c] = static_cast<uint8_t>(HighNibble(packed[c]));
    }
  }
}

void UnpackPairsAlongCols(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                          size_t dst_stride) {
  for (size_t r = 0; r < rows; ++r) {
    const uint8_t* packed = src + r * src_stride;
    uint8_t* out = dst + r * dst_stride;
    for (size_t c = 0; c < cols / 2; ++c) {
      out[2 * c] = static_cast<uint8_t>(LowNibble(packed[c]));
      out[2 * c + 1] = static_cast<uint8_t>(HighNibble(packed[c]));
    }
  }
}

}  // namespace ms2vllm::kernels
