#include "tests/test_support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/checkpoint.h"

namespace ms2vllm::testing {
namespace fs = std::filesystem;

fs::path GoldenDir() { return fs::path(MS2VLLM_SOURCE_DIR) / "tests" / "golden"; }

std::vector<std::string> GoldenCases() {
  std::vector<std::string> cases;
  for (const auto& entry : fs::directory_iterator(GoldenDir())) {
    if (entry.is_directory()) cases.push_back(entry.path().filename().string());
  }
  std::sort(cases.begin(), cases.end());
  return cases;
}

TempDir::TempDir() {
  std::string pattern = (fs::temp_directory_path() / "ms2vllm-test-XXXXXX").string();
  path_ = ::mkdtemp(pattern.data());
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::map<std::string, LoadedTensor> LoadTensors(const fs::path& path) {
  std::map<std::string, LoadedTensor> tensors;
  auto checkpoint = Checkpoint::Open(path);
  EXPECT_TRUE(checkpoint.ok()) << (checkpoint.ok() ? "" : checkpoint.error().message);
  if (!checkpoint) return tensors;
  for (const auto& info : checkpoint->table().tensors()) {
    const auto bytes = checkpoint->Bytes(info);
    tensors[info.name] = {info.dtype, info.shape, std::vector<uint8_t>(bytes.begin(), bytes.end())};
  }
  return tensors;
}

std::string HeaderMetadata(const fs::path& path) {
  const std::string text = ReadText(path);
  uint64_t size = 0;
  std::memcpy(&size, text.data(), 8);
  auto header = nlohmann::json::parse(text.substr(8, size));
  return header.contains("__metadata__") ? header["__metadata__"].dump() : "";
}

void WriteSafetensors(const fs::path& path, const std::vector<std::pair<std::string, LoadedTensor>>& tensors) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  std::string data;
  for (const auto& [name, tensor] : tensors) {
    header[name] = {{"dtype", DTypeName(tensor.dtype)}, {"shape", tensor.shape},
                    {"data_offsets", {offset, offset + tensor.bytes.size()}}};
    offset += tensor.bytes.size();
    data.append(tensor.bytes.begin(), tensor.bytes.end());
  }
  std::string json = header.dump();
  const uint64_t size = json.size();
  std::string file(8, '\0');
  std::memcpy(file.data(), &size, 8);
  WriteText(path, file + json + data);
}

void WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string ReadText(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::vector<int32_t> Words(const LoadedTensor& tensor) {
  std::vector<int32_t> words(tensor.bytes.size() / 4);
  std::memcpy(words.data(), tensor.bytes.data(), words.size() * 4);
  return words;
}

}  // namespace ms2vllm::testing
