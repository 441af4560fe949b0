// Helpers shared by the tests: temp directories, reading safetensors back, golden paths.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/dtype.h"

namespace ms2vllm::testing {

// The golden cases checked into tests/golden (copied from msModelSlim's own script output).
std::filesystem::path GoldenDir();
std::vector<std::string> GoldenCases();

// A fresh directory removed when the object goes away.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

struct LoadedTensor {
  DType dtype;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> bytes;
  bool operator==(const LoadedTensor&) const = default;
};

// Every tensor of a safetensors file (or sharded index) by name; fails the test on a bad file.
std::map<std::string, LoadedTensor> LoadTensors(const std::filesystem::path& path);
// The header's __metadata__ object as text (empty when absent).
std::string HeaderMetadata(const std::filesystem::path& path);

// Writes a safetensors file from (name, tensor) pairs, in the given order.
void WriteSafetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, LoadedTensor>>& tensors);
void WriteText(const std::filesystem::path& path, const std::string& text);
std::string ReadText(const std::filesystem::path& path);

// Converts every tensor of the given file to int32 words for readable comparisons.
std::vector<int32_t> Words(const LoadedTensor& tensor);

}  // namespace ms2vllm::testing
