#include "engine/model_directory.h"

#include <algorithm>
#include <charconv>
#include <optional>

#include "io/directory.h"
#include "io/durable_file.h"
#include "io/json_file.h"
#include "io/mapped_file.h"
#include "io/python_json.h"

namespace ms2vllm {
namespace fs = std::filesystem;
namespace {

// Weight files and indexes of the float model are replaced by ours; configs are rewritten. Other
// weights (ONNX, TFLite), quantization leftovers (AutoAWQ's quant_config.json, msModelSlim's
// description, a base directory that is msModelSlim's own output), LoRA adapter files (which
// make transformers load the directory as an adapter) and backups are not the model's: left out.
bool IsLeftOutOfModelDirectory(const std::string& name) {
  static constexpr std::string_view kSuffixes[] = {".safetensors", ".bin", ".pt",   ".pth", ".ckpt", ".h5",  ".msgpack",
                                                   ".gguf",        ".onnx", ".onnx_data", ".tflite", ".ot", ".index.json",
                                                   ".bak",         "~"};
  static constexpr std::string_view kPrefixes[] = {".", "quant_model_", "adapter_"};
  // params.json is Mistral's own config of its consolidated weights, which vLLM may read in place
  // of config.json: the float model's, with no quantization.
  static constexpr std::string_view kNames[] = {"config.json", "quantize_config.json", "quant_config.json",
                                                "params.json"};
  auto any = [](const auto& list, auto&& matches) { return std::any_of(std::begin(list), std::end(list), matches); };
  return any(kNames, [&](std::string_view n) { return name == n; }) ||
         any(kPrefixes, [&](std::string_view prefix) { return name.starts_with(prefix); }) ||
         any(kSuffixes, [&](std::string_view suffix) { return name.ends_with(suffix); });
}

// Beside msModelSlim's weights, where the user may keep anything: the float model's files, which
// are what msModelSlim's saver copies there (.json and .py files) and its tokenizer's other
// files (a SentencePiece or tiktoken model, BPE merges, a vocabulary, a chat template).
bool IsFloatModelFile(const std::string& name) {
  static constexpr std::string_view kSuffixes[] = {".json", ".py", ".model", ".tiktoken", ".jinja"};
  return name == "merges.txt" || name == "vocab.txt" || name.starts_with("tokenizer.model") ||  // Mistral's .v3
         std::any_of(std::begin(kSuffixes), std::end(kSuffixes), [&](std::string_view s) { return name.ends_with(s); });
}

// The files a tokenizer is built from; tokenizer_config.json alone only configures one.
bool IsTokenizerFile(const std::string& name) {
  return name == "tokenizer.json" || name == "vocab.json" || name == "vocab.txt" || name == "tekken.json" ||
         name.starts_with("tokenizer.model") || name.ends_with(".model") || name.ends_with(".tiktoken");
}

// The base model's directory: the files copied as they are (every regular file but weights,
// configs and leftovers), and the symlinks to nothing, which cannot be.
struct BaseFiles {
  std::vector<fs::path> copied;
  std::vector<fs::path> dangling;
};

Result<BaseFiles> ListBaseFiles(const ConvertReport& report) {
  const fs::path& base_model = *report.base_model;
  BaseFiles files;
  MS2VLLM_ASSIGN_OR_RETURN(const std::vector<fs::path> entries, ListDirectory(base_model));
  for (const auto& entry : entries) {
    std::error_code ec;  // a dangling link fails these checks; that is not a failed listing
    const std::string name = entry.filename().string();
    if (IsDanglingSymlink(entry)) {
      files.dangling.push_back(entry);
    } else if (fs::is_regular_file(entry, ec) && !IsLeftOutOfModelDirectory(name) &&
               (!report.base_beside_weights || IsFloatModelFile(name))) {
      files.copied.push_back(entry);
    }
  }
  return files;  // in ListDirectory's sorted order
}

// The base model's config against the checkpoint: the wrong --base-model (the 7B's directory for
// a 1.5B checkpoint) gives a directory no loader reads. Only what both state is compared, and a
// checkpoint may hold more layers than num_hidden_layers (DeepSeek-V3's multi-token prediction).
std::vector<std::string> BaseConfigMismatches(const Plan& plan, const nlohmann::ordered_json& config) {
  const auto stated = [&](const char* key) -> std::optional<uint64_t> {
    const auto it = config.find(key);
    if (it == config.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<uint64_t>();
  };
  std::vector<std::string> mismatches;
  uint64_t layers = 0;
  for (const auto& tensor : plan.tensors) {
    if (tensor.name == "model.embed_tokens.weight" && tensor.shape.size() == 2) {
      const std::string shape = ShapeString(tensor.shape);
      if (auto vocab = stated("vocab_size"); vocab && *vocab != tensor.shape[0]) {
        mismatches.push_back("vocab_size " + std::to_string(*vocab) + " but model.embed_tokens.weight is " + shape);
      }
      if (auto hidden = stated("hidden_size"); hidden && *hidden != tensor.shape[1]) {
        mismatches.push_back("hidden_size " + std::to_string(*hidden) + " but model.embed_tokens.weight is " + shape);
      }
    }
    constexpr std::string_view kLayers = "model.layers.";
    if (tensor.name.starts_with(kLayers)) {
      uint64_t index = 0;
      const char* begin = tensor.name.data() + kLayers.size();
      const auto [end, ec] = std::from_chars(begin, tensor.name.data() + tensor.name.size(), index);
      if (ec == std::errc() && end != begin && *end == '.') layers = std::max(layers, index + 1);
    }
  }
  if (auto stated_layers = stated("num_hidden_layers"); stated_layers && layers > 0 && *stated_layers > layers) {
    mismatches.push_back("num_hidden_layers " + std::to_string(*stated_layers) + " but the checkpoint has " +
                         std::to_string(layers) + " layer(s)");
  }
  return mismatches;
}

Result<nlohmann::ordered_json> ReadBaseConfig(const fs::path& base_model) {
  const fs::path path = base_model / "config.json";
  MS2VLLM_ASSIGN_OR_RETURN(nlohmann::ordered_json config, ReadJsonFile(path));
  if (!config.is_object()) return MakeError(ErrorCode::kInvalidInput, path.string() + ": not a JSON object");
  return config;
}

// quantization_config.group_size: -1 is per channel.
int64_t GroupSizeField(const Plan& plan) {
  return plan.per_channel || !plan.group_size ? -1 : static_cast<int64_t>(*plan.group_size);
}

// A Python regex matching exactly `name`: vLLM and GPTQModel match `dynamic` keys with re.match.
std::string ExactNamePattern(const std::string& name) {
  std::string pattern = "^";
  for (char c : name) {
    if (std::string_view(".^$*+?()[]{}|\\").find(c) != std::string_view::npos) pattern += '\\';
    pattern += c;
  }
  return pattern + "$";
}

// vLLM has bfloat16 kernels only in Marlin, which takes AWQ and symmetric GPTQ of group size 32,
// 64 or 128 (GPTQ also per channel); the rest runs in float16 alone, and vLLM refuses to start
// when config.json asks for bfloat16 ("not supported for quantization method").
bool VllmRunsOnlyFloat16(const Plan& plan, bool symmetric) {
  const int64_t group = GroupSizeField(plan);
  const bool marlin_group = group == 32 || group == 64 || group == 128 || group == -1;
  return !marlin_group || (plan.target == TargetTool::kGptq && !symmetric);
}

// Model types vLLM refuses in float16 (numerically unstable there): no dtype loads them in vLLM
// when the layout runs only in float16, so they keep theirs for the other loaders.
std::optional<std::string> RefusedInFloat16(const nlohmann::ordered_json& config) {
  static constexpr std::string_view kUnstableInFloat16[] = {"gemma2", "gemma3", "gemma3_text", "glm4", "plamo2"};
  const auto type = config.find("model_type");
  if (type == config.end() || !type->is_string()) return std::nullopt;
  const std::string name = type->get<std::string>();
  const bool refused = std::find(std::begin(kUnstableInFloat16), std::end(kUnstableInFloat16), name) !=
                       std::end(kUnstableInFloat16);
  return refused ? std::optional(name) : std::nullopt;
}

// Makes `config` state float16, returning each change as `key "old" -> "float16"`. transformers
// writes the dtype as torch_dtype, or since 4.56 as dtype; a config that states none is read by
// vLLM as float32, which it runs as bfloat16 where the GPU can, so torch_dtype is added.
std::vector<std::string> StateFloat16(nlohmann::ordered_json& config) {
  std::vector<std::string> changes;
  bool stated = false;
  for (const char* key : {"torch_dtype", "dtype"}) {
    auto it = config.find(key);
    if (it == config.end()) continue;
    stated = true;
    if (*it == "float16") continue;
    changes.push_back(std::string(key) + " " + WithoutPlaceholders(it->dump()) + " -> \"float16\"");
    *it = "float16";
  }
  if (!stated) {
    config["torch_dtype"] = "float16";
    changes.push_back("torch_dtype (none) -> \"float16\"");
  }
  return changes;
}

// What --out-dir will say of the directory's loaders, known before anything is written, so a
// --dry-run says it too.
void WarnOfLoaders(ConvertReport& report, const nlohmann::ordered_json& base_config) {
  if (base_config.contains("quantization_config")) {
    report.warnings.Add(WarningKind::kBaseQuantized, (*report.base_model / "config.json").string());
  }
  if (report.plan.target == TargetTool::kGptq && !report.symmetric && report.plan.gptq_format == GptqFormat::kV1) {
    report.warnings.Add(WarningKind::kGptqV1Asymmetric, report.target.string());
  }
  if (!VllmRunsOnlyFloat16(report.plan, report.symmetric)) return;
  if (const auto type = RefusedInFloat16(base_config)) {
    report.warnings.Add(WarningKind::kNoDtypeForVllm, "config.json model_type " + *type);
    return;
  }
  nlohmann::ordered_json changed = base_config;
  for (const auto& change : StateFloat16(changed)) {
    report.warnings.Add(WarningKind::kFloat16ForVllm, "config.json " + change);
  }
}

}  // namespace

std::vector<std::string> StateFloat16ForVllm(const Plan& plan, bool symmetric, nlohmann::ordered_json& config) {
  if (!VllmRunsOnlyFloat16(plan, symmetric) || RefusedInFloat16(config)) return {};
  return StateFloat16(config);
}

Status CheckBaseModelDirectory(const fs::path& base_model) {
  std::error_code ec;
  if (!fs::exists(base_model, ec)) {
    return MakeError(ErrorCode::kInvalidInput, base_model.string() +
                                                   ": no such directory (--base-model is the float model's local "
                                                   "directory: download a Hugging Face model first)");
  }
  if (!fs::is_directory(base_model, ec)) {
    return MakeError(ErrorCode::kInvalidInput,
                     base_model.string() + ": not a directory; --base-model is the float model's directory");
  }
  if (!fs::exists(base_model / "config.json", ec)) {
    return MakeError(ErrorCode::kInvalidInput, base_model.string() + ": has no config.json");
  }
  return Ok{};
}

Status CheckModelDirectoryRequest(ConvertReport& report) {
  const fs::path& base_model = *report.base_model;
  // Refused now, not after the weights: a --dry-run says it too.
  MS2VLLM_ASSIGN_OR_RETURN(const nlohmann::ordered_json base_config, ReadBaseConfig(base_model));
  // Refused rather than warned of: no loader reads the directory, and a script checking the exit
  // status would go on to deploy it.
  const std::vector<std::string> mismatches = BaseConfigMismatches(report.plan, base_config);
  if (!mismatches.empty()) {
    std::string problems;
    for (const auto& mismatch : mismatches) problems += (problems.empty() ? "" : "; ") + mismatch;
    // The config beside the weights was not named by the user: say where it came from.
    const std::string whose = report.base_beside_weights
                                  ? "taken as the base model's for want of --base-model; give the float model's "
                                    "directory with --base-model"
                                  : "is it the config of the float model this checkpoint was quantized from?";
    return MakeError(ErrorCode::kInvalidInput, (base_model / "config.json").string() +
                                                   ": does not describe this checkpoint, so no loader would read "
                                                   "the directory (" + whose + "): " + problems);
  }
  // The copy takes regular files; a link to nothing (tokenizer.json, say) would go missing unsaid.
  MS2VLLM_ASSIGN_OR_RETURN(const BaseFiles files, ListBaseFiles(report));
  for (const auto& link : files.dangling) report.warnings.Add(WarningKind::kBrokenBaseFile, link.string());
  const bool tokenizer = std::any_of(files.copied.begin(), files.copied.end(),
                                     [](const fs::path& file) { return IsTokenizerFile(file.filename().string()); });
  if (!tokenizer) report.warnings.Add(WarningKind::kNoTokenizer, base_model.string());
  WarnOfLoaders(report, base_config);
  return Ok{};
}

nlohmann::ordered_json QuantizationConfig(const Plan& plan, bool symmetric, bool fused_names) {
  // The float linears, then the layers vLLM fuses from float ones alone (by their fused name).
  std::vector<std::string> exempted = plan.float_linears;
  if (fused_names) exempted.insert(exempted.end(), plan.float_fused_layers.begin(), plan.float_fused_layers.end());
  const int64_t group = GroupSizeField(plan);
  nlohmann::ordered_json config;
  if (plan.target == TargetTool::kAwq) {
    config["quant_method"] = "awq";
    config["bits"] = 4;
    config["group_size"] = group;
    config["zero_point"] = true;
    config["version"] = "gemm";
    config["modules_to_not_convert"] = exempted;
    if (!plan.quantized_heads.empty()) config["lm_head"] = true;
    return config;
  }
  config["quant_method"] = "gptq";
  config["bits"] = plan.bits;
  config["group_size"] = group;
  config["desc_act"] = false;
  config["sym"] = symmetric;
  config["checkpoint_format"] = plan.gptq_format == GptqFormat::kV2 ? "gptq_v2" : "gptq";
  if (!plan.quantized_heads.empty()) config["lm_head"] = true;  // vLLM and GPTQModel read it
  // GPTQ has no modules_to_not_convert; a "-:" rule of `dynamic` tells vLLM and GPTQModel to
  // build that linear unquantized, which is what its float weight needs.
  if (!exempted.empty()) {
    nlohmann::ordered_json dynamic = nlohmann::ordered_json::object();
    for (const auto& linear : exempted) dynamic["-:" + ExactNamePattern(linear)] = nlohmann::ordered_json::object();
    config["dynamic"] = std::move(dynamic);
  }
  return config;
}

std::vector<std::string> DescribeModelDirectoryFiles(const ConvertReport& report) {
  std::vector<std::string> lines;
  if (report.layout.files.size() > 1) lines.push_back("model.safetensors.index.json: the shards' weight_map");
  const std::string quantization = QuantizationConfig(report.plan, report.symmetric).dump();
  const std::string base = report.base_model->string();
  lines.push_back("config.json: " + base + "'s, with quantization_config " + quantization);
  if (report.plan.target == TargetTool::kGptq) lines.push_back("quantize_config.json: " + quantization);
  std::string copied;
  if (auto files = ListBaseFiles(report)) {
    for (const auto& file : files->copied) copied += (copied.empty() ? "" : ", ") + file.filename().string();
  }
  lines.push_back("copied from " + base + ": " + (copied.empty() ? std::string("nothing") : copied));
  return lines;
}

Status WriteModelDirectoryFiles(const ConvertReport& report, const Staging& staging) {
  if (report.layout.files.size() > 1) {
    MS2VLLM_TRY(WriteShardIndex(staging.PathFor("model.safetensors.index.json"), report.plan, report.layout));
  }
  const nlohmann::ordered_json quantization = QuantizationConfig(report.plan, report.symmetric);
  if (report.plan.target == TargetTool::kGptq) {
    MS2VLLM_TRY(WriteJsonFile(staging.PathFor("quantize_config.json"), quantization));
  }
  MS2VLLM_ASSIGN_OR_RETURN(nlohmann::ordered_json config, ReadBaseConfig(*report.base_model));
  StateFloat16ForVllm(report.plan, report.symmetric, config);
  config["quantization_config"] = quantization;
  MS2VLLM_TRY(WriteJsonFile(staging.PathFor("config.json"), config));
  MS2VLLM_ASSIGN_OR_RETURN(const BaseFiles files, ListBaseFiles(report));
  for (const auto& file : files.copied) MS2VLLM_TRY(CopyFileDurably(file, staging.PathFor(file.filename().string())));
  return Ok{};
}

}  // namespace ms2vllm
