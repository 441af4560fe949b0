#include "engine/synth_plan.h"

#include <algorithm>

#include "engine/cancel.h"
#include "io/json_append.h"

namespace ms2vllm {
namespace {

const std::vector<ModelShape>& Shapes() {
  static const std::vector<ModelShape> kShapes = {
      {"tiny", 128, 256, 1, 4, 1, 32, 64, true},
      {"qwen2-0.5b", 896, 4864, 24, 14, 2, 64, 151936, true},
      {"qwen2-1.5b", 1536, 8960, 28, 12, 2, 128, 151936, true},
      {"qwen2-7b", 3584, 18944, 28, 28, 4, 128, 152064, true},
      {"llama3-8b", 4096, 14336, 32, 32, 8, 128, 128256, false},
      {"llama3-70b", 8192, 28672, 80, 64, 8, 128, 128256, false},
      {"qwen3-30b-a3b", 2048, 768, 48, 32, 4, 128, 151936, false, 128},
  };
  return kShapes;
}

uint64_t NameHash(const std::string& name) {  // FNV-1a: the same on every platform
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : name) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

class SynthBuilder {
 public:
  SynthBuilder(const SynthOptions& options, const std::atomic<bool>* cancel) : o_(options), cancel_(cancel) {
    label_ = o_.bits == 4 ? "W4A16" : "W8A16";
    out_.plan.bits = o_.bits;
    if (o_.packed) {
      out_.description["version"] = "1.0.0";
      out_.description["model_quant_type"] = label_;
      if (o_.group_size) out_.description["group_size"] = o_.group_size;
    } else {
      out_.description["model_quant_type"] = label_;
    }
  }

  Result<SynthCheckpoint> Build() {
    const ModelShape& s = o_.shape;
    Float("model.embed_tokens.weight", {s.vocab, s.hidden});
    for (uint64_t layer = 0; layer < s.layers; ++layer) {
      if (Cancelled(cancel_)) return Interrupted();
      const std::string p = "model.layers." + std::to_string(layer) + ".";
      Norm(p + "input_layernorm");
      MS2VLLM_TRY(Linear(p + "self_attn.q_proj", s.heads * s.head_dim, s.hidden, s.qkv_bias));
      MS2VLLM_TRY(Linear(p + "self_attn.k_proj", s.kv_heads * s.head_dim, s.hidden, s.qkv_bias));
      MS2VLLM_TRY(Linear(p + "self_attn.v_proj", s.kv_heads * s.head_dim, s.hidden, s.qkv_bias));
      MS2VLLM_TRY(Linear(p + "self_attn.o_proj", s.hidden, s.heads * s.head_dim, false));
      if (s.experts) {
        Float(p + "self_attn.q_norm.weight", {s.head_dim}, 0.5, 1.5);
        Float(p + "self_attn.k_norm.weight", {s.head_dim}, 0.5, 1.5);
      }
      Norm(p + "post_attention_layernorm");
      if (!s.experts) {
        MS2VLLM_TRY(Mlp(p + "mlp."));
        continue;
      }
      Float(p + "mlp.gate.weight", {s.experts, s.hidden});  // the router, which msModelSlim leaves in float
      for (uint64_t expert = 0; expert < s.experts; ++expert) {
        MS2VLLM_TRY(Mlp(p + "mlp.experts." + std::to_string(expert) + "."));
      }
    }
    Norm("model.norm");
    Float("lm_head.weight", {s.vocab, s.hidden});
    out_.config = FloatModelConfig();
    return std::move(out_);
  }

 private:
  nlohmann::ordered_json FloatModelConfig() const {
    const ModelShape& s = o_.shape;
    const bool moe = s.experts > 0;
    const bool qwen2 = !moe && s.qkv_bias;  // Qwen2's q/k/v have biases, Llama's do not
    nlohmann::ordered_json config;
    config["architectures"] = {moe ? "Qwen3MoeForCausalLM" : qwen2 ? "Qwen2ForCausalLM" : "LlamaForCausalLM"};
    config["model_type"] = moe ? "qwen3_moe" : qwen2 ? "qwen2" : "llama";
    config["hidden_size"] = s.hidden;
    config["intermediate_size"] = s.intermediate;
    if (moe) {
      config["moe_intermediate_size"] = s.intermediate;
      config["num_experts"] = s.experts;
      config["num_experts_per_tok"] = 8;
    }
    config["num_hidden_layers"] = s.layers;
    config["num_attention_heads"] = s.heads;
    config["num_key_value_heads"] = s.kv_heads;
    config["head_dim"] = s.head_dim;
    config["vocab_size"] = s.vocab;
    config["tie_word_embeddings"] = false;  // lm_head.weight is a tensor of its own
    config["torch_dtype"] = o_.float_dtype == DType::kF16 ? "float16" : "bfloat16";
    return config;
  }

  void Add(const std::string& name, const std::string& label, DType dtype, std::vector<uint64_t> shape,
           GenerateSpec::Kind kind, double low, double high) {
    OutputTensor tensor;
    tensor.name = name;
    tensor.dtype = dtype;
    tensor.shape = std::move(shape);
    tensor.kind = TransformKind::kGenerate;
    tensor.generate = {kind, o_.seed ^ NameHash(name), low, high};
    out_.plan.tensors.push_back(std::move(tensor));
    AppendNewMember(out_.description, name, label);  // tensor names are unique by construction
  }

  void Float(const std::string& name, std::vector<uint64_t> shape, double low = -0.05, double high = 0.05) {
    Add(name, "FLOAT", o_.float_dtype, std::move(shape), GenerateSpec::Kind::kFloatRange, low, high);
  }

  void Norm(const std::string& norm) {
    Float(norm + ".weight", {o_.shape.hidden}, 0.5, 1.5);
    if (!o_.anti_outlier) return;
    Float(norm + ".bias", {o_.shape.hidden});
    Add(norm + ".module.weight", label_, o_.float_dtype, {o_.shape.hidden}, GenerateSpec::Kind::kFloatRange, 0.5, 1.5);
    Add(norm + ".module.bias", label_, o_.float_dtype, {o_.shape.hidden}, GenerateSpec::Kind::kFloatRange, -0.05, 0.05);
  }

  Status Mlp(const std::string& prefix) {
    const ModelShape& s = o_.shape;
    MS2VLLM_TRY(Linear(prefix + "gate_proj", s.intermediate, s.hidden, false));
    MS2VLLM_TRY(Linear(prefix + "up_proj", s.intermediate, s.hidden, false));
    return Linear(prefix + "down_proj", s.hidden, s.intermediate, false);
  }

  Status Linear(const std::string& linear, uint64_t out, uint64_t in, bool bias) {
    const bool left_float = std::any_of(o_.float_linears.begin(), o_.float_linears.end(),
                                        [&](const std::string& suffix) { return linear.ends_with(suffix); });
    if (left_float) {
      Float(linear + ".weight", {out, in});
      if (bias) Float(linear + ".bias", {out});
      return Ok{};
    }
    const uint64_t groups = o_.group_size ? in / o_.group_size : 1;
    if (o_.group_size && in % o_.group_size) {
      return MakeError(ErrorCode::kUsage, linear + ": group size " + std::to_string(o_.group_size) +
                                              " does not divide in = " + std::to_string(in));
    }
    const double low = -(1 << (o_.bits - 1)), high = (1 << (o_.bits - 1)) - 1;
    if (o_.packed) {
      // ascendV1 pairs along out per-group, along in per-channel.
      std::vector<uint64_t> shape = groups > 1 ? std::vector<uint64_t>{out / 2, in} : std::vector<uint64_t>{out, in / 2};
      Add(linear + ".weight", label_, DType::kI8, shape, GenerateSpec::Kind::kPackedInt4, 0, 255);
    } else {
      Add(linear + ".weight", label_, DType::kI8, {out, in}, GenerateSpec::Kind::kInt8Range, low, high);
    }
    const std::vector<uint64_t> scale_shape = o_.legacy_scales ? std::vector<uint64_t>{out * groups, 1}
                                                               : std::vector<uint64_t>{out, groups};
    Add(linear + ".weight_scale", label_, o_.scale_dtype, scale_shape, GenerateSpec::Kind::kFloatRange, 1e-4, 1e-2);
    if (!o_.packed) {  // ascendV1 packs symmetric weights and writes no offset
      const double offset_low = o_.symmetric ? 0 : (o_.full_offset_range ? low : low + 1);
      const double offset_high = o_.symmetric ? 0 : high;
      Add(linear + ".weight_offset", label_, o_.scale_dtype, scale_shape, GenerateSpec::Kind::kIntegralFloat,
          offset_low, offset_high);
    }
    if (bias) Float(linear + ".bias", {out});
    return Ok{};
  }

  const SynthOptions& o_;
  const std::atomic<bool>* cancel_;
  std::string label_;
  SynthCheckpoint out_;
};

}  // namespace

std::optional<ModelShape> FindModelShape(const std::string& preset) {
  for (const auto& shape : Shapes()) {
    if (shape.name == preset) return shape;
  }
  return std::nullopt;
}

std::vector<std::string> ModelShapeNames() {
  std::vector<std::string> names;
  for (const auto& shape : Shapes()) names.push_back(shape.name);
  return names;
}

Result<SynthCheckpoint> BuildSynthCheckpoint(const SynthOptions& options, const std::atomic<bool>* cancel) {
  if (options.packed && options.bits != 4) return MakeError(ErrorCode::kUsage, "--packed applies to 4-bit only");
  return SynthBuilder(options, cancel).Build();
}

}  // namespace ms2vllm
