// One output file being written: created empty, preallocated, then filled with positioned
// writes (pwrite) and in-kernel copies (copy_file_range) at final offsets.
// It lives at a temp path until its Staging commits it; the Staging removes it otherwise.
//
// Why not a writable mapping: every new page of a MAP_SHARED file mapping is zero-filled by the
// kernel before the kernels overwrite it, then write-protected again for writeback and unmapped
// behind the front. On a qwen2-1.5b conversion that was 35-45% of all cycles; a pwrite of a
// finished band costs one copy into the page cache instead (bench/README.md has the figures).
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>

#include "io/range_batch.h"
#include "io/status.h"
#include "io/strided_rows.h"

namespace ms2vllm {

class MappedFile;

class OutputFile {
 public:
  // Creates `path` (or opens the empty file a Staging made for it) and reserves `size` bytes on
  // disk (fallocate, so a full disk fails here, before any work, on file systems that support it).
  static Result<OutputFile> Create(const std::filesystem::path& path, uint64_t size);

  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  ~OutputFile();

  // Writes `bytes` at `offset`. Safe to call from several threads for disjoint ranges.
  Status Write(uint64_t offset, std::span<const uint8_t> bytes);
  // Writes `rows` (back to back in the file: file_stride == row_bytes) from `from`, where they
  // lie rows.pitch apart, with pwritev. Safe to call from several threads for disjoint ranges.
  Status WriteRows(const StridedRows& rows, const uint8_t* from);
  // Copies `size` bytes of `input` from `input_offset` to `offset`: file to file inside the
  // kernel (copy_file_range) where the file systems allow, else a write from the mapping.
  Status CopyFrom(const MappedFile& input, uint64_t input_offset, uint64_t offset, uint64_t size);
  // Starts writeback of finished ranges, so the disk writes while the conversion goes on rather
  // than all at the final fsync: once 8 MB have gathered (RangeBatch), in one call. Called from
  // one thread at a time.
  void StartWriteback(uint64_t offset, uint64_t size);
  // fsyncs and closes. The file stays at its temp path until the Staging commits.
  Status Finish();

 private:
  OutputFile() = default;

  std::filesystem::path path_;
  int fd_ = -1;
  bool copy_file_range_works_ = true;  // false after EXDEV and the like: write from the mapping
  RangeBatch writeback_{8ull << 20};
};

}  // namespace ms2vllm
