// AVX-512 variant of the SPEC 2 transforms (compiled with AVX-512 F/BW/VL/VBMI).
//
// Same plan as the AVX2 variant, "build 32-bit words, then transpose words", with 16x16 word
// transposes so every destination write is one 64-byte line; scales and 8-bit qzeros, which need no
// words built, are transposed in 128-bit lanes instead (see "lane transposes"). What AVX-512 adds:
//  - masked loads and stores at byte, 16-bit and 32-bit granularity, so every tail runs through
//    the same micro-tile (masked-out lanes read as 0, which is in range and never stored);
//  - vpermt2b gathers the packed bytes of two pmaddubsw results in order, in one instruction;
//  - compare-into-mask + popcnt counts clamped values on the exact path.
// 4-bit values are shifted without clamping first and checked once per tile; a tile holding an
// out-of-range value is redone exactly (clamp and count), which only broken inputs need.
//
// Nothing here has external linkage except Avx512Kernels(): a shared inline function compiled
// with AVX-512 flags could otherwise be picked by the linker for a caller on a lesser CPU.

// GCC 12.2's AVX-512 headers seed some results with a self-initialised "undefined" vector (GCC
// PR 105593, fixed in 12.3); -Wuninitialized reports each inlined use against the header's lines.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"
#include "kernels/pack_common.h"
#include "kernels/simd_x86_common.h"
#include "kernels/variants.h"

namespace ms2vllm::kernels {
namespace {

inline __m512i Load(const uint8_t* p) { return _mm512_loadu_si512(p); }
inline void Store(uint8_t* p, __m512i v) { _mm512_storeu_si512(p, v); }

// Mask of the first n bits (n may exceed the mask width).
inline __mmask64 First64(size_t n) { return n >= 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1; }
inline __mmask16 First16(size_t n) { return static_cast<__mmask16>(First64(n)); }

// In-place transpose of a 16x16 matrix of 32-bit words: word j of r[k] ends in word k of r[j].
inline void Transpose16x16(__m512i r[16]) {
  __m512i t[16];
  for (int k = 0; k < 16; k += 2) {
    t[k] = _mm512_unpacklo_epi32(r[k], r[k + 1]);
    t[k + 1] = _mm512_unpackhi_epi32(r[k], r[k + 1]);
  }
  // u[4q + m], 128-bit lane L: rows 4q..4q+3 of word 4L + m.
  __m512i u[16];
  for (int k = 0; k < 16; k += 4) {
    u[k] = _mm512_unpacklo_epi64(t[k], t[k + 2]);
    u[k + 1] = _mm512_unpackhi_epi64(t[k], t[k + 2]);
    u[k + 2] = _mm512_unpacklo_epi64(t[k + 1], t[k + 3]);
    u[k + 3] = _mm512_unpackhi_epi64(t[k + 1], t[k + 3]);
  }
  // Word 4L + m gathers lane L of u[m], u[4+m], u[8+m], u[12+m]: a 4x4 transpose of lanes.
  for (int m = 0; m < 4; ++m) {
    const __m512i x0 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0x44);
    const __m512i x1 = _mm512_shuffle_i32x4(u[m], u[4 + m], 0xEE);
    const __m512i x2 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0x44);
    const __m512i x3 = _mm512_shuffle_i32x4(u[8 + m], u[12 + m], 0xEE);
    r[m] = _mm512_shuffle_i32x4(x0, x2, 0x88);
    r[4 + m] = _mm512_shuffle_i32x4(x0, x2, 0xDD);
    r[8 + m] = _mm512_shuffle_i32x4(x1, x3, 0x88);
    r[12 + m] = _mm512_shuffle_i32x4(x1, x3, 0xDD);
  }
}

// Stores rows 0..n-1 of a transposed tile, the first `words` 32-bit words of each. Full tiles
// take plain stores; the loop is unrolled so r[] stays in registers.
template <bool kFull>
inline void StoreRows(uint8_t* dst, size_t dst_stride, const __m512i r[16], size_t n, size_t words) {
  const __mmask16 keep = First16(words);
#pragma GCC unroll 16
  for (size_t j = 0; j < 16; ++j) {
    if (kFull) {
      Store(dst + j * dst_stride, r[j]);
    } else if (j < n) {
      _mm512_mask_storeu_epi32(dst + j * dst_stride, keep, r[j]);
    }
  }
}

// What a transposed register becomes before it is stored: scales as they are; GPTQ 8-bit qzeros
// shifted and less the bias in one byte add, byte k of every word adding 128 minus byte k of the
// word bias. That is the word subtraction whenever no field is below its byte of the bias, as
// kernels.h requires (a field below would wrap alone, which it allows). Every tile starts on a row
// that is a multiple of 4, so byte k of each 4 is field k.
struct AsIs {
  __m512i operator()(__m512i column) const { return column; }
};
struct GptqBytes8 {
  __m512i add;
  explicit GptqBytes8(uint32_t word_bias) : add(_mm512_set1_epi32(static_cast<int>(AddPerByte(word_bias)))) {}
  __m512i operator()(__m512i column) const { return _mm512_add_epi8(column, add); }
  static uint32_t AddPerByte(uint32_t word_bias) {
    uint32_t add = 0;
    for (int k = 0; k < 4; ++k) {
      add |= static_cast<uint32_t>(static_cast<uint8_t>(0x80 - (word_bias >> (8 * k)))) << (8 * k);
    }
    return add;
  }
};

// 4-bit value shift of 64 int8. The fast form only adds 8 and ORs the result into `seen`: a value
// was out of range iff its shifted byte has a high nibble. The exact form clamps and counts.
template <bool kExact>
inline __m512i Shift4(__m512i v, __m512i& seen, uint64_t& clamped) {
  if constexpr (kExact) {
    const __m512i c = _mm512_max_epi8(_mm512_min_epi8(v, _mm512_set1_epi8(7)), _mm512_set1_epi8(-8));
    clamped += static_cast<uint64_t>(_mm_popcnt_u64(_mm512_cmpneq_epi8_mask(c, v)));
    return _mm512_add_epi8(c, _mm512_set1_epi8(8));
  } else {
    const __m512i u = _mm512_add_epi8(v, _mm512_set1_epi8(8));
    seen = _mm512_or_si512(seen, u);
    return u;
  }
}

inline bool SawOutOfRange(__m512i seen) {
  return _mm512_test_epi8_mask(seen, _mm512_set1_epi8(static_cast<char>(0xF0))) != 0;
}

// ---- narrow transposes (scales and qzeros [out][G], G <= 16, rows back to back) -------------

// A matrix this narrow is a byte transpose of small, contiguous blocks. A block of 16 / E rows
// (E = element bytes) is 16 * cols bytes, at most 4 registers, so byte permutes fill each register
// straight from the loads with 4 columns of the block, one per 128-bit lane. A 4x4 lane transpose of
// 4 consecutive blocks' registers then gives 4 destination rows of 64 bytes. No word transpose and
// no unpacks. On [8960][12], against the tiles of the time (standalone harness pinned to each CPU, old
// and new library interleaved): 8-bit qzeros 44% -> 66-67% of memcpy, 16-bit scales 53% -> 78-82%,
// 32-bit scales 48-53% -> 70-80%.
constexpr size_t kNarrowCols = 16;  // columns at most, for every narrow path

// Byte p of lane l of register k: byte p % E of element p / E of column 4k + l in the block.
template <size_t kElem, size_t kQuads>
inline void NarrowIndex(size_t cols, __m512i index[kQuads]) {
  for (size_t k = 0; k < kQuads; ++k) {
    alignas(64) uint8_t bytes[64];
    for (size_t l = 0; l < 4; ++l) {
      for (size_t p = 0; p < 16; ++p) bytes[16 * l + p] = static_cast<uint8_t>(((p / kElem) * cols + 4 * k + l) * kElem + p % kElem);
    }
    index[k] = Load(bytes);
  }
}

// 4 blocks (64 * cols bytes from src) -> 64 bytes of each of the cols destination rows.
template <size_t kQuads, class Finish>
inline void NarrowStep(const uint8_t* src, size_t cols, const __m512i index[kQuads], uint8_t* dst, size_t dst_stride,
                       Finish finish) {
  const __mmask64 last = First64(16 * cols - 64 * (kQuads - 1));
  __mmask64 upper[kQuads];  // index bytes of 128 or more come from the third and fourth registers
  for (size_t k = 0; k < kQuads; ++k) upper[k] = _mm512_movepi8_mask(index[k]);
  __m512i quad[4][kQuads];
#pragma GCC unroll 4
  for (size_t b = 0; b < 4; ++b) {
    __m512i r[kQuads];
#pragma GCC unroll 4
    for (size_t m = 0; m < kQuads; ++m) {
      const uint8_t* p = src + 16 * b * cols + 64 * m;
      r[m] = m + 1 < kQuads ? Load(p) : _mm512_maskz_loadu_epi8(last, p);
    }
#pragma GCC unroll 4
    for (size_t k = 0; k < kQuads; ++k) {
      if constexpr (kQuads == 1) {
        quad[b][k] = _mm512_permutexvar_epi8(index[k], r[0]);
      } else if constexpr (kQuads == 2) {
        quad[b][k] = _mm512_permutex2var_epi8(r[0], index[k], r[1]);
      } else if constexpr (kQuads == 3) {
        quad[b][k] = _mm512_mask_permutexvar_epi8(_mm512_permutex2var_epi8(r[0], index[k], r[1]), upper[k], index[k],
                                                  r[2]);
      } else {
        quad[b][k] = _mm512_mask_blend_epi8(upper[k], _mm512_permutex2var_epi8(r[0], index[k], r[1]),
                                            _mm512_permutex2var_epi8(r[2], index[k], r[3]));
      }
    }
  }
#pragma GCC unroll 4
  for (size_t k = 0; k < kQuads; ++k) {
    const __m512i x0 = _mm512_shuffle_i32x4(quad[0][k], quad[1][k], 0x44);
    const __m512i x1 = _mm512_shuffle_i32x4(quad[0][k], quad[1][k], 0xEE);
    const __m512i x2 = _mm512_shuffle_i32x4(quad[2][k], quad[3][k], 0x44);
    const __m512i x3 = _mm512_shuffle_i32x4(quad[2][k], quad[3][k], 0xEE);
    const __m512i column[4] = {_mm512_shuffle_i32x4(x0, x2, 0x88), _mm512_shuffle_i32x4(x0, x2, 0xDD),
                               _mm512_shuffle_i32x4(x1, x3, 0x88), _mm512_shuffle_i32x4(x1, x3, 0xDD)};
#pragma GCC unroll 4
    for (size_t l = 0; l < 4; ++l) {
      if (4 * k + l < cols) Store(dst + (4 * k + l) * dst_stride, finish(column[l]));
    }
  }
}

// Not inlined: inlined into its caller (every instance is called once), GCC lays out the step loop
// worse (16-bit [8960][12] scales: 74-80% -> 56-58% of memcpy).
template <size_t kElem, size_t kQuads, class Finish>
__attribute__((noinline)) void NarrowSteps(const uint8_t* src, size_t cols, size_t steps, uint8_t* dst, size_t dst_stride, Finish finish) {
  __m512i index[kQuads];
  NarrowIndex<kElem, kQuads>(cols, index);
  for (size_t s = 0; s < steps; ++s) NarrowStep<kQuads>(src + 64 * s * cols, cols, index, dst + 64 * s, dst_stride, finish);
}

// Transposes the first rows of a [rows][cols] matrix of kElem-byte elements (cols 1..16, rows
// back to back), 64 / kElem rows at a time; returns how many rows it did. `finish` maps each
// destination register before it is stored.
template <size_t kElem, class Finish>
size_t TransposeNarrow(const uint8_t* src, size_t rows, size_t cols, uint8_t* dst, size_t dst_stride, Finish finish) {
  const size_t steps = cols == 0 ? 0 : rows / (64 / kElem);
  switch ((cols + 3) / 4) {
    case 1:
      NarrowSteps<kElem, 1>(src, cols, steps, dst, dst_stride, finish);
      break;
    case 2:
      NarrowSteps<kElem, 2>(src, cols, steps, dst, dst_stride, finish);
      break;
    case 3:
      NarrowSteps<kElem, 3>(src, cols, steps, dst, dst_stride, finish);
      break;
    default:
      NarrowSteps<kElem, 4>(src, cols, steps, dst, dst_stride, finish);
      break;
  }
  return steps * (64 / kElem);
}

// ---- lane transposes (scales, and GPTQ 8-bit qzeros wider than the narrow path) -------------

// A tile of 4n rows x n columns of E-byte elements, n = 16 / E: register k holds rows k, n + k,
// 2n + k and 3n + k of the tile, 16 bytes each, in its four 128-bit lanes (broadcast loads merged
// under a mask: no shuffle), and an in-lane n x n transpose (log2 n unpack stages) leaves in
// register c column c of all 4n rows in order, the 64 bytes of one destination line. The tiles it
// replaced loaded two rows per register (256-bit halves) and joined the halves of each destination
// line with a lane shuffle, or (32 bits) ran the 16 x 16 word transpose. A/B on an Intel Xeon
// (AVX-512 VBMI), 3 rounds x 2 CPUs, medians: 8-bit qzeros [1536][70] 21 -> 26 GB/s, [18944][28]
// 25 -> 29; 16-bit scales [1536][70] 26 -> 28; 32-bit [1536][70] 24 -> 31; the others within noise.

// In each 128-bit lane, 16 rows of 16 bytes become 16 columns: lane L of x[c] holds byte c of lane L
// of every input register, in register order.
inline void Transpose16x16BytesInLanes(__m512i x[16]) {
  __m512i t[16], u[16], v[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi8(x[2 * i], x[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi8(x[2 * i], x[2 * i + 1]);
  }
  for (int g = 0; g < 4; ++g) {  // rows 4g..4g+3
    u[4 * g] = _mm512_unpacklo_epi16(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi16(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi16(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi16(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int h = 0; h < 2; ++h) {  // rows 8h..8h+7
    for (int q = 0; q < 4; ++q) {
      v[8 * h + 2 * q] = _mm512_unpacklo_epi32(u[8 * h + q], u[8 * h + 4 + q]);
      v[8 * h + 2 * q + 1] = _mm512_unpackhi_epi32(u[8 * h + q], u[8 * h + 4 + q]);
    }
  }
  for (int m = 0; m < 8; ++m) {
    x[2 * m] = _mm512_unpacklo_epi64(v[m], v[m + 8]);
    x[2 * m + 1] = _mm512_unpackhi_epi64(v[m], v[m + 8]);
  }
}

// The same for 8 rows of 8 16-bit elements.
inline void Transpose8x8InLanes(__m512i r[8]) {
  __m512i a[8], b[8];
  for (int k = 0; k < 8; k += 2) {
    a[k] = _mm512_unpacklo_epi16(r[k], r[k + 1]);
    a[k + 1] = _mm512_unpackhi_epi16(r[k], r[k + 1]);
  }
  for (int k = 0; k < 8; k += 4) {
    b[k] = _mm512_unpacklo_epi32(a[k], a[k + 2]);
    b[k + 1] = _mm512_unpackhi_epi32(a[k], a[k + 2]);
    b[k + 2] = _mm512_unpacklo_epi32(a[k + 1], a[k + 3]);
    b[k + 3] = _mm512_unpackhi_epi32(a[k + 1], a[k + 3]);
  }
  for (int q = 0; q < 4; ++q) {
    r[2 * q] = _mm512_unpacklo_epi64(b[q], b[q + 4]);
    r[2 * q + 1] = _mm512_unpackhi_epi64(b[q], b[q + 4]);
  }
}

// The same for 4 rows of 4 32-bit elements.
inline void Transpose4x4InLanes(__m512i r[4]) {
  const __m512i t0 = _mm512_unpacklo_epi32(r[0], r[1]), t1 = _mm512_unpackhi_epi32(r[0], r[1]);
  const __m512i t2 = _mm512_unpacklo_epi32(r[2], r[3]), t3 = _mm512_unpackhi_epi32(r[2], r[3]);
  r[0] = _mm512_unpacklo_epi64(t0, t2);
  r[1] = _mm512_unpackhi_epi64(t0, t2);
  r[2] = _mm512_unpacklo_epi64(t1, t3);
  r[3] = _mm512_unpackhi_epi64(t1, t3);
}

template <size_t kElem>
inline void TransposeInLanes(__m512i r[16 / kElem]) {
  if constexpr (kElem == 1) {
    Transpose16x16BytesInLanes(r);
  } else if constexpr (kElem == 2) {
    Transpose8x8InLanes(r);
  } else {
    Transpose4x4InLanes(r);
  }
}

// 16 bytes of each of 4 rows, lane_stride apart from p, into the 4 lanes. Whole tiles load every lane
// in full; otherwise only the first `lanes` rows exist and only the bytes `bytes` marks are read.
template <bool kWhole>
inline __m512i LoadLanes(const uint8_t* p, size_t lane_stride, size_t lanes, __mmask16 bytes) {
  auto lane = [&](size_t l) {
    const uint8_t* q = p + l * lane_stride;
    return kWhole ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)) : _mm_maskz_loadu_epi8(bytes, q);
  };
  if constexpr (kWhole) {
    __m512i v = _mm512_broadcast_i32x4(lane(0));
    v = _mm512_mask_broadcast_i32x4(v, 0x00F0, lane(1));
    v = _mm512_mask_broadcast_i32x4(v, 0x0F00, lane(2));
    return _mm512_mask_broadcast_i32x4(v, 0xF000, lane(3));
  } else {
    __m512i v = _mm512_setzero_si512();
    for (size_t l = 0; l < lanes; ++l) {
      v = _mm512_mask_broadcast_i32x4(v, static_cast<__mmask16>(0xF << (4 * l)), lane(l));
    }
    return v;
  }
}

// One lane tile: nrows (1..4n) rows x ncols (1..n) columns from src -> ncols destination rows of
// nrows elements. `finish` maps each destination register before it is stored.
template <size_t kElem, bool kWhole, class Finish>
inline void LaneTile(const uint8_t* src, size_t src_stride, size_t nrows, size_t ncols, uint8_t* dst,
                     size_t dst_stride, Finish finish) {
  constexpr size_t kCols = 16 / kElem;
  const __mmask16 bytes = static_cast<__mmask16>(First64(kElem * ncols));
  __m512i r[kCols];
#pragma GCC unroll 16
  for (size_t k = 0; k < kCols; ++k) {
    const size_t lanes = kWhole ? 4 : (nrows + kCols - 1 - k) / kCols;  // rows k + l * kCols below nrows
    r[k] = LoadLanes<kWhole>(src + k * src_stride, kCols * src_stride, lanes, bytes);
  }
  TransposeInLanes<kElem>(r);
  const __mmask64 keep = First64(kElem * nrows);
#pragma GCC unroll 16
  for (size_t c = 0; c < kCols; ++c) {
    if (kWhole) {
      Store(dst + c * dst_stride, finish(r[c]));
    } else if (c < ncols) {
      _mm512_mask_storeu_epi8(dst + c * dst_stride, keep, finish(r[c]));
    }
  }
}

// Whole lane tiles over a matrix of at least one tile, kGroups column groups per row tile, in
// passes of kBlock rows as ForEachTile walks them. A last row tile or column group that would be
// partial overlaps the one before it instead, writing the same bytes again.
template <size_t kElem, size_t kGroups, size_t kBlock = kBlockRows, class Finish>
void LaneTiles(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst, size_t dst_stride,
               Finish finish) {
  constexpr size_t kCols = 16 / kElem, kRows = 4 * kCols;
  ForEachTile<kRows, kGroups * kCols, kBlock>(rows, cols, [&](size_t o, size_t j0, size_t, size_t n) {
    o = Min(o, rows - kRows);
#pragma GCC unroll 4
    for (size_t g = 0; g < kGroups; ++g) {
      if (g * kCols >= n) break;
      const size_t j = Min(j0 + g * kCols, cols - kCols);
      LaneTile<kElem, true>(src + o * src_stride + j * kElem, src_stride, kRows, kCols,
                            dst + j * dst_stride + o * kElem, dst_stride, finish);
    }
  });
}

// Lane tiles of 8-bit and 32-bit elements for a destination stride that is a multiple of 4 KiB,
// in passes that write 512 bytes of each destination row (at 64 columns, 32 KiB of source, which
// L1 keeps for the pass's next column groups; the usual 256-row pass of 32-bit elements reads
// 64 KiB). Such strides send all of a tile's destination lines to one L1 set: the 16 of an 8-bit
// tile evicted one another before they were written, so 8-bit tiles are staged in L1 and their
// columns written out a run of lines at a time. On an AMD EPYC (Zen 5), [8192][64] against the
// walks of other strides: 8-bit 20 -> 28-33 GB/s, 32-bit 22 -> 33-38 (also against four column
// groups). 16-bit tiles (8 lines, within a set's ways) gained nothing and keep the other walks.
template <size_t kElem, class Finish>
void LaneTilesOn4KStrides(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                          size_t dst_stride, Finish finish) {
  static_assert(kElem != 2);
  constexpr size_t kCols = 16 / kElem, kRows = 4 * kCols, kPassRows = 512 / kElem;
  if constexpr (kElem == 4) {
    LaneTiles<kElem, 1, kPassRows>(src, src_stride, rows, cols, dst, dst_stride, finish);
  } else {
    alignas(64) uint8_t stage[kCols][kPassRows];
    const size_t done = rows / kPassRows * kPassRows;
    for (size_t o0 = 0; o0 < done; o0 += kPassRows) {
      for (size_t j0 = 0; j0 < cols; j0 += kCols) {
        const size_t j = Min(j0, cols - kCols);
        for (size_t o = 0; o < kPassRows; o += kRows) {
          LaneTile<kElem, true>(src + (o0 + o) * src_stride + j, src_stride, kRows, kCols, stage[0] + o, kPassRows,
                                finish);
        }
#pragma GCC unroll 16
        for (size_t c = 0; c < kCols; ++c) {
#pragma GCC unroll 8
          for (size_t l = 0; l < kPassRows; l += 64) Store(dst + (j + c) * dst_stride + o0 + l, Load(stage[c] + l));
        }
      }
    }
    if (done < rows) {  // the last rows, in tiles that overlap the staged ones if they must
      const size_t start = Min(done, rows - kRows);
      LaneTiles<kElem, 1>(src + start * src_stride, src_stride, rows - start, cols, dst + start, dst_stride, finish);
    }
  }
}

// Transposes a [rows][cols] matrix of kElem-byte elements in lane tiles; only a matrix smaller than
// a tile takes the masked ones. One column group per row tile, so that each destination row
// receives a run of lines per pass; but four (whole 64-byte source lines) when the source stride is
// a multiple of 256 bytes: then a pass's rows share a quarter of L1's sets, and each line was
// evicted before the next group read it (on a Xeon, 32-bit [8192][64] before it took the 4 KiB
// path: 8.2 -> 11.1 GB/s; four groups for every stride lose 10-20% on the others).
template <size_t kElem, class Finish>
void LaneTranspose(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst, size_t dst_stride,
                   Finish finish) {
  constexpr size_t kCols = 16 / kElem, kRows = 4 * kCols;
  if (rows < kRows || cols < kCols) {
    ForEachTile<kRows, kCols>(rows, cols, [&](size_t o, size_t j, size_t nrows, size_t n) {
      LaneTile<kElem, false>(src + o * src_stride + j * kElem, src_stride, nrows, n, dst + j * dst_stride + o * kElem,
                             dst_stride, finish);
    });
  } else if (kElem != 2 && dst_stride % 4096 == 0) {
    if constexpr (kElem != 2) LaneTilesOn4KStrides<kElem>(src, src_stride, rows, cols, dst, dst_stride, finish);
  } else if (src_stride % 256 == 0) {
    LaneTiles<kElem, 4>(src, src_stride, rows, cols, dst, dst_stride, finish);
  } else {
    LaneTiles<kElem, 1>(src, src_stride, rows, cols, dst, dst_stride, finish);
  }
}

// A whole transpose of kElem-byte elements: the narrow path for what it can do (rows back to back,
// at most 16 columns), lane tiles for the rest. Scales take it as it is; 8-bit qzeros with their
// shift and bias as the finish.
template <size_t kElem, class Finish>
void TransposeAll(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst, size_t dst_stride,
                  Finish finish) {
  size_t done = 0;
  if (src_stride == kElem * cols && cols <= kNarrowCols) {
    done = TransposeNarrow<kElem>(src, rows, cols, dst, dst_stride, finish);
  }
  LaneTranspose<kElem>(src + done * src_stride, src_stride, rows - done, cols, dst + done * kElem, dst_stride, finish);
}

// ---- pack_cols (GPTQ qweight) ----------------------------------------------------------------

// The 16 words of each of nrows (1..16) source rows (nwords of them real, the rest 0).
template <int kBits, bool kFull, bool kExact>
inline void PackColsWords(const uint8_t* src, size_t src_stride, size_t nrows, size_t nwords, __m512i w[16],
                          __m512i& seen, uint64_t& clamped) {
  constexpr size_t kPerWord = 32 / kBits;
  const size_t bytes = nwords * kPerWord;
#pragma GCC unroll 16
  for (size_t k = 0; k < 16; ++k) {
    if (!kFull && k >= nrows) {
      w[k] = _mm512_setzero_si512();
      continue;
    }
    const uint8_t* row = src + k * src_stride;
    if constexpr (kBits == 4) {
      const __m512i a = kFull ? Load(row) : _mm512_maskz_loadu_epi8(First64(bytes), row);
      const __m512i b = kFull        ? Load(row + 64)
                        : bytes > 64 ? _mm512_maskz_loadu_epi8(First64(bytes - 64), row + 64)
                                     : _mm512_setzero_si512();
      const __m512i pair = _mm512_set1_epi16(0x1001);  // low nibble x1 + high nibble x16
      const __m512i ma = _mm512_maddubs_epi16(Shift4<kExact>(a, seen, clamped), pair);
      const __m512i mb = _mm512_maddubs_epi16(Shift4<kExact>(b, seen, clamped), pair);
      // Bytes 0, 2, .., 126 of ma:mb (vpermt2b): the 16 words of this row, in order.
      const __m512i even =
          _mm512_set_epi64(0x7E7C7A7876747270, 0x6E6C6A6866646260, 0x5E5C5A5856545250, 0x4E4C4A4846444240,
                           0x3E3C3A3836343230, 0x2E2C2A2826242220, 0x1E1C1A1816141210, 0x0E0C0A0806040200);
      w[k] = _mm512_permutex2var_epi8(ma, even, mb);
    } else {
      const __m512i v = kFull ? Load(row) : _mm512_maskz_loadu_epi8(First64(bytes), row);
      w[k] = _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80)));
    }
  }
}

// nrows (1..16) source rows x nwords (1..16) words -> nwords destination rows x nrows words.
template <int kBits, bool kFull>
inline void PackColsTile(const uint8_t* src, size_t src_stride, size_t nrows, size_t nwords, uint8_t* dst,
                         size_t dst_stride, uint64_t& clamped) {
  __m512i w[16];
  __m512i seen = _mm512_setzero_si512();
  PackColsWords<kBits, kFull, false>(src, src_stride, nrows, nwords, w, seen, clamped);
  if (kBits == 4 && SawOutOfRange(seen)) {
    __m512i exact[16];  // a separate array keeps w[] in registers on the fast path
    PackColsWords<kBits, kFull, true>(src, src_stride, nrows, nwords, exact, seen, clamped);
    Transpose16x16(exact);
    StoreRows<kFull>(dst, dst_stride, exact, nwords, nrows);
    return;
  }
  Transpose16x16(w);
  StoreRows<kFull>(dst, dst_stride, w, nwords, nrows);
}

template <int kBits>
uint64_t PackColsAvx512(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                        size_t dst_stride) {
  constexpr size_t kPerWord = 32 / kBits;
  const size_t words = cols / kPerWord;
  uint64_t clamped = 0;
  ForEachTile<16, 16>(rows, words, [&](size_t o, size_t r, size_t nrows, size_t nwords) {
    const uint8_t* s = src + o * src_stride + r * kPerWord;
    uint8_t* d = dst + r * dst_stride + o * 4;
    if (nrows == 16 && nwords == 16) {
      PackColsTile<kBits, true>(s, src_stride, 16, 16, d, dst_stride, clamped);
    } else {
      PackColsTile<kBits, false>(s, src_stride, nrows, nwords, d, dst_stride, clamped);
    }
  });
  return clamped;
}

// ---- pack_rows (AWQ qweight, qzeros) ---------------------------------------------------------

// Words are built into a 64 KiB tile of kTileGroups x kTileCols, then transposed out. Each source
// row is read 256 bytes at a time and each destination row written 256 bytes at a time: shorter
// runs are slow when either stride is a power of two (all rows share one cache set). Measured
// against 16 x 1024 (the 4096 x 4096 tile: 32% -> 66-73% of memcpy) and 32 x 256, 64 x 128, 128 x 128.
constexpr size_t kTileGroups = 64;
constexpr size_t kTileCols = 256;

// Byte of field pair (lo, hi): both values are below 16, so the 16-bit shift stays in its byte.
inline __m512i Join(__m512i lo, __m512i hi) { return _mm512_or_si512(lo, _mm512_slli_epi16(hi, 4)); }

// One group of 8 rows x the columns in `cols` (a mask of up to 64) -> 64 words, in chunk order.
template <bool kExact>
inline void PackRowsGroup(const uint8_t* src, size_t stride, __mmask64 cols, bool awq, __m512i bias, uint32_t* out,
                          __m512i& seen, uint64_t& clamped) {
  __m512i b[4];  // byte m of every word
  __m512i u[8];
  for (int k = 0; k < 8; ++k) u[k] = Shift4<kExact>(_mm512_maskz_loadu_epi8(cols, src + k * stride), seen, clamped);
  // Byte m holds fields 2m and 2m+1; field k comes from row ORDER[k].
  if (awq) {
    b[0] = Join(u[0], u[2]);
    b[1] = Join(u[4], u[6]);
    b[2] = Join(u[1], u[3]);
    b[3] = Join(u[5], u[7]);
  } else {
    b[0] = Join(u[0], u[1]);
    b[1] = Join(u[2], u[3]);
    b[2] = Join(u[4], u[5]);
    b[3] = Join(u[6], u[7]);
  }
  const __m512i lo01 = _mm512_unpacklo_epi8(b[0], b[1]);
  const __m512i hi01 = _mm512_unpackhi_epi8(b[0], b[1]);
  const __m512i lo23 = _mm512_unpacklo_epi8(b[2], b[3]);
  const __m512i hi23 = _mm512_unpackhi_epi8(b[2], b[3]);
  // Lane L of chunk m holds columns 16L + 4m .. 16L + 4m + 3 (see TileColumn): left in that order,
  // as the transpose can put each row anywhere for free.
  auto* o = reinterpret_cast<uint8_t*>(out);
  Store(o, _mm512_sub_epi32(_mm512_unpacklo_epi16(lo01, lo23), bias));
  Store(o + 64, _mm512_sub_epi32(_mm512_unpackhi_epi16(lo01, lo23), bias));
  Store(o + 128, _mm512_sub_epi32(_mm512_unpacklo_epi16(hi01, hi23), bias));
  Store(o + 192, _mm512_sub_epi32(_mm512_unpackhi_epi16(hi01, hi23), bias));
}

// The tile column held by word j (0..15) of 16-word chunk c of a word-tile row.
inline size_t TileColumn(size_t c, size_t j) { return 64 * (c >> 2) + 16 * (j >> 2) + 4 * (c & 3) + (j & 3); }

template <bool kExact>
inline void PackRowsTile(const uint8_t* src, size_t src_stride, size_t ng, size_t ni, bool awq, __m512i bias,
                         uint32_t (*words)[kTileCols], __m512i& seen, uint64_t& clamped) {
  for (size_t g = 0; g < ng; ++g) {
    for (size_t i = 0; i < ni; i += 64) {
      PackRowsGroup<kExact>(src + g * 8 * src_stride + i, src_stride, First64(ni - i), awq, bias, &words[g][i], seen,
                            clamped);
    }
  }
}

// Chunk c of ng (1..16) rows of the word tile, transposed out: word j of the chunk goes to the
// destination row of tile column TileColumn(c, j), if that column is below ni.
template <bool kFull>
inline void StoreChunk(const uint32_t* words, size_t c, size_t ng, size_t ni, uint8_t* dst, size_t dst_stride) {
  __m512i w[16];
#pragma GCC unroll 16
  for (size_t k = 0; k < 16; ++k) {
    w[k] = kFull || k < ng ? Load(reinterpret_cast<const uint8_t*>(words + k * kTileCols + 16 * c))
                           : _mm512_setzero_si512();
  }
  Transpose16x16(w);
  const __mmask16 keep = First16(ng);
#pragma GCC unroll 16
  for (size_t j = 0; j < 16; ++j) {
    const size_t col = TileColumn(c, j);
    if (kFull) {
      Store(dst + col * dst_stride, w[j]);
    } else if (col < ni) {
      _mm512_mask_storeu_epi32(dst + col * dst_stride, keep, w[j]);
    }
  }
}

// Narrow tiles (4-bit qzeros [out][G] with G <= 16, rows back to back): the wide path would spend
// a 64-column vector on G columns. Here one group's rows are at most 128 contiguous bytes, so byte
// permutes gather every column's word of a group at once; 16 groups of words are then
// transposed out. Returns false, having written garbage, if a value needs clamping: the wide path
// then redoes the tile exactly.
bool PackRows4Narrow(const uint8_t* src, size_t cols, size_t groups, PackOrder order, __m512i bias, uint8_t* dst,
                     size_t dst_stride) {
  const size_t group_bytes = 8 * cols;
  const uint8_t* field_row = FieldOrder(order);
  // Byte m of column c's word: its two nibbles from the group's rows field_row[2m] (low) and
  // field_row[2m + 1] (high). Columns >= cols: unused.
  alignas(64) uint8_t low_index[64] = {}, high_index[64] = {};
  for (size_t c = 0; c < cols; ++c) {
    for (size_t m = 0; m < 4; ++m) {
      low_index[4 * c + m] = static_cast<uint8_t>(field_row[2 * m] * cols + c);
      high_index[4 * c + m] = static_cast<uint8_t>(field_row[2 * m + 1] * cols + c);
    }
  }
  const __m512i low = Load(low_index), high = Load(high_index);
  __m512i seen = _mm512_setzero_si512();
  uint64_t unused = 0;
  for (size_t g0 = 0; g0 < groups; g0 += 16) {
    const size_t ng = Min(16, groups - g0);
    __m512i w[16];
#pragma GCC unroll 16
    for (size_t k = 0; k < 16; ++k) {
      if (k >= ng) {
        w[k] = _mm512_setzero_si512();
        continue;
      }
      const uint8_t* group = src + (g0 + k) * group_bytes;
      const __m512i a = _mm512_maskz_loadu_epi8(First64(group_bytes), group);
      const __m512i b = group_bytes > 64 ? _mm512_maskz_loadu_epi8(First64(group_bytes - 64), group + 64)
                                         : _mm512_setzero_si512();
      const __m512i ua = Shift4<false>(a, seen, unused), ub = Shift4<false>(b, seen, unused);
      const __m512i word = Join(_mm512_permutex2var_epi8(ua, low, ub), _mm512_permutex2var_epi8(ua, high, ub));
      w[k] = _mm512_sub_epi32(word, bias);
    }
    Transpose16x16(w);
    StoreRows<false>(dst + g0 * 4, dst_stride, w, cols, ng);
  }
  return !SawOutOfRange(seen);
}

// 4-bit pack_rows wider than the narrow path (AWQ qweight, and qzeros of more than 16 groups).
uint64_t PackRows4Wide(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, bool awq, __m512i bias,
                       uint8_t* dst, size_t dst_stride) {
  const size_t groups = rows / 8;
  alignas(64) uint32_t words[kTileGroups][kTileCols];
  uint64_t clamped = 0;
  for (size_t g0 = 0; g0 < groups; g0 += kTileGroups) {
    for (size_t i0 = 0; i0 < cols; i0 += kTileCols) {
      const size_t ng = Min(kTileGroups, groups - g0);
      const uint8_t* tile_src = src + g0 * 8 * src_stride;
      const size_t ni = Min(kTileCols, cols - i0);
      __m512i seen = _mm512_setzero_si512();
      PackRowsTile<false>(tile_src + i0, src_stride, ng, ni, awq, bias, words, seen, clamped);
      if (SawOutOfRange(seen)) PackRowsTile<true>(tile_src + i0, src_stride, ng, ni, awq, bias, words, seen, clamped);
      for (size_t c = 0; c < (ni + 63) / 64 * 4; ++c) {
        if (TileColumn(c, 0) >= ni) continue;  // a last, partial 64 columns leaves whole chunks empty
        for (size_t g = 0; g < ng; g += 16) {  // along the destination row: neighbouring lines
          uint8_t* out = dst + i0 * dst_stride + (g0 + g) * 4;
          if (ni >= 64 * ((c >> 2) + 1) && ng - g >= 16) {
            StoreChunk<true>(words[g], c, 16, ni, out, dst_stride);
          } else {
            StoreChunk<false>(words[g], c, Min(16, ng - g), ni, out, dst_stride);
          }
        }
      }
    }
  }
  return clamped;
}

uint64_t PackRows4Avx512(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, PackOrder order,
                         uint32_t word_bias, uint8_t* dst, size_t dst_stride) {
  const __m512i bias = _mm512_set1_epi32(static_cast<int>(word_bias));
  if (src_stride == cols && cols <= kNarrowCols && PackRows4Narrow(src, cols, rows / 8, order, bias, dst, dst_stride)) {
    return 0;
  }
  return PackRows4Wide(src, src_stride, rows, cols, order == PackOrder::kAwq, bias, dst, dst_stride);
}

// 8-bit pack_rows (GPTQ qzeros) is a byte transpose, since a word is the 4 bytes of one source
// column in 4 consecutive rows, then the shift and the bias.
uint64_t PackRows8Avx512(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, PackOrder order,
                         uint32_t word_bias, uint8_t* dst, size_t dst_stride) {
  // The AWQ order is defined for 4 bits only; leave any other use to the reference's semantics.
  if (order == PackOrder::kAwq) {
    return ScalarKernels().pack_rows_8(src, src_stride, rows, cols, order, word_bias, dst, dst_stride);
  }
  TransposeAll<1>(src, src_stride, rows, cols, dst, dst_stride, GptqBytes8(word_bias));
  return 0;  // 8-bit values never need clamping
}

// ---- transposes (scales) ---------------------------------------------------------------------

void Transpose16Avx512(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                       size_t dst_stride) {
  TransposeAll<2>(src, src_stride, rows, cols, dst, dst_stride, AsIs{});
}

void Transpose32Avx512(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                       size_t dst_stride) {
  TransposeAll<4>(src, src_stride, rows, cols, dst, dst_stride, AsIs{});
}

bool Avx512Supported() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx2") &&
         __builtin_cpu_supports("bmi2");
}

}  // namespace

const KernelTable& Avx512Kernels() {
  static constexpr KernelTable kTable{
      "avx512",           &Avx512Supported,   &PackColsAvx512<4>, &PackColsAvx512<8>,
      &PackRows4Avx512, &PackRows8Avx512, &Transpose16Avx512, &Transpose32Avx512,
  };
  return kTable;
}

}  // namespace ms2vllm::kernels
