// SPEC 5: the files beside the weights that make --out-dir a model loaders take as is.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/convert.h"
#include "io/staging.h"

namespace ms2vllm {

// A --base-model that does not exist, is no directory or holds no config.json: invalid input,
// refused before the weights are read.
Status CheckBaseModelDirectory(const std::filesystem::path& base_model);

// Refuses what would produce a directory that does not load: mixed group sizes, a base
// config.json that does not parse or states another shape than the checkpoint's. Warns, in
// `report`, of what some loaders will not read. Needs report.plan, report.symmetric and
// report.base_model, a directory holding a config.json.
Status CheckModelDirectoryRequest(ConvertReport& report);

// The quantization_config object for config.json (and, for GPTQ, quantize_config.json).
// `symmetric`: every offset is 0 or missing. `fused_names`: also exempt plan.float_fused_layers,
// as --out-dir does (ms2vllm 0.1.0 before December 2026 did not).
nlohmann::ordered_json QuantizationConfig(const Plan& plan, bool symmetric, bool fused_names = true);

// Makes `config` (a config.json) state float16 where vLLM runs this layout only in float16 and
// its model type is not one vLLM refuses in float16. Returns each change, `key "old" ->
// "float16"`; none when nothing needs changing.
std::vector<std::string> StateFloat16ForVllm(const Plan& plan, bool symmetric, nlohmann::ordered_json& config);

// What WriteModelDirectoryFiles will write beside the weights, a line per file or group of
// files, for --dry-run.
std::vector<std::string> DescribeModelDirectoryFiles(const ConvertReport& report);

// Writes the index (when sharded), config.json, quantize_config.json and the base model's other
// files into the stage, each fsynced.
Status WriteModelDirectoryFiles(const ConvertReport& report, const Staging& staging);

}  // namespace ms2vllm
