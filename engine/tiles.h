// Cuts the plan into tiles: units of work of about `chunk_bytes` that can run in any order
// on any thread, each writing a disjoint part of the output at its final offset.
#pragma once

#include <cstdint>

#include "engine/layout.h"
#include "engine/plan.h"

namespace ms2vllm {

struct Tile {
  size_t tensor = 0;  // plan index
  // Matrix transforms: source rows [row_begin, row_end) x columns [col_begin, col_end), in
  // unpacked element coordinates. Byte transforms (copy, constant, synthetic): output bytes
  // [row_begin, row_end) of the tensor; the columns are unused.
  uint64_t row_begin = 0, row_end = 0, col_begin = 0, col_end = 0;
  // Output range of the band this tile belongs to (byte tiles: the tile's own range), absolute
  // in the tensor's file. The band is complete once its last tile and every tile before it are done.
  bool first_in_band = false, last_in_band = false;
  uint64_t band_offset = 0, band_size = 0;
  uint64_t progress_bytes = 0;  // input bytes this tile accounts for
  bool last_of_tensor = false;  // with every tile before it done, the tensor's input is consumed
};

bool IsByteTransform(TransformKind kind);

// Yields the tiles of every tensor in output file order. Within a matrix tensor, columns are
// cut into bands of at most `band_bytes` of output (each band's output is one contiguous range,
// retired when the band is done) and each band into row tiles of about `chunk_bytes` of input.
class TileCursor {
 public:
  TileCursor(const Plan& plan, const Layout& layout, uint64_t chunk_bytes, uint64_t band_bytes);
  bool Next(Tile& tile);

 private:
  void StartTensor();
  bool NextByteTile(Tile& tile);
  bool NextMatrixTile(Tile& tile);

  const Plan& plan_;
  const Layout& layout_;
  const uint64_t chunk_bytes_;
  const uint64_t band_bytes_;
  size_t file_ = 0, position_ = 0;  // tensor `position_` of file `file_`
  bool started_ = false;
  // Current tensor's cutting.
  uint64_t rows_ = 0, cols_ = 0, row_step_ = 0, band_cols_ = 0;
  uint64_t band_begin_ = 0, row_ = 0, byte_ = 0;
};

}  // namespace ms2vllm
