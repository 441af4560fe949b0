// Executes one tile: reads its source block and writes its output block at final offsets.
#pragma once

#include <cstdint>
#include <vector>

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

// `source` points at the tensor's first input byte (null for kGenerate and constants),
// `output` at its first output byte. `scratch` is the calling thread's own buffer.
// Returns how many values were clamped.
uint64_t RunTile(const Plan& plan, const OutputTensor& tensor, const Tile& tile, const uint8_t* source,
                 uint8_t* output, const kernels::KernelTable& kernels, std::vector<uint8_t>& scratch);

}  // namespace ms2vllm
