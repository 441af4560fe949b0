// AVX-512 variant of the SPEC 2 transforms (compiled with AVX-512 F/BW/VL/VBMI).
//
// Same plan as the AVX2 variant, "build 32-bit words, then transpose words", with 16x16 word
// transposes so every destination write is one 64-byte line. What AVX-512 adds:
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

// Columns c and c + offset of a tile transposed in two halves: lanes 0 and 2 of `top` and `bottom`
// hold column c, lanes 1 and 3 column c + offset. `finish` maps each joined register to what is
// stored. Partial tiles store only columns below n, and of each the first bytes `keep` marks.
template <bool kWhole, class Finish>
inline void StoreColumnPair(__m512i top, __m512i bottom, size_t c, size_t offset, size_t n, __mmask64 keep,
                            uint8_t* dst, size_t dst_stride, Finish finish) {
  const __m512i first = finish(_mm512_shuffle_i32x4(top, bottom, 0x88));
  const __m512i second = finish(_mm512_shuffle_i32x4(top, bottom, 0xDD));
  if (kWhole) {
    Store(dst + c * dst_stride, first);
    Store(dst + (c + offset) * dst_stride, second);
  } else {
    if (c < n) _mm512_mask_storeu_epi8(dst + c * dst_stride, keep, first);
    if (c + offset < n) _mm512_mask_storeu_epi8(dst + (c + offset) * dst_stride, keep, second);
  }
}

// The first 32 bytes of source row `row` (`bytes` marks those a partial tile reads); rows past
// nrows read as 0. Shared by the tiles that load two 256-bit rows per register.
template <bool kFullCols, bool kFullRows>
inline __m256i LoadRowHalf(const uint8_t* src, size_t src_stride, size_t row, size_t nrows, __mmask32 bytes) {
  if (!kFullRows && row >= nrows) return _mm256_setzero_si256();
  const uint8_t* p = src + row * src_stride;
  return kFullCols ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)) : _mm256_maskz_loadu_epi8(bytes, p);
}

// What a transposed register becomes before it is stored: scales as they are; GPTQ 8-bit qzeros
// shifted (xor 0x80 is +128 mod 256 in every byte) and less the word bias.
struct AsIs {
  __m512i operator()(__m512i column) const { return column; }
};
struct GptqWords8 {
  __m512i bias;
  __m512i operator()(__m512i column) const {
    return _mm512_sub_epi32(_mm512_xor_si512(column, _mm512_set1_epi8(static_cast<char>(0x80))), bias);
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
// no unpacks. On [8960][12], against the paths below (standalone harness pinned to each CPU, old
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

// The scale transposes' narrow case: transposes what TransposeNarrow can of a matrix of
// kElem-byte elements and moves src, rows and dst past it.
template <size_t kElem>
inline void TransposeNarrowRows(const uint8_t*& src, size_t src_stride, size_t& rows, size_t cols, uint8_t*& dst,
                                size_t dst_stride) {
  if (src_stride != kElem * cols || cols > kNarrowCols) return;
  const size_t done = TransposeNarrow<kElem>(src, rows, cols, dst, dst_stride, AsIs{});
  src += done * src_stride;
  dst += done * kElem;
  rows -= done;
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

// Narrow tiles (qzeros [out][G] with G <= 16, rows back to back): the wide path would spend a
// 64-column vector on G columns. Here one group's rows are at most 128 contiguous bytes, so byte
// permutes gather every column's word of a group at once; 16 groups of words are then
// transposed out (4 bits; 8 bits take TransposeNarrow and come here only for the last rows).
// Returns false, having written garbage, if a value needs clamping: the wide path then redoes the
// tile exactly.

template <int kBits>
bool PackRowsNarrow(const uint8_t* src, size_t cols, size_t groups, PackOrder order, __m512i bias, uint8_t* dst,
                    size_t dst_stride) {
  constexpr size_t kPerWord = 32 / kBits;
  const size_t group_bytes = kPerWord * cols;
  const uint8_t* field_row = FieldOrder(order);
  // Byte m of column c's word: from the group's row field_row[m] (8 bits), or its two nibbles
  // from rows field_row[2m] (low) and field_row[2m + 1] (high) (4 bits). Columns >= cols: unused.
  alignas(64) uint8_t low_index[64] = {}, high_index[64] = {};
  for (size_t c = 0; c < cols; ++c) {
    for (size_t m = 0; m < 4; ++m) {
      const size_t low_row = kBits == 4 ? field_row[2 * m] : field_row[m];
      low_index[4 * c + m] = static_cast<uint8_t>(low_row * cols + c);
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
      __m512i word;
      if constexpr (kBits == 4) {
        const __m512i b = group_bytes > 64 ? _mm512_maskz_loadu_epi8(First64(group_bytes - 64), group + 64)
                                           : _mm512_setzero_si512();
        const __m512i ua = Shift4<false>(a, seen, unused), ub = Shift4<false>(b, seen, unused);
        word = Join(_mm512_permutex2var_epi8(ua, low, ub), _mm512_permutex2var_epi8(ua, high, ub));
      } else {
        word = _mm512_xor_si512(_mm512_permutexvar_epi8(low, a), _mm512_set1_epi8(static_cast<char>(0x80)));
      }
      w[k] = _mm512_sub_epi32(word, bias);
    }
    Transpose16x16(w);
    StoreRows<false>(dst + g0 * 4, dst_stride, w, cols, ng);
  }
  return !(kBits == 4 && SawOutOfRange(seen));
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

// 8-bit pack_rows (GPTQ qzeros) wider than the narrow path. A destination word is the 4 bytes of
// one source column in 4 consecutive rows, so the pack is a byte transpose, then the sign flip and
// the bias. Tiles of 64 rows x 32 columns: register k of half h holds rows 32h + k (low 256 bits)
// and 32h + 16 + k (high), an in-lane 16x16 byte transpose leaves column c of those 32 rows in lanes
// 0 and 2 of register c and column 16 + c in lanes 1 and 3, and one lane shuffle per destination row
// joins the halves. Against 8-bit words through the 4-bit path's word tile: [1536][70] 20% -> 38-39%
// of memcpy, [1536][64] 27% -> 48%.
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

// nrows (a multiple of 4, up to 64) rows x n (1..32) columns -> n destination rows of nrows / 4 words.
template <bool kFullCols, bool kFullRows>
inline void PackRows8Tile(const uint8_t* src, size_t src_stride, size_t nrows, size_t n, __m512i bias, uint8_t* dst,
                          size_t dst_stride) {
  const __mmask32 bytes = static_cast<__mmask32>(First64(n));
  auto load_half = [&](size_t first_row, __m512i half[16]) {
#pragma GCC unroll 16
    for (size_t k = 0; k < 16; ++k) {
      const __m256i low = LoadRowHalf<kFullCols, kFullRows>(src, src_stride, first_row + k, nrows, bytes);
      const __m256i high = LoadRowHalf<kFullCols, kFullRows>(src, src_stride, first_row + 16 + k, nrows, bytes);
      half[k] = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
    }
    Transpose16x16BytesInLanes(half);
  };
  // Two arrays, each filled and transposed before the next: one 2-D array spilled to the stack.
  __m512i top[16], bottom[16];
  load_half(0, top);
  load_half(32, bottom);
#pragma GCC unroll 16
  for (size_t c = 0; c < 16; ++c) {
    StoreColumnPair<kFullCols && kFullRows>(top[c], bottom[c], c, 16, n, First64(nrows), dst, dst_stride,
                                           GptqWords8{bias});
  }
}

void PackRows8Wide(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, __m512i bias, uint8_t* dst,
                   size_t dst_stride) {
  ForEachTile<64, 32>(rows, cols, [&](size_t o, size_t j, size_t nrows, size_t n) {
    const uint8_t* s = src + o * src_stride + j;
    uint8_t* d = dst + j * dst_stride + o;
    if (nrows == 64 && n == 32) {
      PackRows8Tile<true, true>(s, src_stride, 64, 32, bias, d, dst_stride);
    } else if (nrows == 64) {
      PackRows8Tile<false, true>(s, src_stride, 64, n, bias, d, dst_stride);
    } else {
      PackRows8Tile<false, false>(s, src_stride, nrows, n, bias, d, dst_stride);
    }
  });
}

template <int kBits>
uint64_t PackRowsAvx512(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, PackOrder order,
                        uint32_t word_bias, uint8_t* dst, size_t dst_stride) {
  constexpr size_t kPerWord = 32 / kBits;
  // The AWQ order is defined for 4 bits only; leave any other use to the reference's semantics.
  if (kBits == 8 && order == PackOrder::kAwq) {
    return ScalarKernels().pack_rows_8(src, src_stride, rows, cols, order, word_bias, dst, dst_stride);
  }
  const __m512i bias = _mm512_set1_epi32(static_cast<int>(word_bias));
  if (src_stride == cols && cols <= kNarrowCols) {
    const size_t done = kBits == 8 ? TransposeNarrow<1>(src, rows, cols, dst, dst_stride, GptqWords8{bias}) : 0;
    if (PackRowsNarrow<kBits>(src + done * cols, cols, (rows - done) / kPerWord, order, bias, dst + done / kPerWord * 4,
                              dst_stride)) {
      return 0;
    }
  }
  if constexpr (kBits == 8) {
    PackRows8Wide(src, src_stride, rows, cols, bias, dst, dst_stride);
    return 0;  // 8-bit values never need clamping
  } else {
    return PackRows4Wide(src, src_stride, rows, cols, order == PackOrder::kAwq, bias, dst, dst_stride);
  }
}

// ---- transposes (scales) ---------------------------------------------------------------------

// nrows (1..32) rows x n (1..16) columns of 16-bit elements -> n rows x nrows elements.
// Register k of half h holds rows 16h + k (low 256 bits) and 16h + 8 + k (high), so an in-lane 8x8
// transpose leaves column c of rows 16h..16h+15 in lanes 0 and 2 of register c and column 8 + c in
// lanes 1 and 3; one lane shuffle per output row joins the halves. Two 256-bit loads per register
// instead of four 128-bit ones: [8960][12] scales 43% -> 50-57% of memcpy, [1536][70] unchanged.
// kFullRows: nrows is 32 (every tile but a matrix's last), so the loads need no branch: a branch
// per row makes GCC keep the tile on the stack.

// In each 128-bit lane, 8 rows of 8 16-bit elements become 8 columns: lane L of r[c] holds
// element c of lane L of every input register, in register order.
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

template <bool kFullCols, bool kFullRows>
inline void Transpose16Tile(const uint8_t* src, size_t src_stride, size_t nrows, size_t n, uint8_t* dst,
                            size_t dst_stride) {
  const __mmask32 bytes = static_cast<__mmask32>(First64(2 * n));
  __m512i half[2][8];
#pragma GCC unroll 8
  for (size_t k = 0; k < 8; ++k) {
    for (size_t h = 0; h < 2; ++h) {
      const __m256i low = LoadRowHalf<kFullCols, kFullRows>(src, src_stride, 16 * h + k, nrows, bytes);
      const __m256i high = LoadRowHalf<kFullCols, kFullRows>(src, src_stride, 16 * h + 8 + k, nrows, bytes);
      half[h][k] = _mm512_inserti64x4(_mm512_castsi256_si512(low), high, 1);
    }
  }
  Transpose8x8InLanes(half[0]);
  Transpose8x8InLanes(half[1]);
#pragma GCC unroll 8
  for (size_t c = 0; c < 8; ++c) {
    StoreColumnPair<kFullCols && kFullRows>(half[0][c], half[1][c], c, 8, n, First64(2 * nrows), dst, dst_stride,
                                           AsIs{});
  }
}

void Transpose16Avx512(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                       size_t dst_stride) {
  TransposeNarrowRows<2>(src, src_stride, rows, cols, dst, dst_stride);
  ForEachTile<32, 16>(rows, cols, [&](size_t o, size_t j, size_t nrows, size_t n) {
    const uint8_t* s = src + o * src_stride + j * 2;
    uint8_t* d = dst + j * dst_stride + o * 2;
    if (nrows == 32 && n == 16) {
      Transpose16Tile<true, true>(s, src_stride, 32, 16, d, dst_stride);
    } else if (nrows == 32) {
      Transpose16Tile<false, true>(s, src_stride, 32, n, d, dst_stride);
    } else {
      Transpose16Tile<false, false>(s, src_stride, nrows, n, d, dst_stride);
    }
  });
}

// nrows (1..16) rows x n (1..16) columns of 32-bit elements -> n rows x nrows elements.
// kFullRows: nrows is 16, so the loads need no branch (as for Transpose16Tile). Whole tiles take
// the masked loads too: measured against plain loads (same instructions otherwise), [1536][64]
// went from 46% to 60% of memcpy and [1536][70] from 37% to 32-50% (it varies most between
// processes); why is not established.
template <bool kFullRows>
inline void Transpose32Tile(const uint8_t* src, size_t src_stride, size_t nrows, size_t n, uint8_t* dst,
                            size_t dst_stride) {
  const __mmask16 cols = First16(n);
  __m512i r[16];
#pragma GCC unroll 16
  for (size_t k = 0; k < 16; ++k) {
    if (kFullRows) {
      r[k] = _mm512_maskz_loadu_epi32(cols, src + k * src_stride);
    } else {
      r[k] = k < nrows ? _mm512_maskz_loadu_epi32(cols, src + k * src_stride) : _mm512_setzero_si512();
    }
  }
  Transpose16x16(r);
  StoreRows<false>(dst, dst_stride, r, n, nrows);
}

// 16 whole rows x n (1..16) columns, for matrices at most 16 columns wide that TransposeNarrow
// leaves (rows not back to back, or the last rows): each group of 4 columns becomes 4 registers
// whose 128-bit lane L holds rows 4L..4L+3 of those columns (16-byte loads), then one in-lane 4x4
// transpose. Against the 16x16 word transpose on [8960][12] scales: 43-48% -> 46-60% of memcpy.
template <bool kWhole>
inline __m512i LoadLanes(const uint8_t* p, size_t lane_stride, __mmask8 cols) {
  auto lane = [&](size_t l) {
    const uint8_t* q = p + l * lane_stride;
    return kWhole ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)) : _mm_maskz_loadu_epi32(cols, q);
  };
  __m512i v = _mm512_broadcast_i32x4(lane(0));
  v = _mm512_mask_broadcast_i32x4(v, 0x00F0, lane(1));
  v = _mm512_mask_broadcast_i32x4(v, 0x0F00, lane(2));
  return _mm512_mask_broadcast_i32x4(v, 0xF000, lane(3));
}

// Columns j..j+m-1 (m = 4 when kWhole) of 16 rows -> m destination rows.
template <bool kWhole>
inline void Transpose32Quad(const uint8_t* src, size_t src_stride, size_t m, uint8_t* dst, size_t dst_stride) {
  const __mmask8 cols = static_cast<__mmask8>(First16(m));
  const __m512i r0 = LoadLanes<kWhole>(src, 4 * src_stride, cols);
  const __m512i r1 = LoadLanes<kWhole>(src + src_stride, 4 * src_stride, cols);
  const __m512i r2 = LoadLanes<kWhole>(src + 2 * src_stride, 4 * src_stride, cols);
  const __m512i r3 = LoadLanes<kWhole>(src + 3 * src_stride, 4 * src_stride, cols);
  const __m512i t0 = _mm512_unpacklo_epi32(r0, r1), t1 = _mm512_unpackhi_epi32(r0, r1);
  const __m512i t2 = _mm512_unpacklo_epi32(r2, r3), t3 = _mm512_unpackhi_epi32(r2, r3);
  Store(dst, _mm512_unpacklo_epi64(t0, t2));
  if (kWhole || m > 1) Store(dst + dst_stride, _mm512_unpackhi_epi64(t0, t2));
  if (kWhole || m > 2) Store(dst + 2 * dst_stride, _mm512_unpacklo_epi64(t1, t3));
  if (kWhole) Store(dst + 3 * dst_stride, _mm512_unpackhi_epi64(t1, t3));
}

inline void Transpose32Narrow(const uint8_t* src, size_t src_stride, size_t n, uint8_t* dst, size_t dst_stride) {
  size_t j = 0;
  for (; j + 4 <= n; j += 4) Transpose32Quad<true>(src + j * 4, src_stride, 4, dst + j * dst_stride, dst_stride);
  if (j < n) Transpose32Quad<false>(src + j * 4, src_stride, n - j, dst + j * dst_stride, dst_stride);
}

void Transpose32Avx512(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                       size_t dst_stride) {
  TransposeNarrowRows<4>(src, src_stride, rows, cols, dst, dst_stride);
  if (cols <= 16) {
    for (size_t o = 0; o < rows; o += 16) {
      const uint8_t* s = src + o * src_stride;
      uint8_t* d = dst + o * 4;
      if (rows - o >= 16) {
        Transpose32Narrow(s, src_stride, cols, d, dst_stride);
      } else {
        Transpose32Tile<false>(s, src_stride, rows - o, cols, d, dst_stride);
      }
    }
    return;
  }
  ForEachTile<16, 16>(rows, cols, [&](size_t o, size_t j, size_t nrows, size_t n) {
    const uint8_t* s = src + o * src_stride + j * 4;
    uint8_t* d = dst + j * dst_stride + o * 4;
    if (nrows == 16) {
      Transpose32Tile<true>(s, src_stride, 16, n, d, dst_stride);
    } else {
      Transpose32Tile<false>(s, src_stride, nrows, n, d, dst_stride);
    }
  });
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
      &PackRowsAvx512<4>, &PackRowsAvx512<8>, &Transpose16Avx512, &Transpose32Avx512,
  };
  return kTable;
}

}  // namespace ms2vllm::kernels
