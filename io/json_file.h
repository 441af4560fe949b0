// Small JSON files (configs) read into and written from nlohmann's ordered DOM, which keeps
// every key in its order, and large ones written in pieces; all written durably (fsynced).
#pragma once

#include <filesystem>
#include <string_view>
#include <nlohmann/json.hpp>

#include "io/status.h"

namespace ms2vllm {

Result<nlohmann::ordered_json> ReadJsonFile(const std::filesystem::path& path);
// Writes `json` indented by 2 spaces, with a final newline, and fsyncs it.
Status WriteJsonFile(const std::filesystem::path& path, const nlohmann::ordered_json& json);
// Copies a file byte for byte and fsyncs the copy.
Status CopyFileDurably(const std::filesystem::path& from, const std::filesystem::path& to);

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

}  // namespace ms2vllm
