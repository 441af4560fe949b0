#include "io/strided_rows.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <vector>

namespace ms2vllm {

int TransferRows(int fd, VectoredTransfer transfer, const StridedRows& rows, uint8_t* memory, uint8_t* gap) {
  if (rows.count == 0 || rows.row_bytes == 0) return 0;
  const uint64_t gap_bytes = rows.file_stride - rows.row_bytes;
  // Per call, not thread_local: glibc aborts the process when it cannot register a thread_local
  // destructor for want of memory. One allocation per tile is nothing beside its read or write.
  std::vector<iovec> parts;
  parts.reserve(gap_bytes == 0 ? rows.count : 2 * rows.count);
  if (gap_bytes == 0 && rows.pitch == rows.row_bytes) {  // back to back on both sides: one piece
    parts.push_back({memory, rows.count * rows.row_bytes});
  } else {
    for (uint64_t k = 0; k < rows.count; ++k) {
      parts.push_back({memory + k * rows.pitch, rows.row_bytes});
      if (gap_bytes > 0 && k + 1 < rows.count) parts.push_back({gap, gap_bytes});
    }
  }
  auto offset = static_cast<off_t>(rows.file_offset);
  size_t next = 0;
  while (next < parts.size()) {
    const int batch = static_cast<int>(std::min<size_t>(parts.size() - next, IOV_MAX));
    ssize_t moved = transfer(fd, &parts[next], batch, offset);
    if (moved < 0 && errno == EINTR) continue;
    if (moved < 0) return errno;
    if (moved == 0) return -1;
    offset += moved;
    while (moved > 0) {  // drop what moved; a part moved in half keeps its rest
      iovec& part = parts[next];
      const auto step = std::min<size_t>(static_cast<size_t>(moved), part.iov_len);
      part.iov_base = static_cast<uint8_t*>(part.iov_base) + step;
      part.iov_len -= step;
      moved -= static_cast<ssize_t>(step);
      if (part.iov_len == 0) ++next;
    }
  }
  return 0;
}

}  // namespace ms2vllm
