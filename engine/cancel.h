// Checks of the interrupt flag (set by the command's signal handlers, tools/cli_support.cpp).
// The executor checks it per tile; the loops before
// it (planning, offsets, layout, synth's tables) check it per tensor or layer, so SIGINT/SIGTERM
// end a run of a million tensors within a fraction of a second in any phase.
#pragma once

#include <atomic>

#include "io/status.h"

namespace ms2vllm {

inline bool Cancelled(const std::atomic<bool>* cancel) { return cancel && cancel->load(std::memory_order_relaxed); }

inline Error Interrupted() { return MakeError(ErrorCode::kInterrupted, "interrupted"); }

}  // namespace ms2vllm
