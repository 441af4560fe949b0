// Kernel throughput: every transform, on realistic tiles, for every kernel variant this CPU runs,
// next to a single-core memcpy of the same number of source bytes.
//
// What the figures mean: `bytes_per_second` counts the bytes each call READS from the tile (rows x
// row bytes, not the stride gaps), whatever it writes (a 4-bit pack writes half as much as it
// reads, an 8-bit pack or a transpose as much). The `memcpy` line copies that many contiguous
// bytes into a second buffer (so it reads N and writes N): it is the yardstick of what one core
// can move, and a kernel at >= 50% of it is memory-bound enough not to matter next to I/O. The
// `move` line (see RunMove) is the second yardstick: a transpose's memory traffic alone.
// Buffers start on a cache line, as the executor's input and band buffers do (a 64-byte store that
// straddles two lines costs two). All runs are single-threaded and repeat the same tile, so the data is as warm as the cache
// sizes allow (a 1024 x 4096 int8 tile is 4 MiB: beyond L2, within L3), equally for every line.
//
// Shapes come from qwen2-1.5b (hidden 1536, MLP 8960): gate/up q[8960][1536] cut in tiles of
// 1024 rows, down q[1536][8960] cut in tiles of 1024 x 4096 of an 8960-wide row, scales and
// offsets [8960][12] (group 128), and down_proj scales [1536][70]; qwen2-7b's scales and offsets
// (hidden 3584, MLP 18944: [18944][28] and [3584][148]), the next size up. `llama_q` is a 4096 x 4096
// projection (Llama 7B/8B) with the strides the executor gives it: rows of a multiple of 2 KiB
// get one cache line of padding in its buffers (engine/executor.cpp, PaddedPitch).
// `llama_q_unpadded` keeps the raw power-of-two strides, to show what the padding is for: the
// executor never hands those to a kernel.
// pack_rows_8 only ever packs GPTQ 8-bit qzeros, so its weight-sized tile is not a production path.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <new>
#include <vector>

#include "kernels/kernels.h"

namespace ms2vllm::kernels {
namespace {

struct TileShape {
  const char* name;
  size_t rows;
  size_t cols;        // elements per source row in the tile
  size_t src_stride;  // bytes between source rows
  size_t dst_stride;  // bytes between destination rows
  bool gptq = false;  // pack_rows_4: GPTQ qzeros (fields in order, minus 1 each), not AWQ's order
};

enum class Op { kPackCols4, kPackCols8, kPackRows4, kPackRows8, kTranspose16, kTranspose32 };

const char* OpName(Op op) {
  switch (op) {
    case Op::kPackCols4:
      return "pack_cols_4";
    case Op::kPackCols8:
      return "pack_cols_8";
    case Op::kPackRows4:
      return "pack_rows_4";
    case Op::kPackRows8:
      return "pack_rows_8";
    case Op::kTranspose16:
      return "transpose_16";
    case Op::kTranspose32:
      return "transpose_32";
  }
  return "?";
}

size_t ElemBytes(Op op) { return op == Op::kTranspose16 ? 2 : op == Op::kTranspose32 ? 4 : 1; }

// Rows of the destination tile (its row length in bytes is what dst_stride must hold).
size_t DstRows(Op op, const TileShape& s) {
  switch (op) {
    case Op::kPackCols4:
      return s.cols / 8;
    case Op::kPackCols8:
      return s.cols / 4;
    default:
      return s.cols;
  }
}

constexpr size_t kPad = 64;  // the executor's padding of rows a multiple of 2 KiB long

std::vector<TileShape> Shapes(Op op) {
  switch (op) {
    case Op::kPackCols4:  // GPTQ qweight [in/8][out]
    case Op::kPackCols8:  // GPTQ 8-bit qweight [in/4][out]
      return {{"gate_up_1024x1536", 1024, 1536, 1536, 8960 * 4},
              {"down_1024x4096", 1024, 4096, 8960, 1536 * 4},
              {"llama_q_1024x4096", 1024, 4096, 4096 + kPad, 4096 * 4 + kPad},
              {"llama_q_unpadded", 1024, 4096, 4096, 4096 * 4}};
    case Op::kPackRows4:  // AWQ qweight [in][out/8], AWQ / GPTQ 4-bit qzeros [G][out/8]
      return {{"gate_up_1024x1536", 1024, 1536, 1536, 8960 / 2},
              {"down_1024x4096", 1024, 4096, 8960, 1536 / 2},
              {"llama_q_1024x4096", 1024, 4096, 4096 + kPad, 4096 / 2 + kPad},
              {"llama_q_unpadded", 1024, 4096, 4096, 4096 / 2},
              {"zeros_8960x12", 8960, 12, 12, 8960 / 2},
              {"zeros_8960x12_gptq", 8960, 12, 12, 8960 / 2, true}};
    case Op::kPackRows8:  // GPTQ 8-bit qzeros [G][out/4]; the weight-sized tile is for comparison only
      return {{"zeros_8960x12", 8960, 12, 12, 8960},
              {"zeros_1536x70", 1536, 70, 70, 1536},
              {"zeros_18944x28", 18944, 28, 28, 18944},
              {"zeros_3584x148", 3584, 148, 148, 3584},
              {"zeros_8192x64", 8192, 64, 64, 8192},
              {"gate_up_1024x1536", 1024, 1536, 1536, 8960}};
    case Op::kTranspose16:  // bf16 / f16 scales [out][G] -> [G][out]
      return {{"scales_8960x12", 8960, 12, 24, 8960 * 2},
              {"scales_1536x70", 1536, 70, 140, 1536 * 2},
              {"scales_18944x28", 18944, 28, 56, 18944 * 2},
              {"scales_3584x148", 3584, 148, 296, 3584 * 2},
              {"scales_8192x64", 8192, 64, 128, 8192 * 2}};
    case Op::kTranspose32:  // f32 scales
      return {{"scales_8960x12", 8960, 12, 48, 8960 * 4},
              {"scales_1536x70", 1536, 70, 280, 1536 * 4},
              {"scales_18944x28", 18944, 28, 112, 18944 * 4},
              {"scales_3584x148", 3584, 148, 592, 3584 * 4},
              {"scales_8192x64", 8192, 64, 256, 8192 * 4}};
  }
  return {};
}

// A 64-byte-aligned byte buffer (std::vector's storage comes from malloc, 16 bytes past a page).
class AlignedBytes {
 public:
  explicit AlignedBytes(size_t n) : data_(static_cast<uint8_t*>(::operator new(n, kAlign))), size_(n) {}
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;
  ~AlignedBytes() { ::operator delete(data_, kAlign); }
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  static constexpr std::align_val_t kAlign{64};
  uint8_t* data_;
  size_t size_;
};

// In-range 4-bit values from `lowest` to 7, as a real W4 checkpoint holds (outliers only occur in
// broken inputs and send a tile down the slower exact clamp-and-count path). GPTQ v1 zeros start
// at -7: the engine refuses a zero point of -8, which v1 cannot store (kernels.h).
void FillRandom(AlignedBytes& out, int lowest) {
  std::mt19937_64 rng(42);
  const auto values = static_cast<uint64_t>(8 - lowest);
  for (size_t i = 0; i < out.size(); ++i) out.data()[i] = static_cast<uint8_t>(static_cast<int>(rng() % values) + lowest);
}

void RunKernel(benchmark::State& state, const KernelTable* table, Op op, TileShape s) {
  const size_t row_bytes = s.cols * ElemBytes(op);
  AlignedBytes src(s.rows * s.src_stride);
  FillRandom(src, op == Op::kPackRows4 && s.gptq ? -7 : -8);
  AlignedBytes dst(DstRows(op, s) * s.dst_stride);
  uint64_t clamped = 0;
  for (auto _ : state) {
    switch (op) {
      case Op::kPackCols4:
        clamped += table->pack_cols_4(src.data(), s.src_stride, s.rows, s.cols, dst.data(), s.dst_stride);
        break;
      case Op::kPackCols8:
        clamped += table->pack_cols_8(src.data(), s.src_stride, s.rows, s.cols, dst.data(), s.dst_stride);
        break;
      case Op::kPackRows4:
        clamped += table->pack_rows_4(src.data(), s.src_stride, s.rows, s.cols,
                                      s.gptq ? PackOrder::kSequential : PackOrder::kAwq, s.gptq ? 0x11111111u : 0,
                                      dst.data(), s.dst_stride);
        break;
      case Op::kPackRows8:
        clamped += table->pack_rows_8(src.data(), s.src_stride, s.rows, s.cols, PackOrder::kSequential, 0x01010101u,
                                      dst.data(), s.dst_stride);
        break;
      case Op::kTranspose16:
        table->transpose_16(src.data(), s.src_stride, s.rows, s.cols, dst.data(), s.dst_stride);
        break;
      case Op::kTranspose32:
        table->transpose_32(src.data(), s.src_stride, s.rows, s.cols, dst.data(), s.dst_stride);
        break;
    }
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  benchmark::DoNotOptimize(clamped);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * s.rows * row_bytes));
}

void RunMemcpy(benchmark::State& state, size_t bytes) {
  AlignedBytes src(bytes);
  FillRandom(src, -8);
  AlignedBytes dst(bytes);
  for (auto _ : state) {
    std::memcpy(dst.data(), src.data(), bytes);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

// The `move` line: what a transposing kernel pays for memory traffic alone. Every source byte is
// loaded once, in order, 64 bytes at a time, and stored as one whole line of the destination,
// whose rows are visited in bursts of kMoveBurst bytes, near the 256 B to 1 KiB the kernels'
// passes write to a row at a time (a 64-byte burst sends 6 KiB strides into a few cache sets).
// No shuffles, so it is the rate to compare a kernel with when it falls short of memcpy: memcpy
// streams both sides, a transpose cannot. Only for the transforms that write as many bytes as
// they read.
constexpr size_t kMoveBurst = 1024;

// Rows visited burst by burst, each line copied whole. Always inlined, so that it takes the
// target of its caller.
[[gnu::always_inline]] inline void MoveLinesIn(const uint8_t* src, size_t lines, size_t dst_rows, uint8_t* dst,
                                               size_t dst_stride) {
  for (size_t l0 = 0; l0 < lines; l0 += kMoveBurst / 64) {
    for (size_t r = 0; r < dst_rows; ++r) {
      for (size_t l = l0; l < std::min(l0 + kMoveBurst / 64, lines); ++l, src += 64) {
        std::memcpy(dst + r * dst_stride + 64 * l, src, 64);
      }
    }
  }
}

#if defined(__x86_64__)
// One 64-byte load and store per line where the CPU has them, as the AVX-512 kernels use.
__attribute__((target("avx512f"))) void MoveLinesAvx512(const uint8_t* src, size_t lines, size_t dst_rows,
                                                        uint8_t* dst, size_t dst_stride) {
  MoveLinesIn(src, lines, dst_rows, dst, dst_stride);
}
#endif

void MoveLines(const uint8_t* src, size_t lines, size_t dst_rows, uint8_t* dst, size_t dst_stride) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx512f")) return MoveLinesAvx512(src, lines, dst_rows, dst, dst_stride);
#endif
  MoveLinesIn(src, lines, dst_rows, dst, dst_stride);
}

// dst_rows rows of `lines` whole lines each (the tile's destination, its last partial line left out).
void RunMove(benchmark::State& state, size_t dst_rows, size_t lines, size_t dst_stride) {
  AlignedBytes src(dst_rows * lines * 64);
  FillRandom(src, -8);
  AlignedBytes dst(dst_rows * dst_stride);
  for (auto _ : state) {
    MoveLines(src.data(), lines, dst_rows, dst.data(), dst_stride);
    benchmark::DoNotOptimize(dst.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * src.size()));
}

bool WritesWhatItReads(Op op) { return op != Op::kPackCols4 && op != Op::kPackRows4; }

// Names read "<transform>/<shape>/<variant>", so each memcpy line sits next to the kernels it measures.
int RegisterAll() {
  for (Op op : {Op::kPackCols4, Op::kPackCols8, Op::kPackRows4, Op::kPackRows8, Op::kTranspose16, Op::kTranspose32}) {
    for (const TileShape& s : Shapes(op)) {
      const std::string prefix = std::string(OpName(op)) + "/" + s.name + "/";
      const size_t bytes = s.rows * s.cols * ElemBytes(op);
      benchmark::RegisterBenchmark((prefix + "memcpy").c_str(), RunMemcpy, bytes);
      if (WritesWhatItReads(op)) {
        const size_t dst_rows = DstRows(op, s);
        benchmark::RegisterBenchmark((prefix + "move").c_str(), RunMove, dst_rows, bytes / dst_rows / 64, s.dst_stride);
      }
      for (const KernelTable* table : CompiledKernels()) {
        if (!table->supported()) continue;
        benchmark::RegisterBenchmark((prefix + std::string(table->name)).c_str(), RunKernel, table, op, s);
      }
    }
  }
  return 0;
}

[[maybe_unused]] const int kRegistered = RegisterAll();

}  // namespace
}  // namespace ms2vllm::kernels
