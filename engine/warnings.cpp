#include "engine/warnings.h"

namespace ms2vllm {
namespace {

constexpr size_t kNamed = 3;

std::string Describe(WarningKind kind, uint64_t tensors, uint64_t values) {
  const std::string n = std::to_string(tensors);
  switch (kind) {
    case WarningKind::kNotInDescription:
      return n + " tensor(s) of the checkpoint are not in the description and are not written (as the script does)";
    case WarningKind::kNotInCheckpoint:
      return n + " tensor(s) the description lists are not in the checkpoint (one shard given instead of its index?)";
    case WarningKind::kMissingOffset:
      return n + " linear(s) have no weight_offset (symmetric): wrote qzeros for offset 0, which loaders need";
    case WarningKind::kLegacyScaleShape:
      return n + " scale/offset tensor(s) have the legacy [out*G, 1] or [out] shape: reshaped to [out, G]";
    case WarningKind::kClampedWeights:
      return std::to_string(values) + " weight value(s) in " + n + " tensor(s) are outside the signed range: clamped, as the script does";
    case WarningKind::kMostlyClamped:
      return n + " weight tensor(s) have a quarter or more of their values outside the signed range of their label's "
             "bit width, as weights of another width would (8-bit ones labelled W4A16?): check the description's "
             "labels, as the converted weights are unusable if they are wrong";
    case WarningKind::kClampedOffsets:
      return std::to_string(values) + " offset value(s) in " + n + " tensor(s) are outside the signed range: clamped, as the script does";
    case WarningKind::kScalesLostInCast:
      return std::to_string(values) + " scale value(s) in " + n + " tensor(s) are outside the --scales-dtype range: " +
             "they become infinite or 0 (keep the input's dtype, or bf16, to hold them)";
    case WarningKind::kNonFiniteScales:
      return std::to_string(values) + " scale value(s) in " + n + " tensor(s) are NaN or infinite in the input, and so "
             "in the output: their linears compute NaN (a failed calibration?)";
    case WarningKind::kPackedInput:
      return n + " W4A16 weight(s) hold two 4-bit values per byte (msModelSlim ascendV1): unpacked while converting";
    case WarningKind::kBaseBesideWeights:
      return "no --base-model: config.json and the tokenizer files beside the weights (msModelSlim copies the "
             "float model's) are the base model's";
    case WarningKind::kOldTargetLeft:
      return "the directory --force replaced could not be removed whole (another user's directory, which this user "
             "may not empty?): what is left of it stays, under a temp name";
    case WarningKind::kBaseQuantized:
      return "the base model's config.json already declares a quantization_config, which this conversion's "
             "replaces; the base model is meant to be the float model the checkpoint was quantized from";
    case WarningKind::kNoTokenizer:
      return "the base model holds no tokenizer (tokenizer.json, tokenizer.model, vocab.json, ...; "
             "tokenizer_config.json alone builds none): the output directory gets none, and vLLM and transformers "
             "load the tokenizer from it unless told another (vLLM's --tokenizer); copy the float model's tokenizer "
             "files into it, or give a --base-model that has them";
    case WarningKind::kBrokenBaseFile:
      return n + " file(s) of the --base-model are symlinks to nothing (a partly downloaded cache?): not copied, "
             "so the directory lacks them";
    case WarningKind::kUndescribedLinearPart:
      return n + " weight/scale/offset tensor(s) are missing from the description but needed by their linear: converted";
    case WarningKind::kFloatLinearsInGptq:
      return n + " linear(s) are left in float by msModelSlim: --out-dir's GPTQ config exempts them by \"-:\" rules "
             "in `dynamic`, which vLLM and GPTQModel follow; AutoGPTQ and transformers read no such rule and expect "
             "every linear quantized";
    case WarningKind::kFloatLinearsInAwq:
      return n + " linear(s) are left in float by msModelSlim: --out-dir's AWQ config lists them in "
             "modules_to_not_convert, which vLLM and transformers follow; AutoAWQ matches that list against names "
             "within a decoder layer, so it builds them as quantized layers and cannot load their float weights";
    case WarningKind::kQuantizedHead:
      return "the output head is quantized: --out-dir's config says so (lm_head: true), which vLLM (GPTQ, and AWQ "
             "through its Marlin kernels) and GPTQModel follow; AutoAWQ, AutoGPTQ, transformers and vLLM's plain awq "
             "method build the head in float and cannot load it";
    case WarningKind::kGptqV2Readers:
      return "checkpoint_format gptq_v2 loads in GPTQModel and in vLLM since late 2025 (its pull request 26092); "
             "AutoGPTQ refuses it and older vLLM reads its zero points as v1's, one off";
    case WarningKind::kGptqV1Asymmetric:
      return "GPTQModel refuses sym=false in checkpoint_format gptq (v1) unless it quantized the model itself; vLLM "
             "loads it; for GPTQModel, convert with --gptq-format v2";
    case WarningKind::kFloat16ForVllm:
      return "config.json states float16, as AutoGPTQ and AutoAWQ checkpoints do: vLLM runs this layout "
             "(asymmetric GPTQ, or a group size its Marlin kernels do not take) only in float16 and refuses the "
             "base model's bfloat16";
    case WarningKind::kNoDtypeForVllm:
      return "vLLM will not load the directory: it runs this layout (asymmetric GPTQ, or a group size its Marlin "
             "kernels do not take) only in float16, and refuses this model type in float16 (the dtype is kept for "
             "the other loaders); vLLM loads this model type only as AWQ or symmetric GPTQ of group size 32, 64 or "
             "128, which its Marlin kernels run in bfloat16";
    case WarningKind::kPartlyFloatFusedLayer:
      return n + " layer(s) that vLLM fuses from q/k/v_proj, gate/up_proj or q_a_proj/kv_a_proj_with_mqa have some "
             "parts left in float by msModelSlim and others quantized: vLLM needs one precision per fused layer and "
             "will refuse them";
    case WarningKind::kDescribedGroupSize:
      return "the description's group_size is not the one the tensors' shapes give: converted with the tensors' "
             "(is it the description of these weights?)";
    case WarningKind::kGroupSizeConflict:
      return "linears disagree on the group size: converted as they are (as the script does), but no "
             "quantization_config with one group_size describes them, so loaders given one read some wrongly "
             "(--out-dir refuses this)";
    case WarningKind::kOtherQuantizedWeights:
      return n + " weight(s) hold integer or FP8 values without a W4A16 or W8A16 label: copied unchanged (as the "
             "script does), where loaders expect float weights; --out-dir refuses them";
    case WarningKind::kOtherLabel:
      return n + " tensor(s) carry a label other than FLOAT, W4A16 and W8A16: copied unchanged (as the script does), "
             "so a loader reads them as plain tensors";
  }
  return n + " tensor(s): unknown warning";
}

}  // namespace

void Warnings::Add(WarningKind kind, const std::string& tensor, uint64_t count) {
  Entry& entry = entries_[kind];
  entry.tensors += 1;
  entry.values += count;
  if (entry.first.size() < kNamed) entry.first.push_back(tensor);
}

void Warnings::Merge(const Warnings& other) {
  for (const auto& [kind, theirs] : other.entries_) {
    Entry& entry = entries_[kind];
    entry.tensors += theirs.tensors;
    entry.values += theirs.values;
    for (const auto& name : theirs.first) {
      if (entry.first.size() < kNamed) entry.first.push_back(name);
    }
  }
}

std::vector<std::string> Warnings::Lines() const {
  std::vector<std::string> lines;
  for (const auto& entry : entries_) lines.push_back(Line(entry.first));
  return lines;
}

std::string Warnings::Line(WarningKind kind) const {
  const auto found = entries_.find(kind);
  if (found == entries_.end()) return "";
  const Entry& entry = found->second;
  std::string line = Describe(kind, entry.tensors, entry.values) + ": ";
  for (size_t i = 0; i < entry.first.size(); ++i) line += (i ? ", " : "") + entry.first[i];
  if (entry.tensors > entry.first.size()) line += ", ...";
  return line;
}

void AddClampedWeights(Warnings& warnings, const std::string& tensor, uint64_t clamped, uint64_t values) {
  if (clamped == 0) return;
  warnings.Add(WarningKind::kClampedWeights, tensor, clamped);
  // A few outliers are a quantizer's; most of the values are weights of another bit width.
  if (clamped * 4 >= values) warnings.Add(WarningKind::kMostlyClamped, tensor);
}

std::string FirstNames(const std::vector<std::string>& names) {
  std::string text;
  for (size_t i = 0; i < names.size() && i < 3; ++i) text += (i == 0 ? "" : ", ") + names[i];
  return names.size() > 3 ? text + ", ..." : text;
}

}  // namespace ms2vllm
