#include "engine/plan.h"

#include <algorithm>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "engine/cancel.h"

namespace ms2vllm {
namespace {

bool IsQuantLabel(std::string_view label) { return label == "W4A16" || label == "W8A16"; }
bool Contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }
// The layer vLLM loads `linear` into when it fuses it with its siblings ("x.qkv_proj" for
// "x.k_proj"), or nullopt. One fused layer has one precision.
std::optional<std::string> FusedLayerOf(std::string_view linear) {
  // DeepSeek V2/V3's MLA with a q LoRA: vLLM loads q_a_proj and kv_a_proj_with_mqa into one layer.
  static constexpr std::pair<std::string_view, std::string_view> kParts[] = {
      {".q_proj", ".qkv_proj"},           {".k_proj", ".qkv_proj"},
      {".v_proj", ".qkv_proj"},           {".gate_proj", ".gate_up_proj"},
      {".up_proj", ".gate_up_proj"},      {".q_a_proj", ".fused_qkv_a_proj"},
      {".kv_a_proj_with_mqa", ".fused_qkv_a_proj"}};
  for (const auto& [part, fused] : kParts) {
    if (linear.ends_with(part)) return std::string(linear.substr(0, linear.size() - part.size())) + std::string(fused);
  }
  return std::nullopt;
}

std::string Strip(std::string_view name, std::string_view suffix) {
  return std::string(name.substr(0, name.size() - suffix.size()));
}
std::optional<int> BitsOfLabel(std::string_view label) {
  if (label == "W4A16") return 4;
  if (label == "W8A16") return 8;
  return std::nullopt;
}
std::string ReplaceAll(std::string text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// The description must name tensors of this checkpoint and label some of them quantized:
// otherwise the "conversion" would be a copy whose quantization config invents a bit width.
Status CheckSomethingToConvert(const TensorTable& table, const Description& description) {
  // Else the tensor would be warned of as missing from the description, which names it.
  for (const auto& key : description.non_string_keys) {
    if (table.Contains(key)) {
      return InvalidInput(description.path + ": " + key + ": its label is not a string such as \"FLOAT\" or \"W4A16\"");
    }
  }
  bool names_a_tensor = false, labels_one_quantized = false;
  for (const auto& entry : description.entries) {
    if (!table.Contains(entry.name)) continue;
    names_a_tensor = true;
    labels_one_quantized |= IsQuantLabel(entry.label);
  }
  // Neither message starts with a tensor, so the caller names the weights file first.
  if (!names_a_tensor) {
    return InvalidInput("none of the checkpoint's tensors is named in the description " + description.path);
  }
  if (!labels_one_quantized) {
    return Unsupported("the description " + description.path +
                       " labels none of the checkpoint's tensors W4A16 or W8A16: nothing to convert");
  }
  return Ok{};
}

// Tensor names are dotted paths with a weight label; the description's other keys (version,
// model_quant_type, group_size, kv_cache_type, ...) are single words.
bool LooksLikeATensor(const DescriptionEntry& entry) {
  return Contains(entry.name, ".") && (IsQuantLabel(entry.label) || entry.label == "FLOAT");
}

// SPEC 4: --w_bit taken from the description when omitted, refused when it disagrees. A
// model_quant_type that its own tensor labels contradict is refused too: either width taken
// would pack the other's values.
Result<int> ResolveBits(const Description& description, std::optional<int> w_bit) {
  std::unordered_set<int> label_bits;
  for (const auto& entry : description.entries) {
    if (auto bits = BitsOfLabel(entry.label); bits && entry.name != "model_quant_type") label_bits.insert(*bits);
  }
  if (label_bits.size() > 1) {
    return Unsupported(description.path + ": labels tensors both W4A16 and W8A16; one bit width per checkpoint is supported");
  }
  const std::optional<int> labelled = label_bits.empty() ? std::nullopt : std::optional<int>(*label_bits.begin());
  const std::string type = description.model_quant_type.value_or("");
  const std::optional<int> typed = BitsOfLabel(type);  // other types (W8A8_DYNAMIC, ...) leave it to the labels
  if (typed && labelled && *typed != *labelled) {
    return InvalidInput(description.path + ": model_quant_type " + type +
                        " contradicts its tensor labels, which are all W" + std::to_string(*labelled) + "A16");
  }
  const std::optional<int> described = typed ? typed : labelled;
  const std::string source =
      typed ? "model_quant_type " + type : "its W" + std::to_string(described.value_or(0)) + "A16 labels";
  if (w_bit && described && *w_bit != *described) {
    return Unsupported(description.path + ": --w_bit " + std::to_string(*w_bit) + " disagrees with the description (" +
                       source + "); omit --w_bit to take it from the description");
  }
  return w_bit ? *w_bit : described.value_or(4);
}

class Planner {
 public:
  Planner(const TensorTable& table, const Description& description, const PlanOptions& options, int bits,
          const std::atomic<bool>* cancel)
      : table_(table), description_(description), options_(options), bits_(bits), per_word_(32 / bits),
        geometry_rules_(RulesFor(table, description, options, bits)), cancel_(cancel) {
    plan_.bits = bits;
    plan_.target = options.target;
    plan_.gptq_format = options.gptq_format;
    plan_.tensors.reserve(table.size());  // about one output per input: no doubling copy of 100k+ entries
  }

  Result<Plan> Run() {
    for (const auto& entry : description_.entries) {
      if (Cancelled(cancel_)) return Interrupted();
      const TensorInfo* source = table_.Find(entry.name);
      if (source == nullptr) {  // a key that is no tensor (version, model_quant_type, ...), or a missing tensor
        // A missing offset is its linear's to tell: symmetric, or an error when others have theirs.
        if (!NoteAListedOffsetMissing(entry) && LooksLikeATensor(entry)) {
          plan_.warnings.Add(WarningKind::kNotInCheckpoint, entry.name);
          plan_.not_in_checkpoint.push_back(entry.name);
        }
        continue;
      }
      used_.insert(source->name);
      MS2VLLM_TRY(ApplyRule(entry.name, entry.label, *source));
    }
    MS2VLLM_TRY(CheckLinearsAreLabelledAlike());
    MS2VLLM_TRY(CompleteLinears());
    MS2VLLM_TRY(CheckMissingOffsetsAreTheRule());
    MS2VLLM_TRY(ResolveGroupSize());
    WarnOfAContradictedGroupSize();
    NoteFloatFusedLayers();
    // Each target exempts them its own way, which some of its loaders do not follow.
    const WarningKind exempted =
        options_.target == TargetTool::kGptq ? WarningKind::kFloatLinearsInGptq : WarningKind::kFloatLinearsInAwq;
    for (const auto& linear : plan_.float_linears) plan_.warnings.Add(exempted, linear);
    NoteQuantizedHeads();
    if (options_.target == TargetTool::kGptq && options_.gptq_format == GptqFormat::kV2) {
      plan_.warnings.Add(WarningKind::kGptqV2Readers, "--gptq-format v2");
    }
    for (const auto& tensor : table_.tensors()) {
      if (used_.contains(tensor.name)) continue;
      plan_.warnings.Add(WarningKind::kNotInDescription, tensor.name);
      plan_.not_in_description.push_back(tensor.name);
    }
    return std::move(plan_);
  }

 private:
  // SPEC 2, rules 1-7, in their order.
  Status ApplyRule(const std::string& name, const std::string& label, const TensorInfo& source) {
    if (!IsQuantLabel(label)) {
      if (label != "FLOAT") plan_.warnings.Add(WarningKind::kOtherLabel, name + " (" + label + ")");
      if (name.ends_with(kScaleSuffix) || name.ends_with(kOffsetSuffix)) float_scales_and_offsets_.push_back(name);
      NoteUnconvertedWeight(name, label, source);
      Emit(Copy(name, source));
      return Ok{};
    }
    if (name.ends_with(kWeightSuffix) && !Contains(name, ".module.weight")) {
      const std::string linear = Strip(name, kWeightSuffix);
      if (table_.Contains(linear + ".module.weight")) return Ok{};
      return EmitQWeight(linear);
    }
    if (name.ends_with(kScaleSuffix)) return EmitScales(Strip(name, kScaleSuffix));
    if (name.ends_with(kOffsetSuffix)) return EmitQZeros(Strip(name, kOffsetSuffix));
    if (Contains(name, "module.weight") && !Contains(name, "model.norm")) {
      Emit(Copy(ReplaceAll(name, "module.weight", "weight"), source));
      return Ok{};
    }
    if (Contains(name, "model.norm.module.bias") || Contains(name, "model.norm.module.weight")) return Ok{};
    Emit(Copy(name, source));
    return Ok{};
  }

  // Notes a listed offset the checkpoint lacks, of a linear whose weight it holds; false for
  // any other entry.
  bool NoteAListedOffsetMissing(const DescriptionEntry& entry) {
    if (!IsQuantLabel(entry.label) || !entry.name.ends_with(kOffsetSuffix)) return false;
    if (!table_.Contains(Strip(entry.name, kOffsetSuffix) + std::string(kWeightSuffix))) return false;
    listed_missing_offsets_.push_back(entry.name);
    return true;
  }

  // A checkpoint without offsets is symmetric (SPEC 4), but one that holds some linears' offsets
  // and lacks others the description lists is incomplete (one shard given instead of the whole
  // checkpoint): taken as 0, those offsets would make their linears dequantize wrongly.
  Status CheckMissingOffsetsAreTheRule() const {
    if (listed_missing_offsets_.empty() || plan_.all_offsets_missing) return Ok{};
    const std::string& first = listed_missing_offsets_.front();
    return InvalidInput(description_.path + ": lists " + first + ", which the checkpoint lacks though it holds other " +
                        "linears' offsets; taken as 0, " + Strip(first, kOffsetSuffix) +
                        " would dequantize wrongly (one shard given instead of the whole checkpoint?)");
  }

  // A weight labelled FLOAT beside a scale or offset labelled quantized, or the reverse: written as
  // it says, the linear would be a float weight holding integers next to scales (or a qweight next
  // to a stray float copy of its scale), and verify could not tell. No layout reads that.
  Status CheckLinearsAreLabelledAlike() const {
    const auto contradiction = [&](const std::string& linear, const std::string& float_part) {
      const auto entry = std::find_if(description_.entries.begin(), description_.entries.end(),
                                      [&](const DescriptionEntry& e) { return e.name == float_part; });
      const std::string label = entry == description_.entries.end() ? "" : entry->label;
      const std::string as = label == "FLOAT" ? "labelled FLOAT"
                             : label.empty()  ? "not labelled quantized"
                                              : "labelled " + label + ", neither FLOAT nor W4A16 or W8A16,";
      return InvalidInput(description_.path + ": " + linear + ": " + float_part + " is " + as +
                          " but other parts of the linear are labelled quantized; the description contradicts itself "
                          "about this linear");
    };
    const auto has_quantized_part = [&](const std::string& linear) {
      return index_.contains(linear + ".qweight") || index_.contains(linear + ".scales") ||
             index_.contains(linear + ".qzeros");
    };
    for (const auto& linear : plan_.float_linears) {
      if (has_quantized_part(linear)) return contradiction(linear, linear + std::string(kWeightSuffix));
    }
    for (const auto& copied : plan_.other_quantized_weights) {
      const std::string& linear = copied.module;
      if (has_quantized_part(linear)) return contradiction(linear, linear + std::string(kWeightSuffix));
    }
    for (const auto& name : float_scales_and_offsets_) {
      const std::string linear = Strip(name, name.ends_with(kScaleSuffix) ? kScaleSuffix : kOffsetSuffix);
      if (has_quantized_part(linear)) return contradiction(linear, name);
    }
    return Ok{};
  }

  // Loaders need qweight, scales and qzeros together, even where the description omits a part.
  Status CompleteLinears() {
    MS2VLLM_TRY(AddUndescribedWeights());
    for (const auto& linear : linears_) {
      if (!index_.contains(linear + ".scales")) {
        UseUndescribed(linear + std::string(kScaleSuffix));
        MS2VLLM_TRY(EmitScales(linear));
      }
      if (index_.contains(linear + ".qzeros")) continue;
      if (table_.Contains(linear + std::string(kOffsetSuffix))) {
        UseUndescribed(linear + std::string(kOffsetSuffix));
        MS2VLLM_TRY(EmitQZeros(linear));
        continue;
      }
      MS2VLLM_ASSIGN_OR_RETURN(LinearGeometry geometry, Geometry(linear));
      plan_.warnings.Add(WarningKind::kMissingOffset, linear);
      OutputTensor zeros = QuantTensor(linear + ".qzeros", TransformKind::kQZerosConstant, nullptr, geometry);
      zeros.shape = {geometry.groups, geometry.out / per_word_};
      Emit(std::move(zeros));
    }
    return Ok{};
  }

  // A scale or offset labelled quantized whose weight the description leaves out: scales and
  // qzeros without their qweight would not load. A weight with a module.weight stays unwritten
  // (rule 2); one the description labels otherwise is left to its label.
  Status AddUndescribedWeights() {
    std::vector<std::string> parts_only;
    for (const auto& tensor : plan_.tensors) {
      const std::string_view suffix = tensor.kind == TransformKind::kScales ? ".scales"
                                      : tensor.kind == TransformKind::kQZeros ? ".qzeros"
                                                                              : "";
      if (suffix.empty()) continue;
      std::string linear = Strip(tensor.name, suffix);
      if (!index_.contains(linear + ".qweight")) parts_only.push_back(std::move(linear));
    }
    for (const auto& linear : parts_only) {
      const std::string weight = linear + std::string(kWeightSuffix);
      if (index_.contains(linear + ".qweight") || used_.contains(weight) || table_.Contains(linear + ".module.weight")) continue;
      UseUndescribed(weight);
      MS2VLLM_TRY(EmitQWeight(linear));
    }
    return Ok{};
  }

  // An input tensor the description omits, converted because its linear needs it: warned as
  // such, and so not also as left out.
  void UseUndescribed(const std::string& name) {
    plan_.warnings.Add(WarningKind::kUndescribedLinearPart, name);
    if (const TensorInfo* tensor = table_.Find(name)) used_.insert(tensor->name);
  }

  Status EmitQWeight(const std::string& linear) {
    MS2VLLM_ASSIGN_OR_RETURN(LinearGeometry g, Geometry(linear));
    OutputTensor tensor =
        QuantTensor(linear + ".qweight", TransformKind::kQWeight, table_.Find(linear + std::string(kWeightSuffix)), g);
    tensor.shape = options_.target == TargetTool::kAwq ? std::vector<uint64_t>{g.in, g.out / 8}
                                                       : std::vector<uint64_t>{g.in / per_word_, g.out};
    Emit(std::move(tensor));
    linears_.push_back(linear);
    return Ok{};
  }

  Status EmitScales(const std::string& linear) {
    MS2VLLM_ASSIGN_OR_RETURN(LinearGeometry g, Geometry(linear));
    const TensorInfo* scale = table_.Find(linear + std::string(kScaleSuffix));
    OutputTensor tensor = QuantTensor(linear + ".scales", TransformKind::kScales, scale, g);
    tensor.dtype = options_.scales_dtype == ScalesDType::kF16    ? DType::kF16
                   : options_.scales_dtype == ScalesDType::kBF16 ? DType::kBF16
                                                                 : scale->dtype;
    tensor.shape = {g.groups, g.out};
    Emit(std::move(tensor));
    return Ok{};
  }

  Status EmitQZeros(const std::string& linear) {
    MS2VLLM_ASSIGN_OR_RETURN(LinearGeometry g, Geometry(linear));
    OutputTensor tensor =
        QuantTensor(linear + ".qzeros", TransformKind::kQZeros, table_.Find(linear + std::string(kOffsetSuffix)), g);
    tensor.shape = {g.groups, g.out / per_word_};
    plan_.all_offsets_missing = false;
    Emit(std::move(tensor));
    return Ok{};
  }

  static OutputTensor QuantTensor(std::string name, TransformKind kind, const TensorInfo* source, const LinearGeometry& g) {
    OutputTensor tensor;
    tensor.name = std::move(name);
    tensor.dtype = DType::kI32;
    tensor.kind = kind;
    tensor.source = source;
    tensor.geometry = g;
    return tensor;
  }

  static OutputTensor Copy(std::string name, const TensorInfo& source) {
    OutputTensor tensor;
    tensor.name = std::move(name);
    tensor.dtype = source.dtype;
    tensor.shape = source.shape;
    tensor.kind = TransformKind::kCopy;
    tensor.source = &source;
    return tensor;
  }

  // A 2-D weight copied unchanged. In float, msModelSlim left it so (a linear, unless it is an
  // embedding or the head, which no config lists); integer or FP8, it is quantized some other way
  // (W8A8, say), which no AWQ or GPTQ config can state, the head and embeddings included.
  void NoteUnconvertedWeight(const std::string& name, const std::string& label, const TensorInfo& source) {
    if (!name.ends_with(kWeightSuffix) || Contains(name, "module.weight") || source.rank() != 2) return;
    if (IsIntegerOrFp8DType(source.dtype)) {
      plan_.other_quantized_weights.push_back({Strip(name, kWeightSuffix), label, source.dtype});
      plan_.warnings.Add(WarningKind::kOtherQuantizedWeights,
                         name + " (" + plan_.other_quantized_weights.back().LabelAndDType() + ")");
      return;
    }
    if (Contains(name, "embed") || Contains(name, "lm_head") || Contains(name, "wte") || Contains(name, "wpe")) return;
    plan_.float_linears.push_back(Strip(name, kWeightSuffix));
  }

  // An ascendV1 description states its group_size. The tensors' shapes decide; one that
  // disagrees may be the description of other weights, which the user should hear of.
  void WarnOfAContradictedGroupSize() {
    const std::optional<int64_t>& described = description_.group_size;
    if (!described || *described <= 0 || plan_.per_channel || !plan_.group_size) return;
    if (static_cast<uint64_t>(*described) == *plan_.group_size) return;
    plan_.warnings.Add(WarningKind::kDescribedGroupSize, description_.path + " says " + std::to_string(*described) +
                                                             ", the tensors have " + std::to_string(*plan_.group_size));
  }

  // msModelSlim may leave k_proj in float and quantize q_proj and v_proj; vLLM then refuses the
  // qkv_proj it fuses them into. Said now rather than by a loader at the end of a long run. A fused
  // layer all of whose parts are float is noted for the configs: older vLLM looks its fused name up
  // in modules_to_not_convert and `dynamic`, not its parts'.
  void NoteFloatFusedLayers() {
    std::unordered_set<std::string> with_float;  // few: only float linears' fused layers
    for (const auto& linear : plan_.float_linears) {
      if (auto fused = FusedLayerOf(linear)) with_float.insert(std::move(*fused));
    }
    if (with_float.empty()) return;
    std::unordered_set<std::string> mixed;
    for (const auto& linear : geometry_order_) {
      auto fused = FusedLayerOf(linear);
      if (fused && with_float.contains(*fused) && mixed.insert(*fused).second) {
        plan_.warnings.Add(WarningKind::kPartlyFloatFusedLayer, *fused);
      }
    }
    for (const auto& linear : plan_.float_linears) {
      auto fused = FusedLayerOf(linear);
      if (fused && !mixed.contains(*fused) && with_float.erase(*fused)) plan_.float_fused_layers.push_back(*fused);
    }
  }

  // vLLM builds the head in float unless quantization_config.lm_head says otherwise, and then finds
  // no lm_head.weight to load. Loaders that quantize the decoder layers' linears only cannot.
  void NoteQuantizedHeads() {
    for (const auto& linear : geometry_order_) {
      if (linear != "lm_head" && !linear.ends_with(".lm_head")) continue;
      plan_.quantized_heads.push_back(linear);
      plan_.warnings.Add(WarningKind::kQuantizedHead, linear);
    }
  }

  // SPEC 2: when two rules write the same name, the later one wins.
  void Emit(OutputTensor tensor) {
    auto [it, inserted] = index_.emplace(tensor.name, plan_.tensors.size());
    if (inserted) {
      plan_.tensors.push_back(std::move(tensor));
    } else {
      plan_.tensors[it->second] = std::move(tensor);
    }
  }

  Result<LinearGeometry> Geometry(const std::string& linear) {
    if (auto it = geometry_.find(linear); it != geometry_.end()) return it->second;
    MS2VLLM_ASSIGN_OR_RETURN(LinearGeometry g, ReadLinearGeometry(table_, linear, geometry_rules_, plan_.warnings));
    MS2VLLM_TRY(CheckTargetLayout(linear, g, options_.target, bits_));
    geometry_order_.push_back(linear);
    geometry_.emplace(linear, g);
    return g;
  }

  // SPEC 5: the model's one group size. msModelSlim writes a [out, 1] scale for a linear whose
  // width is the group size, so a linear with one group is per-group when its width is the group
  // size of others, and per-channel otherwise. AWQ has no per-channel layout.
  Status ResolveGroupSize() {
    if (geometry_order_.empty()) return Ok{};
    const auto grouped = std::find_if(geometry_order_.begin(), geometry_order_.end(),
                                      [&](const std::string& linear) { return geometry_.at(linear).groups > 1; });
    const std::string& first = grouped != geometry_order_.end() ? *grouped : geometry_order_.front();
    const LinearGeometry& first_g = geometry_.at(first);
    plan_.group_size = first_g.in / first_g.groups;
    plan_.per_channel = grouped == geometry_order_.end();
    std::unordered_set<uint64_t> group_sizes;  // of the grouped linears: a few
    for (const auto& linear : geometry_order_) {
      const LinearGeometry& g = geometry_.at(linear);
      if (g.groups > 1) group_sizes.insert(g.in / g.groups);
    }
    for (const auto& linear : geometry_order_) {
      const LinearGeometry& g = geometry_.at(linear);
      const bool own_group_size = g.in / g.groups == *plan_.group_size;
      if (options_.target == TargetTool::kAwq && g.groups == 1 && !group_sizes.contains(g.in)) {
        return Unsupported(linear + std::string(kWeightSuffix) +
                           ": AWQ has no per-channel layout (no single group_size describes it); use --target_tool gptq");
      }
      if (own_group_size || plan_.per_channel || plan_.group_size_conflict) continue;
      plan_.group_size_conflict = linear + " (group " + GroupText(g) + ") and " + first + " (group " + GroupText(first_g) + ")";
    }
    return Ok{};
  }

  static GeometryRules RulesFor(const TensorTable& table, const Description& description, const PlanOptions& options,
                                int bits) {
    GeometryRules rules{.ascend_v1 = description.has_version && bits == 4,
                        .version_first = description.version_first,
                        .packed = options.packed,
                        .evidence = {}};
    if (rules.ascend_v1 && rules.packed == PackedMode::kAuto) rules.evidence = FindPackedEvidence(table, description);
    return rules;
  }

  static std::string GroupText(const LinearGeometry& g) {
    return g.groups == 1 ? "per-channel" : std::to_string(g.in / g.groups);
  }

  const TensorTable& table_;
  const Description& description_;
  const PlanOptions& options_;
  const int bits_;
  const uint64_t per_word_;
  const GeometryRules geometry_rules_;
  const std::atomic<bool>* cancel_;
  Plan plan_;
  std::unordered_map<std::string, size_t> index_;
  std::unordered_map<std::string, LinearGeometry> geometry_;
  std::vector<std::string> linears_;
  std::unordered_set<std::string_view> used_;  // input tensors the description lists or a linear needs
  std::vector<std::string> geometry_order_;  // linears in the order their geometry was first needed
  std::vector<std::string> listed_missing_offsets_;  // of linears whose weight is here
  std::vector<std::string> float_scales_and_offsets_;  // weight_scale / weight_offset not labelled quantized
};

}  // namespace

uint64_t OutputTensor::numel() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

uint64_t Plan::TotalBytes() const {
  uint64_t total = 0;
  for (const auto& tensor : tensors) total += tensor.byte_size();
  return total;
}

Result<Plan> BuildPlan(const TensorTable& table, const Description& description, const PlanOptions& options,
                       const std::atomic<bool>* cancel) {
  MS2VLLM_TRY(CheckSomethingToConvert(table, description));
  MS2VLLM_ASSIGN_OR_RETURN(int bits, ResolveBits(description, options.w_bit));
  if (bits != 4 && bits != 8) return MakeError(ErrorCode::kUsage, "--w_bit must be 4 or 8");
  if (options.target == TargetTool::kAwq && bits == 8) {
    std::string first;
    for (const auto& entry : description.entries) {
      if (IsQuantLabel(entry.label) && entry.name.ends_with(kWeightSuffix) && table.Contains(entry.name)) {
        first = entry.name + ": ";
        break;
      }
    }
    return Unsupported(first + "W8A16 cannot be converted to AWQ: the AWQ layout (AutoAWQ's GEMM) is 4-bit only; use --target_tool gptq");
  }
  if (options.packed == PackedMode::kYes && bits != 4) {
    return MakeError(ErrorCode::kUsage, "--packed yes: only W4A16 weights are stored two per byte; W8A16 weights never are");
  }
  Planner planner(table, description, options, bits, cancel);
  return planner.Run();
}

}  // namespace ms2vllm
