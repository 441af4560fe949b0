// Loop structure shared by the x86 SIMD variants, pack_avx2.cpp and pack_avx512.cpp; include it
// nowhere else. Everything sits in an anonymous namespace, so each of those files compiles its own
// copy with its own target flags and no AVX-512 code can reach a caller that only checked AVX2.
#pragma once

#include <cstddef>

namespace ms2vllm::kernels {
namespace {

// Source rows per pass of the transposing kernels. Within a pass, consecutive micro-tiles step
// along the destination row, so each destination row receives kBlockRows words in a burst: when
// the destination stride is a multiple of 2 KiB (e.g. 1536 int32 = 6 KiB), stepping down it
// instead sends every store to the same few cache sets, which cost 3-4x.
constexpr size_t kBlockRows = 256;

inline size_t Min(size_t a, size_t b) { return a < b ? a : b; }

// Calls f(o, j, nrows, ncols) for the kTileR x kTileC tiles of a rows x cols grid: kBlock rows
// per pass, row tiles innermost.
template <size_t kTileR, size_t kTileC, size_t kBlock = kBlockRows, class F>
inline void ForEachTile(size_t rows, size_t cols, F&& f) {
  static_assert(kBlock % kTileR == 0);
  for (size_t o0 = 0; o0 < rows; o0 += kBlock) {
    for (size_t j = 0; j < cols; j += kTileC) {
      for (size_t o = o0; o < Min(o0 + kBlock, rows); o += kTileR) {
        f(o, j, Min(kTileR, rows - o), Min(kTileC, cols - j));
      }
    }
  }
}

}  // namespace
}  // namespace ms2vllm::kernels
