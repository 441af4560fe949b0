// Counts the weight values a conversion would clamp to the signed range of the plan's bit width,
// without converting: for inspect, which otherwise reads only headers, scales and offsets. 8-bit
// weights labelled W4A16 clamp by the thousand and give an unusable output.
#pragma once

#include <cstdint>

#include "engine/plan.h"
#include "io/checkpoint.h"

namespace ms2vllm {

// Adds the conversion's warnings (AddClampedWeights), naming the input weights. Only unpacked
// 4-bit weights are read: a packed nibble always fits, and so does any I8 value under 8 bits.
// Each is read in `chunk_bytes` pieces with pread (as the offset scan reads), so memory stays
// bounded and no page stays mapped; the cost is one pass over those weights' bytes.
Status ScanWeightRange(const Plan& plan, const Checkpoint& checkpoint, Warnings& warnings,
                       uint64_t chunk_bytes = 4ull << 20);

}  // namespace ms2vllm
