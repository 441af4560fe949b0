// Reproducible synthetic tensor contents for `ms2vllm synth`: each element is a pure
// function of (seed, element index), so any tile can be generated alone, on any thread.
#pragma once

#include <cstdint>

#include "engine/plan.h"

namespace ms2vllm {

// Fills output bytes [begin, end) of a kGenerate tensor (both multiples of its element size).
void GenerateBytes(const OutputTensor& tensor, uint64_t begin, uint64_t end, uint8_t* dst);

}  // namespace ms2vllm
