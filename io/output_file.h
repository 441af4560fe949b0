// One output file being written: created empty, preallocated, mapped writable.
// It lives at a temp path until its Staging commits it; the Staging removes it otherwise.
#pragma once

#include <cstdint>
#include <filesystem>

#include "io/status.h"

namespace ms2vllm {

class OutputFile {
 public:
  // Creates `path` (must not exist), reserves `size` bytes on disk (fallocate, so a full disk
  // fails here rather than as SIGBUS later) and maps it writable.
  static Result<OutputFile> Create(const std::filesystem::path& path, uint64_t size);

  OutputFile(OutputFile&& other) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  ~OutputFile();

  uint8_t* data() { return data_; }
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }
  int fd() const { return fd_; }

  // Faults in the pages of a range about to be written, in one call.
  void Prepare(uint64_t offset, uint64_t size);
  // Starts writeback of a finished range and drops its pages from this process, so resident
  // memory stays bounded; the page cache keeps the data until it reaches the disk.
  void Retire(uint64_t offset, uint64_t size);
  // Unmaps and fsyncs. The file stays at its temp path until the Staging commits.
  Status Finish();

 private:
  OutputFile() = default;
  void Unmap();

  std::filesystem::path path_;
  int fd_ = -1;
  uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace ms2vllm
