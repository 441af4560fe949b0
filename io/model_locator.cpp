#include "io/model_locator.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "io/directory.h"
#include "io/mapped_file.h"

namespace ms2vllm {
namespace fs = std::filesystem;
namespace {

// The regular files of `entries` (a directory's listing) whose names `matches` accepts.
std::vector<fs::path> Matching(const std::vector<fs::path>& entries, auto&& matches) {
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& entry : entries) {
    if (matches(entry.filename().string()) && fs::is_regular_file(entry, ec)) found.push_back(entry);
  }
  return found;
}

// What a directory's listing holds under the wanted name that is not a file (a dangling link, a
// FIFO), said after "no ... found"; empty if it holds nothing so named.
std::string NamedButNotAFile(const std::vector<fs::path>& entries, auto&& matches) {
  std::error_code ec;
  for (const auto& entry : entries) {
    if (matches(entry.filename().string()) && !fs::is_regular_file(entry, ec)) {
      return " (" + entry.filename().string() + " " + WhyNotAFile(entry) + ")";
    }
  }
  return "";
}

std::string NameList(const std::vector<fs::path>& paths) {
  std::string list;
  for (const auto& path : paths) list += (list.empty() ? "" : ", ") + path.filename().string();
  return list;
}

// The one file of `found`, else an error saying what was looked for and that `flag` names it (an
// option, or a command's PATH argument). `none_found` adds what the directory holds instead.
Result<fs::path> ExactlyOne(std::vector<fs::path> found, const fs::path& directory, const std::string& what,
                            const std::string& flag, const std::string& none_found = "") {
  if (found.size() == 1) return found.front();
  const std::string how = flag.starts_with("--") ? " with " + flag : " as " + flag;
  if (found.empty()) {
    return MakeError(ErrorCode::kInvalidInput,
                     directory.string() + ": no " + what + " found" + none_found + "; name the file" + how);
  }
  return MakeError(ErrorCode::kInvalidInput,
                   directory.string() + ": several " + what + " (" + NameList(found) + "); name one" + how);
}

// The weights' names start so, ascendV1's first: a name is matched against the longer one first.
constexpr std::string_view kWeightStems[] = {"quant_model_weights", "quant_model_weight"};

bool IsWeightName(const std::string& name) {
  if (!name.starts_with("quant_model_weight")) return false;
  return name.ends_with(".safetensors") || name.ends_with(".safetensors.index.json");
}

// A shard of one of the indexes among `candidates`: <prefix>-00001-of-0000K.safetensors beside
// <prefix>.safetensors.index.json. An index stands for its shards, not for other weight files.
bool IsShardOfAnIndex(const fs::path& path, const std::vector<std::string>& index_prefixes) {
  const std::string name = path.filename().string();
  return name.ends_with(".safetensors") &&
         std::any_of(index_prefixes.begin(), index_prefixes.end(),
                     [&](const std::string& prefix) { return name.starts_with(prefix + "-"); });
}

// msModelSlim names a checkpoint's files alike: quant_model_weight_w8a16.safetensors goes with
// quant_model_description_w8a16.json, and (ascendV1) quant_model_weights.safetensors with
// quant_model_description.json. Among several descriptions, the one so named is the weights'.
std::vector<fs::path> NamedLikeTheWeights(std::vector<fs::path> descriptions, const fs::path& weights) {
  std::string name = weights.filename().string();
  const auto stem = std::find_if(std::begin(kWeightStems), std::end(kWeightStems),
                                 [&](std::string_view s) { return name.starts_with(s); });
  if (descriptions.size() < 2 || stem == std::end(kWeightStems)) return descriptions;
  for (std::string_view suffix : {".safetensors.index.json", ".safetensors"}) {
    if (name.ends_with(suffix)) name.resize(name.size() - suffix.size());
  }
  const std::string wanted = "quant_model_description" + name.substr(stem->size()) + ".json";
  for (const auto& path : descriptions) {
    if (path.filename() == wanted) return {path};
  }
  return descriptions;
}

}  // namespace

Result<ModelFiles> LocateModel(const fs::path& model, const std::optional<fs::path>& description,
                               const std::string& model_flag) {
  ModelFiles files;
  // Checked first: a missing path would otherwise surface as "no description found" in its parent.
  std::error_code ec;
  const fs::file_status status = fs::status(model, ec);
  if (status.type() == fs::file_type::not_found) {
    // "w.safetensors/" (a shell's completion, a script's join): the file is there, the '/' is not.
    std::string without = model.string();
    while (without.size() > 1 && without.back() == '/') without.pop_back();
    if (without != model.string() && fs::is_regular_file(without, ec)) {
      return MakeError(ErrorCode::kInvalidInput, model.string() + ": is a file, not a directory: leave out the trailing '/'");
    }
    if (IsDanglingSymlink(model)) {
      return MakeError(ErrorCode::kInvalidInput, model.string() + ": " + WhyNotAFile(model));
    }
    return MakeError(ErrorCode::kInvalidInput, model.string() + ": cannot open: No such file or directory");
  }
  if (ec) return MakeError(ErrorCode::kInvalidInput, model.string() + ": cannot open: " + ec.message());
  if (fs::is_directory(status)) {
    MS2VLLM_ASSIGN_OR_RETURN(const std::vector<fs::path> entries, ListDirectory(model));
    std::vector<fs::path> candidates = Matching(entries, IsWeightName);
    // A sharded checkpoint lists its index and its shards: the index stands for its shards.
    constexpr std::string_view kIndexSuffix = ".safetensors.index.json";
    std::vector<std::string> index_prefixes;
    for (const auto& path : candidates) {
      const std::string name = path.filename().string();
      if (name.ends_with(kIndexSuffix)) index_prefixes.push_back(name.substr(0, name.size() - kIndexSuffix.size()));
    }
    std::erase_if(candidates, [&](const fs::path& p) { return IsShardOfAnIndex(p, index_prefixes); });
    // Weights named otherwise (a float or converted model's model.safetensors) are not msModelSlim's.
    const std::vector<fs::path> others =
        Matching(entries, [](const std::string& name) { return name.ends_with(".safetensors"); });
    const std::string holds = others.empty() ? NamedButNotAFile(entries, IsWeightName)
                                             : " (it holds " + NameList(others) + ", not named as msModelSlim's)";
    MS2VLLM_ASSIGN_OR_RETURN(files.weights,
                             ExactlyOne(std::move(candidates), model, "quant_model_weight*.safetensors", model_flag, holds));
  } else {
    files.weights = model;
  }
  if (description) {
    files.description = *description;
  } else {
    const fs::path directory = files.weights.has_parent_path() ? files.weights.parent_path() : fs::path(".");
    MS2VLLM_ASSIGN_OR_RETURN(const std::vector<fs::path> entries, ListDirectory(directory));
    const auto is_description = [](const std::string& name) {
      return name.starts_with("quant_model_description") && name.ends_with(".json");
    };
    MS2VLLM_ASSIGN_OR_RETURN(files.description,
                             ExactlyOne(NamedLikeTheWeights(Matching(entries, is_description), files.weights), directory,
                                        "quant_model_description*.json", "--json", NamedButNotAFile(entries, is_description)));
  }
  return files;
}

}  // namespace ms2vllm
