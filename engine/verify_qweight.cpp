// The qweight check: each word of the converted qweight is unpacked the way AutoAWQ (GEMM order)
// or AutoGPTQ reads it and compared, value by value, with clamp(q) + 2^(b-1) of the input weight.
// Together with the qzeros check (zero point = clamp(offset) + 2^(b-1) as read) this proves
// q - z = clamp(q_input) - clamp(offset_input) for every element, i.e. the consumer's
// dequantization equals msModelSlim's once the scales are equal too.
#include <algorithm>
#include <cstring>

#include "engine/cancel.h"
#include "engine/verify_tensor.h"

namespace ms2vllm {
namespace {

using Packing = LinearGeometry::Packing;


struct Field {
  int bits;
  uint32_t mask;
  int half;  // 2^(b-1): the value shift of SPEC 2
  uint64_t per_word;
};

uint32_t Shifted(int8_t value, const Field& f) {
  const int low = -f.half, high = f.half - 1;
  return static_cast<uint32_t>(std::clamp<int>(value, low, high) + f.half);
}

uint32_t LoadWord(const uint8_t* p) {
  uint32_t word;
  std::memcpy(&word, p, 4);  // a foreign file need not align its tensors
  return word;
}

// Eight int8 values at `q` as eight bytes u = v + 8, when all lie in [-8, 7] (the common case:
// no clamping to do). A value is in range when its top five bits are copies of its sign.
bool NibbleBytes(const int8_t* q, uint64_t& u) {
  uint64_t x;
  std::memcpy(&x, q, 8);
  const uint64_t signs = (x >> 7) & 0x0101010101010101ull;
  if ((x & 0xF8F8F8F8F8F8F8F8ull) != signs * 0xF8) return false;
  u = (x ^ 0x0808080808080808ull) & 0x0F0F0F0F0F0F0F0Full;
  return true;
}

// Byte j of `u` (< 16) into nibble j of a word.
uint32_t PackNibbleBytes(uint64_t u) {
  u = (u | (u >> 4)) & 0x00FF00FF00FF00FFull;
  u = (u | (u >> 8)) & 0x0000FFFF0000FFFFull;
  return static_cast<uint32_t>(u | (u >> 16));
}

// ascendV1 nibbles (SPEC 1), decoded here rather than by the converter's kernel on purpose.
int8_t LowNibble(uint8_t byte) { return static_cast<int8_t>(((byte & 0xF) ^ 8) - 8); }
int8_t HighNibble(uint8_t byte) { return static_cast<int8_t>(static_cast<int8_t>(byte) >> 4); }

// A tile of the weight: input rows (output channels) [o0, o1) x input columns [i0, i1).
struct Tile {
  uint64_t o0, o1, i0, i1;
};

// The tile's unpacked int8 values: (o, i) at data[(o - o0) * stride + (i - i0)], in the mapping
// itself or, for packed input, in `scratch`.
struct TileView {
  const int8_t* data;
  uint64_t stride;
};

TileView UnpackedTile(const LinearGeometry& g, const uint8_t* source, const Tile& t, std::vector<int8_t>& scratch) {
  if (g.packing == Packing::kNone) return {reinterpret_cast<const int8_t*>(source + t.o0 * g.in + t.i0), g.in};
  const uint64_t width = t.i1 - t.i0;
  scratch.resize((t.o1 - t.o0) * width);
  for (uint64_t o = t.o0; o < t.o1; ++o) {
    int8_t* row = scratch.data() + (o - t.o0) * width;
    if (g.packing == Packing::kPairsAlongOut) {  // packed row o/2: even rows low, odd rows high
      const uint8_t* packed = source + o / 2 * g.in;
      for (uint64_t i = t.i0; i < t.i1; ++i) row[i - t.i0] = (o & 1) ? HighNibble(packed[i]) : LowNibble(packed[i]);
    } else {  // pairs along in: byte i/2 of the row, even columns low, odd columns high
      const uint8_t* packed = source + o * (g.in / 2);
      for (uint64_t i = t.i0; i < t.i1; ++i) row[i - t.i0] = (i & 1) ? HighNibble(packed[i / 2]) : LowNibble(packed[i / 2]);
    }
  }
  return {scratch.data(), width};
}

// The stored input bytes a tile reads, as one span from its first byte to its last.
std::pair<uint64_t, uint64_t> InputSpan(const LinearGeometry& g, const Tile& t) {
  uint64_t row_bytes = g.in, r0 = t.o0, r1 = t.o1, c0 = t.i0, c1 = t.i1;
  if (g.packing == Packing::kPairsAlongOut) {
    r0 /= 2;
    r1 = (r1 + 1) / 2;
  } else if (g.packing == Packing::kPairsAlongIn) {
    row_bytes = g.in / 2;
    c0 /= 2;
    c1 = (c1 + 1) / 2;
  }
  const uint64_t first = r0 * row_bytes + c0;
  return {first, (r1 - 1) * row_bytes + c1 - first};
}

class QWeightChecker {
 public:
  QWeightChecker(const TensorCheckContext& context, const OutputTensor& expected, const TensorInfo& actual,
                 const CheckedBytes& bytes)
      : c_(context), t_(expected), actual_(actual), bytes_(bytes), g_(expected.geometry), differences_(context.settings.examples) {
    const int bits = context.plan.bits;
    f_ = {bits, (1u << bits) - 1, 1 << (bits - 1), static_cast<uint64_t>(32 / bits)};
    awq_ = context.plan.target == TargetTool::kAwq;
  }

  // Both layouts give each input column its own output rows (AWQ one row per column, GPTQ one per
  // p columns), so a band of columns is one contiguous output range. Bands are walked in order,
  // each in blocks of input rows; the band is dropped when done, each block's input right after
  // it: resident memory stays near one band plus one block, whatever the tensor's size.
  TensorVerdict Run() {
    TensorVerdict verdict;
    const uint8_t* source = bytes_.input;
    const MappedFile& in_file = c_.input.shard(t_.source->shard);
    const MappedFile& out_file = c_.output.shard(actual_.shard);
    words_ = bytes_.output;
    const uint64_t out_bytes_per_col = awq_ ? g_.out / 2 : g_.out * 4 / f_.per_word;
    // Multiples of 8: an AWQ word spans 8 rows, a GPTQ word p <= 8 columns, packed values come in pairs.
    const uint64_t band = std::max<uint64_t>(8, c_.settings.band_bytes / out_bytes_per_col / 8 * 8);
    const uint64_t stored_divisor = g_.packing == Packing::kNone ? 1 : 2;
    std::vector<int8_t> scratch;
    for (uint64_t i0 = 0; i0 < g_.in; i0 += band) {
      const uint64_t i1 = std::min(i0 + band, g_.in);
      const uint64_t band_first = i0 * out_bytes_per_col, band_size = (i1 - i0) * out_bytes_per_col;
      if (bytes_.mapped) out_file.Prefault(actual_.file_offset + band_first, band_size);
      const uint64_t rows = std::max<uint64_t>(8, c_.settings.chunk_bytes / (i1 - i0) / 8 * 8);
      for (uint64_t o0 = 0; o0 < g_.out; o0 += rows) {
        if (Cancelled(c_.settings.cancel)) {
          verdict.cancelled = true;
          return verdict;
        }
        const Tile tile{o0, std::min(o0 + rows, g_.out), i0, i1};
        const auto [offset, size] = InputSpan(g_, tile);
        // Mapping a span in one call beats a fault per page, but only when the tile uses all of it.
        if (bytes_.mapped && i0 == 0 && i1 == g_.in) in_file.Prefault(t_.source->file_offset + offset, size);
        const TileView view = UnpackedTile(g_, source, tile, scratch);
        if (awq_) {
          CompareAwq(view, tile);
        } else {
          CompareGptq(view, tile);
        }
        if (bytes_.mapped) in_file.Release(t_.source->file_offset + offset, size);
        if (c_.settings.progress) {
          c_.settings.progress->fetch_add((tile.o1 - tile.o0) * (i1 - i0) / stored_divisor, std::memory_order_relaxed);
        }
      }
      if (bytes_.mapped) out_file.Release(actual_.file_offset + band_first, band_size);
    }
    verdict.values = g_.out * g_.in;
    verdict.problem = differences_.Problem(t_.name, verdict.values,
                                           awq_ ? "values differ as AutoAWQ reads them (GEMM order)"
                                                : "values differ as AutoGPTQ reads them");
    return verdict;
  }

 private:
  // GPTQ: word [r][o] field j = u(q[o][r*p + j]). Each row of the tile streams; the output lines
  // neighbouring rows share stay in cache across them.
  void CompareGptq(const TileView& view, const Tile& t) {
    const uint64_t p = f_.per_word;
    constexpr uint64_t kSegment = 256;  // words per row segment
    for (uint64_t r0 = t.i0 / p; r0 < t.i1 / p; r0 += kSegment) {
      const uint64_t r1 = std::min(r0 + kSegment, t.i1 / p);
      for (uint64_t o = t.o0; o < t.o1; ++o) {
        const int8_t* q = view.data + (o - t.o0) * view.stride;
        for (uint64_t r = r0; r < r1; ++r) {
          const int8_t* values = q + (r * p - t.i0);
          const uint32_t want = GptqWord(values);
          const uint32_t read = LoadWord(words_ + (r * g_.out + o) * 4);
          if (read != want) [[unlikely]] {
            for (uint64_t j = 0; j < p; ++j) Record(read, want, j, o, r * p + j, r, o, values[j]);
          }
        }
      }
    }
  }

  // AWQ: word [i][c] nibble k = u(q[8c + kAwqOrder[k]][i]).
  void CompareAwq(const TileView& view, const Tile& t) {
    const uint64_t words_per_row = g_.out / 8;
    constexpr uint64_t kSegment = 1024;  // input columns per pass
    for (uint64_t s0 = t.i0; s0 < t.i1; s0 += kSegment) {
      const uint64_t s1 = std::min(s0 + kSegment, t.i1);
      for (uint64_t c = t.o0 / 8; c < t.o1 / 8; ++c) {
        const int8_t* lane[8];  // lane[k][i - i0] is q[8c + kAwqOrder[k]][i]
        for (int k = 0; k < 8; ++k) lane[k] = view.data + (8 * c + kAwqOrder[k] - t.o0) * view.stride;
        for (uint64_t i = s0; i < s1;) {
          // Eight columns at once when their values need no clamping, else one by one.
          uint64_t u[8];
          bool fast = i + 8 <= s1;
          for (int k = 0; fast && k < 8; ++k) fast = NibbleBytes(lane[k] + (i - t.i0), u[k]);
          const uint64_t start = i, end = fast ? i + 8 : i + 1;
          for (; i < end; ++i) {
            uint32_t want = 0;
            for (int k = 0; k < 8; ++k) {
              const uint32_t value =
                  fast ? static_cast<uint32_t>(u[k] >> (8 * (i - start))) & 0xF : Shifted(lane[k][i - t.i0], f_);
              want |= value << (4 * k);
            }
            const uint32_t read = LoadWord(words_ + (i * words_per_row + c) * 4);
            if (read != want) [[unlikely]] {
              for (uint64_t k = 0; k < 8; ++k) Record(read, want, k, 8 * c + kAwqOrder[k], i, i, c, lane[k][i - t.i0]);
            }
          }
        }
      }
    }
  }

  // The word GPTQ stores for the p values at q: field j = u(q[j]).
  uint32_t GptqWord(const int8_t* q) const {
    if (f_.bits == 8) return LoadWord(reinterpret_cast<const uint8_t*>(q)) ^ 0x80808080u;  // u = v + 128: the sign bit flips
    uint64_t u;
    if (NibbleBytes(q, u)) return PackNibbleBytes(u);
    uint32_t want = 0;  // some value needs clamping
    for (uint64_t j = 0; j < 8; ++j) want |= Shifted(q[j], f_) << (4 * j);
    return want;
  }

  // One field of a word that differs; (row, col) is the word's index in the qweight.
  void Record(uint32_t read, uint32_t want, uint64_t field, uint64_t o, uint64_t i, uint64_t row, uint64_t col,
              int8_t input) {
    const uint32_t got = (read >> (f_.bits * field)) & f_.mask, expected = (want >> (f_.bits * field)) & f_.mask;
    if (got == expected) return;
    differences_.Add([&] {
      return "o=" + std::to_string(o) + ", i=" + std::to_string(i) + " (word " + IndexString({row, col}) + " field " +
             std::to_string(field) + "): q reads " + std::to_string(got) + ", expected " + std::to_string(expected) +
             " (input " + std::to_string(input) + ")";
    });
  }

  const TensorCheckContext& c_;
  const OutputTensor& t_;
  const TensorInfo& actual_;
  const CheckedBytes bytes_;
  const LinearGeometry& g_;
  Differences differences_;
  Field f_{};
  bool awq_ = false;
  const uint8_t* words_ = nullptr;
};

}  // namespace

TensorVerdict CheckQWeight(const TensorCheckContext& context, const OutputTensor& expected, const TensorInfo& actual,
                           const CheckedBytes& bytes) {
  return QWeightChecker(context, expected, actual, bytes).Run();
}

}  // namespace ms2vllm
