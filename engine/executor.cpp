#include "engine/executor.h"

#include <tbb/enumerable_thread_specific.h>
#include <tbb/info.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <unistd.h>

#include <cerrno>
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

// The parallel stage: one tile, start to finish, on whichever thread runs it.
class TileWorker {
 public:
  TileWorker(const Plan& plan, const Layout& layout, const Checkpoint* checkpoint, std::span<OutputFile> outputs,
             const kernels::KernelTable& kernels)
      : plan_(plan), layout_(layout), checkpoint_(checkpoint), outputs_(outputs), kernels_(kernels) {}

  // Called by the serial front as it hands out a tile: the disk starts reading the tile's input
  // while the tiles ahead of it are being converted.
  void ReadAhead(const Tile& tile) const {
    const OutputTensor& tensor = plan_.tensors[tile.tensor];
    if (tensor.source == nullptr) return;
    const InputRange range = InputOf(tensor, tile);
    range.file->WillNeed(range.offset, range.size);
  }

  uint64_t Process(const Tile& tile, std::vector<uint8_t>& scratch) {
    const OutputTensor& tensor = plan_.tensors[tile.tensor];
    const TensorPlacement& place = layout_.placements[tile.tensor];
    OutputFile& output = outputs_[place.file];
    if (tensor.source == nullptr) return Run(tensor, tile, nullptr, output, place.offset, scratch);
    const InputRange range = InputOf(tensor, tile);
    uint64_t clamped = 0;
    if (tensor.kind != TransformKind::kCopy || !CopyInKernel(tensor, tile, output, place.offset)) {
      range.file->Prefault(range.offset, range.size);
      clamped = Run(tensor, tile, checkpoint_->Bytes(*tensor.source).data(), output, place.offset, scratch);
    }
    range.file->Release(range.offset, range.size);
    return clamped;
  }

 private:
  // Unchanged tensors move file to file inside the kernel: no page faults, no user copy.
  bool CopyInKernel(const OutputTensor& tensor, const Tile& tile, OutputFile& output, uint64_t tensor_offset) {
    if (!copy_file_range_works_.load(std::memory_order_relaxed)) return false;
    const MappedFile& input = checkpoint_->shard(tensor.source->shard);
    loff_t in = static_cast<loff_t>(tensor.source->file_offset + tile.row_begin);
    loff_t out = static_cast<loff_t>(tensor_offset + tile.row_begin);
    size_t left = tile.row_end - tile.row_begin;
    while (left > 0) {
      const ssize_t n = ::copy_file_range(input.fd(), &in, output.fd(), &out, left, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {  // e.g. EXDEV across file systems: fall back to copying through the mappings
        copy_file_range_works_.store(false, std::memory_order_relaxed);
        return false;  // the memcpy path rewrites the whole tile, including what was copied
      }
      left -= static_cast<size_t>(n);
    }
    return true;
  }

  // The input bytes a tile reads, absolute in their shard.
  struct InputRange {
    const MappedFile* file;
    uint64_t offset, size;
  };
  InputRange InputOf(const OutputTensor& tensor, const Tile& tile) const {
    const ByteSpan span = SourceSpan(tensor, tile);
    return {&checkpoint_->shard(tensor.source->shard), tensor.source->file_offset + span.offset, span.size};
  }

  uint64_t Run(const OutputTensor& tensor, const Tile& tile, const uint8_t* source, OutputFile& output,
               uint64_t tensor_offset, std::vector<uint8_t>& scratch) {
    // One call per range maps every page, instead of one fault per page (costly under a hypervisor).
    if (tile.first_in_band) output.Prepare(tile.band_offset, tile.band_size);
    return RunTile(plan_, tensor, tile, source, output.data() + tensor_offset, kernels_, scratch);
  }

  const Plan& plan_;
  const Layout& layout_;
  const Checkpoint* checkpoint_;
  std::span<OutputFile> outputs_;
  const kernels::KernelTable& kernels_;
  std::atomic<bool> copy_file_range_works_{true};
};

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
  TileWorker worker(plan, layout, checkpoint, outputs, kernels);
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
                                       if (!cursor.Next(tile)) {
                                         control.stop();
                                         return tile;
                                       }
                                       worker.ReadAhead(tile);
                                       return tile;
                                     }) &
            tbb::make_filter<Tile, Done>(tbb::filter_mode::parallel,
                                         [&](const Tile& tile) -> Done {
                                           return {tile, worker.Process(tile, scratch.local())};
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
