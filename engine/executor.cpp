#include "engine/executor.h"

#include <tbb/enumerable_thread_specific.h>
#include <tbb/info.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <cstring>
#include <thread>
#include <vector>

#include "engine/tile_runner.h"
#include "engine/tiles.h"

namespace ms2vllm {
namespace {

constexpr size_t kTokensPerThread = 4;  // enough to keep every core busy, few enough to bound memory

// What the tiles' progress_bytes add up to: source bytes read, or bytes generated.
uint64_t ProgressTotal(const Plan& plan) {
  uint64_t total = 0;
  for (const auto& tensor : plan.tensors) {
    if (tensor.source) total += tensor.source->byte_size;
    if (tensor.kind == TransformKind::kGenerate) total += tensor.byte_size();
  }
  return total;
}

}  // namespace

Result<ExecutionReport> Execute(const Plan& plan, const Layout& layout, const Checkpoint* checkpoint,
                                std::span<OutputFile> outputs, const ExecutionSettings& settings) {
  const kernels::KernelTable& kernels = settings.kernels ? *settings.kernels : *kernels::SelectKernels("");
  const int threads = settings.threads > 0 ? settings.threads : tbb::info::default_concurrency();

  // Headers first: the output files are complete as soon as the tiles are done.
  for (size_t f = 0; f < layout.files.size(); ++f) {
    const auto& file = layout.files[f];
    const uint64_t header_size = file.header.size();
    std::memcpy(outputs[f].data(), &header_size, 8);
    std::memcpy(outputs[f].data() + 8, file.header.data(), header_size);
  }

  if (settings.progress_total) settings.progress_total->store(ProgressTotal(plan));
  std::vector<uint64_t> clamped(plan.tensors.size(), 0);
  tbb::enumerable_thread_specific<std::vector<uint8_t>> scratch;
  TileCursor cursor(plan, layout, settings.chunk_bytes, settings.band_bytes);
  bool cancelled = false;

  struct Done {
    Tile tile;
    uint64_t clamped;
  };

  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::parallel_pipeline(
        static_cast<size_t>(threads) * kTokensPerThread,
        tbb::make_filter<void, Tile>(tbb::filter_mode::serial_in_order,
                                     [&](tbb::flow_control& control) -> Tile {
                                       Tile tile;
                                       if (settings.cancel && settings.cancel->load(std::memory_order_relaxed)) {
                                         cancelled = true;
                                         control.stop();
                                         return tile;
                                       }
                                       if (!cursor.Next(tile)) control.stop();
                                       return tile;
                                     }) &
            tbb::make_filter<Tile, Done>(
                tbb::filter_mode::parallel,
                [&](const Tile& tile) -> Done {
                  const OutputTensor& tensor = plan.tensors[tile.tensor];
                  const TensorPlacement& place = layout.placements[tile.tensor];
                  const uint8_t* source = nullptr;
                  if (tensor.source != nullptr) source = checkpoint->Bytes(*tensor.source).data();
                  const uint64_t count = RunTile(plan, tensor, tile, source, outputs[place.file].data() + place.offset,
                                                 kernels, scratch.local());
                  if (tensor.source != nullptr) {
                    const ByteSpan span = SourceSpan(plan, tensor, tile);
                    checkpoint->shard(tensor.source->shard).Release(tensor.source->file_offset + span.offset, span.size);
                  }
                  return {tile, count};
                }) &
            tbb::make_filter<Done, void>(tbb::filter_mode::serial_in_order, [&](const Done& done) {
              clamped[done.tile.tensor] += done.clamped;
              if (done.tile.retire_size) {
                outputs[done.tile.retire_file].Retire(done.tile.retire_offset, done.tile.retire_size);
              }
              if (settings.progress) settings.progress->fetch_add(done.tile.progress_bytes, std::memory_order_relaxed);
            }));
  });
  if (cancelled) return MakeError(ErrorCode::kInterrupted, "interrupted");

  ExecutionReport report;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    if (clamped[i]) report.warnings.Add(WarningKind::kClampedWeights, plan.tensors[i].name, clamped[i]);
  }
  return report;
}

}  // namespace ms2vllm
