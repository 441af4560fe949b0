// The transforms of SPEC.md section 2 as pure functions on strided 2-D tiles.
//
// Every function works on one tile: a `rows x cols` block of a row-major source
// matrix (`src_stride` bytes between source rows) and writes the matching block
// of the destination (`dst_stride` bytes between destination rows). No files,
// no threads, no allocation. Pointers need no alignment.
//
// "u" below is the value shift of SPEC 2: u = clamp(v, -2^(b-1), 2^(b-1)-1) + 2^(b-1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ms2vllm::kernels {

// Order of the values inside one packed 32-bit word: field k holds element ORDER[k].
enum class PackOrder : uint8_t {
  kSequential,  // 0 1 2 3 4 5 6 7 (GPTQ)
  kAwq,         // 0 2 4 6 1 3 5 7 (AutoAWQ's GEMM layout; 4-bit only, as AWQ is: the plan
                //   never asks pack_rows_8 for it, and every variant then defers to the reference)
};

// GPTQ qweight. dst[r][o] (32-bit word) holds u(src[o][r*p + j]) in field j, p = 32/bits.
// `cols` must be a multiple of p. The tile's destination has cols/p rows and `rows` words each.
// Returns how many source values were clamped (always 0 for 8 bits).
using PackColsFn = uint64_t (*)(const uint8_t* src, size_t src_stride, size_t rows, size_t cols,
                                uint8_t* dst, size_t dst_stride);

// AWQ qweight, AWQ qzeros and GPTQ qzeros. dst[i][c] (32-bit word) holds u(src[c*p + ORDER[k]][i])
// in field k, minus `word_bias` (GPTQ v1 stores every zero point minus 1: 0x11111111 for 4 bits,
// 0x01010101 for 8). No u may be below its field of the bias (the engine refuses a v1 zero point
// of 0 before packing, SPEC 4): there a variant may borrow from the next field or wrap the field
// alone. `rows` must be a multiple of p. The destination has `cols` rows and rows/p words each.
// Returns how many source values were clamped (always 0 for 8 bits).
using PackRowsFn = uint64_t (*)(const uint8_t* src, size_t src_stride, size_t rows, size_t cols,
                                PackOrder order, uint32_t word_bias, uint8_t* dst, size_t dst_stride);

// dst[j][i] = src[i][j] for elements of 2 or 4 bytes (scales: [out, G] -> [G, out]).
using TransposeFn = void (*)(const uint8_t* src, size_t src_stride, size_t rows, size_t cols,
                             uint8_t* dst, size_t dst_stride);

// One implementation of every transform, for one instruction set.
struct KernelTable {
  std::string_view name;   // "scalar", "avx2", "avx512", "neon"
  bool (*supported)();     // does this CPU run it?
  PackColsFn pack_cols_4;
  PackColsFn pack_cols_8;
  PackRowsFn pack_rows_4;
  PackRowsFn pack_rows_8;
  TransposeFn transpose_16;
  TransposeFn transpose_32;
};

// The scalar reference: the ground truth every other variant is tested against.
const KernelTable& ScalarKernels();

// Every variant compiled into this binary, scalar first, most preferred last.
std::span<const KernelTable* const> CompiledKernels();

// The table to use: `forced` names a variant (environment MS2VLLM_KERNELS or --kernels),
// empty picks the best one this CPU supports. nullptr when `forced` is unknown or unsupported.
const KernelTable* SelectKernels(std::string_view forced);

// The CPU features that decide the choice, e.g. "avx2 avx512f avx512bw avx512vbmi".
std::string CpuFeatureString();

}  // namespace ms2vllm::kernels
