// Executes one tile: reads its source block and writes its output block at final offsets.
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
// output), so a kernel's offsets in the tensor become addresses in the buffer.
template <typename Byte>
struct TensorWindow {
  Byte* data = nullptr;
  uint64_t first = 0;  // offset in the tensor of data[0]
  Byte* At(uint64_t tensor_offset) const { return data + (tensor_offset - first); }
};
using InputWindow = TensorWindow<const uint8_t>;
using OutputWindow = TensorWindow<uint8_t>;

// Runs every transform but kCopy, which the executor copies file to file. `source` holds at
// least the tile's SourceSpan (unused for kGenerate and constants).
// `scratch` is the calling thread's own buffer. Returns how many values were clamped.
uint64_t RunTile(const Plan& plan, const OutputTensor& tensor, const Tile& tile, const InputWindow& source,
                 const OutputWindow& output, const kernels::KernelTable& kernels, AlignedBuffer& scratch);

}  // namespace ms2vllm
