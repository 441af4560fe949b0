// `ms2vllm inspect PATH [--json DESC] [--json-output]`: what a checkpoint holds and can become.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "engine/inspect.h"
#include "io/checkpoint.h"
#include "io/json_scan.h"
#include "io/tensor_table.h"
#include "tools/cli_support.h"
#include "tools/command_line.h"
#include "tools/commands.h"
#include "tools/exit_codes.h"

namespace ms2vllm {
namespace {

using Json = nlohmann::ordered_json;

constexpr const char* kDescription =
    "Shows a checkpoint without converting it: the tensor table (name, dtype, shape, bytes, description label), the "
    "bit width, group size, symmetry and packed layout the tensors show, which target layouts it converts to (and "
    "why not), and every problem the validators find. Reads every unpacked 4-bit weight once (as long as reading "
    "them from disk) to count the values a conversion would clamp. Exit status 0 when there is no problem (a "
    "checkpoint already converted included), 3 when the input is malformed (header, description, offsets, weights "
    "mostly outside their label's bit width) or not found, 4 when no target layout accepts it.";

constexpr const char* kExamples = R"(Examples:
  ms2vllm inspect ckpt/
  ms2vllm inspect quant_model_weight_w4a16.safetensors --json quant_model_description_w4a16.json
  ms2vllm inspect ckpt/ --json-output | jq .quantization.group_size)";

const char* CodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUsage: return "usage";
    case ErrorCode::kInvalidInput: return "invalid_input";
    case ErrorCode::kUnsupported: return "unsupported";
    case ErrorCode::kOutput: return "output";
    case ErrorCode::kResources: return "resources";
    case ErrorCode::kInterrupted: return "interrupted";
    case ErrorCode::kVerifyFailed: return "verify_failed";
  }
  return "unknown";
}

template <typename T>
Json OrNull(const std::optional<T>& value) {
  return value ? Json(*value) : Json(nullptr);
}

Json ToJson(const Inspection& s) {
  Json json;
  json["weights"] = s.weights.empty() ? Json(nullptr) : Json(s.weights.string());
  json["description"] = s.description ? Json(s.description->string()) : Json(nullptr);
  json["files"] = Json::array();
  for (const auto& file : s.files) json["files"].push_back(file.string());
  json["file_bytes"] = s.file_bytes;
  json["tensor_bytes"] = s.tensor_bytes;
  json["tensors"] = Json::array();
  for (const auto& t : s.tensors) {
    json["tensors"].push_back({{"name", t.name}, {"dtype", DTypeName(t.dtype)}, {"shape", t.shape}, {"bytes", t.bytes},
                               {"label", t.label.empty() ? Json(nullptr) : Json(t.label)}});
  }
  Json& q = json["quantization"];
  q["converted_layout"] = OrNull(s.converted_layout);
  q["model_quant_type"] = OrNull(s.model_quant_type);
  q["bits"] = OrNull(s.bits);
  q["linears"] = s.linears;
  q["group_size"] = OrNull(s.group_size);
  q["per_channel"] = s.per_channel;
  q["described_group_size"] = OrNull(s.described_group_size);
  q["group_size_conflict"] = OrNull(s.group_size_conflict);
  q["symmetric"] = OrNull(s.symmetric);
  q["offsets_missing"] = s.offsets_missing;
  q["packing"] = s.packing.empty() ? Json(nullptr) : Json(s.packing);
  q["float_linears"] = s.float_linears;
  json["targets"] = Json::object();
  for (const auto& t : s.targets) json["targets"][t.target] = {{"ok", t.ok}, {"reason", t.ok ? Json(nullptr) : Json(t.reason)}};
  json["warnings"] = s.warnings;
  json["problems"] = Json::array();
  for (const auto& p : s.problems) {
    json["problems"].push_back({{"code", CodeName(p.code)}, {"exit_code", ExitCodeFor(p.code)}, {"message", p.message}});
  }
  json["ok"] = s.ok();
  return json;
}

std::string Quantization(const Inspection& s) {
  if (s.converted_layout) return "converted: " + *s.converted_layout;
  if (!s.bits) return s.model_quant_type ? *s.model_quant_type + " (no conversion possible: see targets)" : "unknown";
  std::string text = s.model_quant_type.value_or("?") + ": " + std::to_string(*s.bits) + "-bit, ";
  text += s.per_channel ? "per-channel" : s.group_size ? "group size " + std::to_string(*s.group_size) : "no group";
  if (s.group_size_conflict) text += " (linears disagree: " + *s.group_size_conflict + ")";
  text += ", " + std::to_string(s.linears) + " quantized linears, ";
  if (!s.symmetric) {
    text += "symmetry unknown";
  } else if (*s.symmetric) {
    text += s.offsets_missing ? "symmetric (no offsets)" : "symmetric (all offsets 0)";
  } else {
    text += "asymmetric";
  }
  return text;
}

// Names and messages come from the files: escaped, as the error lines are, so a crafted tensor
// name cannot drive the terminal.
void PrintText(const Inspection& s) {
  // Of a sharded checkpoint, `files` holds its index too, which file_bytes does not count.
  const bool indexed = IsShardIndexPath(s.weights);
  const size_t shards = s.files.size() - (indexed && !s.files.empty() ? 1 : 0);
  std::printf("weights:       %s (%zu %s, %.2f MB)\n", s.weights.empty() ? "-" : Printable(s.weights.string()).c_str(),
              shards, indexed ? "shard(s)" : "file(s)", s.file_bytes / 1e6);
  std::printf("description:   %s\n", s.description ? Printable(s.description->string()).c_str() : "-");
  std::printf("tensors:       %zu (%.2f MB)\n", s.tensors.size(), s.tensor_bytes / 1e6);
  std::vector<std::string> names;
  size_t width = 4;
  for (const auto& t : s.tensors) width = std::max(width, names.emplace_back(Printable(t.name)).size());
  if (!s.tensors.empty()) {
    std::printf("  %-*s %-7s %-18s %14s  %s\n", static_cast<int>(width), "name", "dtype", "shape", "bytes", "label");
  }
  for (size_t i = 0; i < s.tensors.size(); ++i) {
    const auto& t = s.tensors[i];
    std::printf("  %-*s %-7s %-18s %14llu  %s\n", static_cast<int>(width), names[i].c_str(), DTypeName(t.dtype).data(),
                ShapeString(t.shape).c_str(), static_cast<unsigned long long>(t.bytes),
                t.label.empty() ? "-" : Printable(t.label).c_str());
  }
  std::printf("quantization:  %s\n", Quantization(s).c_str());
  if (!s.packing.empty()) std::printf("packed:        %s\n", Printable(s.packing).c_str());
  if (!s.float_linears.empty()) {
    std::printf("float linears: %zu (e.g. %s)\n", s.float_linears.size(), Printable(s.float_linears.front()).c_str());
  }
  std::printf("targets:\n");
  for (const auto& t : s.targets) {
    std::printf("  %-8s %s%s\n", t.target.c_str(), t.ok ? "yes" : "no: ", Printable(t.reason).c_str());
  }
  for (const auto& w : s.warnings) std::printf("warning:       %s\n", Printable(w).c_str());
  if (s.problems.empty()) std::printf("problems:      none\n");
  for (const auto& p : s.problems) std::printf("problem:       %s\n", Printable(p.message).c_str());
}

}  // namespace

int RunInspect(int argc, char** argv) {
  CLI::App app{kDescription};
  app.name("ms2vllm inspect");
  InspectRequest request;
  std::string path, json, packed = "auto";
  bool json_output = false;
  app.add_option("path", path, "the checkpoint: a .safetensors file, a sharded index, or a directory")
      ->required()
      ->check(NonEmpty());
  app.add_option("--json", json, "the quant_model_description*.json (found beside the weights when omitted)")
      ->check(NonEmpty());
  app.add_flag("--json-output,--json_output", json_output, "print one JSON object (for scripts) instead of text");
  app.add_option("--packed", packed, "two 4-bit values per byte (ascendV1): auto, yes or no")
      ->check(CLI::IsMember({"auto", "yes", "no"}))->capture_default_str();
  app.footer(kExamples);
  if (auto status = ParseCommandLine(app, argc, argv, "ms2vllm inspect --help")) return *status;
  request.path = path;
  if (!json.empty()) request.json = json;
  request.packed = packed == "yes" ? PackedMode::kYes : packed == "no" ? PackedMode::kNo : PackedMode::kAuto;

  const Inspection inspection = Inspect(request);
  if (json_output) {
    // Paths and names need not be UTF-8; nlohmann throws on such bytes unless told to replace them.
    std::printf("%s\n", ToJson(inspection).dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else if (!inspection.weights.empty() || inspection.problems.empty()) {
    PrintText(inspection);  // with no weights found there is nothing to show but the error below
  }
  if (inspection.ok()) return kExitOk;
  // The report lists every problem; stderr gets the first, as from any other failing command.
  return ReportError(inspection.problems.front());
}

}  // namespace ms2vllm
