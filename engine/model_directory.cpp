#include "engine/model_directory.h"

#include <algorithm>

#include "io/json_file.h"

namespace ms2vllm {
namespace fs = std::filesystem;
namespace {

// Weight files and indexes of the float model are replaced by ours; configs are rewritten. Other
// weights (ONNX, TFLite), quantization leftovers (AutoAWQ's quant_config.json, msModelSlim's
// description, a base directory that is msModelSlim's own output), LoRA adapter files (which
// make transformers load the directory as an adapter) and backups are not the model's: left out.
bool IsReplacedFile(const std::string& name) {
  static constexpr std::string_view kSuffixes[] = {".safetensors", ".bin", ".pt",   ".pth", ".ckpt", ".h5",  ".msgpack",
                                                   ".gguf",        ".onnx", ".onnx_data", ".tflite", ".ot", ".index.json",
                                                   ".bak",         "~"};
  static constexpr std::string_view kPrefixes[] = {".", "quant_model_", "adapter_"};
  static constexpr std::string_view kNames[] = {"config.json", "quantize_config.json", "quant_config.json"};
  auto any = [](const auto& list, auto&& matches) { return std::any_of(std::begin(list), std::end(list), matches); };
  return any(kNames, [&](std::string_view n) { return name == n; }) ||
         any(kPrefixes, [&](std::string_view prefix) { return name.starts_with(prefix); }) ||
         any(kSuffixes, [&](std::string_view suffix) { return name.ends_with(suffix); });
}

}  // namespace

Status CheckModelDirectoryRequest(const ConvertRequest& request, const ConvertReport& report) {
  if (report.plan.group_size_conflict) {
    return MakeError(ErrorCode::kUnsupported, "linears disagree on the group size: " + *report.plan.group_size_conflict +
                                                  "; one quantization_config cannot describe both");
  }
  if (request.base_model) {
    std::error_code ec;
    if (!fs::exists(*request.base_model, ec)) {
      return MakeError(ErrorCode::kInvalidInput, request.base_model->string() + ": no such directory (--base-model)");
    }
    if (!fs::is_directory(*request.base_model, ec)) {
      return MakeError(ErrorCode::kInvalidInput,
                       request.base_model->string() + ": not a directory; --base-model is the float model's directory");
    }
    if (!fs::exists(*request.base_model / "config.json", ec)) {
      return MakeError(ErrorCode::kInvalidInput, request.base_model->string() + ": has no config.json");
    }
  }
  return Ok{};
}

nlohmann::ordered_json QuantizationConfig(const ConvertReport& report) {
  const Plan& plan = report.plan;
  const int64_t group = plan.per_channel || !plan.group_size ? -1 : static_cast<int64_t>(*plan.group_size);
  nlohmann::ordered_json config;
  if (plan.target == TargetTool::kAwq) {
    config["quant_method"] = "awq";
    config["bits"] = 4;
    config["group_size"] = group;
    config["zero_point"] = true;
    config["version"] = "gemm";
    config["modules_to_not_convert"] = plan.float_linears;
    return config;
  }
  config["quant_method"] = "gptq";
  config["bits"] = plan.bits;
  config["group_size"] = group;
  config["desc_act"] = false;
  config["sym"] = report.symmetric;
  config["checkpoint_format"] = plan.gptq_format == GptqFormat::kV2 ? "gptq_v2" : "gptq";
  return config;
}

Status WriteModelDirectoryFiles(const ConvertRequest& request, ConvertReport& report, const Staging& staging) {
  if (report.layout.files.size() > 1) {
    MS2VLLM_TRY(WriteJsonFile(staging.PathFor("model.safetensors.index.json"), ShardIndexJson(report.plan, report.layout)));
  }
  const nlohmann::ordered_json quantization = QuantizationConfig(report);
  if (report.plan.target == TargetTool::kGptq) {
    MS2VLLM_TRY(WriteJsonFile(staging.PathFor("quantize_config.json"), quantization));
  }
  if (!request.base_model) {
    report.warnings.Add(WarningKind::kNoBaseModel, report.target.string());
    return Ok{};
  }
  MS2VLLM_ASSIGN_OR_RETURN(nlohmann::ordered_json config, ReadJsonFile(*request.base_model / "config.json"));
  if (!config.is_object()) {
    return MakeError(ErrorCode::kInvalidInput, (*request.base_model / "config.json").string() + ": not a JSON object");
  }
  config["quantization_config"] = quantization;
  MS2VLLM_TRY(WriteJsonFile(staging.PathFor("config.json"), config));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(*request.base_model, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file(ec) || IsReplacedFile(name)) continue;
    MS2VLLM_TRY(CopyFileDurably(entry.path(), staging.PathFor(name)));
  }
  if (ec) return MakeError(ErrorCode::kInvalidInput, request.base_model->string() + ": cannot list: " + ec.message());
  return Ok{};
}

}  // namespace ms2vllm
