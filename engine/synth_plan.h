// Synthetic msModelSlim checkpoints with real model shapes, for tests and benchmarks:
// a plan of generated tensors (written by the engine's own output path) and its description.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/plan.h"

namespace ms2vllm {

struct ModelShape {
  std::string name;
  uint64_t hidden = 0, intermediate = 0, layers = 0, heads = 0, kv_heads = 0, head_dim = 0, vocab = 0;
  bool qkv_bias = false;
  // Mixture of experts: `experts` MLPs of `intermediate` each behind a float router, and q/k
  // norms, as Qwen3-MoE has them. 0: one dense MLP.
  uint64_t experts = 0;
};

// "qwen2-0.5b", "qwen2-1.5b", "qwen2-7b", "llama3-8b", "llama3-70b", "qwen3-30b-a3b" (128 experts
// a layer: many small linears), and "tiny" (hidden 128).
std::optional<ModelShape> FindModelShape(const std::string& preset);
std::vector<std::string> ModelShapeNames();

struct SynthOptions {
  ModelShape shape;
  int bits = 4;
  uint64_t group_size = 128;  // 0: per-channel
  bool symmetric = false;
  bool anti_outlier = false;      // AWQ-style 'm3' norms (.module.weight / .module.bias)
  bool packed = false;            // ascendV1: two 4-bit values per byte, "version" description
  bool legacy_scales = false;     // [out*G, 1] scales and offsets
  bool full_offset_range = false; // offsets may reach -2^(b-1) (GPTQ v1 cannot store that)
  std::vector<std::string> float_linears;  // linear suffixes left FLOAT, e.g. "mlp.down_proj"
  DType scale_dtype = DType::kF32;
  DType float_dtype = DType::kBF16;
  uint64_t seed = 0;
};

struct SynthCheckpoint {
  Plan plan;                          // kGenerate tensors only
  nlohmann::ordered_json description; // quant_model_description JSON
  // The float model's config.json, which msModelSlim's saver copies beside its weights: the
  // architecture and the shape fields, which loaders and --out-dir's checks read.
  nlohmann::ordered_json config;
};

// `cancel` (the interrupt flag, may be null) is checked per layer.
Result<SynthCheckpoint> BuildSynthCheckpoint(const SynthOptions& options, const std::atomic<bool>* cancel = nullptr);

}  // namespace ms2vllm
