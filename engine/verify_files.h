// The files of a converted checkpoint beside its tensors: where the weights are, what the
// directory's quantization configs declare, and whether those configs and the shard index agree
// with what the conversion must have written (SPEC 5).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/options.h"
#include "engine/verify.h"
#include "io/checkpoint.h"

namespace ms2vllm {

struct ConvertedFiles {
  std::filesystem::path weights;                          // .safetensors or .safetensors.index.json
  std::optional<std::filesystem::path> config;            // config.json, in a model directory
  std::optional<std::filesystem::path> quantize_config;   // quantize_config.json, in a model directory
};

// `converted` is a weights file, an index, or a directory holding model.safetensors.index.json
// or model.safetensors. kInvalidInput naming the path when there is none.
Result<ConvertedFiles> LocateConverted(const std::filesystem::path& converted);

// What the configs say the weights are; unset fields when they say nothing (or do not parse:
// CheckConfigs reports that).
struct DeclaredQuantization {
  std::optional<TargetTool> target;
  std::optional<GptqFormat> gptq_format;
  std::string source;  // the file that said it
};
DeclaredQuantization ReadDeclaredQuantization(const ConvertedFiles& files);

// Every key of `expected` (a quantization_config object) must have the same value in
// quantize_config.json and in config.json's quantization_config, where those files exist; a file
// that matches `also_accepted` instead passes too.
std::vector<VerifyProblem> CheckConfigs(const ConvertedFiles& files, const nlohmann::ordered_json& expected,
                                        const nlohmann::ordered_json& also_accepted);

// A sharded output's index must name every tensor (loaders read nothing else) and give
// metadata.total_size as the sum of tensor bytes.
std::vector<VerifyProblem> CheckShardIndex(const std::filesystem::path& index, const Checkpoint& output);

}  // namespace ms2vllm
