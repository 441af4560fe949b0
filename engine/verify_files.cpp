#include "engine/verify_files.h"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <unordered_set>

#include "engine/model_directory.h"
#include "io/directory.h"
#include "io/json_file.h"
#include "io/mapped_file.h"
#include "io/python_json.h"
#include "io/shard_index.h"

namespace ms2vllm {
namespace fs = std::filesystem;
namespace {

using Json = nlohmann::ordered_json;

std::optional<fs::path> IfFile(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  return std::nullopt;
}

// The quantization_config a parsed file declares: quantize_config.json is one; config.json holds one.
std::optional<Json> DeclaredIn(const Json& file, bool nested) {
  if (!file.is_object()) return std::nullopt;
  if (!nested) return file;
  auto it = file.find("quantization_config");
  if (it == file.end() || !it->is_object()) return std::nullopt;
  return *it;
}

std::optional<Json> DeclaredConfig(const fs::path& path, bool nested) {
  auto json = ReadJsonFile(path);
  if (!json) return std::nullopt;
  return DeclaredIn(*json, nested);
}

// A value as a message shows it: `dynamic` lists a rule per float linear, a few KB on a MoE.
std::string Shown(const Json& value) {
  constexpr size_t kShown = 120;
  std::string text = WithoutPlaceholders(value.dump());  // NaN as the file spells it
  if (text.size() <= kShown) return text;
  text.resize(kShown);
  return text + "... (" + std::to_string(value.size()) + " entries)";
}

// A quantization_config as loaders read it: `version` in any case (AutoAWQ writes "GEMM") and
// "gemm" when absent, GPTQ without checkpoint_format as "gptq" (v1), their defaults.
Json AsLoadersRead(Json config) {
  if (auto it = config.find("version"); it != config.end() && it->is_string()) {
    std::string version = it->get<std::string>();
    for (char& c : version) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    *it = version;
  }
  // A copy: adding a key moves the ordered map's entries, an iterator into it with them.
  const Json method = config.contains("quant_method") ? config["quant_method"] : Json();
  if (method == "gptq" && !config.contains("checkpoint_format")) config["checkpoint_format"] = "gptq";
  if (method == "awq" && !config.contains("version")) config["version"] = "gemm";
  return config;
}

// Keys that change which linears loaders quantize; absent, null, false or empty, they change none.
bool IsQuantizationRule(const std::string& key) {
  static constexpr std::string_view kKeys[] = {"dynamic", "lm_head", "modules_in_block_to_quantize",
                                               "modules_to_not_convert"};
  return std::find(std::begin(kKeys), std::end(kKeys), key) != std::end(kKeys);
}
bool RulesNothing(const Json& value) {
  return value.is_null() || value == false || ((value.is_array() || value.is_object()) && value.empty());
}

void CompareConfig(const fs::path& path, const Json& declared, const Json& expected, std::vector<VerifyProblem>& problems) {
  const Json actual = AsLoadersRead(declared);
  VerifyProblem problem{path.filename().string(), "", {}};
  for (const auto& [key, value] : expected.items()) {
    auto it = actual.find(key);
    // A rule that rules nothing, absent, null or empty: none either way.
    if (IsQuantizationRule(key) && RulesNothing(value) && (it == actual.end() || RulesNothing(*it))) continue;
    if (it == actual.end()) {
      problem.examples.push_back("quantization_config." + key + " is missing, expected " + Shown(value));
    } else if (*it != value) {
      problem.examples.push_back("quantization_config." + key + " is " + Shown(*it) + ", expected " + Shown(value));
    }
  }
  // Rules the conversion did not write would change which linears loaders quantize.
  for (const auto& [key, value] : actual.items()) {
    if (!expected.contains(key) && IsQuantizationRule(key) && !RulesNothing(value)) {
      problem.examples.push_back("quantization_config." + key + " is " + Shown(value) + ", expected none");
    }
  }
  if (problem.examples.empty()) return;
  problem.problem = std::to_string(problem.examples.size()) + " quantization_config field(s) disagree with the weights";
  problems.push_back(std::move(problem));
}

}  // namespace

Result<ConvertedFiles> LocateConverted(const fs::path& converted) {
  ConvertedFiles files;
  std::error_code ec;
  if (!fs::is_directory(converted, ec)) {
    if (!fs::exists(converted, ec)) {
      const std::string why = IsDanglingSymlink(converted) ? WhyNotAFile(converted) : "no such file";
      return MakeError(ErrorCode::kInvalidInput, converted.string() + ": " + why);
    }
    files.weights = converted;
    return files;
  }
  if (auto index = IfFile(converted / "model.safetensors.index.json")) {
    files.weights = *index;
  } else if (auto single = IfFile(converted / "model.safetensors")) {
    files.weights = *single;
  } else {
    return MakeError(ErrorCode::kInvalidInput,
                     converted.string() + ": holds neither model.safetensors.index.json nor model.safetensors");
  }
  files.config = IfFile(converted / "config.json");
  files.quantize_config = IfFile(converted / "quantize_config.json");
  files.directory = true;
  return files;
}

DeclaredQuantization ReadDeclaredQuantization(const ConvertedFiles& files) {
  DeclaredQuantization declared;
  std::optional<Json> config;
  // config.json is what vLLM and transformers read first; quantize_config.json is AutoGPTQ's.
  if (files.config && (config = DeclaredConfig(*files.config, true))) {
    declared.source = files.config->filename().string();
  } else if (files.quantize_config && (config = DeclaredConfig(*files.quantize_config, false))) {
    declared.source = files.quantize_config->filename().string();
  }
  if (!config || !config->is_object()) return declared;
  // A value of another type declares nothing; CheckConfigs reports it against the expected config.
  const auto text = [&](const char* key, const char* absent) -> std::string {
    const auto it = config->find(key);
    if (it == config->end()) return absent;
    return it->is_string() ? it->get<std::string>() : "";
  };
  const auto integer = [&](const char* key) -> std::optional<int64_t> {
    const auto it = config->find(key);
    if (it == config->end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
  };
  declared.bits = integer("bits");
  declared.group_size = integer("group_size");
  const std::string method = text("quant_method", "");
  if (method == "awq") declared.target = TargetTool::kAwq;
  if (method == "gptq") {
    declared.target = TargetTool::kGptq;
    const std::string format = text("checkpoint_format", "gptq");
    if (format == "gptq") declared.gptq_format = GptqFormat::kV1;
    if (format == "gptq_v2") declared.gptq_format = GptqFormat::kV2;
  }
  return declared;
}

Result<std::vector<VerifyProblem>> CheckConfigs(const ConvertedFiles& files, const Json& expected,
                                                const Json& also_accepted) {
  std::vector<VerifyProblem> problems;
  const std::pair<const std::optional<fs::path>*, bool> kFiles[] = {{&files.config, true},
                                                                     {&files.quantize_config, false}};
  for (const auto& [path, nested] : kFiles) {
    if (!*path) continue;
    auto json = ReadJsonFile(**path);
    // A machine out of memory or descriptors says nothing of the file: that is the run's error.
    if (!json && json.error().code == ErrorCode::kResources) return json.take_error();
    if (!json || !json->is_object()) {
      const std::string& message = json ? "" : json.error().message;
      const size_t named = message.find((*path)->string() + ": ");
      problems.push_back({(*path)->filename().string(),
                          named == 0 ? message.substr((*path)->string().size() + 2) : "is not a JSON object", {}});
      continue;
    }
    // A config.json without quantization_config loads as a float model: wrong for quantized weights.
    auto declared = DeclaredIn(*json, nested);
    if (!declared) {
      problems.push_back({(*path)->filename().string(), "has no quantization_config object", {}});
      continue;
    }
    std::vector<VerifyProblem> alternative;
    CompareConfig(**path, *declared, also_accepted, alternative);
    if (!alternative.empty()) CompareConfig(**path, *declared, expected, problems);
  }
  return problems;
}

std::vector<VerifyProblem> CheckDirectoryFiles(const ConvertedFiles& files, TargetTool target) {
  std::vector<VerifyProblem> problems;
  if (!files.directory) return problems;
  const fs::path directory = files.weights.parent_path();
  if (IsShardIndexPath(files.weights) && IfFile(directory / "model.safetensors")) {
    problems.push_back({"model.safetensors", "is beside model.safetensors.index.json: transformers loads it instead of "
                                             "the shards",
                        {}});
  }
  // Without an index vLLM loads every .safetensors file of the directory (with one, those the
  // index names, as transformers does).
  if (!IsShardIndexPath(files.weights)) {
    const auto entries = ListDirectory(directory);  // sorted; unreadable, the weights' error says it
    for (const auto& entry : entries ? *entries : std::vector<fs::path>{}) {
      const std::string name = entry.filename().string();
      if (name != files.weights.filename().string() && name.ends_with(".safetensors") && !name.starts_with(".")) {
        problems.push_back({name, "is beside " + files.weights.filename().string() +
                                      " with no index: vLLM loads its tensors too", {}});
      }
    }
  }
  if (!files.config) {
    problems.push_back({"config.json", "is missing: vLLM and transformers read the model and its quantization from it",
                        {}});
  }
  if (target == TargetTool::kGptq && !files.quantize_config) {
    problems.push_back({"quantize_config.json", "is missing: AutoGPTQ reads the quantization from it", {}});
  }
  return problems;
}

std::vector<VerifyProblem> CheckDtypeForVllm(const ConvertedFiles& files, const Plan& plan, bool symmetric) {
  if (!files.config) return {};
  auto config = ReadJsonFile(*files.config);
  if (!config || !config->is_object()) return {};  // CheckConfigs reports that
  // What --out-dir would change in it is what vLLM needs changed.
  const std::vector<std::string> changes = StateFloat16ForVllm(plan, symmetric, *config);
  if (changes.empty()) return {};
  return {{"config.json", "needs " + changes.front() +
                              ": vLLM runs this layout only in float16 and refuses to start on another (a conversion "
                              "with --out-dir writes it so)",
           {}}};
}

std::vector<VerifyProblem> CheckShardIndex(const fs::path& index, const Checkpoint& output) {
  std::vector<VerifyProblem> problems;
  const std::string name = index.filename().string();
  // The checkpoint reader's own parser: an ordered DOM would search its keys on every insert,
  // quadratic over the 100k+ entries of a large model's index.
  auto parsed = ReadShardIndex(index, name);
  if (!parsed) return {{name, parsed.error().message, {}}};
  std::unordered_set<std::string_view> mapped;
  for (const auto& entry : parsed->weight_map) mapped.insert(entry.tensor);
  VerifyProblem unmapped{name, "", {}};
  uint64_t total = 0, missing = 0;
  for (const auto& tensor : output.table().tensors()) {
    total += tensor.byte_size;
    if (mapped.contains(tensor.name)) continue;
    ++missing;
    if (unmapped.examples.size() < 5) unmapped.examples.push_back(tensor.name + " is in a shard but not in weight_map");
  }
  if (missing) {
    unmapped.problem = std::to_string(missing) + " tensor(s) are missing from weight_map: loaders will not read them";
    problems.push_back(std::move(unmapped));
  }
  if (!parsed->total_size) {
    problems.push_back({name, "has no metadata.total_size", {}});
  } else if (*parsed->total_size != total) {
    problems.push_back({name, "metadata.total_size is " + std::to_string(*parsed->total_size) + ", the tensors hold " +
                                  std::to_string(total) + " bytes", {}});
  }
  return problems;
}

}  // namespace ms2vllm
