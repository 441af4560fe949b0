// Checks, before anything is written, the scales a --scales-dtype cast changes by more than
// rounding: values that become infinite or 0 in float16 or bfloat16, and scales that were never
// finite.
// Only casts are scanned, unless `kept_too`: by default every scale keeps its bytes, as the script
// writes them, and the run counts the non-finite ones as it moves them (tile_runner.cpp); a
// --dry-run, which moves nothing, scans them here instead.
#pragma once

#include <atomic>

#include "engine/plan.h"
#include "io/checkpoint.h"

namespace ms2vllm {

// Adds a warning per kind of loss, counting values and naming tensors. `cancel` (the interrupt
// flag, may be null) is checked per tensor.
Status ScanScaleCasts(const Plan& plan, const Checkpoint& checkpoint, Warnings& warnings,
                      const std::atomic<bool>* cancel = nullptr, bool kept_too = false);

}  // namespace ms2vllm
