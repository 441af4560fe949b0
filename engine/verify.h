// `verify`: proves a converted checkpoint right against its msModelSlim input, streaming both
// in bounded memory. It holds when every tensor of the plan is present with the planned dtype and
// shape and nothing else is; every copied tensor is byte-equal; and every quantized linear reads
// back, the way its consumer reads it (SPEC 2 "Consumers' view": AutoAWQ, AutoGPTQ v1, GPTQ v2),
// to exactly msModelSlim's (clamp(q) - clamp(offset)) * scale of the input.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "engine/options.h"
#include "io/status.h"

namespace ms2vllm {

struct VerifySettings {
  int threads = 0;                                  // 0: every core
  uint64_t chunk_bytes = 4ull << 20;                // input bytes per block of rows
  uint64_t band_bytes = 16ull << 20;                // output bytes per column band of a qweight
  uint64_t copy_below_bytes = 256ull << 10;         // smaller tensors are read with pread (CheckedBytes)
  size_t examples = 5;                              // differences listed per tensor
  const std::atomic<bool>* cancel = nullptr;        // set by a signal handler
  std::atomic<uint64_t>* progress = nullptr;        // input bytes checked
  std::atomic<uint64_t>* progress_total = nullptr;  // set to the bytes `progress` will reach
};

struct VerifyRequest {
  std::filesystem::path model;                // msModelSlim weights: file, sharded index or directory
  std::optional<std::filesystem::path> json;  // its description; found beside the weights when omitted
  std::filesystem::path converted;            // .safetensors, sharded index, or an --out-dir directory
  // Unset: from the converted directory's quantization config, else from the qweight shapes (target)
  // or v1 (format).
  std::optional<TargetTool> target;
  std::optional<GptqFormat> gptq_format;
  // Unset: each scales tensor may keep the input's dtype or be its cast to F16 or BF16.
  std::optional<ScalesDType> scales_dtype;
  std::optional<int> w_bit;
  PackedMode packed = PackedMode::kAuto;
  VerifySettings settings;
};

// One wrong tensor (or file): what is wrong, and the first differences with their indices.
struct VerifyProblem {
  std::string tensor;
  std::string problem;
  std::vector<std::string> examples;
};

struct VerifyReport {
  std::filesystem::path weights;    // the converted weights file or index that was read
  std::filesystem::path converted;  // what was verified, as named: a model directory, or the weights
  int bits = 4;
  TargetTool target = TargetTool::kAwq;
  GptqFormat gptq_format = GptqFormat::kV1;
  std::string target_source;  // where the target came from: "--target_tool", "quantize_config.json", ...
  uint64_t tensors = 0;       // output tensors the plan expects
  uint64_t linears = 0;       // qweights among them
  uint64_t values = 0;        // quantized values (weights, zero points, scales) compared
  uint64_t copied_bytes = 0;  // bytes of copied tensors compared
  uint64_t scales_cast = 0;   // scales compared with their --scales-dtype cast (F16 or BF16)
  uint64_t scales_lost = 0;   // of those, finite nonzero scales the cast made 0 or infinite
  std::vector<VerifyProblem> problems;  // plan order, then extra tensors, then files
  std::string hint;  // what the problems together suggest, or ""
  double seconds = 0;

  bool ok() const { return problems.empty(); }
};

// An Error when verification cannot run (inputs missing or malformed: kInvalidInput; the converted
// weights missing: kInvalidInput; interrupted). A converted checkpoint that cannot be a correct
// conversion, including one whose header does not parse or whose target the input cannot be
// converted to, is a report with problems, never an Error.
Result<VerifyReport> Verify(const VerifyRequest& request);

// kVerifyFailed naming the first few wrong tensors, for callers that turn a report into an Error.
Error VerifyFailure(const VerifyReport& report);

}  // namespace ms2vllm
