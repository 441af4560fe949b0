// Checks, before anything is written, the scales a --scales-dtype cast changes by more than
// rounding: values that become infinite or 0 in float16 or bfloat16, and scales that were never
// finite.
// Only casts are scanned: by default every scale keeps its bytes, as the script writes them.
#pragma once

#include <atomic>

#include "engine/plan.h"
#include "io/checkpoint.h"

namespace ms2vllm {

// Adds a warning per kind of loss, counting values and naming tensors. `cancel` (the interrupt
// flag, may be null) is checked per tensor.
Status ScanScaleCasts(const Plan& plan, const Checkpoint& checkpoint, Warnings& warnings,
                      const std::atomic<bool>* cancel = nullptr);

}  // namespace ms2vllm
