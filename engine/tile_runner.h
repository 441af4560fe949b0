// Transforms one tile between buffers: its source rows, already read by the executor, into its
// part of the output band the executor writes (unpack, kernel, scale cast).
#pragma once

#include <cstdint>

#include "engine/aligned_buffer.h"
#include "engine/plan.h"
#include "engine/tiles.h"
#include "kernels/kernels.h"

namespace ms2vllm {

struct ByteSpan {
  uint64_t offset = 0;  // from the start of the tensor
  uint64_t size = 0;
};

// The source bytes a tile reads (one contiguous span covering them), to release afterwards.
ByteSpan SourceSpan(const OutputTensor& tensor, const Tile& tile);

// A buffer holding a tensor's bytes from offset `first` on (a tile's input, or its band's
// output), so a kernel's offsets in the tensor become addresses in the buffer. The bytes lie
// back to back, or (row_bytes > 0) as rows of the tensor's row_bytes each `pitch` apart: a
// block of rows [first's row, ...) x columns [first's column, ...), padded so that its rows do
// not all fall in the same cache sets (see PaddedPitch).
template <typename Byte>
struct TensorWindow {
  Byte* data = nullptr;
  uint64_t first = 0;  // offset in the tensor of data[0]
  uint64_t row_bytes = 0;
  uint64_t pitch = 0;

  Byte* At(uint64_t tensor_offset) const {
    if (row_bytes == 0) return data + (tensor_offset - first);
    return data + (tensor_offset / row_bytes - first / row_bytes) * pitch + tensor_offset % row_bytes -
           first % row_bytes;
  }
  // The distance between consecutive rows of `tensor_row_bytes` (the tensor's own row length).
  uint64_t RowStride(uint64_t tensor_row_bytes) const { return row_bytes == 0 ? tensor_row_bytes : pitch; }
};
using InputWindow = TensorWindow<const uint8_t>;
using OutputWindow = TensorWindow<uint8_t>;

// The length of a row of a quantized weight's output (AWQ [in][out/8], GPTQ [in/p][out] words):
// a band of it is whole rows.
uint64_t QWeightRowBytes(const Plan& plan, const OutputTensor& tensor);

// Runs every transform but kCopy, which the executor copies file to file. `source` holds at
// least the tile's SourceSpan (unused for kGenerate and constants).
// `scratch` is the calling thread's own buffer. Returns how many values it flags: weights clamped
// (kQWeight), or scales NaN or infinite (kScales, uncast).
uint64_t RunTile(const Plan& plan, const OutputTensor& tensor, const Tile& tile, const InputWindow& source,
                 const OutputWindow& output, const kernels::KernelTable& kernels, AlignedBuffer& scratch);

}  // namespace ms2vllm
