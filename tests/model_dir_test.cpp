// SPEC.md section 5, "a complete loadable model directory": inputs given as a file, a sharded
// index or a directory; --out-dir's weights (one file or shards with their index), config.json
// from the base model plus quantization_config, quantize_config.json for GPTQ, the base model's
// tokenizer and generation files; an existing target, failures and --scales-dtype.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/convert.h"
#include "engine/model_directory.h"
#include "engine/verify.h"
#include "kernels/float_convert.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;
using testing::LoadedTensor;
using testing::MakeTensor;
using testing::MsCheckpoint;
using testing::MsLinearOptions;
using testing::TempDir;
using Tensors = std::map<std::string, LoadedTensor>;

// What differs between the checkpoints below.
struct Model {
  int bits = 4;
  uint64_t groups = 2;           // of in = 96 (group 48); 1: per-channel
  bool offsets = true;
  bool zero_offsets = false;     // all offsets 0 (symmetric)
  bool float_down_proj = false;  // msModelSlim left mlp.down_proj in float
  bool float_attention = false;  // and q_proj and k_proj, all that vLLM fuses into qkv_proj here
  bool quantized_head = false;   // lm_head a quantized linear too
};

// A two-layer Qwen2-like checkpoint, hidden 96, with float tensors around the linears.
MsCheckpoint MakeModel(const Model& m) {
  const std::string label = m.bits == 4 ? "W4A16" : "W8A16";
  MsCheckpoint checkpoint;
  checkpoint.Describe("model_quant_type", label);
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> any(-1, 1);
  const auto floats = [&](std::vector<uint64_t> shape) {
    uint64_t n = 1;
    for (uint64_t d : shape) n *= d;
    std::vector<double> values(n);
    for (auto& v : values) v = any(rng);
    return MakeTensor(DType::kBF16, std::move(shape), values);
  };
  checkpoint.Add("model.embed_tokens.weight", floats({32, 96}), "FLOAT");
  uint64_t seed = 1;
  for (int layer = 0; layer < 2; ++layer) {
    const std::string prefix = "model.layers." + std::to_string(layer) + ".";
    checkpoint.Add(prefix + "input_layernorm.weight", floats({96}), "FLOAT");
    struct Linear {
      std::string name;
      uint64_t out, in;
    };
    for (const Linear& l : {Linear{"self_attn.q_proj", 96, 96}, Linear{"self_attn.k_proj", 32, 96},
                            Linear{"mlp.up_proj", 192, 96}, Linear{"mlp.down_proj", 96, 192}}) {
      const bool attention = l.name.starts_with("self_attn.");
      if ((l.name == "mlp.down_proj" && m.float_down_proj) || (attention && m.float_attention)) {
        checkpoint.Add(prefix + l.name + ".weight", floats({l.out, l.in}), "FLOAT");
        continue;
      }
      MsLinearOptions o;
      o.out = l.out;
      o.in = l.in;
      o.groups = m.groups == 1 ? 1 : m.groups * (l.in / 96);  // the same group size everywhere
      o.bits = m.bits;
      o.with_offset = m.offsets;
      if (m.zero_offsets) o.offset_low = o.offset_high = 0;
      o.seed = seed++;
      checkpoint.AddLinear(prefix + l.name, testing::MakeMsLinear(o), label);
    }
    checkpoint.Add(prefix + "self_attn.q_proj.bias", floats({96}), "FLOAT");
  }
  checkpoint.Add("model.norm.weight", floats({96}), "FLOAT");
  if (m.quantized_head) {
    MsLinearOptions o;
    o.out = 32;
    o.in = 96;
    o.groups = m.groups;
    o.bits = m.bits;
    o.seed = seed;
    checkpoint.AddLinear("lm_head", testing::MakeMsLinear(o), label);
  } else {
    checkpoint.Add("lm_head.weight", floats({32, 96}), "FLOAT");
  }
  return checkpoint;
}

// Writes the checkpoint's tensors over `count` shards in a shuffled order, with the index; the
// description goes beside them. Returns the index's path.
fs::path WriteSharded(const MsCheckpoint& checkpoint, const fs::path& dir, size_t count) {
  auto tensors = checkpoint.tensors();
  std::mt19937_64 rng(11);
  std::shuffle(tensors.begin(), tensors.end(), rng);
  const std::string prefix = "quant_model_weight_w4a16";
  ordered_json index;
  uint64_t total = 0;
  index["metadata"] = {{"total_size", 0}};
  index["weight_map"] = ordered_json::object();
  for (size_t shard = 0; shard < count; ++shard) {
    char name[96];
    std::snprintf(name, sizeof name, "%s-%05zu-of-%05zu.safetensors", prefix.c_str(), shard + 1, count);
    std::vector<std::pair<std::string, LoadedTensor>> part;
    for (size_t i = shard; i < tensors.size(); i += count) {
      part.push_back(tensors[i]);
      index["weight_map"][tensors[i].first] = name;
      total += tensors[i].second.bytes.size();
    }
    testing::WriteSafetensors(dir / name, part);
  }
  index["metadata"]["total_size"] = total;
  testing::WriteText(dir / (prefix + ".safetensors.index.json"), index.dump(2));
  checkpoint.WriteDescription(dir / "quant_model_description_w4a16.json");
  return dir / (prefix + ".safetensors.index.json");
}

// A float model directory as transformers writes it.
struct BaseModel {
  fs::path dir;
  ordered_json config;
  std::vector<std::string> copied = {"tokenizer.json", "tokenizer_config.json", "generation_config.json",
                                     "special_tokens_map.json", "tokenizer.model", "tokenizer.model.v3",
                                     "merges.txt", "vocab.json",
                                     "modeling_custom.py", "README.md"};
  // Float weights in any format, quantization leftovers (a base directory that is msModelSlim's
  // output, AutoAWQ's config), LoRA adapter files, backups, and Mistral's own config (params.json:
  // vLLM may read it instead of config.json, and find no quantization there).
  std::vector<std::string> not_copied = {"model.safetensors", "model-00001-of-00002.safetensors",
                                         "model.safetensors.index.json", "pytorch_model.bin",
                                         "pytorch_model.bin.index.json", ".gitattributes", "model.onnx",
                                         "quant_model_description_w4a16.json", "quant_config.json",
                                         "adapter_config.json", "config.json.bak", "params.json"};
};

BaseModel MakeBaseModel(const fs::path& dir) {
  BaseModel base;
  base.dir = dir;
  fs::create_directories(dir);
  // Keys deliberately not in alphabetical order, nested objects, every JSON type.
  base.config = ordered_json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 96,
    "zeta_custom": {"b": 1, "a": [1, 2.5, null]}, "rope_scaling": null, "tie_word_embeddings": false,
    "torch_dtype": "bfloat16", "rms_norm_eps": 1e-06, "alpha_last": "kept"})");
  testing::WriteText(dir / "config.json", base.config.dump(2));
  for (const auto& name : base.copied) testing::WriteText(dir / name, "content of " + name + "\n");
  std::string binary(300, '\0');
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 37);
  testing::WriteText(dir / "tokenizer.model", binary);
  for (const auto& name : base.not_copied) testing::WriteText(dir / name, "float weights, not ours");
  return base;
}

ConvertRequest DirectoryRequest(const fs::path& model, const fs::path& out_dir, TargetTool target = TargetTool::kAwq) {
  ConvertRequest request;
  request.model = model;
  request.out_dir = out_dir;
  request.plan.target = target;
  return request;
}

// The float model's config.json, as msModelSlim's saver copies it beside the weights: with it,
// --out-dir needs no --base-model. It states no shape, so any test checkpoint fits it.
void WriteConfigBeside(const fs::path& weights_dir) {
  testing::WriteText(weights_dir / "config.json", R"({"model_type": "qwen2"})");
}

// msModelSlim's output directory: the checkpoint and the config.json beside it. Returns the weights.
fs::path WriteMsModelSlimOutput(const MsCheckpoint& checkpoint, const fs::path& dir) {
  fs::create_directories(dir);
  const fs::path weights = checkpoint.WriteInto(dir);
  WriteConfigBeside(dir);
  return weights;
}

std::set<std::string> FileNames(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename().string());
  return names;
}

// Entries of `dir` left by a stage (".<name>.ms2vllm-<pid>.tmp").
std::vector<std::string> StageLeftovers(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".ms2vllm-") != std::string::npos) found.push_back(name);
  }
  return found;
}

// A refused conversion into dir/out: the error `code`, naming `named`; no dir/out, no stage left.
void ExpectRefused(const Result<ConvertReport>& report, ErrorCode code, const std::string& named, const TempDir& dir) {
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, code);
  EXPECT_CONTAINS(report.error().message, named);
  EXPECT_FALSE(fs::exists(dir / "out"));
  EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});
}

ordered_json ReadJson(const fs::path& path) { return ordered_json::parse(testing::ReadText(path)); }

// The safetensors header of a file, in its order.
ordered_json Header(const fs::path& path) {
  const std::string text = testing::ReadText(path);
  uint64_t size = 0;
  std::memcpy(&size, text.data(), 8);
  return ordered_json::parse(text.substr(8, size));
}

// Converts a single-file copy of `checkpoint` to one output file: the reference for the others.
Tensors ReferenceConversion(const MsCheckpoint& checkpoint, const fs::path& dir, TargetTool target) {
  fs::create_directories(dir / "reference");
  ConvertRequest request;
  request.model = checkpoint.WriteInto(dir / "reference");
  request.save_path = dir / "reference.safetensors";
  request.plan.target = target;
  auto report = Convert(request);
  EXPECT_TRUE(report.ok()) << report.error().message;
  return testing::LoadTensors(request.save_path);
}

// ---- Inputs: a file, a sharded index, a directory ----

TEST(ModelInputs, FileIndexAndDirectoryConvertToIdenticalTensors) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  const Tensors reference = ReferenceConversion(checkpoint, dir.path(), TargetTool::kAwq);
  ASSERT_FALSE(reference.empty());
  fs::create_directories(dir / "sharded");
  const fs::path index = WriteSharded(checkpoint, dir / "sharded", 3);
  int n = 0;
  for (const fs::path& model : {index, dir / "sharded", dir / "reference"}) {
    SCOPED_TRACE(model.string());
    ConvertRequest request;
    request.model = model;
    request.save_path = dir / ("out" + std::to_string(n++) + ".safetensors");
    auto report = Convert(request);
    ASSERT_TRUE(report.ok()) << report.error().message;
    EXPECT_EQ(testing::LoadTensors(request.save_path), reference);
  }
}

// Converts the model directory `dir` to dir/res.safetensors, which must fail and leave nothing.
Error DirectoryConversionError(const fs::path& dir) {
  ConvertRequest request;
  request.model = dir;
  request.save_path = dir / "res.safetensors";
  auto report = Convert(request);
  EXPECT_FALSE(report.ok());
  EXPECT_FALSE(fs::exists(request.save_path));
  return report.ok() ? Error{} : report.error();
}

TEST(ModelInputs, DirectoryWithTwoCandidateWeightFilesIsAnErrorListingThem) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  checkpoint.WriteInto(dir.path());
  checkpoint.WriteWeights(dir / "quant_model_weight_w4a16_copy.safetensors");
  const Error error = DirectoryConversionError(dir.path());
  EXPECT_EQ(error.code, ErrorCode::kInvalidInput);
  EXPECT_CONTAINS(error.message, "quant_model_weight_w4a16.safetensors");
  EXPECT_CONTAINS(error.message, "quant_model_weight_w4a16_copy.safetensors");
}

TEST(ModelInputs, DirectoryWithAnIndexAndAnUnshardedFileIsAnErrorListingThem) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  WriteSharded(checkpoint, dir.path(), 2);
  checkpoint.WriteWeights(dir / "quant_model_weight_w4a16.safetensors");  // which one is meant?
  const Error error = DirectoryConversionError(dir.path());
  EXPECT_EQ(error.code, ErrorCode::kInvalidInput);
  EXPECT_CONTAINS(error.message, "quant_model_weight_w4a16.safetensors.index.json");
  EXPECT_CONTAINS(error.message, "quant_model_weight_w4a16.safetensors,");
}

TEST(ModelInputs, DirectoryWithTwoDescriptionsNeitherNamedLikeTheWeightsIsAnErrorListingThem) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  checkpoint.WriteInto(dir.path());  // quant_model_weight_w4a16.safetensors
  fs::rename(dir / "quant_model_description_w4a16.json", dir / "quant_model_description_new.json");
  checkpoint.WriteDescription(dir / "quant_model_description_old.json");
  const Error error = DirectoryConversionError(dir.path());
  EXPECT_CONTAINS(error.message, "quant_model_description_old.json");
  EXPECT_CONTAINS(error.message, "quant_model_description_new.json");
}

// ---- Weights in the output directory ----

TEST(ModelDirectory, ShardsNeverSplitATensorAndTheIndexCoversEveryTensor) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  const Tensors reference = ReferenceConversion(checkpoint, dir.path(), TargetTool::kAwq);
  uint64_t total = 0, largest = 0;
  for (const auto& [name, tensor] : reference) {
    total += tensor.bytes.size();
    largest = std::max<uint64_t>(largest, tensor.bytes.size());
  }
  const uint64_t limit = 12'000;
  ASSERT_GT(total, 3 * limit);  // several shards
  ASSERT_LT(largest, limit * 2);
  fs::create_directories(dir / "sharded");
  ConvertRequest request = DirectoryRequest(WriteSharded(checkpoint, dir / "sharded", 2), dir / "out");
  WriteConfigBeside(dir / "sharded");
  request.max_shard_bytes = limit;
  auto report = Convert(request);
  ASSERT_TRUE(report.ok()) << report.error().message;

  const ordered_json index = ReadJson(dir / "out/model.safetensors.index.json");
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  const ordered_json& weight_map = index["weight_map"];
  EXPECT_EQ(weight_map.size(), reference.size());
  std::set<std::string> shard_files;
  for (const auto& [tensor, file] : weight_map.items()) {
    EXPECT_TRUE(reference.contains(tensor)) << tensor;
    shard_files.insert(file.get<std::string>());
  }
  const size_t n = shard_files.size();
  ASSERT_GE(n, 3u);
  std::set<std::string> expected_files;
  std::set<std::string> seen;
  for (size_t i = 1; i <= n; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i, n);
    expected_files.insert(name);
    SCOPED_TRACE(name);
    const ordered_json header = Header(dir / "out" / name);
    ASSERT_TRUE(header.contains("__metadata__"));
    EXPECT_EQ(header["__metadata__"], ordered_json({{"format", "pt"}}));
    uint64_t bytes = 0;
    size_t tensors = 0;
    for (const auto& [tensor, entry] : header.items()) {
      if (tensor == "__metadata__") continue;
      EXPECT_EQ(weight_map.value(tensor, ""), name) << tensor;
      EXPECT_TRUE(seen.insert(tensor).second) << tensor << " is in two shards";
      const auto offsets = entry["data_offsets"];
      bytes += offsets[1].get<uint64_t>() - offsets[0].get<uint64_t>();
      ++tensors;
    }
    EXPECT_TRUE(bytes <= limit || tensors == 1) << bytes << " bytes in " << tensors << " tensors";
  }
  EXPECT_EQ(shard_files, expected_files);
  EXPECT_EQ(seen.size(), reference.size());
  EXPECT_FALSE(fs::exists(dir / "out/model.safetensors"));
  EXPECT_EQ(testing::LoadTensors(dir / "out/model.safetensors.index.json"), reference);
}

TEST(ModelDirectory, OneModelSafetensorsAndNoIndexWhenItFits) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  const Tensors reference = ReferenceConversion(checkpoint, dir.path(), TargetTool::kAwq);
  WriteConfigBeside(dir / "reference");
  auto report = Convert(DirectoryRequest(dir / "reference", dir / "out"));
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(FileNames(dir / "out"), (std::set<std::string>{"model.safetensors", "config.json"}));
  EXPECT_EQ(testing::HeaderMetadata(dir / "out/model.safetensors"), R"({"format":"pt"})");
  EXPECT_EQ(testing::LoadTensors(dir / "out/model.safetensors"), reference);
}

// ---- config.json, quantize_config.json, the base model's files ----

// Every key of `base` kept in order with its value, then quantization_config.
void ExpectBaseConfigKept(const ordered_json& base, const ordered_json& config) {
  std::vector<std::string> base_keys, keys;
  for (const auto& [key, value] : base.items()) base_keys.push_back(key);
  for (const auto& [key, value] : config.items()) keys.push_back(key);
  base_keys.push_back("quantization_config");
  EXPECT_EQ(keys, base_keys);
  for (const auto& [key, value] : base.items()) EXPECT_EQ(config[key].dump(), value.dump()) << key;
}

ordered_json WithTorchDtype(ordered_json config, const char* dtype) {
  config["torch_dtype"] = dtype;
  return config;
}

// The line of the warning containing `text`, or "" when there is none.
std::string WarningLine(const ConvertReport& report, const std::string& text) {
  for (const auto& line : report.warnings.Lines()) {
    if (line.find(text) != std::string::npos) return line;
  }
  return "";
}

TEST(ModelDirectory, AwqConfigKeepsTheBaseConfigAndAddsQuantizationConfig) {
  const MsCheckpoint checkpoint = MakeModel({.float_down_proj = true});
  TempDir dir;
  const BaseModel base = MakeBaseModel(dir / "base");
  const fs::path input = dir / "input";
  fs::create_directories(input);
  checkpoint.WriteInto(input);
  ConvertRequest request = DirectoryRequest(input, dir / "out");
  request.base_model = base.dir;
  auto report = Convert(request);
  ASSERT_TRUE(report.ok()) << report.error().message;

  const ordered_json config = ReadJson(dir / "out/config.json");
  // Group 48 is no Marlin kernel's, so vLLM runs it in float16 only.
  ExpectBaseConfigKept(WithTorchDtype(base.config, "float16"), config);
  const ordered_json expected = ordered_json::parse(R"({"quant_method": "awq", "bits": 4, "group_size": 48,
      "zero_point": true, "version": "gemm",
      "modules_to_not_convert": ["model.layers.0.mlp.down_proj", "model.layers.1.mlp.down_proj"]})");
  EXPECT_EQ(config["quantization_config"].dump(), expected.dump());  // dump compares key order too
  EXPECT_FALSE(fs::exists(dir / "out/quantize_config.json"));
}

// AWQ's qzeros hold a zero point for every group, 2^(bits-1) where the offset is 0 or absent:
// zero_point is true for symmetric checkpoints too (unlike GPTQ's sym).
TEST(ModelDirectory, AwqConfigStatesZeroPointForSymmetricCheckpointsToo) {
  for (const Model& model : {Model{.zero_offsets = true}, Model{.offsets = false}}) {
    SCOPED_TRACE(model.offsets ? "all offsets 0" : "no offsets");
    const MsCheckpoint checkpoint = MakeModel(model);
    TempDir dir;
    fs::create_directories(dir / "input");
    checkpoint.WriteInto(dir / "input");
    WriteConfigBeside(dir / "input");
    auto report = Convert(DirectoryRequest(dir / "input", dir / "out"));
    ASSERT_TRUE(report.ok()) << report.error().message;
    ASSERT_TRUE(report->symmetric);
    const ordered_json config = ReadJson(dir / "out/config.json");
    EXPECT_EQ(config["quantization_config"]["zero_point"], true) << config["quantization_config"].dump();
  }
}

// The JSON files written end with a newline, as transformers' save_pretrained writes them (and
// as text files do: `cat` and diff tools expect it).
TEST(ModelDirectory, WrittenJsonFilesEndWithANewline) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  WriteMsModelSlimOutput(checkpoint, dir / "input");
  auto report = Convert(DirectoryRequest(dir / "input", dir / "out", TargetTool::kGptq));
  ASSERT_TRUE(report.ok()) << report.error().message;
  for (const char* name : {"config.json", "quantize_config.json"}) {
    const std::string text = testing::ReadText(dir / "out" / name);
    EXPECT_TRUE(text.ends_with("}\n")) << name << ": " << text;
  }
}

TEST(ModelDirectory, ABaseConfigOfAnotherShapeIsRefusedInADryRun) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  BaseModel base = MakeBaseModel(dir / "base");
  const fs::path input = dir / "input";
  fs::create_directories(input);
  checkpoint.WriteInto(input);
  ConvertRequest request = DirectoryRequest(input, dir / "out");
  request.base_model = base.dir;
  request.dry_run = true;
  const auto dry_run_with = [&](const char* json) {
    ordered_json config = base.config;
    config.update(ordered_json::parse(json));
    testing::WriteText(base.dir / "config.json", config.dump(2));
    return Convert(request);
  };
  // This checkpoint: embed [32, 96], two layers. More layers than the config states pass (an MTP layer).
  for (const char* matching : {R"({"hidden_size": 96, "vocab_size": 32, "num_hidden_layers": 2})",
                               R"({"num_hidden_layers": 1})"}) {
    const auto report = dry_run_with(matching);
    EXPECT_TRUE(report.ok()) << matching << ": " << report.error().message;
  }
  const auto report = dry_run_with(R"({"hidden_size": 128, "vocab_size": 151936, "num_hidden_layers": 28})");
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kInvalidInput);
  const std::string& message = report.error().message;
  EXPECT_CONTAINS(message, (base.dir / "config.json").string() + ": does not describe this checkpoint");
  EXPECT_CONTAINS(message, "vocab_size 151936 but model.embed_tokens.weight is [32, 96]");
  EXPECT_CONTAINS(message, "hidden_size 128 but model.embed_tokens.weight is [32, 96]");
  EXPECT_CONTAINS(message, "num_hidden_layers 28 but the checkpoint has 2 layer(s)");
  // One layer more than the checkpoint holds is refused too: a loader would find it missing.
  const auto one_more = dry_run_with(R"({"hidden_size": 96, "vocab_size": 32, "num_hidden_layers": 3})");
  ASSERT_FALSE(one_more.ok());
  EXPECT_CONTAINS(one_more.error().message, "num_hidden_layers 3 but the checkpoint has 2 layer(s)");
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(ModelDirectory, BaseFilesAreCopiedByteForByteButNotItsWeights) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  const BaseModel base = MakeBaseModel(dir / "base");
  const Tensors reference = ReferenceConversion(checkpoint, dir.path(), TargetTool::kAwq);
  ConvertRequest request = DirectoryRequest(dir / "reference", dir / "out");
  request.base_model = base.dir;
  auto report = Convert(request);
  ASSERT_TRUE(report.ok()) << report.error().message;
  std::set<std::string> expected = {"model.safetensors", "config.json"};
  for (const auto& name : base.copied) {
    expected.insert(name);
    EXPECT_EQ(testing::ReadText(dir / "out" / name), testing::ReadText(base.dir / name)) << name;
  }
  EXPECT_EQ(FileNames(dir / "out"), expected);
  EXPECT_EQ(testing::LoadTensors(dir / "out/model.safetensors"), reference);  // ours, not the base's
}

TEST(ModelDirectory, SymlinkedBaseFilesAreCopiedAsFiles) {
  // The Hugging Face cache's snapshot directories hold symlinks to blobs.
  TempDir dir;
  const BaseModel blobs = MakeBaseModel(dir / "blobs");
  fs::create_directories(dir / "snapshot");
  for (const char* name : {"config.json", "tokenizer.json", "generation_config.json", "model.safetensors"}) {
    fs::create_symlink(blobs.dir / name, dir / "snapshot" / name);
  }
  fs::create_symlink(blobs.dir / "never-downloaded", dir / "snapshot" / "tokenizer.model");  // not copied, said
  const MsCheckpoint checkpoint = MakeModel({.groups = 3});  // group 32: the base's dtype is kept
  fs::create_directories(dir / "input");
  checkpoint.WriteInto(dir / "input");
  ConvertRequest request = DirectoryRequest(dir / "input", dir / "out");
  request.base_model = dir / "snapshot";
  auto report = Convert(request);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(FileNames(dir / "out"),
            (std::set<std::string>{"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"}));
  for (const char* name : {"tokenizer.json", "generation_config.json"}) {
    EXPECT_FALSE(fs::is_symlink(dir / "out" / name)) << name;
    EXPECT_EQ(testing::ReadText(dir / "out" / name), testing::ReadText(blobs.dir / name)) << name;
  }
  ExpectBaseConfigKept(blobs.config, ReadJson(dir / "out/config.json"));
  EXPECT_NE(WarningLine(*report, "symlinks to nothing").find((dir / "snapshot/tokenizer.model").string()),
            std::string::npos);
}

// A dangling link's failed checks are not a failed listing, wherever the directory lists it
// (with 30 of them, one is almost surely last, where an error code left set used to fail the run).
TEST(ModelDirectory, DanglingBaseLinksAreWarnedOfWhereverTheyAreListed) {
  TempDir dir;
  const BaseModel base = MakeBaseModel(dir / "base");
  for (int i = 0; i < 30; ++i) fs::create_symlink(dir / "nowhere", dir / "base" / ("missing-" + std::to_string(i)));
  fs::create_directories(dir / "input");
  MakeModel({.groups = 3}).WriteInto(dir / "input");
  ConvertRequest request = DirectoryRequest(dir / "input", dir / "out");
  request.base_model = base.dir;
  auto report = Convert(request);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_CONTAINS(WarningLine(*report, "symlinks to nothing"), "30 file(s)");
  EXPECT_TRUE(fs::exists(dir / "out/tokenizer.json"));
}

// The request converting a group-32 model (no torch_dtype change) from dir/input into dir/out,
// with dir/base as its base model, whose config.json is `config_text`.
ConvertRequest RequestWithBaseConfig(const TempDir& dir, const std::string& config_text) {
  const BaseModel base = MakeBaseModel(dir / "base");
  testing::WriteText(base.dir / "config.json", config_text);
  fs::create_directories(dir / "input");
  MakeModel({.groups = 3}).WriteInto(dir / "input");
  ConvertRequest request = DirectoryRequest(dir / "input", dir / "out");
  request.base_model = base.dir;
  return request;
}

TEST(ModelDirectory, ExistingQuantizationConfigOfTheBaseIsReplacedInPlace) {
  TempDir dir;
  auto report = Convert(
      RequestWithBaseConfig(dir, R"({"a": 1, "quantization_config": {"quant_method": "fp8"}, "z": 2})"));
  ASSERT_TRUE(report.ok()) << report.error().message;
  const ordered_json config = ReadJson(dir / "out/config.json");
  std::vector<std::string> keys;
  for (const auto& [key, value] : config.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "quantization_config", "z"}));
  EXPECT_EQ(config["quantization_config"]["quant_method"], "awq");
}

// transformers reads config.json with Python's json, which takes NaN, Infinity and integers of
// any size (Mamba2's "time_step_limit": [0.0, Infinity]) and writes them back as they were.
TEST(ModelDirectory, NaNInfinityAndHugeIntegersOfTheBaseConfigAreWrittenBackAsPythonWritesThem) {
  TempDir dir;
  // As json.dumps(indent=2) writes it; strings and keys spelling those values stay strings.
  const std::string base_text = R"({
  "model_type": "qwen2",
  "time_step_limit": [
    0.0,
    Infinity
  ],
  "nan": NaN,
  "low": -Infinity,
  "big": 1000000000000000019884624838656,
  "below_int64": -9223372036854775809,
  "uint64_max": 18446744073709551615,
  "NaN": "NaN, Infinity and -Infinity in a string",
  "escaped": "a backslash, then u0000: \\u0000NaN, and a quote: \"\\u0000Infinity",
  "torch_dtype": "bfloat16"
})";
  auto report = Convert(RequestWithBaseConfig(dir, base_text));
  ASSERT_TRUE(report.ok()) << report.error().message;
  const std::string quantization = R"(,
  "quantization_config": {
    "quant_method": "awq",
    "bits": 4,
    "group_size": 32,
    "zero_point": true,
    "version": "gemm",
    "modules_to_not_convert": []
  }
}
)";
  EXPECT_EQ(testing::ReadText(dir / "out/config.json"), base_text.substr(0, base_text.size() - 2) + quantization);
}

// The base config `text` converted, as the output's config.json writes it, less the
// quantization_config ms2vllm adds: as json.dumps(indent=2) would write `text`.
std::string BaseConfigWrittenBack(const TempDir& dir, const std::string& text) {
  auto report = Convert(RequestWithBaseConfig(dir, text));
  if (!report.ok()) return report.error().message;
  const std::string written = testing::ReadText(dir / "out/config.json");
  return written.substr(0, written.find(",\n  \"quantization_config\"")) + "\n}";
}

// Python reads a float beyond a double as inf and json.dumps writes it Infinity; nlohmann's
// parser refuses it ("number overflow").
TEST(ModelDirectory, FloatsBeyondADoubleOfTheBaseConfigAreWrittenBackAsInfinityAsPythonWritesThem) {
  TempDir dir;
  EXPECT_EQ(BaseConfigWrittenBack(dir, R"({"model_type": "qwen2", "a": 1e400, "b": -1e400, "c": [1E+400, 1.5e999, 1)" +
                                           std::string(400, '0') + ".0]}"),
            R"({
  "model_type": "qwen2",
  "a": Infinity,
  "b": -Infinity,
  "c": [
    Infinity,
    Infinity,
    Infinity
  ]
})");
}

// Python reads a float below a double's least as 0.0 or -0.0, or the nearest subnormal.
TEST(ModelDirectory, FloatsBelowADoubleOfTheBaseConfigAreWrittenBackAsPythonWritesThem) {
  TempDir dir;
  EXPECT_EQ(BaseConfigWrittenBack(dir, R"({"model_type": "qwen2", "a": 1e-400, "b": -1e-400, "c": [2e-324, 3e-324, -0.0e-5]})"),
            R"({
  "model_type": "qwen2",
  "a": 0.0,
  "b": -0.0,
  "c": [
    0.0,
    5e-324,
    -0.0
  ]
})");
}

// json.dumps writes floats as repr does: the shortest digits that read back, positional below
// 1e16. nlohmann's dump() writes 1e+15 and 9.999999999999999e+22 (and 17 digits where 16 do).
TEST(ModelDirectory, FloatsOfTheBaseConfigAreWrittenBackAsPythonWritesThem) {
  TempDir dir;
  const std::string base_text = R"({"model_type": "qwen2", "a": 1e15, "b": 1234567890123456.0, "c": 1e23, )"
                                R"("d": -476.4663769236316, "e": [0.02, 1e-5, 1E-6, 0.0001, 10000.0, 500000.0, 1e16, )"
                                R"(1e+30, 2.5e-7, 1.0, -0.5]})";
  EXPECT_EQ(BaseConfigWrittenBack(dir, base_text), R"({
  "model_type": "qwen2",
  "a": 1000000000000000.0,
  "b": 1234567890123456.0,
  "c": 1e+23,
  "d": -476.4663769236316,
  "e": [
    0.02,
    1e-05,
    1e-06,
    0.0001,
    10000.0,
    500000.0,
    1e+16,
    1e+30,
    2.5e-07,
    1.0,
    -0.5
  ]
})");
}

// Python's json stops short of 1000 levels (its recursion limit); nlohmann's DOM is copied and
// written recursively, so a config 100k deep would overflow the stack (see hostile_input_test).
TEST(ModelDirectory, ABaseConfigNestedAsDeepAsPythonReadsIsKeptAndDeeperIsRefused) {
  TempDir dir;
  const auto nested = [](size_t levels) {  // the config object is the first level
    return R"({"model_type": "qwen2", "x": )" + std::string(levels - 1, '[') + std::string(levels - 1, ']') + "}";
  };
  ConvertRequest request = RequestWithBaseConfig(dir, nested(1000));
  const fs::path base_config = *request.base_model / "config.json";
  auto report = Convert(request);
  ASSERT_TRUE(report.ok()) << report.error().message;
  ExpectBaseConfigKept(ordered_json::parse(nested(1000)), ReadJson(dir / "out/config.json"));

  fs::remove_all(dir / "out");
  testing::WriteText(base_config, nested(1001));
  request.dry_run = true;
  ExpectRefused(Convert(request), ErrorCode::kInvalidInput, base_config.string() + ": nested deeper than 1000 levels", dir);
  request.dry_run = false;
  ExpectRefused(Convert(request), ErrorCode::kInvalidInput, base_config.string() + ": nested deeper than 1000 levels", dir);
}

struct GptqCase {
  std::string name;
  Model model;
  GptqFormat format;
  ordered_json expected;
  const char* torch_dtype = "float16";  // bfloat16, the base's, where vLLM has a Marlin kernel for it
};

void PrintTo(const GptqCase& c, std::ostream* os) { *os << c.name; }

class GptqConfigTest : public ::testing::TestWithParam<GptqCase> {};

TEST_P(GptqConfigTest, ConfigAndQuantizeConfigDescribeTheTensors) {
  const GptqCase& c = GetParam();
  const MsCheckpoint checkpoint = MakeModel(c.model);
  TempDir dir;
  const BaseModel base = MakeBaseModel(dir / "base");
  fs::create_directories(dir / "input");
  checkpoint.WriteInto(dir / "input", c.model.bits);
  ConvertRequest request = DirectoryRequest(dir / "input", dir / "out", TargetTool::kGptq);
  request.plan.gptq_format = c.format;
  request.base_model = base.dir;
  auto report = Convert(request);
  ASSERT_TRUE(report.ok()) << report.error().message;
  const ordered_json config = ReadJson(dir / "out/config.json");
  ExpectBaseConfigKept(WithTorchDtype(base.config, c.torch_dtype), config);
  EXPECT_EQ(config["quantization_config"].dump(), c.expected.dump());
  EXPECT_EQ(ReadJson(dir / "out/quantize_config.json").dump(), c.expected.dump());
}

ordered_json GptqConfig(int bits, int group, bool sym, const char* format) {
  ordered_json config;
  config["quant_method"] = "gptq";
  config["bits"] = bits;
  config["group_size"] = group;
  config["desc_act"] = false;
  config["sym"] = sym;
  config["checkpoint_format"] = format;
  return config;
}

// vLLM and GPTQModel build a linear matched by a "-:" key of `dynamic` (Python re.match) unquantized.
ordered_json WithFloatDownProj(ordered_json config) {
  config["dynamic"] = ordered_json::parse(R"({"-:^model\\.layers\\.0\\.mlp\\.down_proj$": {},
                                               "-:^model\\.layers\\.1\\.mlp\\.down_proj$": {}})");
  return config;
}

// Older vLLM looks a fused layer up by its fused name only, so that is exempted too.
ordered_json WithFloatAttention(ordered_json config) {
  config["dynamic"] = ordered_json::parse(R"({"-:^model\\.layers\\.0\\.self_attn\\.q_proj$": {},
      "-:^model\\.layers\\.0\\.self_attn\\.k_proj$": {}, "-:^model\\.layers\\.1\\.self_attn\\.q_proj$": {},
      "-:^model\\.layers\\.1\\.self_attn\\.k_proj$": {}, "-:^model\\.layers\\.0\\.self_attn\\.qkv_proj$": {},
      "-:^model\\.layers\\.1\\.self_attn\\.qkv_proj$": {}})");
  return config;
}

INSTANTIATE_TEST_SUITE_P(
    ModelDirectory, GptqConfigTest,
    ::testing::Values(
        GptqCase{"w4_g48_asym_v1", {.bits = 4, .groups = 2}, GptqFormat::kV1, GptqConfig(4, 48, false, "gptq")},
        GptqCase{"w8_g48_asym_v2", {.bits = 8, .groups = 2}, GptqFormat::kV2, GptqConfig(8, 48, false, "gptq_v2")},
        GptqCase{"w4_perchannel_zero_offsets", {.bits = 4, .groups = 1, .zero_offsets = true}, GptqFormat::kV1,
                 GptqConfig(4, -1, true, "gptq"), "bfloat16"},
        GptqCase{"w8_perchannel_missing_offsets_v2", {.bits = 8, .groups = 1, .offsets = false}, GptqFormat::kV2,
                 GptqConfig(8, -1, true, "gptq_v2"), "bfloat16"},
        GptqCase{"w4_g32_missing_offsets", {.bits = 4, .groups = 3, .offsets = false}, GptqFormat::kV1,
                 GptqConfig(4, 32, true, "gptq"), "bfloat16"},
        GptqCase{"w4_g32_asym_v1", {.bits = 4, .groups = 3}, GptqFormat::kV1, GptqConfig(4, 32, false, "gptq")},
        GptqCase{"w4_g48_missing_offsets", {.bits = 4, .groups = 2, .offsets = false}, GptqFormat::kV1,
                 GptqConfig(4, 48, true, "gptq")},
        GptqCase{"w8_g48_float_down_proj", {.bits = 8, .groups = 2, .float_down_proj = true}, GptqFormat::kV1,
                 WithFloatDownProj(GptqConfig(8, 48, false, "gptq"))},
        GptqCase{"w4_g32_sym_float_attention", {.groups = 3, .offsets = false, .float_attention = true},
                 GptqFormat::kV1, WithFloatAttention(GptqConfig(4, 32, true, "gptq")), "bfloat16"}),
    [](const auto& info) { return info.param.name; });

// vLLM runs asymmetric GPTQ (as it runs group sizes no Marlin kernel takes) in float16 only and
// refuses to start on a config asking for bfloat16, or for float32, which it runs as bfloat16.
// Each change is warned of, in a --dry-run too.
TEST(ModelDirectory, ConfigStatesFloat16WhereVllmRunsTheLayoutInFloat16Only) {
  const MsCheckpoint checkpoint = MakeModel({.groups = 3});  // asymmetric, group 32
  TempDir dir;
  fs::create_directories(dir / "input");
  checkpoint.WriteInto(dir / "input");
  struct Case {
    const char* base;
    const char* written;  // without quantization_config
    const char* warned;   // in the warning line that says "only in float16"; "" when there is none
  };
  const Case cases[] = {
      {R"({"model_type": "qwen2", "torch_dtype": "bfloat16", "z": 1})",
       R"({"model_type": "qwen2", "torch_dtype": "float16", "z": 1})", R"(config.json torch_dtype "bfloat16" -> "float16")"},
      {R"({"model_type": "qwen2", "dtype": "float32"})", R"({"model_type": "qwen2", "dtype": "float16"})",
       R"(config.json dtype "float32" -> "float16")"},
      {R"({"model_type": "qwen2"})", R"({"model_type": "qwen2", "torch_dtype": "float16"})",
       R"(config.json torch_dtype (none) -> "float16")"},
      {R"({"torch_dtype": "float16"})", R"({"torch_dtype": "float16"})", ""},
      // vLLM refuses Gemma 2 in float16 too: no dtype loads there, and transformers needs bfloat16.
      {R"({"model_type": "gemma2", "torch_dtype": "bfloat16"})", R"({"model_type": "gemma2", "torch_dtype": "bfloat16"})",
       "vLLM will not load the directory"},
  };
  int n = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.base);
    const fs::path base = dir / ("base" + std::to_string(n)), out = dir / ("out" + std::to_string(n++));
    fs::create_directories(base);
    testing::WriteText(base / "config.json", c.base);
    ConvertRequest request = DirectoryRequest(dir / "input", out, TargetTool::kGptq);
    request.base_model = base;
    request.dry_run = true;
    auto planned = Convert(request);
    ASSERT_TRUE(planned.ok()) << planned.error().message;
    request.dry_run = false;
    auto report = Convert(request);
    ASSERT_TRUE(report.ok()) << report.error().message;
    ordered_json config = ReadJson(out / "config.json");
    config.erase("quantization_config");
    EXPECT_EQ(config.dump(), ordered_json::parse(c.written).dump());
    for (const ConvertReport* r : {&*planned, &*report}) {
      const std::string line = WarningLine(*r, "only in float16");
      EXPECT_EQ(line.empty(), std::string(c.warned).empty()) << line;
      EXPECT_NE(line.find(c.warned), std::string::npos) << line;
    }
  }
}

// The group sizes of Marlin, vLLM's kernels that also run in bfloat16, are decided on the plan
// alone; the test models above are too narrow for 64 and 128.
TEST(ModelDirectory, Float16IsStatedForTheGroupSizesMarlinLacks) {
  struct Case {
    std::optional<uint64_t> group_size;  // nullopt: per channel
    TargetTool target;
    bool symmetric;
    bool float16;
  };
  const Case cases[] = {{32, TargetTool::kAwq, false, false},     {64, TargetTool::kAwq, false, false},
                        {128, TargetTool::kAwq, false, false},    {64, TargetTool::kGptq, true, false},
                        {128, TargetTool::kGptq, true, false},    {std::nullopt, TargetTool::kGptq, true, false},
                        {48, TargetTool::kAwq, false, true},      {256, TargetTool::kGptq, true, true},
                        {128, TargetTool::kGptq, false, true}};
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.group_size.value_or(0) << (c.target == TargetTool::kAwq ? " awq" : " gptq")
                                    << (c.symmetric ? " sym" : " asym"));
    Plan plan;
    plan.target = c.target;
    plan.group_size = c.group_size.value_or(96);
    plan.per_channel = !c.group_size;
    ordered_json config = ordered_json::parse(R"({"model_type": "qwen2", "torch_dtype": "bfloat16"})");
    const std::vector<std::string> changes = StateFloat16ForVllm(plan, c.symmetric, config);
    EXPECT_EQ(!changes.empty(), c.float16);
    EXPECT_EQ(config["torch_dtype"], c.float16 ? "float16" : "bfloat16");
  }
}

// GPTQModel refuses sym=false in v1 unless it made the checkpoint; gptq_v2 is not read everywhere.
TEST(ModelDirectory, WarnsWhichGptqLoadersReadTheFormatWritten) {
  TempDir dir;
  const BaseModel base = MakeBaseModel(dir / "base");
  struct Case {
    Model model;
    GptqFormat format;
    bool v1_asymmetric, v2;
  };
  const Case cases[] = {{{.groups = 3}, GptqFormat::kV1, true, false},
                        {{.groups = 3, .offsets = false}, GptqFormat::kV1, false, false},
                        {{.groups = 3}, GptqFormat::kV2, false, true}};
  int n = 0;
  for (const Case& c : cases) {
    const fs::path input = dir / ("input" + std::to_string(n)), out = dir / ("out" + std::to_string(n++));
    fs::create_directories(input);
    MakeModel(c.model).WriteInto(input);
    ConvertRequest request = DirectoryRequest(input, out, TargetTool::kGptq);
    request.plan.gptq_format = c.format;
    request.base_model = base.dir;
    auto report = Convert(request);
    ASSERT_TRUE(report.ok()) << report.error().message;
    const std::string v1 = WarningLine(*report, "GPTQModel refuses sym=false");
    EXPECT_EQ(!v1.empty(), c.v1_asymmetric) << n << ": " << v1;
    if (!v1.empty()) {
      EXPECT_NE(v1.find(out.string()), std::string::npos) << v1;
    }
    EXPECT_EQ(!WarningLine(*report, "gptq_v2 loads in GPTQModel").empty(), c.v2) << n;
  }
}

// No loader reads a directory without config.json: a script checking the exit status would
// deploy one, so it is refused, before any work (a --dry-run says it too).
TEST(ModelDirectory, WithoutABaseModelOrAConfigBesideTheWeightsIsAUsageError) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  fs::create_directories(dir / "input");
  checkpoint.WriteInto(dir / "input");
  for (bool dry_run : {false, true}) {
    ConvertRequest request = DirectoryRequest(dir / "input", dir / "out");
    request.dry_run = dry_run;
    auto report = Convert(request);
    ExpectRefused(report, ErrorCode::kUsage, (dir / "input/config.json").string(), dir);
    EXPECT_CONTAINS(report.error().message, "--base-model");
  }
}

// The script converts what one file holds and what the description lists, with a warning for the
// rest; a model directory without some of the model's tensors does not load. msModelSlim's output
// whose description `edit` changes: --out-dir refuses it with `refusal` (naming the file
// `names_description` says), the drop-in mode converts it with the warning `warning`.
void ExpectRefusedInADirectoryAndConvertedAsByTheScript(const std::function<void(ordered_json&)>& edit,
                                                        bool names_description, const std::string& refusal,
                                                        const std::string& warning) {
  TempDir dir;
  const fs::path weights = WriteMsModelSlimOutput(MakeModel({}), dir / "input");
  const fs::path description = dir / "input/quant_model_description_w4a16.json";
  ordered_json listed = ReadJson(description);
  edit(listed);
  testing::WriteText(description, listed.dump());
  ExpectRefused(Convert(DirectoryRequest(dir / "input", dir / "out")), ErrorCode::kInvalidInput,
                (names_description ? description : weights).string() + ": " + refusal, dir);
  ConvertRequest one_file;
  one_file.model = weights;
  one_file.save_path = dir / "one.safetensors";
  auto converted = Convert(one_file);
  ASSERT_TRUE(converted.ok()) << converted.error().message;
  EXPECT_NE(WarningLine(*converted, warning), "");
}

TEST(ModelDirectory, TensorsTheDescriptionListsButTheCheckpointLacksAreRefused) {  // one shard given alone
  ExpectRefusedInADirectoryAndConvertedAsByTheScript(
      [](ordered_json& listed) { listed["model.layers.99.input_layernorm.weight"] = "FLOAT"; }, false,
      "lacks 1 tensor(s) the description lists (model.layers.99.input_layernorm.weight)",
      "not in the checkpoint (one shard given instead of its index?): model.layers.99.input_layernorm.weight");
}

TEST(ModelDirectory, TensorsTheCheckpointHoldsButTheDescriptionOmitsAreRefused) {
  ExpectRefusedInADirectoryAndConvertedAsByTheScript(
      [](ordered_json& listed) { ASSERT_EQ(listed.erase("lm_head.weight"), 1u); }, true,
      "does not list 1 tensor(s) of the checkpoint (lm_head.weight)", "are not in the description and are not "
      "written (as the script does): lm_head.weight");
}

// A linear quantized another way (its int8 weight labelled W8A8): the drop-in mode copies it as
// the script does and warns; no AWQ or GPTQ config can state it, so --out-dir refuses rather than
// list it as a float linear beside its int8 weight. It was converted and verified "OK".
TEST(ModelDirectory, IntegerLinearsOfAnotherLabelAreRefused) {
  TempDir dir;
  const fs::path weights = WriteMsModelSlimOutput(MakeModel({}), dir / "input");
  const fs::path description = dir / "input/quant_model_description_w4a16.json";
  ordered_json listed = ReadJson(description);
  for (auto& [name, label] : listed.items()) {
    if (name.starts_with("model.layers.1.mlp.down_proj.")) label = "W8A8";
  }
  testing::WriteText(description, listed.dump());
  ExpectRefused(Convert(DirectoryRequest(dir / "input", dir / "out")), ErrorCode::kUnsupported,
                description.string() + ": labels 1 weight(s) holding integer or FP8 values, neither W4A16 nor W8A16 "
                                       "(model.layers.1.mlp.down_proj (W8A8, I8))",
                dir);
  ConvertRequest one_file;
  one_file.model = weights;
  one_file.save_path = dir / "one.safetensors";
  auto converted = Convert(one_file);
  ASSERT_TRUE(converted.ok()) << converted.error().message;
  EXPECT_NE(WarningLine(*converted, "model.layers.1.mlp.down_proj.weight (W8A8, I8)"), "");
  EXPECT_EQ(WarningLine(*converted, "left in float"), "");
}

// vLLM builds the head in float unless quantization_config.lm_head is true, and then finds no
// lm_head.weight to load. Loaders that quantize only the decoder layers' linears cannot: a warning
// says so.
TEST(ModelDirectory, AQuantizedHeadIsDeclaredInTheConfigs) {
  for (const TargetTool target : {TargetTool::kAwq, TargetTool::kGptq}) {
    SCOPED_TRACE(target == TargetTool::kAwq ? "awq" : "gptq");
    TempDir dir;
    const BaseModel base = MakeBaseModel(dir / "base");
    fs::create_directories(dir / "input");
    MakeModel({.quantized_head = true}).WriteInto(dir / "input");
    ConvertRequest request = DirectoryRequest(dir / "input", dir / "out", target);
    request.base_model = base.dir;
    auto report = Convert(request);
    ASSERT_TRUE(report.ok()) << report.error().message;
    EXPECT_TRUE(testing::LoadTensors(dir / "out/model.safetensors").contains("lm_head.qweight"));
    VerifyRequest check;  // verify expects the configs the conversion writes
    check.model = dir / "input";
    check.converted = dir / "out";
    auto verified = Verify(check);
    ASSERT_TRUE(verified.ok()) << verified.error().message;
    EXPECT_TRUE(verified->problems.empty()) << verified->problems.front().tensor << ": " << verified->problems.front().problem;
    EXPECT_EQ(ReadJson(dir / "out/config.json")["quantization_config"]["lm_head"], true);
    EXPECT_CONTAINS(WarningLine(*report, "build the head in float and cannot load it"), ": lm_head");
    if (target == TargetTool::kGptq) {
      EXPECT_EQ(ReadJson(dir / "out/quantize_config.json")["lm_head"], true);
    }
  }
}

// A config tying lm_head to the embeddings (tie_word_embeddings) loads without lm_head.weight.
TEST(ModelDirectory, ATiedLmHeadNeedsNoTensorOfItsOwn) {
  MsCheckpoint checkpoint;
  checkpoint.Describe("model_quant_type", "W4A16");
  checkpoint.AddLinear("model.layers.0.mlp.down_proj", testing::MakeMsLinear({}), "W4A16");
  checkpoint.Describe("lm_head.weight", "FLOAT");  // listed, as msModelSlim lists a tied head
  TempDir dir;
  WriteMsModelSlimOutput(checkpoint, dir / "input");
  ExpectRefused(Convert(DirectoryRequest(dir / "input", dir / "out")), ErrorCode::kInvalidInput,
                "lacks 1 tensor(s) the description lists (lm_head.weight)", dir);
  testing::WriteText(dir / "input/config.json", R"({"model_type": "qwen2", "tie_word_embeddings": true})");
  auto tied = Convert(DirectoryRequest(dir / "input", dir / "out"));
  ASSERT_TRUE(tied.ok()) << tied.error().message;
  EXPECT_FALSE(testing::LoadTensors(dir / "out/model.safetensors").contains("lm_head.weight"));
}

// msModelSlim's saver copies the float model's .json and .py files beside its weights.
TEST(ModelDirectory, WithoutABaseModelTheConfigsBesideTheWeightsAreTheBase) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  // The base model's configs and tokenizer, without its float weights and leftovers.
  const BaseModel beside = MakeBaseModel(dir / "input");
  for (const auto& name : beside.not_copied) fs::remove(dir / "input" / name);
  checkpoint.WriteInto(dir / "input");
  auto report = Convert(DirectoryRequest(dir / "input", dir / "out", TargetTool::kGptq));
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->base_model, dir / "input");
  EXPECT_CONTAINS(WarningLine(*report, "config.json and the tokenizer files beside the weights"),
                  (dir / "input").string());
  EXPECT_EQ(WarningLine(*report, "holds no tokenizer"), "");
  // The float model's files: what msModelSlim's saver copies (.json and .py files) and the
  // tokenizer's (tokenizer.model, merges.txt); not the other files kept beside its output
  // (README.md and the like would be the user's own there).
  std::set<std::string> expected = {"model.safetensors", "config.json", "quantize_config.json"};
  for (const auto& name : beside.copied) {
    if (name == "README.md") continue;
    expected.insert(name);
    EXPECT_EQ(testing::ReadText(dir / "out" / name), testing::ReadText(dir / "input" / name)) << name;
  }
  EXPECT_EQ(expected.size(), 12u);
  EXPECT_EQ(FileNames(dir / "out"), expected);  // neither msModelSlim's weights nor its description
  const ordered_json config = ReadJson(dir / "out/config.json");
  EXPECT_EQ(config["quantization_config"]["quant_method"], "gptq");
  EXPECT_EQ(config["model_type"], "qwen2");

  EXPECT_EQ(WarningLine(*report, "already declares a quantization_config"), "");

  // A base config that is itself quantized (an FP8 release, say): its quantization_config is
  // replaced, and said so.
  ordered_json quantized = ReadJson(dir / "input/config.json");
  quantized["quantization_config"] = {{"quant_method", "fp8"}};
  testing::WriteText(dir / "input/config.json", quantized.dump());
  auto requantized = Convert(DirectoryRequest(dir / "input", dir / "out4", TargetTool::kGptq));
  ASSERT_TRUE(requantized.ok()) << requantized.error().message;
  EXPECT_CONTAINS(WarningLine(*requantized, "already declares a quantization_config"),
                  (dir / "input/config.json").string());
  EXPECT_EQ(ReadJson(dir / "out4/config.json")["quantization_config"]["quant_method"], "gptq");

  // With no file a tokenizer is built from, the directory loads with none: warned of.
  for (const char* name : {"tokenizer.json", "tokenizer.model", "tokenizer.model.v3", "vocab.json"}) {
    fs::remove(dir / "input" / name);
  }
  auto untokenized = Convert(DirectoryRequest(dir / "input", dir / "out3", TargetTool::kGptq));
  ASSERT_TRUE(untokenized.ok()) << untokenized.error().message;
  EXPECT_CONTAINS(WarningLine(*untokenized, "holds no tokenizer"), (dir / "input").string());

  // A config of another model there: refused, saying where it came from and what to give instead.
  testing::WriteText(dir / "input/config.json", R"({"model_type": "qwen2", "hidden_size": 4096})");
  auto refused = Convert(DirectoryRequest(dir / "input", dir / "out2", TargetTool::kGptq));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kInvalidInput);
  EXPECT_CONTAINS(refused.error().message, "for want of --base-model; give the float model's directory with --base-model");
  EXPECT_FALSE(fs::exists(dir / "out2"));
}

// ---- An existing target, failures, --scales-dtype ----

// What --force may replace: an earlier conversion, its weights "old".
const char kEarlierConfig[] = R"({"quantization_config": {"quant_method": "awq"}})";
void WriteAnEarlierConversion(const fs::path& dir) {
  fs::create_directories(dir);
  testing::WriteText(dir / "model.safetensors", "old");
  testing::WriteText(dir / "config.json", kEarlierConfig);
}

// dir/out still holds the earlier conversion, whole, and no stage is left beside it.
void ExpectTheEarlierConversionKept(const TempDir& dir) {
  EXPECT_EQ(FileNames(dir / "out"), (std::set<std::string>{"config.json", "model.safetensors"}));
  EXPECT_EQ(testing::ReadText(dir / "out/model.safetensors"), "old");
  EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});
}

// A request converting a model into <dir>/out, which already holds an earlier conversion.
ConvertRequest IntoAnOlderDirectory(const TempDir& dir) {
  fs::create_directories(dir / "input");
  MakeModel({}).WriteInto(dir / "input");
  WriteConfigBeside(dir / "input");
  WriteAnEarlierConversion(dir / "out");
  return DirectoryRequest(dir / "input", dir / "out");
}

TEST(ModelDirectory, AnExistingTargetIsAnErrorUnlessForcedAndForceReplacesIt) {
  TempDir dir;
  ConvertRequest request = IntoAnOlderDirectory(dir);
  auto refused = Convert(request);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kOutput);
  EXPECT_CONTAINS(refused.error().message, (dir / "out").string());
  EXPECT_CONTAINS(refused.error().message, "--force");
  ExpectTheEarlierConversionKept(dir);

  request.force = true;
  auto replaced = Convert(request);
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_EQ(FileNames(dir / "out"), (std::set<std::string>{"model.safetensors", "config.json"}));
  EXPECT_NE(testing::ReadText(dir / "out/model.safetensors"), "old");
  EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});
}

// An empty directory is one made for the output: taken without --force. --force replaces only an
// earlier conversion: a mistyped --out-dir (a home directory, a project, the float model) stays
// whole, and the message says so at once, not after sending the user to --force.
TEST(ModelDirectory, AnEmptyTargetIsTakenAndForceReplacesOnlyAnEarlierConversion) {
  TempDir dir;
  ConvertRequest request = IntoAnOlderDirectory(dir);
  fs::remove_all(dir / "out");
  fs::create_directories(dir / "out");
  ::chmod((dir / "out").c_str(), 02770);  // a shared directory: its mode passes to the output
  auto into_empty = Convert(request);
  ASSERT_TRUE(into_empty.ok()) << into_empty.error().message;
  EXPECT_EQ(FileNames(dir / "out"), (std::set<std::string>{"model.safetensors", "config.json"}));
  struct stat made {};
  ASSERT_EQ(::stat((dir / "out").c_str(), &made), 0);
  EXPECT_EQ(made.st_mode & 07777, 02770u);

  // The working directory cannot be replaced by a rename: refused before any work.
  fs::remove_all(dir / "out");
  fs::create_directories(dir / "out");
  const fs::path was = fs::current_path();
  fs::current_path(dir / "out");
  ConvertRequest here = request;
  here.out_dir = ".";
  auto refused_here = Convert(here);
  fs::current_path(was);
  ASSERT_FALSE(refused_here.ok());
  EXPECT_EQ(refused_here.error().code, ErrorCode::kOutput);
  EXPECT_CONTAINS(refused_here.error().message, "is the working directory");
  EXPECT_TRUE(fs::is_empty(dir / "out"));

  // A home directory; a float model; msModelSlim's quantized checkpoint (hours of NPU time); a
  // project with a config.json; an earlier conversion the user keeps a subdirectory in.
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> kept = {
      {{{".ssh/id", "key"}, {"notes.txt", "notes"}}, "holds a directory, .ssh,"},
      {{{"config.json", R"({"model_type": "qwen2"})"}, {"model.safetensors", "float"}}, "is not an earlier conversion"},
      {{{"config.json", R"({"model_type": "qwen2"})"},
        {"quant_model_description_w4a16.json", R"({"model_quant_type": "W4A16"})"},
        {"quant_model_weight_w4a16.safetensors", "quantized"}},
       "is not an earlier conversion"},
      {{{"config.json", "{}"}, {"src/a.c", "code"}}, "holds a directory, src,"},
      {{{"config.json", kEarlierConfig}, {".git/HEAD", "ref"}}, "holds a directory, .git,"},
  };
  for (const auto& [files, refusal] : kept) {
    fs::remove_all(dir / "out");
    for (const auto& [name, text] : files) {
      fs::create_directories((dir / "out" / name).parent_path());
      testing::WriteText(dir / "out" / name, text);
    }
    const std::set<std::string> before = FileNames(dir / "out");
    for (bool force : {false, true}) {
      for (bool dry_run : {true, false}) {
        request.force = force;
        request.dry_run = dry_run;
        auto refused = Convert(request);
        ASSERT_FALSE(refused.ok());
        EXPECT_EQ(refused.error().code, ErrorCode::kOutput);
        EXPECT_CONTAINS(refused.error().message, (dir / "out").string() + ": " + refusal);
        EXPECT_EQ(refused.error().message.find("--force"), std::string::npos) << refused.error().message;
        EXPECT_EQ(FileNames(dir / "out"), before);
        for (const auto& [name, text] : files) EXPECT_EQ(testing::ReadText(dir / "out" / name), text) << name;
      }
    }
  }
  EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});
}

// A symlink to a directory is followed (a link to a larger disk): the output lands where it points,
// under the same rules, and the link stays. A link to the input is the input.
TEST(ModelDirectory, ASymlinkedTargetIsFollowed) {
  TempDir dir;
  ConvertRequest request = IntoAnOlderDirectory(dir);
  fs::remove_all(dir / "out");
  fs::create_directories(dir / "disk/real");
  fs::create_directory_symlink(dir / "disk/real", dir / "out");
  auto into_empty = Convert(request);
  ASSERT_TRUE(into_empty.ok()) << into_empty.error().message;
  EXPECT_TRUE(fs::is_symlink(dir / "out"));
  EXPECT_EQ(FileNames(dir / "disk/real"), (std::set<std::string>{"config.json", "model.safetensors"}));

  request.force = true;  // now an earlier conversion: replaced where it is
  auto replaced = Convert(request);
  ASSERT_TRUE(replaced.ok()) << replaced.error().message;
  EXPECT_TRUE(fs::is_symlink(dir / "out"));
  EXPECT_EQ(FileNames(dir / "disk/real"), (std::set<std::string>{"config.json", "model.safetensors"}));
  EXPECT_EQ(StageLeftovers(dir / "disk"), std::vector<std::string>{});

  fs::create_directory_symlink(dir / "input", dir / "to-input");
  request.out_dir = dir / "to-input";
  auto refused = Convert(request);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::kUsage);
  EXPECT_CONTAINS(refused.error().message, "would replace the input");
  EXPECT_TRUE(fs::is_symlink(dir / "to-input"));
}

// A --base-model that is missing, or holds no config.json, is said before the weights are read
// (here they are not even a safetensors file).
TEST(ModelDirectory, AMissingBaseModelIsRefusedBeforeTheWeightsAreRead) {
  TempDir dir;
  fs::create_directories(dir / "input");
  MakeModel({}).WriteInto(dir / "input");
  testing::WriteText(dir / "input/quant_model_weight_w4a16.safetensors", "not a checkpoint");
  fs::create_directories(dir / "empty");
  for (const auto& [base, problem] : {std::pair{dir / "no-such-model", ": no such directory"},
                                      std::pair{dir / "empty", ": has no config.json"}}) {
    ConvertRequest request = DirectoryRequest(dir / "input", dir / "out");
    request.base_model = base;
    auto report = Convert(request);
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.error().code, ErrorCode::kInvalidInput);
    EXPECT_CONTAINS(report.error().message, base.string() + problem);
  }
  EXPECT_FALSE(fs::exists(dir / "out"));
}

// An unusable base config.json is refused before any weight is written, so a --dry-run says it
// too. (A failure after the weights: ACheckBeforeCommitSeesTheFinishedStageAndItsErrorKeepsTheTarget.)
TEST(ModelDirectory, AnUnusableBaseConfigIsRefusedUpFrontAndNothingAppears) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  fs::create_directories(dir / "input");
  checkpoint.WriteInto(dir / "input");
  BaseModel base = MakeBaseModel(dir / "base");
  testing::WriteText(base.dir / "config.json", "[1, 2]");
  ConvertRequest request = DirectoryRequest(dir / "input", dir / "out");
  request.base_model = base.dir;
  request.dry_run = true;
  auto planned = Convert(request);
  ASSERT_FALSE(planned.ok());
  EXPECT_CONTAINS(planned.error().message, "config.json");
  request.dry_run = false;
  auto report = Convert(request);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kInvalidInput);
  EXPECT_CONTAINS(report.error().message, "config.json");
  EXPECT_FALSE(fs::exists(dir / "out"));
  EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});

  // With --force over an existing directory: the old one stays as it was.
  WriteAnEarlierConversion(dir / "out");
  testing::WriteText(base.dir / "config.json", "{not json");
  request.force = true;
  auto forced = Convert(request);
  ASSERT_FALSE(forced.ok());
  ExpectTheEarlierConversionKept(dir);
}

// A --dry-run refuses what the run would: an existing target without --force, a missing parent.
// A dangling symlink at the target is an existing entry too, refused before any work without
// --force, and replaced (the link, not what it names) with it.
TEST(ModelDirectory, DryRunsAndDanglingLinksMeetTheTargetChecksUpFront) {
  TempDir dir;
  ConvertRequest request = IntoAnOlderDirectory(dir);
  request.dry_run = true;
  auto existing = Convert(request);
  ASSERT_FALSE(existing.ok());
  EXPECT_EQ(existing.error().code, ErrorCode::kOutput);
  EXPECT_CONTAINS(existing.error().message, "already exists");
  request.force = true;
  EXPECT_TRUE(Convert(request).ok());
  request.out_dir = dir / "missing/out";
  auto orphan = Convert(request);
  ASSERT_FALSE(orphan.ok());
  EXPECT_CONTAINS(orphan.error().message, "does not exist");

  request.dry_run = false;
  request.force = false;
  fs::create_symlink(dir / "nowhere", dir / "dangling");
  request.out_dir = dir / "dangling";
  auto refused = Convert(request);
  ASSERT_FALSE(refused.ok());
  EXPECT_CONTAINS(refused.error().message, (dir / "dangling").string() + ": is a symlink to " + (dir / "nowhere").string() +
                                               ", which does not exist: create that directory for the output to go "
                                               "there, or use --force to replace the link");
  request.force = true;
  ASSERT_TRUE(Convert(request).ok());
  EXPECT_FALSE(fs::is_symlink(dir / "dangling"));
  EXPECT_EQ(FileNames(dir / "dangling"), (std::set<std::string>{"model.safetensors", "config.json"}));
  EXPECT_FALSE(fs::exists(dir / "nowhere"));
  EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});
}

// --verify's hook: it sees the finished directory at the stage, and its error keeps the target
// as it was (here an older --force target), with no stage left.
TEST(ModelDirectory, ACheckBeforeCommitSeesTheFinishedStageAndItsErrorKeepsTheTarget) {
  TempDir dir;
  ConvertRequest request = IntoAnOlderDirectory(dir);
  request.force = true;
  std::set<std::string> seen;
  request.check_before_commit = [&](const fs::path& staged) -> Status {
    seen = FileNames(staged);
    return MakeError(ErrorCode::kVerifyFailed, "not exact");
  };
  auto report = Convert(request);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kVerifyFailed);
  EXPECT_EQ(seen, (std::set<std::string>{"model.safetensors", "config.json"}));
  ExpectTheEarlierConversionKept(dir);

  request.check_before_commit = [](const fs::path&) -> Status { return Ok{}; };
  ASSERT_TRUE(Convert(request).ok());
  EXPECT_EQ(FileNames(dir / "out"), (std::set<std::string>{"model.safetensors", "config.json"}));
}

TEST(ModelDirectory, MixedGroupSizesAreRefusedBeforeAnythingIsWritten) {
  MsCheckpoint checkpoint = MakeModel({});
  MsLinearOptions o;
  o.groups = 3;  // group 32, where the rest uses 48
  checkpoint.AddLinear("model.layers.0.self_attn.v_proj", testing::MakeMsLinear(o), "W4A16");
  TempDir dir;
  WriteMsModelSlimOutput(checkpoint, dir / "input");
  ExpectRefused(Convert(DirectoryRequest(dir / "input", dir / "out")), ErrorCode::kUnsupported,
                "model.layers.0.self_attn.v_proj", dir);
}

TEST(ModelDirectory, ForceNeverReplacesTheInputOrTheBaseModel) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  fs::create_directories(dir / "input");
  const fs::path weights = checkpoint.WriteInto(dir / "input");
  const std::string weight_bytes = testing::ReadText(weights);
  const BaseModel base = MakeBaseModel(dir / "base");
  fs::create_directories(dir / "links");
  for (const fs::path& target : {dir / "input", dir / "base", dir / "links/..", dir.path()}) {
    SCOPED_TRACE(target.string());
    ConvertRequest request = DirectoryRequest(dir / "input", target);
    request.base_model = base.dir;
    request.force = true;
    auto report = Convert(request);
    ASSERT_FALSE(report.ok());
    EXPECT_EQ(report.error().code, ErrorCode::kUsage);
    EXPECT_EQ(testing::ReadText(weights), weight_bytes);
    EXPECT_TRUE(fs::exists(base.dir / "tokenizer.json"));
    EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});
  }
  // A snapshot of links into a blob store, as a Hugging Face cache is, whose config.json declares a
  // quantization (--force would take it for an earlier conversion): the links are inputs too.
  fs::create_directories(dir / "snapshot");
  for (const auto& entry : fs::directory_iterator(dir / "input")) {
    fs::create_symlink(entry.path(), dir / "snapshot" / entry.path().filename());
  }
  testing::WriteText(dir / "snapshot/config.json", R"({"quantization_config": {"quant_method": "awq"}})");
  ConvertRequest request = DirectoryRequest(dir / "snapshot", dir / "snapshot");
  request.base_model = base.dir;
  request.force = true;
  auto report = Convert(request);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kUsage);
  EXPECT_CONTAINS(report.error().message, "the output directory would replace the input");
  EXPECT_TRUE(fs::is_symlink(dir / "snapshot" / weights.filename()));
}

TEST(ModelDirectory, AMissingParentDirectoryIsAnOutputError) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  WriteMsModelSlimOutput(checkpoint, dir / "input");
  auto report = Convert(DirectoryRequest(dir / "input", dir / "no/such/out"));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kOutput);
  EXPECT_CONTAINS(report.error().message, (dir / "no/such").string());
  EXPECT_FALSE(fs::exists(dir / "no"));
}

TEST(ModelInputs, SavePathOverAShardOfTheInputIsRefused) {
  const MsCheckpoint checkpoint = MakeModel({});
  TempDir dir;
  const fs::path index = WriteSharded(checkpoint, dir.path(), 2);
  const fs::path shard = dir / "quant_model_weight_w4a16-00002-of-00002.safetensors";
  const std::string bytes = testing::ReadText(shard);
  ConvertRequest request;
  request.model = index;
  request.save_path = shard;
  auto report = Convert(request);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kUsage);
  EXPECT_CONTAINS(report.error().message, shard.string());
  EXPECT_EQ(testing::ReadText(shard), bytes);
}

// One linear "l" whose F32 scales are `edit` applied to exactly representable ones, written to
// dir/input; the scales are returned.
std::vector<double> WriteLinearWithScales(const fs::path& dir, MsCheckpoint& checkpoint,
                                          const std::function<void(std::vector<double>&)>& edit) {
  testing::MsLinear linear = testing::MakeMsLinear(MsLinearOptions{});
  std::vector<double> scales(testing::Numel(linear.scale));
  for (size_t i = 0; i < scales.size(); ++i) scales[i] = (1.0 + i % 64) / 256.0;
  edit(scales);
  linear.scale = MakeTensor(DType::kF32, linear.scale.shape, scales);
  linear.offset = MakeTensor(DType::kF32, linear.scale.shape, std::vector<double>(scales.size(), 1.0));
  checkpoint.AddLinear("l", linear, "W4A16");
  WriteMsModelSlimOutput(checkpoint, dir / "input");
  return scales;
}

TEST(ModelDirectory, ScalesDTypeCastsTheScales) {
  // Scales exactly representable in F16 and BF16, plus 0.1, which both round.
  MsCheckpoint checkpoint;
  TempDir dir;
  const std::vector<double> scales = WriteLinearWithScales(dir.path(), checkpoint, [](auto& s) { s[5] = 0.1; });
  const Tensors reference = ReferenceConversion(checkpoint, dir.path(), TargetTool::kAwq);
  for (auto [option, dtype, tenth] : {std::tuple{ScalesDType::kF16, DType::kF16, uint16_t{0x2E66}},
                                      std::tuple{ScalesDType::kBF16, DType::kBF16, uint16_t{0x3DCD}}}) {
    SCOPED_TRACE(DTypeName(dtype));
    const fs::path out = dir / std::string(DTypeName(dtype));
    ConvertRequest request = DirectoryRequest(dir / "input", out);
    request.plan.scales_dtype = option;
    auto report = Convert(request);
    ASSERT_TRUE(report.ok()) << report.error().message;
    const Tensors tensors = testing::LoadTensors(out / "model.safetensors");
    const LoadedTensor& cast = tensors.at("l.scales");
    EXPECT_EQ(cast.dtype, dtype);
    EXPECT_EQ(cast.shape, (std::vector<uint64_t>{2, 24}));
    // Transposed: [G, out]; element [g][o] is the input's [o][g].
    const auto values = testing::Elements(cast);
    for (uint64_t oo = 0; oo < 24; ++oo) {
      for (uint64_t g = 0; g < 2; ++g) {
        if (oo * 2 + g == 5) continue;
        EXPECT_EQ(values[g * 24 + oo], scales[oo * 2 + g]) << oo << "," << g;
      }
    }
    uint16_t bits = 0;
    std::memcpy(&bits, cast.bytes.data() + (1 * 24 + 2) * 2, 2);  // [g=1][o=2] is input element 5
    EXPECT_EQ(bits, tenth);
    for (const char* name : {"l.qweight", "l.qzeros"}) EXPECT_EQ(tensors.at(name), reference.at(name)) << name;
    for (const auto& line : report->warnings.Lines()) EXPECT_EQ(line.find("scale value(s)"), std::string::npos) << line;
  }
}

// Scales NaN or infinite in the input are a broken calibration, warned of whether the scales are
// cast (counted by the scan before the run) or kept (counted by the run itself, or by the scan in
// a --dry-run, which moves nothing).
TEST(ModelDirectory, ScalesDTypeWarnsOfScalesTheCastLosesAndOfScalesNeverFinite) {
  MsCheckpoint checkpoint;
  TempDir dir;
  WriteLinearWithScales(dir.path(), checkpoint, [](auto& s) {
    s[0] = 1e6;    // past float16's 65504: infinite
    s[1] = 1e-9;   // below float16's 2^-24: 0
    s[2] = std::numeric_limits<double>::quiet_NaN();
  });
  // bf16 has float32's range, and kept scales lose nothing: only the NaN is left to report.
  for (auto [option, lost] : {std::pair{ScalesDType::kF16, "2 scale value(s) in 1 tensor(s)"}, std::pair{ScalesDType::kBF16, ""},
                              std::pair{ScalesDType::kKeep, ""}}) {
    for (const bool dry_run : {false, true}) {
      SCOPED_TRACE(dry_run ? "dry run" : "run");
      ConvertRequest request =
          DirectoryRequest(dir / "input", dir / ("out" + std::to_string(static_cast<int>(option)) + (dry_run ? "d" : "")));
      request.plan.scales_dtype = option;
      request.dry_run = dry_run;
      auto report = Convert(request);
      ASSERT_TRUE(report.ok()) << report.error().message;
      std::string lost_line, never_finite_line;
      for (const auto& line : report->warnings.Lines()) {
        if (line.find("outside the --scales-dtype range") != std::string::npos) lost_line = line;
        if (line.find("NaN or infinite in the input") != std::string::npos) never_finite_line = line;
      }
      EXPECT_EQ(lost_line.substr(0, std::string(lost).size()), lost);
      EXPECT_EQ(lost_line.empty(), std::string(lost).empty()) << lost_line;
      EXPECT_TRUE(never_finite_line.starts_with("1 scale value(s) in 1 tensor(s)")) << never_finite_line;
      EXPECT_CONTAINS(never_finite_line, "l.weight_scale");
    }
  }
}

}  // namespace
}  // namespace ms2vllm
