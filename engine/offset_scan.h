// Checks every weight_offset before anything is written: offsets the layout cannot hold
// exactly are refused up front instead of after minutes of conversion.
#pragma once

#include <atomic>

#include "engine/plan.h"
#include "io/checkpoint.h"

namespace ms2vllm {

struct OffsetScan {
  bool all_zero = true;  // every offset is 0 (symmetric quantization)
};

// Errors: offsets that are not finite or not integral; under GPTQ v1, a zero point of 0
// (offset -2^(b-1)), which v1 cannot store. Warns about offsets clamped to the signed range.
// `cancel` (the interrupt flag, may be null) is checked per tensor.
Result<OffsetScan> ScanOffsets(const Plan& plan, const Checkpoint& checkpoint, Warnings& warnings,
                               const std::atomic<bool>* cancel = nullptr);

}  // namespace ms2vllm
