// Rows moved between a file stride and a padded memory pitch with vectored calls: every byte
// lands at its place, the bytes between file rows are dropped, the padding of memory rows is
// never written, and a transfer that moves only part of what it was given is resumed.
#include "io/strided_rows.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tests/test_support.h"

namespace ms2vllm {
namespace {

using testing::TempDir;

constexpr uint8_t kUntouched = 0xEE;

// A file whose byte i is (i * 7 + i / 251) mod 256: no two neighbouring rows look alike.
std::vector<uint8_t> Pattern(size_t size) {
  std::vector<uint8_t> bytes(size);
  for (size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(i * 7 + i / 251);
  return bytes;
}

class Fd {
 public:
  Fd(const std::filesystem::path& path, int flags) : fd_(::open(path.c_str(), flags | O_CLOEXEC, 0644)) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

void WriteFile(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  Fd fd(path, O_WRONLY | O_CREAT | O_TRUNC);
  ASSERT_GE(fd.get(), 0);
  ASSERT_EQ(::pwrite(fd.get(), bytes.data(), bytes.size(), 0), static_cast<ssize_t>(bytes.size()));
}

// preadv / pwritev that move at most 37 bytes a call, cutting rows and gaps anywhere.
constexpr size_t kShortLimit = 37;
std::vector<iovec> Truncated(const iovec* parts, int count) {
  std::vector<iovec> kept;
  size_t left = kShortLimit;
  for (int i = 0; i < count && left > 0; ++i) {
    kept.push_back({parts[i].iov_base, std::min(parts[i].iov_len, left)});
    left -= kept.back().iov_len;
  }
  return kept;
}
ssize_t ShortPreadv(int fd, const iovec* parts, int count, off_t offset) {
  const std::vector<iovec> kept = Truncated(parts, count);
  return ::preadv(fd, kept.data(), static_cast<int>(kept.size()), offset);
}
ssize_t ShortPwritev(int fd, const iovec* parts, int count, off_t offset) {
  const std::vector<iovec> kept = Truncated(parts, count);
  return ::pwritev(fd, kept.data(), static_cast<int>(kept.size()), offset);
}

// Reads `rows` from a patterned file with `transfer` and checks every row and every pad byte.
// The file goes on 100 bytes past the last row's stride, or with `ends_at_last_row` ends there.
void CheckRead(const StridedRows& rows, VectoredTransfer transfer, bool ends_at_last_row = false) {
  TempDir dir;
  const uint64_t last_row_end = rows.file_offset + (rows.count - 1) * rows.file_stride + rows.row_bytes;
  const std::vector<uint8_t> file =
      Pattern(ends_at_last_row ? last_row_end : rows.file_offset + rows.count * rows.file_stride + 100);
  WriteFile(dir / "in", file);
  Fd fd(dir / "in", O_RDONLY);
  std::vector<uint8_t> memory(rows.count * rows.pitch, kUntouched);
  std::vector<uint8_t> gap(rows.file_stride - rows.row_bytes);
  ASSERT_EQ(TransferRows(fd.get(), transfer, rows, memory.data(), gap.data()), 0);
  for (uint64_t r = 0; r < rows.count; ++r) {
    for (uint64_t b = 0; b < rows.pitch; ++b) {
      const uint8_t want = b < rows.row_bytes ? file[rows.file_offset + r * rows.file_stride + b] : kUntouched;
      ASSERT_EQ(memory[r * rows.pitch + b], want) << "row " << r << " byte " << b;
    }
  }
}

TEST(StridedRowsTest, ReadsRowsWithGapsIntoAPaddedPitch) {
  CheckRead({13, 100, 60, 40, 64}, &::preadv);
}

TEST(StridedRowsTest, ReadsRowsBackToBackInOnePiece) {
  CheckRead({5, 48, 48, 30, 48}, &::preadv);
}

TEST(StridedRowsTest, ReadsMoreRowsThanOneCallTakes) {
  CheckRead({0, 5, 3, 3000, 8}, &::preadv);  // 5999 pieces: several IOV_MAX batches
}

TEST(StridedRowsTest, ResumesShortReadsInsideRowsAndGaps) {
  CheckRead({13, 100, 60, 40, 64}, &ShortPreadv);
  CheckRead({0, 48, 48, 30, 48}, &ShortPreadv);
}

// A tensor's last row may be the last bytes of the file: the gap after it is not read, and
// is no reason to find the file short.
TEST(StridedRowsTest, ReadsAFileThatEndsWithTheLastRow) {
  CheckRead({13, 100, 60, 40, 64}, &::preadv, true);
  CheckRead({13, 100, 60, 40, 64}, &ShortPreadv, true);
}

TEST(StridedRowsTest, WritesPaddedRowsBackToBackAndResumesShortWrites) {
  for (const VectoredTransfer transfer : {VectoredTransfer{&::pwritev}, VectoredTransfer{&ShortPwritev}}) {
    TempDir dir;
    const StridedRows rows{10, 60, 60, 40, 64};
    const std::vector<uint8_t> memory = Pattern(rows.count * rows.pitch);
    Fd fd(dir / "out", O_RDWR | O_CREAT);
    ASSERT_EQ(TransferRows(fd.get(), transfer, rows, const_cast<uint8_t*>(memory.data()), nullptr), 0);
    std::vector<uint8_t> file(rows.file_offset + rows.count * rows.row_bytes);
    ASSERT_EQ(::pread(fd.get(), file.data(), file.size(), 0), static_cast<ssize_t>(file.size()));
    for (uint64_t r = 0; r < rows.count; ++r) {
      for (uint64_t b = 0; b < rows.row_bytes; ++b) {
        ASSERT_EQ(file[rows.file_offset + r * rows.row_bytes + b], memory[r * rows.pitch + b]) << "row " << r;
      }
    }
  }
}

TEST(StridedRowsTest, AFileEndingEarlyIsReported) {
  TempDir dir;
  WriteFile(dir / "in", Pattern(500));
  Fd fd(dir / "in", O_RDONLY);
  std::vector<uint8_t> memory(10 * 64), gap(40);
  EXPECT_EQ(TransferRows(fd.get(), &::preadv, {0, 100, 60, 10, 64}, memory.data(), gap.data()), -1);
}

TEST(StridedRowsTest, ErrorsComeBackAsErrno) {
  std::vector<uint8_t> memory(64);
  EXPECT_EQ(TransferRows(-1, &::preadv, {0, 64, 64, 1, 64}, memory.data(), nullptr), EBADF);
}

}  // namespace
}  // namespace ms2vllm
