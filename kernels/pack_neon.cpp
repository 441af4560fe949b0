// NEON kernels (AArch64 Advanced SIMD), bit-exact with pack_ref.cpp including the clamp counts.
//
// Every transform here is a transpose at heart: the packed words of one source row become one
// column of the destination. So the work is done on register micro-tiles (4x4 words, 8x8
// halfwords) transposed with TRN1/TRN2, every destination row gets whole 16-byte stores, and the
// tiles are walked in strips so that each destination row receives a full 64-byte cache line per
// pass while the source rows are read front to back.
//
// Tiles at the right and bottom edges (the API allows any size that is a multiple of p) run
// through zeroed scratch tiles, so no byte outside the caller's tile is ever read or written.
#include <arm_neon.h>

#include <algorithm>
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/pack_common.h"
#include "kernels/variants.h"

#if !defined(__aarch64__) || defined(__AARCH64EB__)
#error "pack_neon.cpp needs little-endian AArch64: it relies on lane 0 of a vector being byte 0"
#endif

namespace ms2vllm::kernels {
namespace {

// The value shift u = clamp(v) + 2^(b-1) is, on the low b bits of a two's-complement clamp(v),
// a flip of the top bit of each field: we pack the clamped signed fields and XOR whole words.
template <int kBits>
constexpr uint32_t kFieldFlip = kBits == 4 ? 0x88888888u : 0x80808080u;

// ---------------------------------------------------------------- register building blocks

// a..d hold the rows of a 4x4 matrix of 32-bit words; afterwards they hold its columns.
inline void Transpose4x4(uint32x4_t& a, uint32x4_t& b, uint32x4_t& c, uint32x4_t& d) {
  const uint64x2_t ab_even = vreinterpretq_u64_u32(vtrn1q_u32(a, b));  // a0 b0 a2 b2
  const uint64x2_t ab_odd = vreinterpretq_u64_u32(vtrn2q_u32(a, b));   // a1 b1 a3 b3
  const uint64x2_t cd_even = vreinterpretq_u64_u32(vtrn1q_u32(c, d));  // c0 d0 c2 d2
  const uint64x2_t cd_odd = vreinterpretq_u64_u32(vtrn2q_u32(c, d));   // c1 d1 c3 d3
  a = vreinterpretq_u32_u64(vtrn1q_u64(ab_even, cd_even));
  b = vreinterpretq_u32_u64(vtrn1q_u64(ab_odd, cd_odd));
  c = vreinterpretq_u32_u64(vtrn2q_u64(ab_even, cd_even));
  d = vreinterpretq_u32_u64(vtrn2q_u64(ab_odd, cd_odd));
}

// r[0..7] hold the rows of an 8x8 matrix of 16-bit values; afterwards they hold its columns.
// Three rounds of TRN on 16-, 32- and 64-bit lanes, each swapping blocks twice the size.
inline void Transpose8x8(uint16x8_t (&r)[8]) {
  uint32x4_t pairs[8];  // pairs[2i]: even columns of rows 2i, 2i+1; pairs[2i+1]: odd columns
  for (int i = 0; i < 8; i += 2) {
    pairs[i] = vreinterpretq_u32_u16(vtrn1q_u16(r[i], r[i + 1]));
    pairs[i + 1] = vreinterpretq_u32_u16(vtrn2q_u16(r[i], r[i + 1]));
  }
  uint64x2_t quads[8];  // quads[4h + j]: columns j and j+4 of rows 4h..4h+3
  for (int h = 0; h < 8; h += 4) {
    quads[h + 0] = vreinterpretq_u64_u32(vtrn1q_u32(pairs[h], pairs[h + 2]));
    quads[h + 1] = vreinterpretq_u64_u32(vtrn1q_u32(pairs[h + 1], pairs[h + 3]));
    quads[h + 2] = vreinterpretq_u64_u32(vtrn2q_u32(pairs[h], pairs[h + 2]));
    quads[h + 3] = vreinterpretq_u64_u32(vtrn2q_u32(pairs[h + 1], pairs[h + 3]));
  }
  for (int j = 0; j < 4; ++j) {
    r[j] = vreinterpretq_u16_u64(vtrn1q_u64(quads[j], quads[j + 4]));
    r[j + 4] = vreinterpretq_u16_u64(vtrn2q_u64(quads[j], quads[j + 4]));
  }
}

// 0xFF in the lanes of v outside the signed 4-bit range [-8, 7]: v + 8, wrapping, exceeds 15.
// The add is unsigned: GCC's vaddq_s8 is a plain signed vector add, whose overflow is UB.
inline uint8x16_t OutOfNibble(int8x16_t v) {
  return vcgtq_u8(vaddq_u8(vreinterpretq_u8_s8(v), vdupq_n_u8(8)), vdupq_n_u8(15));
}

// Bytes of two 4-bit fields, clamp(lo) in the low nibble and clamp(hi) in the high one, still
// signed (see kFieldFlip). A saturating shift left by 4 clamps and moves a nibble to the top in
// one instruction: v * 16 fits in int8 exactly when v is in [-8, 7], else it saturates to 0x7F
// (top nibble 7) or 0x80 (top nibble -8). SRI then inserts lo's top nibble under hi's.
inline uint8x16_t PackNibbles(int8x16_t lo, int8x16_t hi) {
  return vsriq_n_u8(vreinterpretq_u8_s8(vqshlq_n_s8(hi, 4)), vreinterpretq_u8_s8(vqshlq_n_s8(lo, 4)), 4);
}

// Stores the four vectors as 16-byte rows of a destination.
inline void StoreFour(uint8_t* dst, size_t dst_stride, uint32x4_t a, uint32x4_t b, uint32x4_t c,
                      uint32x4_t d) {
  vst1q_u8(dst, vreinterpretq_u8_u32(a));
  vst1q_u8(dst + dst_stride, vreinterpretq_u8_u32(b));
  vst1q_u8(dst + 2 * dst_stride, vreinterpretq_u8_u32(c));
  vst1q_u8(dst + 3 * dst_stride, vreinterpretq_u8_u32(d));
}

// Copies `rows` x `bytes` between two strided blocks.
inline void CopyBlock(const uint8_t* from, size_t from_stride, uint8_t* to, size_t to_stride, size_t rows,
                      size_t bytes) {
  for (size_t i = 0; i < rows; ++i) std::memcpy(to + i * to_stride, from + i * from_stride, bytes);
}

// Visits a grid of micro-tiles, kTileRows x kTileCols in (tile-row, tile-column) units, calling
// visit(row, col, rows_here, cols_here). Tile rows become destination columns, so rows are
// walked in strips of kStrip tiles: every destination row the strip touches gets kStrip
// adjacent 16-byte stores (one 64-byte line), and the strip's source rows stay in L1 between
// consecutive tile columns.
template <size_t kTileRows, size_t kTileCols, size_t kStrip, class Visit>
inline void ForEachTile(size_t rows, size_t cols, Visit&& visit) {
  for (size_t strip = 0; strip < rows; strip += kTileRows * kStrip) {
    const size_t strip_end = std::min(rows, strip + kTileRows * kStrip);
    for (size_t col = 0; col < cols; col += kTileCols) {
      const size_t cols_here = std::min(kTileCols, cols - col);
      for (size_t row = strip; row < strip_end; row += kTileRows) {
        visit(row, col, std::min(kTileRows, strip_end - row), cols_here);
      }
    }
  }
}

// --------------------------------------------- 32-bit word transposes: pack_cols, transpose_32

// Four packed words from 4 * 32/kBits consecutive source bytes (pack_cols). Adds one to the
// lanes of `clamped` per clamped value (at most 2 per call, 8 per tile: no lane can wrap).
template <int kBits>
inline uint32x4_t PackFourWords(const uint8_t* src, uint8x16_t& clamped) {
  uint8x16_t bytes;
  if constexpr (kBits == 4) {
    // VLD2 de-interleaves even and odd values: exactly the low and the high nibble of a byte.
    const int8x16x2_t v = vld2q_s8(reinterpret_cast<const int8_t*>(src));
    clamped = vsubq_u8(clamped, OutOfNibble(v.val[0]));
    clamped = vsubq_u8(clamped, OutOfNibble(v.val[1]));
    bytes = PackNibbles(v.val[0], v.val[1]);
  } else {
    bytes = vld1q_u8(src);  // 8 bits: no clamping possible, the fields are the bytes
  }
  return veorq_u32(vreinterpretq_u32_u8(bytes), vdupq_n_u32(kFieldFlip<kBits>));
}

// dst[j][i] = word j of source row i, where a word comes from kSrcWordBytes source bytes via
// `load` (four words at a time). Shared by pack_cols (p bytes per word) and transpose_32.
template <size_t kSrcWordBytes, class LoadFour>
uint64_t TransposeWords(const uint8_t* src, size_t src_stride, size_t rows, size_t words,
                        uint8_t* dst, size_t dst_stride, LoadFour load) {
  constexpr size_t kRowBytes = 4 * kSrcWordBytes;  // source bytes behind one vector of 4 words
  uint64_t clamped = 0;
  auto tile = [&](const uint8_t* in, size_t in_stride, uint8_t* out, size_t out_stride) {
    uint8x16_t hits = vdupq_n_u8(0);
    uint32x4_t a = load(in, hits), b = load(in + in_stride, hits);
    uint32x4_t c = load(in + 2 * in_stride, hits), d = load(in + 3 * in_stride, hits);
    Transpose4x4(a, b, c, d);
    StoreFour(out, out_stride, a, b, c, d);
    clamped += vaddlvq_u8(hits);
  };
  ForEachTile<4, 4, 4>(rows, words, [&](size_t i, size_t j, size_t rows_here, size_t words_here) {
    const uint8_t* in = src + i * src_stride + j * kSrcWordBytes;
    uint8_t* out = dst + j * dst_stride + i * 4;
    if (rows_here == 4 && words_here == 4) {
      tile(in, src_stride, out, dst_stride);
      return;
    }
    // Edge tile: through zeroed scratch tiles, so one branch-free body serves every size and no
    // byte outside the caller's tile is touched (it may end where its mapping ends). Zero is in
    // range at every width, so the padding never counts as clamped.
    alignas(16) uint8_t in_tile[4 * kRowBytes] = {};
    alignas(16) uint8_t out_tile[4 * 16];
    CopyBlock(in, src_stride, in_tile, kRowBytes, rows_here, words_here * kSrcWordBytes);
    tile(in_tile, kRowBytes, out_tile, 16);
    CopyBlock(out_tile, 16, out, dst_stride, words_here, rows_here * 4);
  });
  return clamped;
}

template <int kBits>
uint64_t PackColsNeon(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                      size_t dst_stride) {
  constexpr size_t kPerWord = 32 / kBits;
  auto load = [](const uint8_t* p, uint8x16_t& hits) { return PackFourWords<kBits>(p, hits); };
  return TransposeWords<kPerWord>(src, src_stride, rows, cols / kPerWord, dst, dst_stride, load);
}

void Transpose32Neon(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                     size_t dst_stride) {
  TransposeWords<4>(src, src_stride, rows, cols, dst, dst_stride,
                    [](const uint8_t* p, uint8x16_t&) { return vreinterpretq_u32_u8(vld1q_u8(p)); });
}

// ------------------------------------------------------------------------- transpose_16

void Transpose16Neon(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                     size_t dst_stride) {
  auto tile = [](const uint8_t* in, size_t in_stride, uint8_t* out, size_t out_stride) {
    uint16x8_t v[8];
#pragma GCC unroll 8
    for (size_t s = 0; s < 8; ++s) v[s] = vreinterpretq_u16_u8(vld1q_u8(in + s * in_stride));
    Transpose8x8(v);
#pragma GCC unroll 8
    for (size_t s = 0; s < 8; ++s) vst1q_u8(out + s * out_stride, vreinterpretq_u8_u16(v[s]));
  };
  ForEachTile<8, 8, 4>(rows, cols, [&](size_t i, size_t j, size_t rows_here, size_t cols_here) {
    const uint8_t* in = src + i * src_stride + j * 2;
    uint8_t* out = dst + j * dst_stride + i * 2;
    if (rows_here == 8 && cols_here == 8) {
      tile(in, src_stride, out, dst_stride);
      return;
    }
    alignas(16) uint8_t in_tile[8 * 16] = {};  // edge tile: as in TransposeWords
    alignas(16) uint8_t out_tile[8 * 16];
    CopyBlock(in, src_stride, in_tile, 16, rows_here, cols_here * 2);
    tile(in_tile, 16, out_tile, 16);
    CopyBlock(out_tile, 16, out, dst_stride, cols_here, rows_here * 2);
  });
}

// ----------------------------------------------------------------------------- pack_rows

// The 4 words (16 columns each) of one group of p source rows: field k of the word of column t
// is row field_offset[k], byte t. Writes w[q] = the words of columns 4q..4q+3.
template <int kBits>
inline void PackGroup(const uint8_t* group, const size_t* field_offset, uint32x4_t word_bias,
                      uint8x16_t& clamped, uint32x4_t (&w)[4]) {
  uint8x16_t plane[4];  // plane[m][t] = byte m of the word of column t
#pragma GCC unroll 4
  for (size_t m = 0; m < 4; ++m) {
    if constexpr (kBits == 4) {
      const int8x16_t lo = vld1q_s8(reinterpret_cast<const int8_t*>(group + field_offset[2 * m]));
      const int8x16_t hi =
          vld1q_s8(reinterpret_cast<const int8_t*>(group + field_offset[2 * m + 1]));
      clamped = vsubq_u8(clamped, OutOfNibble(lo));
      clamped = vsubq_u8(clamped, OutOfNibble(hi));
      plane[m] = PackNibbles(lo, hi);
    } else {
      plane[m] = vld1q_u8(group + field_offset[m]);
    }
  }
  // Byte planes to words: ZIP bytes into halfwords (bytes 0,1 and 2,3), then halfwords into words.
  const uint16x8_t low01 = vreinterpretq_u16_u8(vzip1q_u8(plane[0], plane[1]));   // columns 0..7
  const uint16x8_t high01 = vreinterpretq_u16_u8(vzip2q_u8(plane[0], plane[1]));  // columns 8..15
  const uint16x8_t low23 = vreinterpretq_u16_u8(vzip1q_u8(plane[2], plane[3]));
  const uint16x8_t high23 = vreinterpretq_u16_u8(vzip2q_u8(plane[2], plane[3]));
  const uint32x4_t flip = vdupq_n_u32(kFieldFlip<kBits>);
  w[0] = vsubq_u32(veorq_u32(vreinterpretq_u32_u16(vzip1q_u16(low01, low23)), flip), word_bias);
  w[1] = vsubq_u32(veorq_u32(vreinterpretq_u32_u16(vzip2q_u16(low01, low23)), flip), word_bias);
  w[2] = vsubq_u32(veorq_u32(vreinterpretq_u32_u16(vzip1q_u16(high01, high23)), flip), word_bias);
  w[3] = vsubq_u32(veorq_u32(vreinterpretq_u32_u16(vzip2q_u16(high01, high23)), flip), word_bias);
}

template <int kBits>
uint64_t PackRowsNeon(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, PackOrder order,
                      uint32_t word_bias, uint8_t* dst, size_t dst_stride) {
  constexpr size_t kPerWord = 32 / kBits;
  // Same addressing as the reference (row c*p + ORDER[k]), so every order behaves identically.
  // The AWQ order costs nothing this way: it permutes addresses, not data (no table lookup).
  const uint8_t* field_row = FieldOrder(order);
  size_t field_offset[kPerWord];
  size_t scratch_offset[kPerWord];  // an edge tile's scratch holds the fields already in order
  for (size_t k = 0; k < kPerWord; ++k) {
    field_offset[k] = field_row[k] * src_stride;
    scratch_offset[k] = k * 16;
  }
  const uint32x4_t bias = vdupq_n_u32(word_bias);
  uint64_t clamped = 0;
  // One tile: 4 groups of p rows x 16 columns -> 16 destination rows of 4 words. At most 32
  // clamp hits per lane (4 groups x 8 fields), so the 8-bit lane counters cannot wrap.
  auto tile = [&](const uint8_t* in, size_t group_step, const size_t* offsets, uint8_t* out,
                  size_t out_stride) {
    uint8x16_t hits = vdupq_n_u8(0);
    uint32x4_t w0[4], w1[4], w2[4], w3[4];  // w_g[q]: group g, columns 4q..4q+3
    PackGroup<kBits>(in, offsets, bias, hits, w0);
    PackGroup<kBits>(in + group_step, offsets, bias, hits, w1);
    PackGroup<kBits>(in + 2 * group_step, offsets, bias, hits, w2);
    PackGroup<kBits>(in + 3 * group_step, offsets, bias, hits, w3);
#pragma GCC unroll 4
    for (size_t q = 0; q < 4; ++q) {
      Transpose4x4(w0[q], w1[q], w2[q], w3[q]);  // now column 4q+s's words for groups 0..3
      StoreFour(out + 4 * q * out_stride, out_stride, w0[q], w1[q], w2[q], w3[q]);
    }
    clamped += vaddlvq_u8(hits);
  };
  // Strips of 16 groups: each destination row gets a 64-byte line per pass.
  const size_t groups = rows / kPerWord;
  ForEachTile<4, 16, 4>(groups, cols, [&](size_t c, size_t i, size_t groups_here, size_t cols_here) {
    const uint8_t* in = src + c * kPerWord * src_stride + i;
    uint8_t* out = dst + i * dst_stride + c * 4;
    if (groups_here == 4 && cols_here == 16) {
      tile(in, kPerWord * src_stride, field_offset, out, dst_stride);
      return;
    }
    // Edge tile: through zeroed scratch tiles, as in TransposeWords.
    alignas(16) uint8_t in_tile[4 * kPerWord * 16] = {};
    alignas(16) uint8_t out_tile[16 * 16];
    for (size_t g = 0; g < groups_here; ++g) {
      for (size_t k = 0; k < kPerWord; ++k) {
        const uint8_t* field = in + g * kPerWord * src_stride + field_offset[k];
        std::memcpy(in_tile + (g * kPerWord + k) * 16, field, cols_here);
      }
    }
    tile(in_tile, kPerWord * 16, scratch_offset, out_tile, 16);
    CopyBlock(out_tile, 16, out, dst_stride, cols_here, groups_here * 4);
  });
  return clamped;
}

bool NeonSupported() { return true; }  // Advanced SIMD is part of the AArch64 baseline

}  // namespace

const KernelTable& NeonKernels() {
  static constexpr KernelTable kTable{
      "neon",           &NeonSupported,     &PackColsNeon<4>,  &PackColsNeon<8>,
      &PackRowsNeon<4>, &PackRowsNeon<8>,   &Transpose16Neon,  &Transpose32Neon,
  };
  return kTable;
}

}  // namespace ms2vllm::kernels
