// Files other than the weights (configs, the shard index, the base model's files), written
// whole or in pieces and fsynced before they count as written, so a committed output directory
// never holds one the disk has not got.
#pragma once

#include <filesystem>
#include <string_view>
#include <utility>

#include "io/status.h"

namespace ms2vllm {

// A new file written in pieces and fsynced by Finish, for text too large to build whole first
// (the shard index of 200k tensors). Messages name the path the user will see.
class DurableFileWriter {
 public:
  static Result<DurableFileWriter> Create(const std::filesystem::path& path);
  DurableFileWriter(DurableFileWriter&& other) noexcept;
  DurableFileWriter& operator=(DurableFileWriter&&) = delete;
  ~DurableFileWriter();

  Status Append(std::string_view bytes);
  Status Finish();  // fsync, then close

 private:
  DurableFileWriter(std::filesystem::path path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::filesystem::path path_;
  int fd_ = -1;
};

// Creates `path` holding `bytes` and fsyncs it.
Status WriteFileDurably(const std::filesystem::path& path, std::string_view bytes);
// Copies a file byte for byte and fsyncs the copy.
Status CopyFileDurably(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace ms2vllm
