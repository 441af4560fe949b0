#include "engine/tiles.h"

#include <algorithm>
#include <numeric>

namespace ms2vllm {
namespace {

uint64_t RoundDown(uint64_t value, uint64_t multiple) { return value / multiple * multiple; }

constexpr uint64_t kLineAlignedRows = 128;

// Row and column multiples a tile must respect so its kernel sees whole words and whole
// packed bytes.
struct Alignment {
  uint64_t rows = 1, cols = 1;
};

Alignment AlignmentOf(const Plan& plan, const OutputTensor& tensor) {
  const uint64_t per_word = 32 / plan.bits;
  Alignment a;
  switch (tensor.kind) {
    case TransformKind::kQWeight:
      if (plan.target == TargetTool::kAwq) a.rows = 8; else a.cols = per_word;
      if (tensor.geometry.packing == LinearGeometry::Packing::kPairsAlongOut) a.rows = std::lcm(a.rows, uint64_t{2});
      if (tensor.geometry.packing == LinearGeometry::Packing::kPairsAlongIn) a.cols = std::lcm(a.cols, uint64_t{2});
      break;
    case TransformKind::kQZeros: a.rows = per_word; break;
    default: break;
  }
  return a;
}

// Output bytes one source column turns into (for band sizing).
uint64_t OutputBytesPerColumn(const OutputTensor& tensor, uint64_t cols) {
  return std::max<uint64_t>(1, tensor.byte_size() / std::max<uint64_t>(1, cols));
}

}  // namespace

bool IsByteTransform(TransformKind kind) {
  return kind == TransformKind::kCopy || kind == TransformKind::kQZerosConstant || kind == TransformKind::kGenerate;
}

TileCursor::TileCursor(const Plan& plan, const Layout& layout, uint64_t chunk_bytes, uint64_t band_bytes)
    : plan_(plan), layout_(layout), chunk_bytes_(std::max<uint64_t>(RoundDown(chunk_bytes, 64), 64)), band_bytes_(band_bytes) {}

void TileCursor::StartTensor() {
  const OutputTensor& tensor = plan_.tensors[layout_.files[file_].tensors[position_]];
  started_ = true;
  byte_ = 0;
  row_ = 0;
  band_begin_ = 0;
  if (IsByteTransform(tensor.kind)) return;
  const Alignment align = AlignmentOf(plan_, tensor);
  rows_ = tensor.geometry.out;
  cols_ = tensor.kind == TransformKind::kQWeight ? tensor.geometry.in : tensor.geometry.groups;
  // Scales and zeros are small: one band. Weights: bands of whole output rows.
  band_cols_ = cols_;
  if (tensor.kind == TransformKind::kQWeight) {
    const uint64_t fit = RoundDown(band_bytes_ / OutputBytesPerColumn(tensor, cols_), align.cols);
    band_cols_ = std::clamp<uint64_t>(fit, align.cols, cols_);
  }
  const uint64_t input_bytes_per_row = std::max<uint64_t>(1, band_cols_ * DTypeSize(tensor.source ? tensor.source->dtype : DType::kI8));
  // Tiles start every 128 rows when a chunk holds that many, so the kernels' 16-word stores
  // (16 rows across for GPTQ, 16 groups of 8 for AWQ) start on a cache line of an aligned band.
  const uint64_t fit = chunk_bytes_ / input_bytes_per_row;
  const uint64_t multiple = fit >= kLineAlignedRows ? std::lcm(align.rows, kLineAlignedRows) : align.rows;
  row_step_ = std::max(align.rows, RoundDown(fit, multiple));
}

bool TileCursor::Next(Tile& tile) {
  while (file_ < layout_.files.size()) {
    const auto& file = layout_.files[file_];
    if (position_ >= file.tensors.size()) {
      ++file_;
      position_ = 0;
      continue;
    }
    if (!started_) StartTensor();
    const OutputTensor& tensor = plan_.tensors[file.tensors[position_]];
    const bool produced = IsByteTransform(tensor.kind) ? NextByteTile(tile) : NextMatrixTile(tile);
    if (produced) return true;
    ++position_;
    started_ = false;
  }
  return false;
}

bool TileCursor::NextByteTile(Tile& tile) {
  const size_t index = layout_.files[file_].tensors[position_];
  const OutputTensor& tensor = plan_.tensors[index];
  const uint64_t size = tensor.byte_size();
  if (byte_ >= size) return false;
  const uint64_t end = std::min(size, byte_ + chunk_bytes_);
  tile = Tile{};
  tile.tensor = index;
  tile.row_begin = byte_;
  tile.row_end = end;
  tile.first_in_band = tile.last_in_band = true;
  tile.band_offset = layout_.placements[index].offset + byte_;
  tile.band_size = end - byte_;
  tile.progress_bytes = tensor.kind == TransformKind::kQZerosConstant ? 0 : end - byte_;
  tile.last_of_tensor = end == size;
  byte_ = end;
  return true;
}

bool TileCursor::NextMatrixTile(Tile& tile) {
  const size_t index = layout_.files[file_].tensors[position_];
  const OutputTensor& tensor = plan_.tensors[index];
  if (row_ >= rows_) {
    band_begin_ += band_cols_;
    row_ = 0;
  }
  if (band_begin_ >= cols_) return false;
  const uint64_t band_end = std::min(cols_, band_begin_ + band_cols_);
  const uint64_t row_end = std::min(rows_, row_ + row_step_);
  tile = Tile{};
  tile.tensor = index;
  tile.row_begin = row_;
  tile.row_end = row_end;
  tile.col_begin = band_begin_;
  tile.col_end = band_end;
  const uint64_t per_column = tensor.byte_size() / cols_;
  tile.first_in_band = row_ == 0;
  tile.last_in_band = row_end == rows_;
  tile.band_offset = layout_.placements[index].offset + band_begin_ * per_column;
  tile.band_size = (band_end - band_begin_) * per_column;
  const uint64_t source_bytes = tensor.source ? tensor.source->byte_size : 0;
  tile.progress_bytes = source_bytes * (row_end - row_) / rows_ * (band_end - band_begin_) / cols_;
  tile.last_of_tensor = row_end == rows_ && band_end == cols_;
  row_ = row_end;
  return true;
}

}  // namespace ms2vllm
