// msModelSlim's ascendV1 W4A16 layout: two signed 4-bit values per byte, the even-index
// value in the low nibble, the odd-index one in the high nibble (SPEC 1, "Packed W4A16").
#pragma once

#include <cstddef>
#include <cstdint>

namespace ms2vllm::kernels {

inline int8_t LowNibble(uint8_t byte) { return static_cast<int8_t>(((byte & 0xF) ^ 8) - 8); }
inline int8_t HighNibble(uint8_t byte) { return static_cast<int8_t>(static_cast<int8_t>(byte) >> 4); }

// Pairs along `out`: packed row r holds rows 2r (low) and 2r+1 (high). Writes `rows` (even)
// unpacked rows of `cols` values starting at packed row `src`.
void UnpackPairsAlongRows(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                          size_t dst_stride);

// Pairs along `in`: packed byte c of a row holds columns 2c (low) and 2c+1 (high). Writes
// `rows` rows of `cols` (even) unpacked values.
void UnpackPairsAlongCols(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                          size_t dst_stride);

}  // namespace ms2vllm::kernels
