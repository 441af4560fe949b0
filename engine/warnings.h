// Departures from the script and other things the user should know, counted per kind so a
// checkpoint with ten thousand tensors gives one line per kind, not ten thousand.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ms2vllm {

enum class WarningKind {
  kNotInDescription,   // input tensors the description does not list: not written
  kNotInCheckpoint,    // tensors the description lists that the input lacks (a shard given alone?)
  kMissingOffset,      // symmetric linears without weight_offset: qzeros written for offset 0
  kLegacyScaleShape,   // [out*G, 1] or [out] scales/offsets reshaped to [out, G]
  kClampedWeights,     // weight values outside the signed range, clamped
  kMostlyClamped,      // weights a quarter or more of whose values clamp: of another bit width than labelled?
  kClampedOffsets,     // offset values outside the signed range, clamped
  kScalesLostInCast,   // --scales-dtype: finite scales that become infinite or 0
  kNonFiniteScales,    // scales that are NaN or infinite in the input
  kPackedInput,        // two 4-bit values per byte (ascendV1), unpacked
  kUndescribedLinearPart,  // weight/scale/offset converted although the description does not list it
  kFloatLinearsInGptq, // linears left in float, which only GPTQ's `dynamic` can exempt
  kFloatLinearsInAwq,  // linears left in float: modules_to_not_convert, which AutoAWQ misreads
  kQuantizedHead,     // lm_head quantized: vLLM and GPTQModel read quantization_config.lm_head, others cannot
  kGptqV2Readers,      // --gptq-format v2: which loaders read gptq_v2
  kGptqV1Asymmetric,   // --out-dir GPTQ v1 with sym=false, which GPTQModel refuses
  kFloat16ForVllm,     // --out-dir: torch_dtype set to float16, the only one vLLM runs the layout in
  kNoDtypeForVllm,     // --out-dir: a layout vLLM runs only in float16, of a model type it refuses in float16
  kPartlyFloatFusedLayer,  // q/k/v_proj or gate/up_proj partly float: vLLM fuses them, one precision
  kDescribedGroupSize, // the description's group_size is not the tensors': theirs is used
  kGroupSizeConflict,  // linears of two group sizes, which no one quantization_config describes
  kOtherLabel,         // labelled neither FLOAT nor W4A16/W8A16 (W8A8, a typo...): copied unchanged
  kOtherQuantizedWeights,  // integer or FP8 weights (linears, heads, embeddings) copied unchanged: no loader reads them
  kBaseBesideWeights,  // --out-dir without --base-model: the configs beside the weights are the base
  kBaseQuantized,      // the base config.json already declares a quantization_config: replaced
  kNoTokenizer,        // --out-dir's base model has no tokenizer file to copy
  kBrokenBaseFile,     // --base-model's files that are symlinks to nothing: not copied
  kOldTargetLeft,      // --force: the replaced directory could not be removed whole
};

class Warnings {
 public:
  // `count` values of `tensor` have the problem (1 when it is the tensor as a whole).
  void Add(WarningKind kind, const std::string& tensor, uint64_t count = 1);
  void Merge(const Warnings& other);
  // One line per kind, naming the first few tensors.
  std::vector<std::string> Lines() const;
  // The line of one kind; empty when there is none.
  std::string Line(WarningKind kind) const;

 private:
  struct Entry {
    uint64_t tensors = 0;
    uint64_t values = 0;
    std::vector<std::string> first;
  };
  std::map<WarningKind, Entry> entries_;
};

// `clamped` of the `values` of one weight fall outside its bit width's signed range: one rule for
// which warnings that gives, whether the conversion counts them or inspect (weight_range_scan.h).
void AddClampedWeights(Warnings& warnings, const std::string& tensor, uint64_t clamped, uint64_t values);

// "a, b, c" or "a, b, c, ...": the first three names, for a one-line message.
std::string FirstNames(const std::vector<std::string>& names);

}  // namespace ms2vllm
