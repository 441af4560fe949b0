// Helpers shared by the tests: temp directories, reading safetensors back, golden paths.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/dtype.h"

// Expects `part` to occur in `text`, printing `text` when it does not.
#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << (text)

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

// The command that runs the built ms2vllm: MS2VLLM_BINARY, behind the emulator when cross-built.
std::vector<std::string> Ms2vllmArgv();
// The same as one line for a shell (popen); the paths hold no spaces or quotes.
std::string Ms2vllmCommandLine();

// Converts every tensor of the given file to int32 words for readable comparisons.
std::vector<int32_t> Words(const LoadedTensor& tensor);

// Runs `body` in a forked child to which permission bits apply as to any user, and returns its
// exit code (body's result; 125 when the child could not give up root's override). As root (the
// CI), the child drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH and stays uid 0, the owner of
// what the test made. `body` must not use gtest's assertions: they would not reach the parent.
int RunWherePermissionsApply(const std::function<int()>& body);

}  // namespace ms2vllm::testing

// ---- Building small msModelSlim checkpoints and reading converted ones as their consumers do ----

namespace ms2vllm::testing {

// A tensor holding `values` encoded as `dtype`: floats rounded to nearest even (F32, F16, BF16,
// F64), integers converted exactly (they must fit).
LoadedTensor MakeTensor(DType dtype, std::vector<uint64_t> shape, const std::vector<double>& values);
// Every element of a float or integer tensor, as doubles.
std::vector<double> Elements(const LoadedTensor& tensor);
uint64_t Numel(const LoadedTensor& tensor);

// One msModelSlim quantized linear: I8 weight [out, in], scale and offset [out, G].
struct MsLinear {
  LoadedTensor weight, scale;
  std::optional<LoadedTensor> offset;
};

struct MsLinearOptions {
  uint64_t out = 24, in = 96, groups = 2;
  int bits = 4;
  DType scale_dtype = DType::kF32;
  std::optional<DType> offset_dtype;  // default: the scale's dtype
  bool with_offset = true;
  // Offsets are drawn from [offset_low, offset_high]; default: the signed range without its lowest
  // value (a zero point of 0, which GPTQ v1 cannot store).
  std::optional<int64_t> offset_low, offset_high;
  uint64_t seed = 1;
};

// Random weights in the signed range of `bits`, positive scales, integral offsets.
MsLinear MakeMsLinear(const MsLinearOptions& options);

// msModelSlim's dequantization of its own tensors: W[o][i] = (q - offset) * scale, g = i / (in / G),
// as [out * in] row-major doubles. G is the scale's element count / out (legacy shapes work);
// a missing offset is 0. With `clamp_bits` > 0, q and offset are first clamped to that signed
// range (what the script does before packing).
std::vector<double> DequantizeMsModelSlim(const LoadedTensor& weight, const LoadedTensor& scale,
                                          const LoadedTensor* offset, int clamp_bits = 0);

// The consumers' views of converted tensors (SPEC 2), as [out * in] row-major doubles.
// AutoAWQ: W = (q - z) * s with q and z read through ORDER = [0, 2, 4, 6, 1, 3, 5, 7].
std::vector<double> DequantizeAwq(const LoadedTensor& qweight, const LoadedTensor& qzeros, const LoadedTensor& scales);
// AutoGPTQ v1 (checkpoint_format "gptq"): W = s * (q - (z + 1)); v2 ("gptq_v2"): W = s * (q - z).
std::vector<double> DequantizeGptq(const LoadedTensor& qweight, const LoadedTensor& qzeros, const LoadedTensor& scales,
                                   int bits, bool v2);

// A small msModelSlim checkpoint: tensors in file order, description keys in their order.
class MsCheckpoint {
 public:
  // A tensor and its description label.
  void Add(const std::string& name, LoadedTensor tensor, const std::string& label);
  // A tensor the description does not list.
  void AddUndescribed(const std::string& name, LoadedTensor tensor);
  // X.weight, X.weight_scale and (when present) X.weight_offset, labelled `label`.
  void AddLinear(const std::string& linear, const MsLinear& parts, const std::string& label);
  // A description key that is not a tensor (model_quant_type, version, group_size, metadata, ...).
  void Describe(const std::string& key, nlohmann::ordered_json value);

  void WriteWeights(const std::filesystem::path& path) const;
  void WriteDescription(const std::filesystem::path& path) const;
  // Writes quant_model_weight_w<bits>a16.safetensors and quant_model_description_w<bits>a16.json
  // into `dir` and returns the weights' path.
  std::filesystem::path WriteInto(const std::filesystem::path& dir, int bits = 4) const;

  const std::vector<std::pair<std::string, LoadedTensor>>& tensors() const { return tensors_; }
  const nlohmann::ordered_json& description() const { return description_; }
  const LoadedTensor& tensor(const std::string& name) const;

 private:
  std::vector<std::pair<std::string, LoadedTensor>> tensors_;
  nlohmann::ordered_json description_ = nlohmann::ordered_json::object();
};

}  // namespace ms2vllm::testing
