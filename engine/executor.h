// Runs the tiles of a plan through a oneTBB pipeline: a serial front hands out tiles in
// order, kernels run in parallel and assemble each output band in a reused buffer (unchanged
// tensors go file to file), and a serial in-order back writes each finished band at its final
// offset and starts its writeback. A bounded number of tiles, hence of bands, is alive at once,
// and input pages are released behind the kernels, so resident memory does not grow with the model.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include "engine/layout.h"
#include "engine/plan.h"
#include "io/checkpoint.h"
#include "io/output_file.h"
#include "kernels/kernels.h"

namespace ms2vllm {

struct ExecutionSettings {
  int threads = 0;                        // 0: every core
  uint64_t chunk_bytes = 4ull << 20;      // input bytes per tile
  uint64_t band_bytes = 64ull << 20;      // output bytes per column band of a weight (7b/70b q,k,v,o whole)
  const kernels::KernelTable* kernels = nullptr;  // nullptr: the best for this CPU
  bool pad_every_row = false;  // tests: pad the rows of every weight tile and band, not only those that need it
  const std::atomic<bool>* cancel = nullptr;      // set by a signal handler
  std::atomic<uint64_t>* progress = nullptr;        // bytes done, for a progress bar
  std::atomic<uint64_t>* progress_total = nullptr;  // set to the bytes `progress` will reach
};

struct ExecutionReport {
  Warnings warnings;  // clamped weight values
};

// Threads to run with for a --threads value (0: every core). Capped at every core: TBB runs no
// more workers than that anyway, and warns on stderr when asked to.
int WorkerThreads(int requested);

// `checkpoint` may be null when every tensor is synthetic (kGenerate or constant).
Result<ExecutionReport> Execute(const Plan& plan, const Layout& layout, const Checkpoint* checkpoint,
                                std::span<OutputFile> outputs, const ExecutionSettings& settings);

}  // namespace ms2vllm
