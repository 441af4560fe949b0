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
#include "engine/plan.h"
#include "engine/verify.h"
#include "io/checkpoint.h"

namespace ms2vllm {

struct ConvertedFiles {
  std::filesystem::path weights;                          // .safetensors or .safetensors.index.json
  std::optional<std::filesystem::path> config;            // config.json, in a model directory
  std::optional<std::filesystem::path> quantize_config;   // quantize_config.json, in a model directory
  bool directory = false;                                 // `converted` named a model directory
};

// `converted` is a weights file, an index, or a directory holding model.safetensors.index.json
// or model.safetensors. kInvalidInput naming the path when there is none.
Result<ConvertedFiles> LocateConverted(const std::filesystem::path& converted);

// What the configs say the weights are; unset fields when they say nothing (or do not parse:
// CheckConfigs reports that).
struct DeclaredQuantization {
  std::optional<TargetTool> target;
  std::optional<GptqFormat> gptq_format;
  std::optional<int64_t> bits, group_size;  // as declared; group_size -1 is per-channel
  std::string source;  // the file that said it
};
DeclaredQuantization ReadDeclaredQuantization(const ConvertedFiles& files);

// Every key of `expected` (a quantization_config object) must have the same value in
// quantize_config.json and in config.json's quantization_config, where those files exist; a file
// that matches `also_accepted` instead passes too.
// A file that cannot be read is a problem of the directory, unless the machine is out of memory or
// descriptors: that is an error.
Result<std::vector<VerifyProblem>> CheckConfigs(const ConvertedFiles& files, const nlohmann::ordered_json& expected,
                                                const nlohmann::ordered_json& also_accepted);

// A model directory's files beside its configs: a model.safetensors beside the index (which
// transformers loads instead of the shards) and, for GPTQ, a missing quantize_config.json
// (AutoGPTQ's). Nothing for a weights file or an index named directly.
std::vector<VerifyProblem> CheckDirectoryFiles(const ConvertedFiles& files, TargetTool target);

// config.json's dtype where vLLM runs the layout only in float16 (SPEC 5 as README amends it):
// another, or none, and vLLM refuses to start.
std::vector<VerifyProblem> CheckDtypeForVllm(const ConvertedFiles& files, const Plan& plan, bool symmetric);

// A sharded output's index must name every tensor (loaders read nothing else) and give
// metadata.total_size as the sum of tensor bytes.
std::vector<VerifyProblem> CheckShardIndex(const std::filesystem::path& index, const Checkpoint& output);

}  // namespace ms2vllm
