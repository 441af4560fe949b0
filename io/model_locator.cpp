#include "io/model_locator.h"

#include <algorithm>
#include <string>
#include <vector>

namespace ms2vllm {
namespace fs = std::filesystem;
namespace {

std::vector<fs::path> Matching(const fs::path& directory, auto&& matches) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(directory, ec)) {
    if (entry.is_regular_file(ec) && matches(entry.path().filename().string())) found.push_back(entry.path());
  }
  std::sort(found.begin(), found.end());
  return found;
}

Result<fs::path> ExactlyOne(std::vector<fs::path> found, const fs::path& directory, const std::string& what) {
  if (found.size() == 1) return found.front();
  if (found.empty()) return MakeError(ErrorCode::kInvalidInput, directory.string() + ": no " + what + " found");
  std::string list;
  for (const auto& path : found) list += (list.empty() ? "" : ", ") + path.filename().string();
  return MakeError(ErrorCode::kInvalidInput,
                   directory.string() + ": several " + what + " candidates (" + list + "); name one explicitly");
}

bool IsWeightName(const std::string& name) {
  if (!name.starts_with("quant_model_weight")) return false;
  return name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json");
}

}  // namespace

Result<ModelFiles> LocateModel(const fs::path& model, const std::optional<fs::path>& description) {
  ModelFiles files;
  std::error_code ec;
  if (fs::is_directory(model, ec)) {
    auto candidates = Matching(model, IsWeightName);
    // A sharded checkpoint lists its index and its shards: the index stands for all of them.
    const bool has_index = std::any_of(candidates.begin(), candidates.end(),
                                       [](const fs::path& p) { return p.string().ends_with(".index.json"); });
    if (has_index) {
      std::erase_if(candidates, [](const fs::path& p) { return !p.string().ends_with(".index.json"); });
    }
    MS2VLLM_ASSIGN_OR_RETURN(files.weights, ExactlyOne(std::move(candidates), model, "quant_model_weight*.safetensors"));
  } else {
    files.weights = model;
  }
  if (description) {
    files.description = *description;
  } else {
    const fs::path directory = files.weights.has_parent_path() ? files.weights.parent_path() : fs::path(".");
    auto candidates = Matching(directory, [](const std::string& name) {
      return name.starts_with("quant_model_description") && name.ends_with(".json");
    });
    MS2VLLM_ASSIGN_OR_RETURN(files.description,
                             ExactlyOne(std::move(candidates), directory, "quant_model_description*.json (give --json)"));
  }
  return files;
}

}  // namespace ms2vllm
