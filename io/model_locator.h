// Finds the weights and the description of a checkpoint given as a file, an index or a directory.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

#include "io/status.h"

namespace ms2vllm {

struct ModelFiles {
  std::filesystem::path weights;      // a .safetensors file or a .safetensors.index.json
  std::filesystem::path description;  // quant_model_description*.json
};

// `model` may be a file, an index, or a directory holding quant_model_weight*.safetensors[.index.json]
// (or quant_model_weights*); `description` defaults to the one quant_model_description*.json in
// the model's directory, or among several the one named like the weights (_w8a16 with _w8a16).
// Several candidates otherwise are an error listing them. `model_flag` is how the command names the
// model in the messages that ask for a file (inspect takes it as its PATH argument).
Result<ModelFiles> LocateModel(const std::filesystem::path& model, const std::optional<std::filesystem::path>& description,
                               const std::string& model_flag = "--model");

}  // namespace ms2vllm
