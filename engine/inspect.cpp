#include "engine/inspect.h"

#include <algorithm>
#include <unordered_map>

#include "engine/input_error.h"
#include "engine/offset_scan.h"
#include "engine/plan.h"
#include "engine/verify_files.h"
#include "engine/weight_range_scan.h"
#include "io/checkpoint.h"
#include "io/description.h"
#include "io/model_locator.h"

namespace ms2vllm {
namespace fs = std::filesystem;
namespace {

using Packing = LinearGeometry::Packing;

// Like --model; a converted model directory (model.safetensors[.index.json]) is shown too.
Result<fs::path> LocateWeights(const fs::path& path) {
  auto located = LocateModel(path, fs::path{}, "PATH");  // a given description: no search for one yet
  if (located) return located->weights;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (auto converted = LocateConverted(path)) return converted->weights;
  }
  return located.take_error();
}

// "gptq (checkpoint_format gptq_v2), 4-bit, group size 64 (config.json)" for a converted model
// directory whose config declares its quantization; unset otherwise.
std::optional<std::string> DeclaredLayout(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return std::nullopt;
  auto files = LocateConverted(path);
  if (!files) return std::nullopt;
  const DeclaredQuantization declared = ReadDeclaredQuantization(*files);
  if (!declared.target) return std::nullopt;
  std::string text = declared.target == TargetTool::kAwq ? "awq" : "gptq";
  if (declared.gptq_format == GptqFormat::kV2) text += " (checkpoint_format gptq_v2)";
  if (declared.bits) text += ", " + std::to_string(*declared.bits) + "-bit";
  if (declared.group_size) {
    text += *declared.group_size == -1 ? ", per-channel" : ", group size " + std::to_string(*declared.group_size);
  }
  return text + " (" + declared.source + ")";
}

Result<Description> FindDescription(const InspectRequest& request, Inspection& inspection) {
  fs::path path;
  if (request.json) {
    path = *request.json;
  } else {
    MS2VLLM_ASSIGN_OR_RETURN(ModelFiles files, LocateModel(request.path, std::nullopt, "PATH"));
    path = files.description;
  }
  inspection.description = path;
  return LoadDescription(path.string());
}

void AddProblem(Inspection& inspection, Error error) {
  for (const auto& problem : inspection.problems) {
    if (problem.message == error.message) return;  // the same fault seen by two plans
  }
  inspection.problems.push_back(std::move(error));
}

std::string PackingName(const Plan& plan) {
  bool along_out = false, along_in = false, unpacked = false;
  for (const auto& t : plan.tensors) {
    if (t.kind != TransformKind::kQWeight) continue;
    along_out |= t.geometry.packing == Packing::kPairsAlongOut;
    along_in |= t.geometry.packing == Packing::kPairsAlongIn;
    unpacked |= t.geometry.packing == Packing::kNone;
  }
  // An ascendV1 save pairs along out beside [out, G] scales and along in beside [out, 1] ones.
  if ((along_out || along_in) && unpacked) return "mixed: some weights packed (ascendV1), some not";
  if (along_out && along_in) return "ascendV1: two 4-bit values per byte, paired along out (along in beside one-column scales)";
  if (along_out) return "ascendV1: two 4-bit values per byte, paired along out";
  if (along_in) return "ascendV1: two 4-bit values per byte, paired along in";
  return "none: one value per byte";
}

// What the tensors say about the quantization, from a plan that was built.
void Describe(const Plan& plan, Inspection& inspection) {
  inspection.bits = plan.bits;
  for (const auto& t : plan.tensors) inspection.linears += t.kind == TransformKind::kQWeight;
  inspection.per_channel = plan.per_channel;
  if (!plan.per_channel) inspection.group_size = plan.group_size;
  inspection.group_size_conflict = plan.group_size_conflict;
  inspection.offsets_missing = plan.all_offsets_missing && inspection.linears > 0;
  inspection.packing = PackingName(plan);
  inspection.float_linears = plan.float_linears;
  for (const auto& line : plan.warnings.Lines()) inspection.warnings.push_back(line);
  if (inspection.linears == 0) {
    inspection.warnings.push_back("no quantized linear (W4A16/W8A16 weight) in the description: a conversion only copies");
  }
}

// Plans for AWQ and GPTQ, one offset scan, one pass over the 4-bit weights, and the verdict for
// each target.
void JudgeTargets(const Checkpoint& checkpoint, const Description& description, const InspectRequest& request,
                  Inspection& inspection) {
  PlanOptions options;
  options.packed = request.packed;
  options.target = TargetTool::kAwq;
  auto awq = BuildPlan(checkpoint.table(), description, options);
  options.target = TargetTool::kGptq;  // v1: the scan then also finds zero points v1 cannot store
  auto gptq = BuildPlan(checkpoint.table(), description, options);
  for (auto* plan : {&awq, &gptq}) {
    if (!*plan && plan->error().code == ErrorCode::kInvalidInput) {
      AddProblem(inspection, NamingTheFile(plan->error(), checkpoint, description));
    }
  }
  const Plan* scanned = gptq ? &*gptq : awq ? &*awq : nullptr;
  std::optional<Error> offsets_bad, v1_bad;
  bool mostly_clamped = false;
  if (scanned) {
    Describe(*scanned, inspection);
    Warnings warnings;
    auto scan = ScanOffsets(*scanned, checkpoint, warnings);
    if (auto read = ScanWeightRange(*scanned, checkpoint, warnings); !read) {
      AddProblem(inspection, read.take_error());
    }
    // The conversion warns of weights mostly out of range and writes them; its output is
    // unusable, so here that is a problem, which a script checking `ok` or the exit status sees.
    const std::string mostly_clamped_line = warnings.Line(WarningKind::kMostlyClamped);
    for (const auto& line : warnings.Lines()) {
      if (line != mostly_clamped_line) inspection.warnings.push_back(line);
    }
    mostly_clamped = !mostly_clamped_line.empty();
    if (mostly_clamped) AddProblem(inspection, MakeError(ErrorCode::kInvalidInput, mostly_clamped_line));
    if (scan) {
      inspection.symmetric = scan->all_zero;
    } else if (scan.error().code == ErrorCode::kUnsupported) {
      inspection.symmetric = false;  // an offset of -2^(b-1) is not zero
      v1_bad = scan.error();
    } else {
      offsets_bad = scan.error();
      AddProblem(inspection, NamingTheFile(scan.error(), checkpoint, description));
    }
  }
  auto verdict = [&](std::string name, const Result<Plan>& plan, const std::optional<Error>& extra) {
    TargetVerdict v{std::move(name), false, ""};
    if (!plan) {
      v.reason = plan.error().message;
    } else if (offsets_bad) {
      v.reason = offsets_bad->message;
    } else if (extra) {
      v.reason = extra->message;
    } else if (mostly_clamped) {  // every layout would hold the same clamped values
      v.reason = "the converted weights would be unusable (see problems)";
    } else {
      v.ok = true;
    }
    inspection.targets.push_back(std::move(v));
  };
  verdict("awq", awq, std::nullopt);
  verdict("gptq", gptq, v1_bad);
  verdict("gptq_v2", gptq, std::nullopt);
  // A checkpoint no layout accepts is a problem of the checkpoint, not a choice of target.
  const bool any = std::any_of(inspection.targets.begin(), inspection.targets.end(), [](const TargetVerdict& t) { return t.ok; });
  if (!any && inspection.problems.empty()) {
    AddProblem(inspection, MakeError(ErrorCode::kUnsupported, "no target layout accepts this checkpoint: " +
                                                                  inspection.targets.back().reason));
  }
}

}  // namespace

Inspection Inspect(const InspectRequest& request) {
  Inspection inspection;
  auto weights = LocateWeights(request.path);
  if (!weights) {
    inspection.problems.push_back(weights.take_error());
    return inspection;
  }
  inspection.weights = *weights;
  auto checkpoint = Checkpoint::Open(*weights);
  if (!checkpoint) {
    inspection.problems.push_back(checkpoint.take_error());
    return inspection;
  }
  for (const auto& file : checkpoint->Files()) inspection.files.push_back(file);
  inspection.file_bytes = checkpoint->TotalFileBytes();

  auto description = FindDescription(request, inspection);
  std::unordered_map<std::string_view, std::string_view> labels;
  if (description) {
    inspection.model_quant_type = description->model_quant_type;
    inspection.described_group_size = description->group_size;
    for (const auto& entry : description->entries) labels.emplace(entry.name, entry.label);
  }
  for (const auto& tensor : checkpoint->table().tensors()) {
    auto label = labels.find(tensor.name);
    inspection.tensors.push_back({tensor.name, tensor.dtype, tensor.shape, tensor.byte_size,
                                  label == labels.end() ? std::string() : std::string(label->second)});
    inspection.tensor_bytes += tensor.byte_size;
  }

  // A checkpoint ms2vllm already converted has qweights and needs no description.
  const auto& tensors = checkpoint->table().tensors();
  auto converted = std::find_if(tensors.begin(), tensors.end(), [](const TensorInfo& t) { return t.name.ends_with(".qweight"); });
  if (converted != tensors.end()) {
    inspection.converted_layout = DeclaredLayout(request.path);
    inspection.warnings.push_back("already in a converted (AWQ/GPTQ) layout: " + converted->name);
    for (const char* target : {"awq", "gptq", "gptq_v2"}) {
      inspection.targets.push_back({target, false, "the checkpoint is already converted (" + converted->name + ")"});
    }
    return inspection;
  }
  if (!description) {
    inspection.problems.push_back(description.take_error());
    const char* why = request.json ? "the description given with --json is not usable (see the problem)"
                                   : "no description (give --json)";
    for (const char* target : {"awq", "gptq", "gptq_v2"}) inspection.targets.push_back({target, false, why});
    return inspection;
  }
  JudgeTargets(*checkpoint, *description, request, inspection);
  return inspection;
}

}  // namespace ms2vllm
