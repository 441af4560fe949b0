#include "engine/executor.h"

#include <tbb/enumerable_thread_specific.h>
#include <tbb/info.h>
#include <tbb/parallel_pipeline.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "engine/band_buffers.h"
#include "engine/cancel.h"
#include "engine/tile_runner.h"
#include "engine/tiles.h"
#include "io/range_batch.h"

namespace ms2vllm {
namespace {

constexpr size_t kTokensPerThread = 4;  // enough to keep every core busy, few enough to bound memory

// Rows a multiple of 2 KiB long all start in the same few L1 sets, so the 16 rows a kernel
// reads or writes at once evict each other: in the buffers such rows get one more cache line
// of pitch (the 4096 x 4096 GPTQ 8-bit tile: 31-37% -> 63-78% of memcpy; bench/README.md).
uint64_t PaddedPitch(uint64_t row_bytes, bool always) {
  return always || row_bytes % 2048 == 0 ? row_bytes + 64 : row_bytes;
}

// What the tiles' progress_bytes add up to: source bytes read, or bytes generated.
uint64_t ProgressTotal(const Plan& plan) {
  uint64_t total = 0;
  for (const auto& tensor : plan.tensors) {
    if (tensor.source) total += tensor.source->byte_size;
    if (tensor.kind == TransformKind::kGenerate) total += tensor.byte_size();
  }
  return total;
}

// One output band being assembled: its tiles write into `buffer`, the band's last tile
// writes it to the file.
struct Band {
  BandBuffer buffer;
  OutputWindow window;
};

// A pipeline token.
struct Work {
  Tile tile;
  std::shared_ptr<Band> band;  // null for copies, which go file to file
  uint64_t flagged = 0;         // RunTile's count
};

// The first error any stage met; later ones are consequences.
class FirstError {
 public:
  void Set(Error error) {
    std::lock_guard lock(mutex_);
    if (!error_) error_ = std::move(error);
    failed_.store(true, std::memory_order_relaxed);
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  std::optional<Error> Take() { return std::move(error_); }

 private:
  std::mutex mutex_;
  std::optional<Error> error_;
  std::atomic<bool> failed_{false};
};

class TileWorker {
 public:
  TileWorker(const Plan& plan, const Layout& layout, const Checkpoint* checkpoint, std::span<OutputFile> outputs,
             const kernels::KernelTable& kernels, bool pad_every_row)
      : plan_(plan), layout_(layout), checkpoint_(checkpoint), outputs_(outputs), kernels_(kernels),
        pad_every_row_(pad_every_row) {}

  // The serial front, as it hands out a tile: the disk starts reading the tile's input while
  // the tiles ahead of it are converted, and a band's first tile gets the band's buffer.
  Work Start(const Tile& tile) {
    const OutputTensor& tensor = plan_.tensors[tile.tensor];
    if (tensor.source != nullptr) HintInput(tensor.source->shard, InputOf(tensor, tile));
    if (tensor.kind == TransformKind::kCopy) return {tile, nullptr};
    if (tile.first_in_band) {
      band_ = std::make_shared<Band>();
      band_->window.first = tile.band_offset - layout_.placements[tile.tensor].offset;
      uint64_t bytes = tile.band_size;
      if (tensor.kind == TransformKind::kQWeight) {  // whole output rows: padded if they need it
        const uint64_t row_bytes = QWeightRowBytes(plan_, tensor), pitch = PaddedPitch(row_bytes, pad_every_row_);
        if (pitch != row_bytes) {
          band_->window.row_bytes = row_bytes;
          band_->window.pitch = pitch;
          bytes = tile.band_size / row_bytes * pitch;
        }
      }
      band_->buffer = buffers_.Take(bytes);
      band_->window.data = band_->buffer.data();
    }
    return {tile, band_};
  }

  // The parallel stage: the tile's kernel, on whichever thread runs it. `input` is the calling
  // thread's own buffer.
  void Process(Work& work, AlignedBuffer& input, AlignedBuffer& scratch) {
    const Tile& tile = work.tile;
    const OutputTensor& tensor = plan_.tensors[tile.tensor];
    OutputFile& output = outputs_[layout_.placements[tile.tensor].file];
    if (tensor.source == nullptr) {
      work.flagged = RunTile(plan_, tensor, tile, {}, work.band->window, kernels_, scratch);
      return;
    }
    const InputRange range = InputOf(tensor, tile);
    if (work.band == nullptr) {  // an unchanged tensor
      Status copied = output.CopyFrom(*range.file, range.offset, tile.band_offset, range.size);
      if (!copied.ok()) errors_.Set(std::move(copied.error()));
      return;
    }
    const bool read = ReadIsCompact(tensor, tile);
    InputWindow window{checkpoint_->Bytes(*tensor.source).data(), 0};
    if (read && IsPlainWeight(tensor)) {  // the band's columns of each row, padded if they need it
      const uint64_t cols = tile.col_end - tile.col_begin, pitch = PaddedPitch(cols, pad_every_row_);
      window = {input.Reserve((tile.row_end - tile.row_begin) * pitch), range.offset - tensor.source->file_offset,
                tensor.geometry.in, pitch};
      const StridedRows rows{range.offset, tensor.geometry.in, cols, tile.row_end - tile.row_begin, pitch};
      Status done = range.file->ReadRows(rows, input.data());
      if (!done.ok()) return errors_.Set(std::move(done.error()));
    } else if (read) {  // the span is mostly what the tile needs: read it
      Status done = range.file->Read(range.offset, {input.Reserve(range.size), range.size});
      if (!done.ok()) return errors_.Set(std::move(done.error()));
      window = {input.data(), range.offset - tensor.source->file_offset};
    } else {  // a narrow band of columns: its rows are far apart; only their pages are touched
      range.file->Prefault(range.offset, range.size);
    }
    work.flagged = RunTile(plan_, tensor, tile, window, work.band->window, kernels_, scratch);
    if (!read) range.file->Release(range.offset, range.size);
  }

  // The serial back, in tile order: a finished band goes to the file, and its writeback starts.
  void Finish(Work& work) {
    const Tile& tile = work.tile;
    ReleaseConsumedInput(tile);
    if (!tile.last_in_band) return;
    OutputFile& output = outputs_[layout_.placements[tile.tensor].file];
    if (work.band != nullptr) {
      const OutputWindow& band = work.band->window;
      Status written =
          band.row_bytes == 0
              ? output.Write(tile.band_offset, {band.data, tile.band_size})
              : output.WriteRows({tile.band_offset, band.row_bytes, band.row_bytes, tile.band_size / band.row_bytes,
                                  band.pitch},
                                 band.data);
      if (!written.ok()) errors_.Set(std::move(written.error()));
      buffers_.Give(std::move(work.band->buffer));
      work.band.reset();
    }
    output.StartWriteback(tile.band_offset, tile.band_size);
  }

  FirstError& errors() { return errors_; }

 private:
  // Each tile releases its own span, but a fault maps its neighbours too (fault-around) after
  // their tiles may have released them; once a tensor is done, all of its pages go. Small
  // tensors' pages go 16 MB at a time (RangeBatch): a release per tensor cost more than the
  // tensor on a checkpoint of 100k small ones. One batch, flushed when the shard changes, so at
  // most 16 MB more stay mapped.
  void ReleaseConsumedInput(const Tile& tile) {
    const OutputTensor& tensor = plan_.tensors[tile.tensor];
    if (!tile.last_of_tensor || tensor.source == nullptr) return;
    const TensorInfo& source = *tensor.source;
    if (source.byte_size >= kReleaseBatch) {
      checkpoint_->shard(source.shard).Release(source.file_offset, source.byte_size);
      return;
    }
    if (source.shard != released_shard_) {
      const ByteRange pending = small_releases_.Take();
      checkpoint_->shard(released_shard_).Release(pending.offset, pending.size);
      released_shard_ = source.shard;
    }
    if (!small_releases_.Add({source.file_offset, source.byte_size})) return;
    const ByteRange range = small_releases_.Take();
    checkpoint_->shard(source.shard).Release(range.offset, range.size);
  }

  // Whether reading the tile's whole source span costs less than touching its rows through the
  // mapping: pread runs ~3x faster than mapped reads here, so a span at most twice the bytes the
  // tile uses (a band of at least half the columns) is read.
  static bool ReadIsCompact(const OutputTensor& tensor, const Tile& tile) {
    return tensor.kind != TransformKind::kQWeight || 2 * (tile.col_end - tile.col_begin) >= tensor.geometry.in;
  }

  // A quantized weight stored one value per byte, read by its kernel straight from the input
  // buffer (packed ones are unpacked first, from a plain read).
  static bool IsPlainWeight(const OutputTensor& tensor) {
    return tensor.kind == TransformKind::kQWeight && tensor.geometry.packing == LinearGeometry::Packing::kNone;
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

  // Small ranges are hinted 16 MB ahead at a time, not one call per tile (see ReleaseConsumedInput).
  // A few windows per shard: safetensors files group tensors by dtype, and the plan's order goes
  // back and forth between those regions (weight, scale, offset, the next layer's norm...).
  void HintInput(uint32_t shard, const InputRange& range) {
    constexpr uint64_t kAhead = 16ull << 20;
    if (range.size >= kAhead) return range.file->WillNeed(range.offset, range.size);
    if (hinted_.empty()) hinted_.resize(checkpoint_->shard_count());
    HintWindows& windows = hinted_[shard];
    for (const ByteRange& hinted : windows.ranges) {
      if (range.offset >= hinted.offset && range.offset + range.size <= hinted.offset + hinted.size) return;
    }
    ByteRange& oldest = windows.ranges[windows.next++ % windows.ranges.size()];
    oldest = {range.offset, kAhead};
    range.file->WillNeed(oldest.offset, oldest.size);
  }

  const Plan& plan_;
  const Layout& layout_;
  const Checkpoint* checkpoint_;
  std::span<OutputFile> outputs_;
  const kernels::KernelTable& kernels_;
  BandBuffers buffers_;
  bool pad_every_row_;
  std::shared_ptr<Band> band_;  // the band the front is handing out tiles of
  struct HintWindows {
    std::array<ByteRange, 4> ranges{};
    size_t next = 0;
  };
  std::vector<HintWindows> hinted_;         // per shard, the front's latest read-ahead hints
  static constexpr uint64_t kReleaseBatch = 16ull << 20;
  RangeBatch small_releases_{kReleaseBatch};  // of shard released_shard_, for ReleaseConsumedInput
  uint32_t released_shard_ = 0;
  FirstError errors_;
};

}  // namespace

int WorkerThreads(int requested) {
  const int cores = tbb::info::default_concurrency();
  return requested > 0 ? std::min(requested, cores) : cores;
}

Result<ExecutionReport> Execute(const Plan& plan, const Layout& layout, const Checkpoint* checkpoint,
                                std::span<OutputFile> outputs, const ExecutionSettings& settings) {
  const kernels::KernelTable& kernels = settings.kernels ? *settings.kernels : *kernels::SelectKernels("");
  const int threads = WorkerThreads(settings.threads);

  for (size_t f = 0; f < layout.files.size(); ++f) {
    const std::string& header = layout.files[f].header;
    const uint64_t header_size = header.size();
    MS2VLLM_TRY(outputs[f].Write(0, {reinterpret_cast<const uint8_t*>(&header_size), 8}));
    MS2VLLM_TRY(outputs[f].Write(8, {reinterpret_cast<const uint8_t*>(header.data()), header.size()}));
  }

  if (settings.progress_total) settings.progress_total->store(ProgressTotal(plan));
  std::vector<uint64_t> flagged(plan.tensors.size(), 0);
  tbb::enumerable_thread_specific<AlignedBuffer> input, scratch;
  TileWorker worker(plan, layout, checkpoint, outputs, kernels, settings.pad_every_row);
  TileCursor cursor(plan, layout, settings.chunk_bytes, settings.band_bytes);
  bool cancelled = false;

  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::parallel_pipeline(
        static_cast<size_t>(threads) * kTokensPerThread,
        tbb::make_filter<void, Work>(tbb::filter_mode::serial_in_order,
                                     [&](tbb::flow_control& control) -> Work {
                                       Tile tile;
                                       if (Cancelled(settings.cancel)) {
                                         cancelled = true;
                                         control.stop();
                                         return {};
                                       }
                                       if (worker.errors().failed() || !cursor.Next(tile)) {
                                         control.stop();
                                         return {};
                                       }
                                       return worker.Start(tile);
                                     }) &
            tbb::make_filter<Work, Work>(tbb::filter_mode::parallel,
                                         [&](Work work) -> Work {
                                           worker.Process(work, input.local(), scratch.local());
                                           return work;
                                         }) &
            tbb::make_filter<Work, void>(tbb::filter_mode::serial_in_order, [&](Work work) {
              flagged[work.tile.tensor] += work.flagged;
              worker.Finish(work);
              if (settings.progress) settings.progress->fetch_add(work.tile.progress_bytes, std::memory_order_relaxed);
            }));
  });
  if (cancelled) return Interrupted();
  if (auto error = worker.errors().Take()) return *std::move(error);

  ExecutionReport report;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    if (flagged[i] == 0) continue;
    const OutputTensor& tensor = plan.tensors[i];
    if (tensor.kind == TransformKind::kScales) {
      report.warnings.Add(WarningKind::kNonFiniteScales, tensor.source->name, flagged[i]);
    } else {
      AddClampedWeights(report.warnings, tensor.name, flagged[i], tensor.geometry.out * tensor.geometry.in);
    }
  }
  return report;
}

}  // namespace ms2vllm
