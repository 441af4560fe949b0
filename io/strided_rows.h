// Rows of a matrix that lie at one stride in a file and at another (a padded pitch) in memory,
// moved with one vectored call (preadv/pwritev) per IOV_MAX pieces instead of one per row.
#pragma once

#include <sys/uio.h>

#include <cstdint>

namespace ms2vllm {

struct StridedRows {
  uint64_t file_offset = 0;  // the first row's first byte in the file
  uint64_t file_stride = 0;  // from one row to the next in the file (>= row_bytes)
  uint64_t row_bytes = 0;
  uint64_t count = 0;
  uint64_t pitch = 0;  // from one row to the next in memory (>= row_bytes)
};

// preadv or pwritev.
using VectoredTransfer = ssize_t (*)(int fd, const iovec* parts, int count, off_t offset);

// Moves every row between `fd` and `memory`, resuming after short transfers. The file bytes
// between rows (file_stride > row_bytes, reads only) go to `gap`, which must hold
// file_stride - row_bytes bytes. Returns 0, an errno, or -1 when the file ended first.
int TransferRows(int fd, VectoredTransfer transfer, const StridedRows& rows, uint8_t* memory, uint8_t* gap);

}  // namespace ms2vllm
