// AVX2 variant of the SPEC 2 transforms (this file is compiled with -mavx2 -mbmi2).
//
// Most transforms "build 32-bit words, then transpose words with 8x8 register transposes":
//  - pack_cols: per source row, pmaddubsw joins nibble pairs and packuswb gathers them (4 bits),
//    or an xor flips the sign bit (8 bits); the words are already in source-row order.
//  - 4-bit pack_rows of weights: shift/or joins rows into bytes, byte/word unpacks interleave them
//    into words, which land in a 32 KiB tile that is then transposed out.
//  - 8-bit pack_rows, and 4-bit pack_rows at most 16 columns wide (qzeros [out][G]): a byte
//    transpose first (32 rows x 16 columns, in lanes), then the words are finished per column.
//    Rows back to back of G = 4, 12, 20 or 28 columns gather 4-byte pieces by blends instead, and
//    at 4 bits join nibbles into words before transposing them (NarrowQuads).
// 4-bit values are shifted without clamping first and checked once per tile; a tile holding an
// out-of-range value is redone exactly (clamp and count). Checkpoints are in range, so that path
// only runs on broken inputs, and it keeps the clamp count exact.
//
// Tails that do not fill a micro-tile go to the scalar reference on a sub-tile (the same semantics
// by construction), except column tails of the transposes and pack_rows: scales and qzeros have
// only a handful of columns, so there the tail is much of the data. Their loads are whole vectors
// that run past the tile's last column into the next row, on every row where that stays inside
// the matrix (RowsWithWholeLoads), and masked loads on the last few rows.
//
// Nothing here has external linkage except Avx2Kernels(): a shared inline function compiled with
// AVX2 flags could otherwise be picked by the linker for a caller running on a lesser CPU.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <type_traits>

#include "kernels/kernels.h"
#include "kernels/simd_x86_common.h"
#include "kernels/variants.h"

namespace ms2vllm::kernels {
namespace {

inline __m256i Load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void Store(uint8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline __m256i Iota32() { return _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7); }

// Lane mask for the first n (0..8) 32-bit words.
inline __m256i FirstWords(size_t n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), Iota32()); }

// In-place transpose of an 8x8 matrix of 32-bit words: word j of r[k] ends in word k of r[j].
inline void Transpose8x8(__m256i r[8]) {
  __m256i t[8];
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm256_unpacklo_epi32(r[k], r[k + 1]);
    t[k + 1] = _mm256_unpackhi_epi32(r[k], r[k + 1]);
  }
  __m256i u[8];
  for (int k = 0; k < 8; k += 4) {
    u[k] = _mm256_unpacklo_epi64(t[k], t[k + 2]);
    u[k + 1] = _mm256_unpackhi_epi64(t[k], t[k + 2]);
    u[k + 2] = _mm256_unpacklo_epi64(t[k + 1], t[k + 3]);
    u[k + 3] = _mm256_unpackhi_epi64(t[k + 1], t[k + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    r[k] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x20);
    r[k + 4] = _mm256_permute2x128_si256(u[k], u[k + 4], 0x31);
  }
}

// Stores rows 0..n-1 (n <= 8) of a transposed tile; unrolled so r[] stays in registers.
inline void StoreRows(uint8_t* dst, size_t dst_stride, const __m256i r[8], size_t n) {
#pragma GCC unroll 8
  for (size_t j = 0; j < 8; ++j) {
    if (j < n) Store(dst + j * dst_stride, r[j]);
  }
}

// 4-bit value shift of 32 int8. The fast form only adds 8 and ORs the result into `seen`: a value
// was out of range iff its shifted byte has a high nibble. The exact form clamps and counts.
template <bool kExact>
inline __m256i Shift4(__m256i v, __m256i& seen, uint64_t& clamped) {
  if constexpr (kExact) {
    const __m256i c = _mm256_max_epi8(_mm256_min_epi8(v, _mm256_set1_epi8(7)), _mm256_set1_epi8(-8));
    const auto same = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(c, v)));
    clamped += static_cast<uint64_t>(_mm_popcnt_u32(~same));
    return _mm256_add_epi8(c, _mm256_set1_epi8(8));
  } else {
    const __m256i u = _mm256_add_epi8(v, _mm256_set1_epi8(8));
    seen = _mm256_or_si256(seen, u);
    return u;
  }
}

inline bool SawOutOfRange(__m256i seen) { return !_mm256_testz_si256(seen, _mm256_set1_epi8(static_cast<char>(0xF0))); }

// ---- pack_cols (GPTQ qweight) ----------------------------------------------------------------

// The words of 8 source rows x 8 words: w[k] = row k, words 0 1 4 5 | 2 3 6 7 for 4 bits
// (packuswb interleaves 128-bit lanes; the store undoes it), 0..7 for 8 bits.
template <int kBits, bool kExact>
inline void PackColsWords(const uint8_t* src, size_t src_stride, __m256i w[8], __m256i& seen, uint64_t& clamped) {
  for (int k = 0; k < 8; ++k) {
    const uint8_t* row = src + k * src_stride;
    if constexpr (kBits == 4) {
      const __m256i pair = _mm256_set1_epi16(0x1001);  // low nibble x1 + high nibble x16
      const __m256i a = _mm256_maddubs_epi16(Shift4<kExact>(Load(row), seen, clamped), pair);
      const __m256i b = _mm256_maddubs_epi16(Shift4<kExact>(Load(row + 32), seen, clamped), pair);
      w[k] = _mm256_packus_epi16(a, b);
    } else {
      w[k] = _mm256_xor_si256(Load(row), _mm256_set1_epi8(static_cast<char>(0x80)));
    }
  }
}

template <int kBits>
inline void TransposeColsTile(__m256i w[8], uint8_t* dst, size_t dst_stride) {
  Transpose8x8(w);
  static constexpr int kRow4[8] = {0, 1, 4, 5, 2, 3, 6, 7};
  for (int j = 0; j < 8; ++j) Store(dst + (kBits == 4 ? kRow4[j] : j) * dst_stride, w[j]);
}

// 8 source rows x 8 words -> 8 destination rows x 8 words.
template <int kBits>
inline void PackColsTile(const uint8_t* src, size_t src_stride, uint8_t* dst, size_t dst_stride, uint64_t& clamped) {
  __m256i w[8];
  __m256i seen = _mm256_setzero_si256();
  PackColsWords<kBits, false>(src, src_stride, w, seen, clamped);
  if (kBits == 4 && SawOutOfRange(seen)) {
    __m256i exact[8];  // a separate array keeps w[] in registers on the fast path
    PackColsWords<kBits, true>(src, src_stride, exact, seen, clamped);
    TransposeColsTile<kBits>(exact, dst, dst_stride);
    return;
  }
  TransposeColsTile<kBits>(w, dst, dst_stride);
}

template <int kBits>
uint64_t PackColsAvx2(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                      size_t dst_stride) {
  constexpr size_t kPerWord = 32 / kBits;
  const size_t words = cols / kPerWord;
  // Tiles span one 64-byte line of each source row (two 8-word halves at 8 bits), read back to back.
  constexpr size_t kTileWords = 64 / kPerWord;
  const size_t full_rows = rows & ~size_t{7};
  const size_t full_words = words / kTileWords * kTileWords;
  uint64_t clamped = 0;
  ForEachTile<8, kTileWords>(full_rows, full_words, [&](size_t o, size_t r, size_t, size_t) {
    for (size_t h = r; h < r + kTileWords; h += 8) {
      PackColsTile<kBits>(src + o * src_stride + h * kPerWord, src_stride, dst + h * dst_stride + o * 4, dst_stride,
                          clamped);
    }
  });
  const PackColsFn ref = kBits == 4 ? ScalarKernels().pack_cols_4 : ScalarKernels().pack_cols_8;
  if (full_words < words && full_rows > 0) {
    clamped += ref(src + full_words * kPerWord, src_stride, full_rows, cols - full_words * kPerWord,
                   dst + full_words * dst_stride, dst_stride);
  }
  if (full_rows < rows) {
    clamped += ref(src + full_rows * src_stride, src_stride, rows - full_rows, cols, dst + full_rows * 4, dst_stride);
  }
  return clamped;
}

// ---- pack_rows (AWQ qweight, qzeros) ---------------------------------------------------------

// Words are built into a 32 KiB tile of kTileGroups x kTileCols, then transposed out. Each source
// row is read 128 bytes at a time and each destination row written 256 bytes at a time: shorter
// runs are slow when either stride is a power of two (all rows share one cache set).
constexpr size_t kTileGroups = 64;
constexpr size_t kTileCols = 128;

// Loads n (0..32) bytes without touching memory past them.
inline __m256i LoadBytes(const uint8_t* p, size_t n) {
  if (n >= 32) return Load(p);
  __m256i v = _mm256_maskload_epi32(reinterpret_cast<const int*>(p), FirstWords(n / 4));
  const size_t rest = n & 3;
  if (rest != 0) {
    const uint8_t* tail = p + (n - rest);
    uint32_t last = tail[0];
    if (rest > 1) last |= uint32_t{tail[1]} << 8;
    if (rest > 2) last |= uint32_t{tail[2]} << 16;
    const __m256i at = _mm256_cmpeq_epi32(_mm256_set1_epi32(static_cast<int>(n / 4)), Iota32());
    v = _mm256_blendv_epi8(v, _mm256_set1_epi32(static_cast<int>(last)), at);
  }
  return v;
}

// Byte of field pair (lo, hi): both values are below 16, so the 16-bit shift stays in its byte.
inline __m256i Join(__m256i lo, __m256i hi) { return _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)); }

// The 4-bit byte paths' value shift with a nibble bias b (word bias 0x11111111 x b) folded in: one
// byte add makes u - b = v + 8 - b. A value out of range, or below the bias (which kernels.h lets a
// variant get wrong), sums to more than 15 - b, so the largest sum seen tells.
struct NibbleShift {
  __m256i add;    // 8 - b in every byte
  __m256i limit;  // 15 - b in every byte

  // The b of a word bias that is one nibble repeated, or nullopt.
  static std::optional<uint32_t> NibbleOf(uint32_t word_bias) {
    const uint32_t b = word_bias & 0xF;
    if (word_bias != 0x11111111u * b || b > 8) return std::nullopt;
    return b;
  }
  explicit NibbleShift(uint32_t b)
      : add(_mm256_set1_epi8(static_cast<char>(8 - b))), limit(_mm256_set1_epi8(static_cast<char>(15 - b))) {}

  __m256i operator()(__m256i v, __m256i& most) const {
    const __m256i u = _mm256_add_epi8(v, add);
    most = _mm256_max_epu8(most, u);
    return u;
  }
  bool Exceeded(__m256i most) const {
    return _mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_max_epu8(most, limit), limit)) != -1;
  }
};

// pack_rows' word bias, or none (AWQ qweight, GPTQ v2 zeros): a type of its own, so that a zero
// bias costs no subtraction.
struct NoBias {};
inline __m256i LessBias(__m256i words, NoBias) { return words; }
inline __m256i LessBias(__m256i words, __m256i bias) { return _mm256_sub_epi32(words, bias); }

// One group of p rows x n (1..32) columns -> 32 words, one per column, in chunk order.
template <int kBits, bool kExact, class Bias>
inline void PackRowsGroup(const uint8_t* src, size_t stride, size_t n, bool awq, Bias bias, uint32_t* out,
                          __m256i& seen, uint64_t& clamped) {
  __m256i b[4];  // byte m of every word
  if constexpr (kBits == 4) {
    __m256i u[8];
    for (int k = 0; k < 8; ++k) u[k] = Shift4<kExact>(LoadBytes(src + k * stride, n), seen, clamped);
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
  } else {
    const __m256i sign = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int k = 0; k < 4; ++k) b[k] = _mm256_xor_si256(LoadBytes(src + k * stride, n), sign);
  }
  const __m256i lo01 = _mm256_unpacklo_epi8(b[0], b[1]);
  const __m256i hi01 = _mm256_unpackhi_epi8(b[0], b[1]);
  const __m256i lo23 = _mm256_unpacklo_epi8(b[2], b[3]);
  const __m256i hi23 = _mm256_unpackhi_epi8(b[2], b[3]);
  // Chunk m holds columns 4m..4m+3 | 16+4m..16+4m+3 (see TileColumn): left in that order, as the
  // transpose can put each row anywhere for free.
  auto* o = reinterpret_cast<uint8_t*>(out);
  Store(o, LessBias(_mm256_unpacklo_epi16(lo01, lo23), bias));
  Store(o + 32, LessBias(_mm256_unpackhi_epi16(lo01, lo23), bias));
  Store(o + 64, LessBias(_mm256_unpacklo_epi16(hi01, hi23), bias));
  Store(o + 96, LessBias(_mm256_unpackhi_epi16(hi01, hi23), bias));
}

// The tile column held by word j (0..7) of 8-word chunk c of a word-tile row.
inline size_t TileColumn(size_t c, size_t j) { return 32 * (c >> 2) + 16 * (j >> 2) + 4 * (c & 3) + (j & 3); }

template <int kBits, bool kExact, class Bias>
inline void PackRowsTile(const uint8_t* src, size_t src_stride, size_t ng, size_t ni, bool awq, Bias bias,
                         uint32_t (*words)[kTileCols], __m256i& seen, uint64_t& clamped) {
  constexpr size_t kPerWord = 32 / kBits;
  for (size_t g = 0; g < ng; ++g) {
    for (size_t i = 0; i < ni; i += 32) {
      PackRowsGroup<kBits, kExact>(src + g * kPerWord * src_stride + i, src_stride, Min(32, ni - i), awq, bias,
                                   &words[g][i], seen, clamped);
    }
  }
}

template <int kBits>
uint64_t PackRowsWords(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, PackOrder order,
                       uint32_t word_bias, uint8_t* dst, size_t dst_stride) {
  constexpr size_t kPerWord = 32 / kBits;
  const PackRowsFn ref = kBits == 4 ? ScalarKernels().pack_rows_4 : ScalarKernels().pack_rows_8;
  const bool awq = order == PackOrder::kAwq;
  const size_t groups = rows / kPerWord;
  const size_t full_groups = groups & ~size_t{7};
  alignas(64) uint32_t words[kTileGroups][kTileCols];
  uint64_t clamped = 0;
  for (size_t i0 = 0; i0 < cols; i0 += kTileCols) {
    for (size_t g0 = 0; g0 < full_groups; g0 += kTileGroups) {
      const size_t ng = Min(kTileGroups, full_groups - g0);
      const uint8_t* tile_src = src + g0 * kPerWord * src_stride;
      const size_t ni = Min(kTileCols, cols - i0);
      const auto build_words = [&](auto bias) {
        __m256i seen = _mm256_setzero_si256();
        PackRowsTile<kBits, false>(tile_src + i0, src_stride, ng, ni, awq, bias, words, seen, clamped);
        if (kBits == 4 && SawOutOfRange(seen)) {
          PackRowsTile<kBits, true>(tile_src + i0, src_stride, ng, ni, awq, bias, words, seen, clamped);
        }
      };
      if (word_bias == 0) {
        build_words(NoBias());
      } else {
        build_words(_mm256_set1_epi32(static_cast<int>(word_bias)));
      }
      // A whole tile stores every row without the check for a partial one's missing columns.
      const auto transpose_out = [&](auto whole) {
        for (size_t c = 0; c < (ni + 31) / 32 * 4; ++c) {
          for (size_t g = 0; g < ng; g += 8) {  // along the destination row: neighbouring lines
            __m256i w[8];
            for (int k = 0; k < 8; ++k) w[k] = Load(reinterpret_cast<const uint8_t*>(&words[g + k][8 * c]));
            Transpose8x8(w);
            uint8_t* out = dst + i0 * dst_stride + (g0 + g) * 4;
#pragma GCC unroll 8
            for (size_t j = 0; j < 8; ++j) {
              if (whole() || TileColumn(c, j) < ni) Store(out + TileColumn(c, j) * dst_stride, w[j]);
            }
          }
        }
      };
      if (ni == kTileCols) {
        transpose_out(std::true_type());
      } else {
        transpose_out(std::false_type());
      }
    }
  }
  if (full_groups < groups) {
    clamped += ref(src + full_groups * kPerWord * src_stride, src_stride, rows - full_groups * kPerWord, cols, order,
                   word_bias, dst + full_groups * 4, dst_stride);
  }
  return clamped;
}

// ---- pack_rows through a byte transpose (every 8-bit pack_rows, narrow 4-bit ones) ------------

// A destination word holds one source column's values from consecutive rows, so pack_rows is a
// byte transpose followed by a per-word finish: the sign flip (8 bits), or the nibble join (4 bits).
// The word tile above builds words along source rows, which pays for wide weight tiles but spends
// a 32-column vector on every qzeros column of a narrow [out][G] matrix.

// 16 bytes from `low` in the low lane and from `high` in the high one: two broadcast loads (load
// ports only) and a blend, where an insert would take a shuffle port the transpose needs.
inline __m256i LoadLanePair(const uint8_t* low, const uint8_t* high) {
  const __m256i a = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(low)));
  const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(high)));
  return _mm256_blend_epi32(a, b, 0xF0);
}

// The first rows (a multiple of `block`) of a matrix whose loads of `width` bytes, from every
// column tile of that width, stay inside the matrix. A last tile narrower than `width` reads into
// the next row (or the padding between rows), and those bytes are never stored or counted.
inline size_t RowsWithWholeLoads(size_t rows, size_t row_bytes, size_t stride, size_t block, size_t width = 16) {
  if (rows == 0 || row_bytes == 0) return 0;
  const size_t last_tile = (row_bytes - 1) / width * width;
  const size_t end = (rows - 1) * stride + row_bytes;
  size_t n = rows / block * block;
  while (n > 0 && (n - 1) * stride + last_tile + width > end) n -= block;
  return n;
}

// The first three steps of an in-lane 16x16 byte transpose, on 8 of its rows: rows low + k * stride
// and high + k * stride (k = 0..7) in the low and high lanes -> in each lane of v[2q + s], columns
// 4q + 2s and 4q + 2s + 1 of those 8 rows, 8 bytes each. Rows are addressed from two bases and
// stride, 3 x stride (stride3), so that each load is one addressing mode: spelled k * stride, GCC
// hoists all 32 row offsets of a tile out of the loop into stack slots and reloads them.
inline void EightRowPairs(const uint8_t* low, const uint8_t* high, size_t stride, size_t stride3, __m256i v[8]) {
  __m256i x[8], t[8], u[8];
  const uint8_t* low4 = low + 4 * stride;
  const uint8_t* high4 = high + 4 * stride;
  x[0] = LoadLanePair(low, high);
  x[1] = LoadLanePair(low + stride, high + stride);
  x[2] = LoadLanePair(low + 2 * stride, high + 2 * stride);
  x[3] = LoadLanePair(low + stride3, high + stride3);
  x[4] = LoadLanePair(low4, high4);
  x[5] = LoadLanePair(low4 + stride, high4 + stride);
  x[6] = LoadLanePair(low4 + 2 * stride, high4 + 2 * stride);
  x[7] = LoadLanePair(low4 + stride3, high4 + stride3);
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi8(x[2 * i], x[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi8(x[2 * i], x[2 * i + 1]);
  }
  for (int g = 0; g < 2; ++g) {  // u[4g + q]: columns 4q..4q+3 of rows 4g..4g+3
    u[4 * g] = _mm256_unpacklo_epi16(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm256_unpackhi_epi16(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm256_unpacklo_epi16(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm256_unpackhi_epi16(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int q = 0; q < 4; ++q) {
    v[2 * q] = _mm256_unpacklo_epi32(u[q], u[4 + q]);
    v[2 * q + 1] = _mm256_unpackhi_epi32(u[q], u[4 + q]);
  }
}

// Makes the compiler forget what it knows of the values. Given a tile's bases and strides it
// cannot see through, GCC computes the tile's addresses from them; otherwise it makes each of the
// 48 addresses an induction variable of the loop over tiles, and spills most of them.
template <class T>
inline void HideFromOptimizer(T& value) {
  asm volatile("" : "+r"(value));
}

// 32 rows x 16 bytes -> put(c, at, x) for c = 0..15, x holding byte c of rows 0..31 in row order
// and `at` pointing to column c's row in dst (dst + c * dst_stride). Done as two halves of 8 row
// pairs, so that no more than 16 registers are live at once. Like the rows, the 16 destination
// rows are addressed from four bases, one per 4 columns.
template <class Put>
inline void ByteColumns32(const uint8_t* src, size_t stride, uint8_t* dst, size_t dst_stride, Put put) {
  HideFromOptimizer(src);
  HideFromOptimizer(stride);
  HideFromOptimizer(dst);
  HideFromOptimizer(dst_stride);
  const size_t stride3 = 3 * stride;
  __m256i top[8], bottom[8];
  EightRowPairs(src, src + 16 * stride, stride, stride3, top);
  EightRowPairs(src + 8 * stride, src + 24 * stride, stride, stride3, bottom);
  const size_t dst_stride3 = 3 * dst_stride;
  uint8_t* const quad[4] = {dst, dst + 4 * dst_stride, dst + 8 * dst_stride, dst + 12 * dst_stride};
#pragma GCC unroll 4
  for (size_t q = 0; q < 4; ++q) {
    put(4 * q, quad[q], _mm256_unpacklo_epi64(top[2 * q], bottom[2 * q]));
    put(4 * q + 1, quad[q] + dst_stride, _mm256_unpackhi_epi64(top[2 * q], bottom[2 * q]));
    put(4 * q + 2, quad[q] + 2 * dst_stride, _mm256_unpacklo_epi64(top[2 * q + 1], bottom[2 * q + 1]));
    put(4 * q + 3, quad[q] + dst_stride3, _mm256_unpackhi_epi64(top[2 * q + 1], bottom[2 * q + 1]));
  }
}

// In-lane 4 x 4 word transpose: out(j, x), x holding word j of w0, w1, w2 and w3 in each lane.
template <class Out>
inline void Transpose4x4Words(__m256i w0, __m256i w1, __m256i w2, __m256i w3, Out out) {
  const __m256i a0 = _mm256_unpacklo_epi32(w0, w1), a1 = _mm256_unpackhi_epi32(w0, w1);
  const __m256i a2 = _mm256_unpacklo_epi32(w2, w3), a3 = _mm256_unpackhi_epi32(w2, w3);
  out(0, _mm256_unpacklo_epi64(a0, a2));
  out(1, _mm256_unpackhi_epi64(a0, a2));
  out(2, _mm256_unpacklo_epi64(a1, a3));
  out(3, _mm256_unpackhi_epi64(a1, a3));
}

// Narrow qzeros ([out][G], rows back to back) with G = 4k, k odd (4, 12, 20, 28): a group of 4 rows
// is k whole 16-byte vectors, and the 4-byte piece q of row r is at position (r * k + q) % 4 of
// vector (r * k + q) / 4, a different position for each of the 4 rows as k is odd. So blends (any
// ALU port) gather piece q of the 4 rows, and one pshufb makes the 4 columns' words of them:
//  - 8 bits: an in-lane 4x4 word transpose over 8 groups gives each column's 32 rows; for G = 12,
//    36 shuffles per 32 rows against the byte transpose's 64, and no loads past the rows.
//  - 4 bits: pmaddubsw joins the nibble pairs of each word, and two groups' joins make the words
//    of 8 rows, before any transpose: half the bytes are left to move (G = 12: 24 shuffles per 32
//    rows, against 72 with a per-column finish after the 8-bit transpose).
template <size_t kQuads>
struct NarrowQuads {
  static constexpr size_t kGroupBytes = 16 * kQuads;  // 4 rows
  static constexpr size_t Vector(size_t r, size_t q) { return (r * kQuads + q) / 4; }
  static constexpr int Position(size_t r, size_t q) { return static_cast<int>((r * kQuads + q) % 4); }

  __m256i index[kQuads];  // pshufb of piece q: byte 4j + i of the result is byte j of row row_at[i]'s piece

  explicit NarrowQuads(const uint8_t (&row_at)[4]) {
    for (size_t q = 0; q < kQuads; ++q) {
      alignas(32) uint8_t bytes[32];
      for (size_t i = 0; i < 32; ++i) {
        const size_t j = (i % 16) / 4;
        bytes[i] = static_cast<uint8_t>(4 * Position(row_at[i % 4], q) + j);
      }
      index[q] = _mm256_load_si256(reinterpret_cast<const __m256i*>(bytes));
    }
  }

  // words[q]: word j of each lane holds column 4q + j of the 4 rows of group p (low lane) and of
  // group p + kLaneGroups (high lane), in index order.
  template <size_t kLaneGroups = 4>
  void GroupPairWords(const uint8_t* src, size_t p, __m256i words[kQuads]) const {
    __m256i v[kQuads];
#pragma GCC unroll 8
    for (size_t m = 0; m < kQuads; ++m) {
      v[m] = LoadLanePair(src + p * kGroupBytes + 16 * m, src + (p + kLaneGroups) * kGroupBytes + 16 * m);
    }
#pragma GCC unroll 8
    for (size_t q = 0; q < kQuads; ++q) {
      __m256i pieces = v[Vector(0, q)];
#pragma GCC unroll 4
      for (size_t r = 1; r < 4; ++r) pieces = Blend(pieces, v[Vector(r, q)], Position(r, q));
      words[q] = _mm256_shuffle_epi8(pieces, index[q]);
    }
  }

  // 8 bits, rows in order: 32 rows from src -> column(c, x) for c = 0..4k-1, x holding column c of
  // the 32 rows in order.
  template <class Column>
  void Columns32(const uint8_t* src, Column column) const {
    __m256i words[4][kQuads];  // [group pair p][q]
#pragma GCC unroll 4
    for (size_t p = 0; p < 4; ++p) GroupPairWords(src, p, words[p]);
#pragma GCC unroll 8
    for (size_t q = 0; q < kQuads; ++q) {
      Transpose4x4Words(words[0][q], words[1][q], words[2][q], words[3][q],
                        [&](size_t j, __m256i x) { column(4 * q + j, x); });
    }
  }

  // 4 bits: 64 rows from src -> column(c, y), y holding the 8 packed words of column c. With rows in
  // index order (a, b, c, d), pmaddubsw joins each 4-row word's nibble pairs (a, b) and (c, d) into
  // 16-bit lanes; a word of 8 rows takes them from two groups g and g + 1:
  //  - kAwq (rows indexed 0 2 1 3): bytes (0 2) (4 6) (1 3) (5 7), AWQ's field order; OR-ing g + 1's
  //    joins, shifted up a byte, into g's gives it.
  //  - GPTQ (rows in order): bytes (0 1) (2 3) (4 5) (6 7); pmaddwd makes each group's two joins one
  //    16-bit half, and g + 1's half goes on top. Multiplies, not shuffles: the shuffle port is the
  //    bottleneck here.
  // The lanes hold rows 0-31 and 32-63, so an in-lane 4x4 word transpose ends each column's words in
  // one register: no lane permutes, one store per column. `most` collects the largest shifted value.
  template <bool kAwq, class Column>
  void NibbleWords64(const uint8_t* src, const NibbleShift& shift, __m256i& most, Column column) const {
    __m256i eights[4][kQuads];  // [e][q]: words of rows 8e..8e+7 (low lane) and 32+8e.. (high lane)
    const auto join_eights = [&](size_t e) {
      __m256i first[kQuads], second[kQuads];  // groups 2e and 2e + 1
      GroupPairWords<8>(src, 2 * e, first);
      GroupPairWords<8>(src, 2 * e + 1, second);
#pragma GCC unroll 8
      for (size_t q = 0; q < kQuads; ++q) {
        const __m256i a = JoinNibbles(shift(first[q], most)), b = JoinNibbles(shift(second[q], most));
        if constexpr (kAwq) {
          eights[e][q] = _mm256_or_si256(a, _mm256_slli_epi16(b, 8));
        } else {
          const __m256i byte_pair = _mm256_set1_epi32(0x01000001);  // low x1 + high x256
          eights[e][q] = _mm256_or_si256(_mm256_madd_epi16(a, byte_pair),
                                         _mm256_slli_epi32(_mm256_madd_epi16(b, byte_pair), 16));
        }
      }
    };
    // Past k = 1 the 4k results stay on the stack, one planned store each: unrolled, GCC keeps them
    // in registers and spills four times as much ([8960][12]: +11-13%, [18944][28]: +10%).
    if constexpr (kQuads == 1) {
#pragma GCC unroll 4
      for (size_t e = 0; e < 4; ++e) join_eights(e);
    } else {
#pragma GCC unroll 1
      for (size_t e = 0; e < 4; ++e) join_eights(e);
    }
#pragma GCC unroll 8
    for (size_t q = 0; q < kQuads; ++q) {
      Transpose4x4Words(eights[0][q], eights[1][q], eights[2][q], eights[3][q],
                        [&](size_t j, __m256i x) { column(4 * q + j, x); });
    }
  }

  // 16-bit lane i of the result: byte 2i of the shifted words + 16 x byte 2i + 1.
  static __m256i JoinNibbles(__m256i shifted) { return _mm256_maddubs_epi16(shifted, _mm256_set1_epi16(0x1001)); }

  // Dword `position` of each lane from b, the rest from a (the blend's mask is an immediate).
  static __m256i Blend(__m256i a, __m256i b, int position) {
    switch (position) {
      case 0:
        return _mm256_blend_epi32(a, b, 0x11);
      case 1:
        return _mm256_blend_epi32(a, b, 0x22);
      case 2:
        return _mm256_blend_epi32(a, b, 0x44);
      default:
        return _mm256_blend_epi32(a, b, 0x88);
    }
  }
};

inline constexpr uint8_t kRowsInOrder[4] = {0, 1, 2, 3};

// The loops over byte columns take the finish by value and return it: reached through a pointer
// (as when not inlined), its members would be reloaded after every byte store.
template <size_t kQuads, class Finish>
inline Finish NarrowColumns(const uint8_t* src, size_t rows, Finish finish) {
  const NarrowQuads<kQuads> quads(kRowsInOrder);
  for (size_t o = 0; o < rows; o += 32) {
    quads.Columns32(src + o * 4 * kQuads, [&](size_t c, __m256i x) { finish(c, o, x); });
  }
  return finish;
}

// 4-bit pack_rows in NarrowQuads' layout, of the first rows (a multiple of 64). Returns the rows
// done, and puts the largest shifted value into `most`. Out of line, so that each k gets
// registers of its own: inlined into PackRowsAvx2, the [8960][20] and [8960][4] tiles ran a third
// slower after an unrelated change to another k's code.
template <size_t kQuads, bool kAwq>
[[gnu::noinline]] size_t NarrowNibbles(const uint8_t* src, size_t rows, const NibbleShift& shift, uint8_t* dst,
                                       size_t dst_stride, __m256i& most) {
  static constexpr uint8_t kAwqRows[4] = {0, 2, 1, 3};
  const NarrowQuads<kQuads> quads(kAwq ? kAwqRows : kRowsInOrder);
  const NibbleShift local_shift = shift;  // a copy in registers, not reloaded after each store
  const size_t done = rows / 64 * 64;
  __m256i local_most = _mm256_setzero_si256();
  for (size_t o = 0; o < done; o += 64) {
    quads.template NibbleWords64<kAwq>(src + o * 4 * kQuads, local_shift, local_most,
                                       [&](size_t c, __m256i y) { Store(dst + c * dst_stride + o / 2, y); });
  }
  most = _mm256_max_epu8(most, local_most);
  return done;
}

// One 32-row tile of WideColumns (columns first..first+15 of rows o..o+31), each column put as it comes.
template <class Finish>
inline void PutByteColumns(const uint8_t* src, size_t src_stride, size_t o, size_t first, Finish& finish) {
  ByteColumns32(src + o * src_stride + first, src_stride, finish.At(first, o), finish.dst_stride,
                [&](size_t, uint8_t* at, __m256i x) { finish.Put(at, x); });
}

// WideColumns' tiles when the destination stride is a multiple of 4 KiB (Llama's [out][G]): all 16
// destination rows of a tile then share one L1 set, and the row tiles that fill a line (two at 8
// bits, four at 4) are 16 lines apart, so the line was evicted and read again in between. Here row
// tiles go in pairs, the first's columns waiting in L1 until the second's complete each run,
// stored together. (For other strides the staging costs 16-20%.)
template <class Finish>
void PairedTiles(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, Finish& finish) {
  const ptrdiff_t second_half = finish.At(0, 32) - finish.At(0, 0);
  ForEachTile<64, 16, 128>(rows, cols, [&](size_t o, size_t j, size_t nrows, size_t n) {
    const size_t first = n == 16 ? j : cols - 16;
    if (nrows < 64) return PutByteColumns(src, src_stride, o, first, finish);
    alignas(32) uint8_t staged[16][32];
    ByteColumns32(src + o * src_stride + first, src_stride, staged[0], 32,
                  [&](size_t, uint8_t* at, __m256i x) { Store(at, x); });
    ByteColumns32(src + (o + 32) * src_stride + first, src_stride, finish.At(first, o), finish.dst_stride,
                  [&](size_t c, uint8_t* at, __m256i x) {
                    finish.Put(at, Load(staged[c]));
                    finish.Put(at + second_half, x);
                  });
  });
}

// With 16 columns or more, every tile is 16 columns wide: a last narrower one moves left to end at
// the last column, and writes a few columns twice with the same values. Per-column checks in the
// loop would cost a third of its speed, as GCC then keeps each column's work apart.
template <class Finish>
inline Finish WideColumns(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, Finish finish) {
  if (cols < 16) {  // one column tile
    for (size_t o = 0; o < rows; o += 32) {
      ByteColumns32(src + o * src_stride, src_stride, finish.At(0, o), finish.dst_stride,
                    [&](size_t c, uint8_t* at, __m256i x) {
                      if (c < cols) finish.Put(at, x);
                    });
    }
    return finish;
  }
  // 128 rows a pass: a pass's source rows then stay in L1 for its next column tiles at 70 columns
  // (9 KB), and its destination runs are still two lines long. 256 gave [1536][70] -3%,
  // [3584][148] -7%.
  if (rows >= 64 && finish.dst_stride % 4096 == 0) {
    PairedTiles(src, src_stride, rows, cols, finish);
  } else {
    ForEachTile<32, 16, 128>(rows, cols, [&](size_t o, size_t j, size_t, size_t n) {
      PutByteColumns(src, src_stride, o, n == 16 ? j : cols - 16, finish);
    });
  }
  return finish;
}

// Rows back to back and G = 4k columns, k odd and k <= 7: NarrowQuads' layout.
inline bool FitsNarrowQuads(size_t src_stride, size_t cols) {
  return src_stride == cols && cols % 8 == 4 && cols <= 28;
}

// Calls f(std::integral_constant<size_t, k>()) for NarrowQuads' k of G = 4k columns.
template <class F>
inline void WithQuads(size_t cols, F f) {
  switch (cols / 4) {
    case 1:
      return f(std::integral_constant<size_t, 1>());
    case 3:
      return f(std::integral_constant<size_t, 3>());
    case 5:
      return f(std::integral_constant<size_t, 5>());
    default:
      return f(std::integral_constant<size_t, 7>());
  }
}

// Calls finish(c, o, x) with x holding column c of rows o..o+31, for the first rows of the matrix
// (a multiple of 32; returned) and every column.
template <class Finish>
size_t WideByteColumns(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, Finish& finish) {
  // From 16 columns on, no load runs past the last column (see WideColumns).
  const size_t done = cols >= 16 ? rows / 32 * 32 : RowsWithWholeLoads(rows, cols, src_stride, 32);
  finish = WideColumns(src, src_stride, done, cols, finish);
  return done;
}

// Narrow enough for the 4-bit byte transpose rather than the word tile.
inline bool ByteColumnsPay4(size_t src_stride, size_t cols) {
  return cols <= 16 || FitsNarrowQuads(src_stride, cols);
}

// 8 bits: a column's 32 bytes are already its 8 words. The shift to u (+128) and the bias come
// off in one byte add, each field wrapping alone, as no field is below its bias (kernels.h).
struct FinishWords8 {
  uint8_t* dst;
  size_t dst_stride;
  __m256i offset;  // each byte: 0x80 minus the bias's byte
  uint8_t* At(size_t c, size_t o) const { return dst + c * dst_stride + o; }
  void Put(uint8_t* at, __m256i x) const { Store(at, _mm256_add_epi8(x, offset)); }
  void operator()(size_t c, size_t o, __m256i x) const { Put(At(c, o), x); }
};

// 4 bits: each 8-byte group of a column is put in field order (AWQ), shifted, and its nibble pairs
// joined (pmaddubsw); packus gathers the 4 words. `most` collects the largest shifted value.
struct FinishWords4 {
  uint8_t* dst;
  size_t dst_stride;
  __m256i field_order;
  NibbleShift shift;
  __m256i most;
  uint8_t* At(size_t c, size_t o) const { return dst + c * dst_stride + o / 2; }
  void Put(uint8_t* at, __m256i x) {
    const __m256i shifted = shift(_mm256_shuffle_epi8(x, field_order), most);
    const __m256i joined = _mm256_maddubs_epi16(shifted, _mm256_set1_epi16(0x1001));  // low x1 + high x16
    const __m128i words = _mm_packus_epi16(_mm256_castsi256_si128(joined), _mm256_extracti128_si256(joined, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(at), words);
  }
};

// Returns the rows done; the caller packs the rest.
size_t PackRows8Bytes(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, __m256i bias, uint8_t* dst,
                      size_t dst_stride) {
  FinishWords8 finish{dst, dst_stride, _mm256_sub_epi8(_mm256_set1_epi8(static_cast<char>(0x80)), bias)};
  if (FitsNarrowQuads(src_stride, cols)) {
    WithQuads(cols, [&](auto quads) { finish = NarrowColumns<quads()>(src, rows / 32 * 32, finish); });
    return rows / 32 * 32;
  }
  return WideByteColumns(src, src_stride, rows, cols, finish);
}

// Returns the rows done, or 0, having written garbage, if a value needs clamping (or is below the
// bias): the word tile then redoes it exactly.
size_t PackRows4Bytes(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, bool awq,
                      const NibbleShift& shift, uint8_t* dst, size_t dst_stride) {
  if (FitsNarrowQuads(src_stride, cols)) {
    __m256i most = _mm256_setzero_si256();
    size_t done = 0;
    WithQuads(cols, [&](auto quads) {
      done = awq ? NarrowNibbles<quads(), true>(src, rows, shift, dst, dst_stride, most)
                 : NarrowNibbles<quads(), false>(src, rows, shift, dst, dst_stride, most);
    });
    return shift.Exceeded(most) ? 0 : done;
  }
  const __m128i lane_order = awq ? _mm_setr_epi8(0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15)
                                 : _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m256i field_order = _mm256_broadcastsi128_si256(lane_order);
  FinishWords4 finish{dst, dst_stride, field_order, shift, _mm256_setzero_si256()};
  const size_t done = WideByteColumns(src, src_stride, rows, cols, finish);
  return shift.Exceeded(finish.most) ? 0 : done;
}

template <int kBits>
uint64_t PackRowsAvx2(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, PackOrder order,
                      uint32_t word_bias, uint8_t* dst, size_t dst_stride) {
  constexpr size_t kPerWord = 32 / kBits;
  // The AWQ order is defined for 4 bits only; leave any other use to the reference's semantics.
  if (kBits == 8 && order == PackOrder::kAwq) {
    return ScalarKernels().pack_rows_8(src, src_stride, rows, cols, order, word_bias, dst, dst_stride);
  }
  size_t done = 0;
  if constexpr (kBits == 8) {
    done = PackRows8Bytes(src, src_stride, rows, cols, _mm256_set1_epi32(static_cast<int>(word_bias)), dst, dst_stride);
  } else if (const auto nibble = NibbleShift::NibbleOf(word_bias); nibble && ByteColumnsPay4(src_stride, cols)) {
    done = PackRows4Bytes(src, src_stride, rows, cols, order == PackOrder::kAwq, NibbleShift(*nibble), dst, dst_stride);
  }
  return PackRowsWords<kBits>(src + done * src_stride, src_stride, rows - done, cols, order, word_bias,
                              dst + done / kPerWord * 4, dst_stride);
}

// ---- transposes (scales) ---------------------------------------------------------------------

// Loads n (1..8) 16-bit elements without touching memory past them.
inline __m128i LoadPartial16(const uint8_t* p, size_t n) {
  if (n == 8) return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i pairs = _mm_maskload_epi32(reinterpret_cast<const int*>(p), _mm256_castsi256_si128(FirstWords(n / 2)));
  if ((n & 1) == 0) return pairs;
  uint16_t last;
  std::memcpy(&last, p + 2 * (n - 1), 2);
  const __m128i lane =
      _mm_cmpeq_epi16(_mm_set1_epi16(static_cast<short>(n - 1)), _mm_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7));
  return _mm_blendv_epi8(pairs, _mm_set1_epi16(static_cast<short>(last)), lane);
}

// 16 rows x n (1..8) columns of 16-bit elements -> n rows x 16 elements.
// kWholeLoads: 16 bytes can be read from every row (see RowsWithWholeLoads), past the n columns.
template <bool kWholeLoads>
inline void Transpose16Tile(const uint8_t* src, size_t src_stride, size_t n, uint8_t* dst, size_t dst_stride) {
  __m256i r[8];
  for (int k = 0; k < 8; ++k) {  // rows k and k+8 share a register, one per 128-bit lane
    const uint8_t* top = src + k * src_stride;
    const uint8_t* bottom = top + 8 * src_stride;
    r[k] = kWholeLoads || n == 8 ? LoadLanePair(top, bottom)
                                 : _mm256_set_m128i(LoadPartial16(bottom, n), LoadPartial16(top, n));
  }
  __m256i a[8], b[8];
  for (int k = 0; k < 8; k += 2) {
    a[k] = _mm256_unpacklo_epi16(r[k], r[k + 1]);
    a[k + 1] = _mm256_unpackhi_epi16(r[k], r[k + 1]);
  }
  for (int k = 0; k < 8; k += 4) {
    b[k] = _mm256_unpacklo_epi32(a[k], a[k + 2]);
    b[k + 1] = _mm256_unpackhi_epi32(a[k], a[k + 2]);
    b[k + 2] = _mm256_unpacklo_epi32(a[k + 1], a[k + 3]);
    b[k + 3] = _mm256_unpackhi_epi32(a[k + 1], a[k + 3]);
  }
  // Column 2q is the low half of b[q] and b[q+4], column 2q+1 the high half.
  for (int q = 0; q < 4; ++q) {
    r[2 * q] = _mm256_unpacklo_epi64(b[q], b[q + 4]);
    r[2 * q + 1] = _mm256_unpackhi_epi64(b[q], b[q + 4]);
  }
  StoreRows(dst, dst_stride, r, n);
}

void Transpose16Avx2(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst, size_t dst_stride) {
  const size_t whole = RowsWithWholeLoads(rows, 2 * cols, src_stride, 16);
  ForEachTile<16, 8>(whole, cols, [&](size_t o, size_t j, size_t, size_t n) {
    Transpose16Tile<true>(src + o * src_stride + j * 2, src_stride, n, dst + j * dst_stride + o * 2, dst_stride);
  });
  const size_t full_rows = rows & ~size_t{15};
  ForEachTile<16, 8>(full_rows - whole, cols, [&](size_t o, size_t j, size_t, size_t n) {
    o += whole;
    Transpose16Tile<false>(src + o * src_stride + j * 2, src_stride, n, dst + j * dst_stride + o * 2, dst_stride);
  });
  if (full_rows < rows) {
    ScalarKernels().transpose_16(src + full_rows * src_stride, src_stride, rows - full_rows, cols, dst + full_rows * 2,
                                 dst_stride);
  }
}

// 8 rows x n (1..8) columns of 32-bit elements -> n rows x 8 elements.
template <bool kWholeLoads>
inline void Transpose32Tile(const uint8_t* src, size_t src_stride, size_t n, uint8_t* dst, size_t dst_stride) {
  __m256i r[8];
  if (kWholeLoads || n == 8) {
    for (int k = 0; k < 8; ++k) r[k] = Load(src + k * src_stride);
  } else {
    const __m256i mask = FirstWords(n);
    for (int k = 0; k < 8; ++k) r[k] = _mm256_maskload_epi32(reinterpret_cast<const int*>(src + k * src_stride), mask);
  }
  Transpose8x8(r);
  StoreRows(dst, dst_stride, r, n);
}

void Transpose32Avx2(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst, size_t dst_stride) {
  const size_t whole = RowsWithWholeLoads(rows, 4 * cols, src_stride, 8, 32);
  ForEachTile<8, 8>(whole, cols, [&](size_t o, size_t j, size_t, size_t n) {
    Transpose32Tile<true>(src + o * src_stride + j * 4, src_stride, n, dst + j * dst_stride + o * 4, dst_stride);
  });
  const size_t full_rows = rows & ~size_t{7};
  ForEachTile<8, 8>(full_rows - whole, cols, [&](size_t o, size_t j, size_t, size_t n) {
    o += whole;
    Transpose32Tile<false>(src + o * src_stride + j * 4, src_stride, n, dst + j * dst_stride + o * 4, dst_stride);
  });
  if (full_rows < rows) {
    ScalarKernels().transpose_32(src + full_rows * src_stride, src_stride, rows - full_rows, cols, dst + full_rows * 4,
                                 dst_stride);
  }
}

bool Avx2Supported() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
}

}  // namespace

const KernelTable& Avx2Kernels() {
  static constexpr KernelTable kTable{
      "avx2",           &Avx2Supported,   &PackColsAvx2<4>, &PackColsAvx2<8>,
      &PackRowsAvx2<4>, &PackRowsAvx2<8>, &Transpose16Avx2, &Transpose32Avx2,
  };
  return kTable;
}

}  // namespace ms2vllm::kernels
