// `verify`: holds on every correct conversion (golden cases, synthetic checkpoints in every layout
// the converter handles), and fails, naming the tensor, on any damage or mismatch.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <sys/wait.h>

#include "engine/convert.h"
#include "engine/synth_plan.h"
#include "engine/synth_writer.h"
#include "engine/verify.h"
#include "io/checkpoint.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;
using testing::GoldenDir;
using testing::TempDir;

fs::path FindFile(const fs::path& dir, const std::string& prefix) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with(prefix)) return entry.path();
  }
  return {};
}

struct GoldenArgs {
  TargetTool target;
  int bits;
};

GoldenArgs ReadArgs(const fs::path& dir) {
  const auto args = nlohmann::json::parse(testing::ReadText(dir / "args.json"));
  return {args["target_tool"] == "gptq" ? TargetTool::kGptq : TargetTool::kAwq, args["w_bit"].get<int>()};
}

ConvertReport ConvertOrDie(const fs::path& model, const fs::path& save_path, PlanOptions plan) {
  ConvertRequest request;
  request.model = model;
  request.save_path = save_path;
  request.plan = plan;
  auto report = Convert(request);
  EXPECT_TRUE(report.ok()) << report.error().message;
  return report.ok() ? std::move(report).value() : ConvertReport{};
}

VerifyRequest RequestFor(const fs::path& model, const fs::path& converted) {
  VerifyRequest request;
  request.model = model;
  request.converted = converted;
  request.settings.chunk_bytes = 4096;  // many tiles per tensor even in tiny checkpoints
  request.settings.band_bytes = 4096;
  return request;
}

VerifyReport VerifyOrDie(const VerifyRequest& request) {
  auto report = Verify(request);
  EXPECT_TRUE(report.ok()) << report.error().message;
  return report.ok() ? std::move(report).value() : VerifyReport{};
}

std::string Describe(const VerifyReport& report) {
  std::string text;
  for (const auto& p : report.problems) {
    text += p.tensor + ": " + p.problem + "\n";
    for (const auto& e : p.examples) text += "    " + e + "\n";
  }
  return text;
}

bool NamesTensor(const VerifyReport& report, const std::string& tensor) {
  for (const auto& p : report.problems) {
    if (p.tensor == tensor) return true;
  }
  return false;
}

// Flips the bits of one byte of `tensor` in a safetensors file, in place.
void FlipByte(const fs::path& file, const std::string& tensor, uint64_t byte) {
  uint64_t offset = 0;
  {
    auto checkpoint = Checkpoint::Open(file);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.error().message;
    const TensorInfo* info = checkpoint->table().Find(tensor);
    ASSERT_NE(info, nullptr) << tensor;
    ASSERT_LT(byte, info->byte_size);
    offset = info->file_offset + byte;
  }
  std::fstream stream(file, std::ios::in | std::ios::out | std::ios::binary);
  stream.seekg(static_cast<std::streamoff>(offset));
  const int value = stream.get();
  stream.seekp(static_cast<std::streamoff>(offset));
  stream.put(static_cast<char>(value ^ 0x5a));
}

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

CommandResult RunMs2vllm(const std::string& args) {
  CommandResult result;
  FILE* pipe = ::popen((ms2vllm::testing::Ms2vllmCommandLine() + " " + args + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// ---- every golden case: the converter's output and the script's own output verify ----

class VerifyGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(VerifyGoldenTest, ConversionVerifiesWithGivenAndGuessedTarget) {
  const fs::path dir = GoldenDir() / GetParam();
  const GoldenArgs args = ReadArgs(dir);
  TempDir out;
  PlanOptions plan;
  plan.target = args.target;
  ConvertOrDie(dir, out / "res.safetensors", plan);

  VerifyRequest request = RequestFor(dir, out / "res.safetensors");
  request.target = args.target;
  const VerifyReport given = VerifyOrDie(request);
  EXPECT_TRUE(given.ok()) << Describe(given);
  EXPECT_EQ(given.bits, args.bits);
  EXPECT_EQ(given.linears, 7u);
  EXPECT_GT(given.values, 0u);
  EXPECT_GT(given.copied_bytes, 0u);

  request.target.reset();
  const VerifyReport guessed = VerifyOrDie(request);
  EXPECT_TRUE(guessed.ok()) << Describe(guessed);
  EXPECT_EQ(guessed.target, args.target);
}

TEST_P(VerifyGoldenTest, ScriptOutputVerifies) {
  // msModelSlim's own output: an independent writer of the same layout.
  const fs::path dir = GoldenDir() / GetParam();
  VerifyRequest request = RequestFor(dir, dir / "expected.safetensors");
  request.target = ReadArgs(dir).target;
  const VerifyReport report = VerifyOrDie(request);
  EXPECT_TRUE(report.ok()) << Describe(report);
}

INSTANTIATE_TEST_SUITE_P(Golden, VerifyGoldenTest, ::testing::ValuesIn(testing::GoldenCases()), [](const auto& info) {
  std::string name = info.param;
  for (char& c : name) if (c == '-') c = '_';
  return name;
});

// ---- damage: one byte of each kind of tensor, missing and extra tensors, wrong flags ----

class VerifyDamageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = GoldenDir() / "w4a16-g64-gptq";
    converted_ = out_ / "res.safetensors";
    PlanOptions plan;
    plan.target = TargetTool::kGptq;
    ConvertOrDie(model_, converted_, plan);
  }
  // Both ways a check reads its tensors, through the mappings and as copies, must find the same.
  VerifyReport VerifyConverted() {
    VerifyRequest request = RequestFor(model_, converted_);
    request.target = TargetTool::kGptq;
    request.settings.copy_below_bytes = 0;
    const VerifyReport mapped = VerifyOrDie(request);
    request.settings.copy_below_bytes = UINT64_MAX;
    VerifyReport copied = VerifyOrDie(request);
    EXPECT_EQ(Describe(copied), Describe(mapped));
    EXPECT_EQ(copied.problems.size(), mapped.problems.size());
    return copied;
  }
  // Value differences come with examples; a wrong dtype or shape is one line.
  void ExpectOnlyProblem(const VerifyReport& report, const std::string& tensor, bool examples = true) {
    ASSERT_EQ(report.problems.size(), 1u) << Describe(report);
    EXPECT_EQ(report.problems[0].tensor, tensor) << Describe(report);
    EXPECT_EQ(report.problems[0].examples.empty(), !examples) << Describe(report);
  }

  TempDir out_;
  fs::path model_, converted_;
};

TEST_F(VerifyDamageTest, FlippedQWeightByteIsFound) {
  FlipByte(converted_, "model.layers.0.mlp.up_proj.qweight", 1234);
  const VerifyReport report = VerifyConverted();
  ExpectOnlyProblem(report, "model.layers.0.mlp.up_proj.qweight");
  EXPECT_EQ(VerifyFailure(report).code, ErrorCode::kVerifyFailed);
}

TEST(VerifyFailure, NamesEachFailingFileOnce) {
  VerifyReport report;
  report.weights = "out/model.safetensors";
  report.converted = "out";  // a model directory: config.json is one of its files
  for (const char* name : {"config.json", "config.json", "a.qweight", "b.qweight", "c.qweight", "d.qweight"}) {
    report.problems.push_back({name, "wrong", {}});
  }
  const Error error = VerifyFailure(report);
  EXPECT_EQ(error.message,
            "out: not the exact conversion of the input: 6 problem(s), in config.json, a.qweight, "
            "b.qweight, ...");
}

TEST_F(VerifyDamageTest, FlippedQZerosByteIsFound) {
  FlipByte(converted_, "model.layers.0.self_attn.k_proj.qzeros", 5);
  ExpectOnlyProblem(VerifyConverted(), "model.layers.0.self_attn.k_proj.qzeros");
}

TEST_F(VerifyDamageTest, FlippedScalesByteIsFound) {
  FlipByte(converted_, "model.layers.0.mlp.down_proj.scales", 77);
  ExpectOnlyProblem(VerifyConverted(), "model.layers.0.mlp.down_proj.scales");
}

TEST_F(VerifyDamageTest, FlippedCopiedByteIsFound) {
  FlipByte(converted_, "model.embed_tokens.weight", 999);  // the second byte of F16 element 499
  FlipByte(converted_, "model.embed_tokens.weight", 998);
  const VerifyReport report = VerifyConverted();
  ExpectOnlyProblem(report, "model.embed_tokens.weight");
  // One line per element, however many of its bytes differ.
  ASSERT_EQ(report.problems[0].examples.size(), 1u) << Describe(report);
  EXPECT_NE(report.problems[0].examples[0].find(" at byte 998: "), std::string::npos) << Describe(report);
  EXPECT_NE(report.problems[0].problem.find("1 of "), std::string::npos) << Describe(report);
}

TEST_F(VerifyDamageTest, DamageIsNotTakenForAnUnrelatedInput) {
  FlipByte(converted_, "model.embed_tokens.weight", 0);
  EXPECT_EQ(VerifyConverted().hint, "");
}

TEST_F(VerifyDamageTest, MissingAndExtraTensorsAreFound) {
  auto tensors = testing::LoadTensors(converted_);
  std::vector<std::pair<std::string, testing::LoadedTensor>> kept;
  for (auto& [name, tensor] : tensors) {
    if (name != "model.layers.0.self_attn.v_proj.scales") kept.emplace_back(name, tensor);
  }
  kept.emplace_back("model.layers.0.extra.weight", testing::LoadedTensor{DType::kF32, {2}, std::vector<uint8_t>(8, 0)});
  testing::WriteSafetensors(converted_, kept);
  const VerifyReport report = VerifyConverted();
  ASSERT_EQ(report.problems.size(), 2u) << Describe(report);
  EXPECT_EQ(report.problems[0].tensor, "model.layers.0.self_attn.v_proj.scales");
  EXPECT_NE(report.problems[0].problem.find("missing"), std::string::npos);
  EXPECT_EQ(report.problems[1].tensor, "model.layers.0.extra.weight");
}

TEST_F(VerifyDamageTest, WrongDTypeIsFound) {
  auto tensors = testing::LoadTensors(converted_);
  std::vector<std::pair<std::string, testing::LoadedTensor>> all(tensors.begin(), tensors.end());
  for (auto& [name, tensor] : all) {
    if (name == "model.layers.0.self_attn.q_proj.qweight") tensor.dtype = DType::kU32;
  }
  testing::WriteSafetensors(converted_, all);
  ExpectOnlyProblem(VerifyConverted(), "model.layers.0.self_attn.q_proj.qweight", false);
}

TEST_F(VerifyDamageTest, WrongTargetToolFails) {
  VerifyRequest request = RequestFor(model_, converted_);
  request.target = TargetTool::kAwq;
  const VerifyReport report = VerifyOrDie(request);
  EXPECT_FALSE(report.ok());
  EXPECT_TRUE(NamesTensor(report, "model.layers.0.self_attn.q_proj.qweight")) << Describe(report);
}

TEST_F(VerifyDamageTest, WrongGptqFormatFailsWithAHint) {
  VerifyRequest request = RequestFor(model_, converted_);
  request.target = TargetTool::kGptq;
  request.gptq_format = GptqFormat::kV2;
  const VerifyReport report = VerifyOrDie(request);
  ASSERT_EQ(report.problems.size(), 7u) << Describe(report);  // every qzeros, nothing else
  for (const auto& p : report.problems) {
    EXPECT_TRUE(p.tensor.ends_with(".qzeros")) << p.tensor;
    EXPECT_NE(p.problem.find("looks like GPTQ v1"), std::string::npos) << p.problem;
  }
}

TEST_F(VerifyDamageTest, TargetTheInputCannotHaveFails) {
  // Per-channel has no AWQ layout: no file can be its AWQ conversion.
  const fs::path per_channel = GoldenDir() / "w8a16-perchannel-gptq";
  PlanOptions plan;
  plan.target = TargetTool::kGptq;
  ConvertOrDie(per_channel, out_ / "w8.safetensors", plan);
  VerifyRequest request = RequestFor(per_channel, out_ / "w8.safetensors");
  request.target = TargetTool::kAwq;
  const VerifyReport report = VerifyOrDie(request);
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_NE(report.problems[0].problem.find("cannot be the awq conversion"), std::string::npos) << Describe(report);
  EXPECT_NE(report.problems[0].problem.find("q_proj.weight"), std::string::npos) << Describe(report);

  // Its summary names the width asked about, not a default of 4.
  request.w_bit = 8;
  const VerifyReport eight = VerifyOrDie(request);
  ASSERT_EQ(eight.problems.size(), 1u) << Describe(eight);
  EXPECT_EQ(eight.bits, 8);
}

TEST_F(VerifyDamageTest, UnparsableOutputFailsVerification) {
  testing::WriteText(converted_, "not a safetensors file");
  const VerifyReport report = VerifyConverted();
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].tensor, "res.safetensors");
}

TEST_F(VerifyDamageTest, MissingOutputIsAnInputError) {
  VerifyRequest request = RequestFor(model_, out_ / "absent.safetensors");
  auto report = Verify(request);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kInvalidInput);
}

// ---- synthetic checkpoints in every layout the converter handles ----

fs::path WriteSynth(const fs::path& dir, SynthOptions options) {
  if (options.shape.name.empty()) options.shape = *FindModelShape("tiny");
  SynthRequest request;
  request.options = options;
  request.out_dir = dir;
  auto report = WriteSynthCheckpoint(request);
  EXPECT_TRUE(report.ok()) << report.error().message;
  return dir;
}

struct SynthCase {
  std::string name;
  SynthOptions synth;
  PlanOptions plan;
};
void PrintTo(const SynthCase& c, std::ostream* os) { *os << c.name; }

std::vector<SynthCase> SynthCases() {
  auto make = [](std::string name, auto&& edit, TargetTool target, GptqFormat format = GptqFormat::kV1) {
    SynthCase c{std::move(name), {}, {}};
    c.synth.group_size = 64;
    edit(c.synth);
    c.plan.target = target;
    c.plan.gptq_format = format;
    return c;
  };
  return {
      make("awq_g64", [](SynthOptions&) {}, TargetTool::kAwq),
      make("gptq_v1_g32_f16", [](SynthOptions& o) { o.group_size = 32; o.scale_dtype = DType::kF16; }, TargetTool::kGptq),
      make("gptq_v2_full_range", [](SynthOptions& o) { o.full_offset_range = true; }, TargetTool::kGptq, GptqFormat::kV2),
      make("awq_full_range", [](SynthOptions& o) { o.full_offset_range = true; }, TargetTool::kAwq),
      make("gptq_w8_per_channel_bf16", [](SynthOptions& o) { o.bits = 8; o.group_size = 0; o.scale_dtype = DType::kBF16; },
           TargetTool::kGptq),
      make("awq_packed", [](SynthOptions& o) { o.packed = true; }, TargetTool::kAwq),
      make("gptq_packed_per_channel", [](SynthOptions& o) { o.packed = true; o.group_size = 0; }, TargetTool::kGptq),
      make("gptq_legacy_scales", [](SynthOptions& o) { o.legacy_scales = true; }, TargetTool::kGptq),
      make("awq_anti_outlier", [](SynthOptions& o) { o.anti_outlier = true; }, TargetTool::kAwq),
      make("gptq_sym_float_linear", [](SynthOptions& o) { o.symmetric = true; o.float_linears = {"mlp.down_proj"}; },
           TargetTool::kGptq),
  };
}

// The conversion of another checkpoint, of the same shapes or of another size, fails on every
// tensor; the report says why in one line instead of leaving that to be read from its problems.
TEST(VerifyUnrelatedInput, EveryCopyMostlyDifferentSaysTheInputIsAnother) {
  TempDir dir;
  SynthOptions first, second;
  second.seed = first.seed + 1;
  const fs::path model = WriteSynth(dir / "a", first), other = WriteSynth(dir / "b", second);
  ConvertOrDie(model, dir / "res.safetensors", PlanOptions{});
  const VerifyReport report = VerifyOrDie(RequestFor(other, dir / "res.safetensors"));
  EXPECT_FALSE(report.ok());
  EXPECT_NE(report.hint.find("is not a conversion of this input"), std::string::npos) << Describe(report);
  EXPECT_NE(VerifyFailure(report).message.find(report.hint), std::string::npos);
  EXPECT_EQ(VerifyOrDie(RequestFor(model, dir / "res.safetensors")).hint, "");

  // Another size of the model: its tensors have other shapes, so none is compared at all.
  SynthOptions wider = second;
  wider.shape = *FindModelShape("tiny");
  wider.shape.hidden *= 2;
  wider.shape.head_dim *= 2;
  wider.shape.intermediate *= 2;
  const fs::path bigger = WriteSynth(dir / "c", wider);
  const VerifyReport reshaped = VerifyOrDie(RequestFor(bigger, dir / "res.safetensors"));
  EXPECT_NE(reshaped.hint.find("differs from the input's in shape or in most of its elements: this is not a "
                               "conversion of this input"),
            std::string::npos)
      << Describe(reshaped);
}

class VerifySynthTest : public ::testing::TestWithParam<SynthCase> {};

TEST_P(VerifySynthTest, ConversionVerifies) {
  TempDir dir;
  const fs::path model = WriteSynth(dir / "model", GetParam().synth);
  ConvertOrDie(model, dir / "res.safetensors", GetParam().plan);
  VerifyRequest request = RequestFor(model, dir / "res.safetensors");
  request.gptq_format = GetParam().plan.gptq_format;
  const VerifyReport report = VerifyOrDie(request);
  EXPECT_TRUE(report.ok()) << Describe(report);
  EXPECT_EQ(report.target, GetParam().plan.target);
  EXPECT_GT(report.linears, 0u);
}

INSTANTIATE_TEST_SUITE_P(Synth, VerifySynthTest, ::testing::ValuesIn(SynthCases()),
                         [](const auto& info) { return info.param.name; });

// MoE checkpoints have a float router beside many small expert linears per layer.
TEST(VerifySynthTest, MixtureOfExpertsConvertsEveryExpertAndCopiesTheRouter) {
  TempDir dir;
  SynthOptions synth;
  synth.shape = *FindModelShape("tiny");
  synth.shape.experts = 5;
  synth.group_size = 32;
  const fs::path model = WriteSynth(dir / "model", synth);
  ConvertOrDie(model, dir / "res.safetensors", {});
  const VerifyReport report = VerifyOrDie(RequestFor(model, dir / "res.safetensors"));
  EXPECT_TRUE(report.ok()) << Describe(report);
  EXPECT_EQ(report.linears, 4u + 5u * 3u);  // q, k, v, o and each expert's gate, up, down
  auto output = Checkpoint::Open(dir / "res.safetensors");
  ASSERT_TRUE(output.ok()) << output.error().message;
  const TensorInfo* router = output->table().Find("model.layers.0.mlp.gate.weight");
  ASSERT_NE(router, nullptr);
  EXPECT_EQ(router->shape, (std::vector<uint64_t>{5, 128}));
  EXPECT_NE(output->table().Find("model.layers.0.mlp.experts.4.down_proj.qweight"), nullptr);
  EXPECT_NE(output->table().Find("model.layers.0.self_attn.k_norm.weight"), nullptr);
}

TEST(VerifySynthTest, CastScalesVerifyUnlessAnotherDTypeIsDemanded) {
  TempDir dir;
  const fs::path model = WriteSynth(dir / "model", {});
  PlanOptions plan;
  plan.scales_dtype = ScalesDType::kF16;
  ConvertOrDie(model, dir / "res.safetensors", plan);
  VerifyRequest request = RequestFor(model, dir / "res.safetensors");
  EXPECT_TRUE(VerifyOrDie(request).ok());
  request.scales_dtype = ScalesDType::kF16;
  EXPECT_TRUE(VerifyOrDie(request).ok());
  request.scales_dtype = ScalesDType::kKeep;
  const VerifyReport report = VerifyOrDie(request);
  EXPECT_FALSE(report.ok());
  for (const auto& p : report.problems) EXPECT_TRUE(p.tensor.ends_with(".scales")) << p.tensor;
}

TEST(VerifySynthTest, ShardedModelDirectoryVerifiesItsConfigsAndIndex) {
  TempDir dir;
  SynthOptions synth;
  synth.full_offset_range = true;
  const fs::path model = WriteSynth(dir / "model", synth);
  ConvertRequest convert;
  convert.model = model;
  convert.out_dir = dir / "out";
  convert.max_shard_bytes = 40'000;
  convert.plan.target = TargetTool::kGptq;
  convert.plan.gptq_format = GptqFormat::kV2;
  ASSERT_TRUE(Convert(convert).ok());
  ASSERT_TRUE(fs::exists(dir / "out" / "model.safetensors.index.json"));

  // No flags: target and format come from config.json's quantization_config.
  VerifyRequest request = RequestFor(model, dir / "out");
  VerifyReport report = VerifyOrDie(request);
  EXPECT_TRUE(report.ok()) << Describe(report);
  EXPECT_EQ(report.target, TargetTool::kGptq);
  EXPECT_EQ(report.gptq_format, GptqFormat::kV2);
  EXPECT_EQ(report.target_source, "config.json");

  // No loader reads a directory without config.json; the target then comes from quantize_config.json.
  const std::string config_text = testing::ReadText(dir / "out" / "config.json");
  fs::remove(dir / "out" / "config.json");
  report = VerifyOrDie(request);
  EXPECT_TRUE(NamesTensor(report, "config.json")) << Describe(report);
  EXPECT_EQ(report.target_source, "quantize_config.json");
  EXPECT_EQ(report.gptq_format, GptqFormat::kV2);
  testing::WriteText(dir / "out" / "config.json", config_text);

  auto config = nlohmann::ordered_json::parse(testing::ReadText(dir / "out" / "quantize_config.json"));
  config["group_size"] = 32;
  testing::WriteText(dir / "out" / "quantize_config.json", config.dump());
  const std::string index_text = testing::ReadText(dir / "out" / "model.safetensors.index.json");
  auto index = nlohmann::ordered_json::parse(index_text);
  index["weight_map"].erase("model.norm.weight");
  testing::WriteText(dir / "out" / "model.safetensors.index.json", index.dump());
  report = VerifyOrDie(request);
  EXPECT_TRUE(NamesTensor(report, "quantize_config.json")) << Describe(report);
  EXPECT_TRUE(NamesTensor(report, "model.safetensors.index.json")) << Describe(report);

  // Values of the wrong type are problems of the file, not a crash (nlohmann's value() throws).
  for (const char* key : {"quant_method", "checkpoint_format"}) {
    auto typed = nlohmann::ordered_json::parse(R"({"quant_method": "gptq", "checkpoint_format": "gptq_v2"})");
    typed[key] = 5;
    testing::WriteText(dir / "out" / "quantize_config.json", typed.dump());
    report = VerifyOrDie(request);
    EXPECT_TRUE(NamesTensor(report, "quantize_config.json")) << key << ": " << Describe(report);
  }

  // Every tensor mapped again, but a total_size that is not the tensors' bytes.
  auto remapped = nlohmann::ordered_json::parse(index_text);
  remapped["metadata"]["total_size"] = 1;
  testing::WriteText(dir / "out" / "model.safetensors.index.json", remapped.dump());
  report = VerifyOrDie(request);
  bool size_named = false;
  for (const auto& problem : report.problems) size_named |= problem.problem.starts_with("metadata.total_size is 1,");
  EXPECT_TRUE(size_named) << Describe(report);
}

// A flag asking for another layout than config.json declares: every qweight and qzeros differs,
// and the failure says the one cause.
TEST(VerifySynthTest, AFlagContradictingTheDeclaredLayoutIsNamed) {
  TempDir dir;
  const fs::path model = WriteSynth(dir / "model", SynthOptions{});
  ConvertRequest convert;
  convert.model = model;
  convert.out_dir = dir / "out";
  convert.plan.target = TargetTool::kGptq;
  convert.plan.gptq_format = GptqFormat::kV2;
  ASSERT_TRUE(Convert(convert).ok());
  VerifyRequest request = RequestFor(model, dir / "out");
  EXPECT_EQ(VerifyOrDie(request).hint, "");
  request.gptq_format = GptqFormat::kV2;  // agreeing flags: no hint
  EXPECT_EQ(VerifyOrDie(request).hint, "");

  const auto expected = [](const std::string& asked) {
    return "config.json declares gptq (v2), not " + asked +
           ": leave out --target_tool and --gptq-format to verify the layout it declares";
  };
  request.gptq_format = GptqFormat::kV1;
  VerifyReport report = VerifyOrDie(request);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.hint, expected("gptq (v1)"));
  EXPECT_CONTAINS(VerifyFailure(report).message, report.hint);
  request.gptq_format.reset();
  request.target = TargetTool::kAwq;
  report = VerifyOrDie(request);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(report.hint, expected("awq"));

  // Per-channel has no AWQ layout: the flag's target cannot even be planned, and still the
  // contradiction is the hint.
  TempDir per_channel;
  SynthOptions channels;
  channels.group_size = 0;
  const fs::path per_channel_model = WriteSynth(per_channel / "model", channels);
  convert.model = per_channel_model;
  convert.out_dir = per_channel / "out";
  ASSERT_TRUE(Convert(convert).ok());
  request = RequestFor(per_channel_model, per_channel / "out");
  request.target = TargetTool::kAwq;
  report = VerifyOrDie(request);
  ASSERT_EQ(report.problems.size(), 1u) << Describe(report);
  EXPECT_CONTAINS(report.problems[0].problem, "cannot be the awq conversion");
  EXPECT_EQ(report.hint, expected("awq"));
}

// Without its `dynamic` rules vLLM would build the float linears as GPTQ ones and fail to load.
TEST(VerifySynthTest, GptqDirectoryMustExemptTheFloatLinears) {
  TempDir dir;
  SynthOptions synth;
  synth.float_linears = {"mlp.down_proj"};
  synth.shape = *FindModelShape("tiny");
  synth.shape.layers = 40;  // a rule each: more than a message should quote
  const fs::path model = WriteSynth(dir / "model", synth);
  ConvertRequest convert;
  convert.model = model;
  convert.out_dir = dir / "out";
  convert.plan.target = TargetTool::kGptq;
  ASSERT_TRUE(Convert(convert).ok());
  const VerifyRequest request = RequestFor(model, dir / "out");
  EXPECT_TRUE(VerifyOrDie(request).ok());

  auto config = nlohmann::ordered_json::parse(testing::ReadText(dir / "out" / "quantize_config.json"));
  ASSERT_EQ(config["dynamic"].size(), 40u);
  config.erase("dynamic");
  testing::WriteText(dir / "out" / "quantize_config.json", config.dump());
  const VerifyReport report = VerifyOrDie(request);
  ASSERT_EQ(report.problems.size(), 1u) << Describe(report);
  EXPECT_EQ(report.problems[0].tensor, "quantize_config.json");
  ASSERT_EQ(report.problems[0].examples.size(), 1u);
  const std::string& example = report.problems[0].examples[0];
  EXPECT_TRUE(example.starts_with("quantization_config.dynamic is missing, expected {\"-:^model\\\\.layers\\\\.0\\\\.mlp"))
      << example;
  EXPECT_TRUE(example.ends_with("... (40 entries)")) << example;
  EXPECT_LT(example.size(), 200u);
}

// A layer wholly in float is exempted by its parts' names and its fused name. A directory written
// before the fused names were added (its list is the parts' alone) loads as well in current vLLM,
// so verify takes it; a list missing a part is still wrong.
TEST(VerifySynthTest, AwqDirectoryWithoutTheFusedNamesOfOlderVersionsVerifies) {
  TempDir dir;
  SynthOptions synth;
  synth.float_linears = {"mlp.gate_proj", "mlp.up_proj"};
  synth.shape = *FindModelShape("tiny");
  const fs::path model = WriteSynth(dir / "model", synth);
  fs::create_directories(dir / "base");
  testing::WriteText(dir / "base" / "config.json", R"({"model_type": "qwen2"})");
  ConvertRequest convert;
  convert.model = model;
  convert.out_dir = dir / "out";
  convert.base_model = dir / "base";
  ASSERT_TRUE(Convert(convert).ok());
  const VerifyRequest request = RequestFor(model, dir / "out");
  ASSERT_TRUE(VerifyOrDie(request).ok());

  auto config = nlohmann::ordered_json::parse(testing::ReadText(dir / "out" / "config.json"));
  auto& exempted = config["quantization_config"]["modules_to_not_convert"];
  const size_t layers = synth.shape.layers;
  ASSERT_EQ(exempted.size(), 3 * layers);  // gate_proj and up_proj of each layer, then each gate_up_proj
  EXPECT_EQ(exempted.back(), "model.layers." + std::to_string(layers - 1) + ".mlp.gate_up_proj");
  for (size_t i = 0; i < layers; ++i) exempted.erase(exempted.size() - 1);
  testing::WriteText(dir / "out" / "config.json", config.dump());
  EXPECT_TRUE(VerifyOrDie(request).ok()) << Describe(VerifyOrDie(request));

  exempted.erase(exempted.size() - 1);  // a float linear no longer exempted
  testing::WriteText(dir / "out" / "config.json", config.dump());
  const VerifyReport report = VerifyOrDie(request);
  ASSERT_EQ(report.problems.size(), 1u) << Describe(report);
  EXPECT_EQ(report.problems[0].tensor, "config.json");

  // A config that is no JSON at all, or not an object, says which.
  for (const auto& [text, problem] : {std::pair{"{\"cut\": ", "not valid JSON"}, std::pair{"[1]", "is not a JSON object"}}) {
    testing::WriteText(dir / "out" / "config.json", text);
    const VerifyReport broken = VerifyOrDie(request);
    bool named = false;
    for (const auto& p : broken.problems) named |= p.tensor == "config.json" && p.problem == problem;
    EXPECT_TRUE(named) << Describe(broken);
  }
}

// What a loader reads beside the configs: a stale model.safetensors beside the index (transformers
// takes it over the shards), GPTQ without quantize_config.json (AutoGPTQ's), and `dynamic` rules
// the conversion did not write (they change which linears are quantized).
TEST(VerifySynthTest, DirectoryFilesLoadersReadInsteadAreChecked) {
  TempDir dir;
  SynthOptions synth;
  synth.shape = *FindModelShape("tiny");
  const fs::path model = WriteSynth(dir / "model", synth);
  ConvertRequest convert;
  convert.model = model;
  convert.out_dir = dir / "out";
  convert.plan.target = TargetTool::kGptq;
  convert.max_shard_bytes = 100'000;
  ASSERT_TRUE(Convert(convert).ok());
  const VerifyRequest request = RequestFor(model, dir / "out");
  ASSERT_TRUE(VerifyOrDie(request).ok());
  const auto only_problem_of = [&](const std::string& file) {
    const VerifyReport report = VerifyOrDie(request);
    ASSERT_EQ(report.problems.size(), 1u) << Describe(report);
    EXPECT_EQ(report.problems[0].tensor, file) << Describe(report);
  };

  fs::copy_file(FindFile(model, "quant_model_weight"), dir / "out" / "model.safetensors");
  only_problem_of("model.safetensors");
  fs::remove(dir / "out" / "model.safetensors");

  const std::string quantize_config = testing::ReadText(dir / "out" / "quantize_config.json");
  fs::remove(dir / "out" / "quantize_config.json");
  only_problem_of("quantize_config.json");

  auto config = nlohmann::ordered_json::parse(quantize_config);
  config["dynamic"] = {{"-:.*", nlohmann::ordered_json::object()}};
  testing::WriteText(dir / "out" / "quantize_config.json", config.dump());
  only_problem_of("quantize_config.json");
}

// Configs are compared as loaders read them: AutoAWQ's "GEMM", an empty list given as null or left
// out, and GPTQ without checkpoint_format (v1) pass; a key the conversion did not write that changes
// what is quantized (a quantized head) does not, nor does a second weights file, which vLLM loads
// without an index.
TEST(VerifySynthTest, ConfigsAreComparedAsLoadersReadThem) {
  TempDir dir;
  SynthOptions synth;
  synth.shape = *FindModelShape("tiny");
  synth.group_size = 64;  // not 128: the preset's linears 128 wide would be per-channel, which AWQ lacks
  const fs::path model = WriteSynth(dir / "model", synth);
  for (const TargetTool target : {TargetTool::kAwq, TargetTool::kGptq}) {
    SCOPED_TRACE(target == TargetTool::kAwq ? "awq" : "gptq");
    const fs::path out = dir / (target == TargetTool::kAwq ? "awq" : "gptq");
    ConvertRequest convert;
    convert.model = model;
    convert.out_dir = out;
    convert.plan.target = target;
    auto converted = Convert(convert);
    ASSERT_TRUE(converted.ok()) << converted.error().message;
    const VerifyRequest request = RequestFor(model, out);
    ASSERT_TRUE(VerifyOrDie(request).ok()) << Describe(VerifyOrDie(request));
    auto config = nlohmann::ordered_json::parse(testing::ReadText(out / "config.json"));
    const auto original = config;
    auto& quantization = config["quantization_config"];
    if (target == TargetTool::kAwq) {
      ASSERT_EQ(quantization["modules_to_not_convert"], nlohmann::ordered_json::array());
      quantization["version"] = "GEMM";
      quantization["modules_to_not_convert"] = nullptr;
      testing::WriteText(out / "config.json", config.dump());
      EXPECT_TRUE(VerifyOrDie(request).ok()) << Describe(VerifyOrDie(request));
      quantization.erase("modules_to_not_convert");
    } else {
      quantization.erase("checkpoint_format");
      fs::remove(out / "quantize_config.json");
      testing::WriteText(out / "quantize_config.json", quantization.dump());
    }
    quantization["lm_head"] = false;
    testing::WriteText(out / "config.json", config.dump());
    EXPECT_TRUE(VerifyOrDie(request).ok()) << Describe(VerifyOrDie(request));

    quantization["lm_head"] = true;
    testing::WriteText(out / "config.json", config.dump());
    VerifyReport report = VerifyOrDie(request);
    ASSERT_EQ(report.problems.size(), 1u) << Describe(report);
    EXPECT_EQ(report.problems[0].examples, std::vector<std::string>{"quantization_config.lm_head is true, expected none"});
    // A value Python's json reads but nlohmann does not is shown as the file spells it.
    std::string text = config.dump();
    const std::string head_true = "\"lm_head\":true";
    text.replace(text.find(head_true), head_true.size(), "\"lm_head\":NaN");
    testing::WriteText(out / "config.json", text);
    report = VerifyOrDie(request);
    ASSERT_EQ(report.problems.size(), 1u) << Describe(report);
    EXPECT_EQ(report.problems[0].examples, std::vector<std::string>{"quantization_config.lm_head is NaN, expected none"});

    testing::WriteText(out / "config.json", original.dump());
    fs::copy_file(out / "model.safetensors", out / "extra.safetensors");
    report = VerifyOrDie(request);
    ASSERT_EQ(report.problems.size(), 1u) << Describe(report);
    EXPECT_EQ(report.problems[0].tensor, "extra.safetensors");
    EXPECT_EQ(report.problems[0].problem, "is beside model.safetensors with no index: vLLM loads its tensors too");
  }
}

// Asymmetric GPTQ runs in vLLM only in float16: config.json stating bfloat16, or no dtype, and
// vLLM refuses to start, so verify says so.
TEST(VerifySynthTest, AsymmetricGptqDirectoryMustStateFloat16) {
  TempDir dir;
  SynthOptions synth;
  synth.shape = *FindModelShape("tiny");
  const fs::path model = WriteSynth(dir / "model", synth);  // asymmetric
  fs::create_directories(dir / "base");
  testing::WriteText(dir / "base" / "config.json", R"({"model_type": "qwen2", "torch_dtype": "bfloat16"})");
  ConvertRequest convert;
  convert.model = model;
  convert.out_dir = dir / "out";
  convert.base_model = dir / "base";
  convert.plan.target = TargetTool::kGptq;
  ASSERT_TRUE(Convert(convert).ok());
  const VerifyRequest request = RequestFor(model, dir / "out");
  ASSERT_TRUE(VerifyOrDie(request).ok()) << Describe(VerifyOrDie(request));

  auto config = nlohmann::ordered_json::parse(testing::ReadText(dir / "out" / "config.json"));
  for (const bool stated : {true, false}) {
    if (stated) {
      config["torch_dtype"] = "bfloat16";
    } else {
      config.erase("torch_dtype");
    }
    testing::WriteText(dir / "out" / "config.json", config.dump());
    const VerifyReport report = VerifyOrDie(request);
    ASSERT_EQ(report.problems.size(), 1u) << Describe(report);
    EXPECT_EQ(report.problems[0].tensor, "config.json");
    EXPECT_NE(report.problems[0].problem.find("vLLM runs this layout only in float16"), std::string::npos)
        << report.problems[0].problem;
  }
}

TEST(VerifySynthTest, MissingOffsetsMeanZeroPointHalfRange) {
  // The golden input without its weight_offset tensors, which its description still lists:
  // symmetric, qzeros written for offset 0.
  TempDir dir;
  const fs::path golden = GoldenDir() / "w4a16-g64-gptq";
  std::vector<std::pair<std::string, testing::LoadedTensor>> kept;
  for (auto& [name, tensor] : testing::LoadTensors(FindFile(golden, "quant_model_weight"))) {
    if (!name.ends_with(".weight_offset")) kept.emplace_back(name, tensor);
  }
  fs::create_directories(dir / "model");
  testing::WriteSafetensors(dir / "model" / "quant_model_weight_w4a16.safetensors", kept);
  fs::copy_file(FindFile(golden, "quant_model_description"), dir / "model" / "quant_model_description_w4a16.json");
  PlanOptions plan;
  plan.target = TargetTool::kGptq;
  ConvertOrDie(dir / "model", dir / "res.safetensors", plan);
  VerifyRequest request = RequestFor(dir / "model", dir / "res.safetensors");
  EXPECT_TRUE(VerifyOrDie(request).ok());
  FlipByte(dir / "res.safetensors", "model.layers.0.mlp.up_proj.qzeros", 2);
  const VerifyReport report = VerifyOrDie(request);
  ASSERT_EQ(report.problems.size(), 1u) << Describe(report);
  EXPECT_EQ(report.problems[0].tensor, "model.layers.0.mlp.up_proj.qzeros");
}

TEST(VerifySynthTest, ClampedValuesVerifyInBothLayouts) {
  // Weights and offsets outside the 4-bit range are clamped, as the script does; verify agrees.
  TempDir dir;
  const fs::path golden = GoldenDir() / "w4a16-g64-awq";
  auto tensors = testing::LoadTensors(FindFile(golden, "quant_model_weight"));
  auto& weight = tensors.at("model.layers.0.mlp.gate_proj.weight");
  for (size_t at : {0u, 9u, 130u, 4097u}) weight.bytes[at] = static_cast<uint8_t>(at % 2 ? -100 : 100);
  auto& offset = tensors.at("model.layers.0.mlp.gate_proj.weight_offset");
  ASSERT_EQ(offset.dtype, DType::kF32);
  const float twelve = 12.0f;
  std::memcpy(offset.bytes.data() + 4, &twelve, 4);
  fs::create_directories(dir / "model");
  testing::WriteSafetensors(dir / "model" / "quant_model_weight_w4a16.safetensors",
                            std::vector<std::pair<std::string, testing::LoadedTensor>>(tensors.begin(), tensors.end()));
  fs::copy_file(FindFile(golden, "quant_model_description"), dir / "model" / "quant_model_description_w4a16.json");
  for (TargetTool target : {TargetTool::kAwq, TargetTool::kGptq}) {
    PlanOptions plan;
    plan.target = target;
    ConvertOrDie(dir / "model", dir / "res.safetensors", plan);
    VerifyRequest request = RequestFor(dir / "model", dir / "res.safetensors");
    request.target = target;
    const VerifyReport report = VerifyOrDie(request);
    EXPECT_TRUE(report.ok()) << Describe(report);
  }
}

// ---- the command line ----

TEST_F(VerifyDamageTest, CommandExitsZeroThenSixNamingTheTensor) {
  const std::string args = "verify --model " + model_.string() + " --converted " + converted_.string() + " --target_tool gptq";
  CommandResult ok = RunMs2vllm(args);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("verify: OK"), std::string::npos) << ok.output;

  FlipByte(converted_, "model.layers.0.mlp.gate_proj.qweight", 3);
  CommandResult bad = RunMs2vllm(args);
  EXPECT_EQ(bad.exit_code, 6) << bad.output;
  EXPECT_NE(bad.output.find("model.layers.0.mlp.gate_proj.qweight"), std::string::npos) << bad.output;
  EXPECT_NE(bad.output.find("FAILED"), std::string::npos) << bad.output;

  CommandResult wrong_format = RunMs2vllm(args + " --gptq-format v2");
  EXPECT_EQ(wrong_format.exit_code, 6) << wrong_format.output;
}

// --max-differences is how many differing values a wrong tensor lists, one indented line each.
TEST_F(VerifyDamageTest, CommandListsAsManyDifferencesAsMaxDifferencesSays) {
  for (uint64_t byte = 0; byte < 4; ++byte) FlipByte(converted_, "model.layers.0.mlp.gate_proj.qweight", byte);  // 8 values
  const std::string args = "verify --model " + model_.string() + " --converted " + converted_.string() +
                           " --target_tool gptq -q --max-differences ";
  for (const int examples : {1, 2, 5}) {
    const CommandResult result = RunMs2vllm(args + std::to_string(examples));
    EXPECT_EQ(result.exit_code, 6) << result.output;
    std::istringstream lines(result.output);
    int listed = 0;
    for (std::string line; std::getline(lines, line);) listed += line.starts_with("    ");
    EXPECT_EQ(listed, examples) << result.output;
  }
}

// Damage anywhere is found: the first and the last byte of every tensor, in both layouts, and both
// ways a check reads (a tile's last rows and a copy's last chunk are where a check could stop short).
class VerifyEveryTensorTest : public ::testing::TestWithParam<TargetTool> {};
}  // namespace

void PrintTo(TargetTool target, std::ostream* os) { *os << (target == TargetTool::kAwq ? "awq" : "gptq"); }

namespace {

TEST_P(VerifyEveryTensorTest, AFlippedByteAtEitherEndOfAnyTensorIsFound) {
  const fs::path model = GoldenDir() / "w4a16-g64-gptq";
  TempDir out;
  const fs::path converted = out / "res.safetensors";
  PlanOptions plan;
  plan.target = GetParam();
  ConvertOrDie(model, converted, plan);
  std::vector<std::pair<std::string, uint64_t>> tensors;
  {
    auto checkpoint = Checkpoint::Open(converted);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.error().message;
    for (const auto& tensor : checkpoint->table().tensors()) tensors.emplace_back(tensor.name, tensor.byte_size);
  }
  ASSERT_GT(tensors.size(), 20u);
  VerifyRequest request = RequestFor(model, converted);
  request.target = GetParam();
  for (const auto& [name, size] : tensors) {
    for (const uint64_t byte : {uint64_t{0}, size - 1}) {
      FlipByte(converted, name, byte);
      for (const uint64_t copy_below : {uint64_t{0}, UINT64_MAX}) {
        request.settings.copy_below_bytes = copy_below;
        const VerifyReport report = VerifyOrDie(request);
        EXPECT_TRUE(NamesTensor(report, name)) << name << " byte " << byte << " copy_below " << copy_below;
      }
      FlipByte(converted, name, byte);  // mended for the next
    }
  }
  EXPECT_TRUE(VerifyOrDie(request).ok());
}

INSTANTIATE_TEST_SUITE_P(Targets, VerifyEveryTensorTest, ::testing::Values(TargetTool::kAwq, TargetTool::kGptq),
                         [](const auto& info) { return ::testing::PrintToString(info.param); });

// The format and scale dtype flags reach the check: an undamaged output verifies with the flags
// it was written with, and fails with the others.
TEST(VerifyCommandTest, GptqFormatAndScalesDTypeFlagsAreObeyed) {
  const fs::path model = GoldenDir() / "w4a16-g64-gptq";
  TempDir out;
  const fs::path v2 = out / "v2.safetensors", bf16 = out / "bf16.safetensors";
  const std::string convert = "--model " + model.string() + " --target_tool gptq -q";
  ASSERT_EQ(RunMs2vllm(convert + " --gptq-format v2 --save_path " + v2.string()).exit_code, 0);
  ASSERT_EQ(RunMs2vllm(convert + " --scales-dtype bf16 --save_path " + bf16.string()).exit_code, 0);
  auto written = Checkpoint::Open(bf16);
  ASSERT_TRUE(written.ok()) << written.error().message;
  EXPECT_EQ(written->table().Find("model.layers.0.mlp.up_proj.scales")->dtype, DType::kBF16);

  const std::string verify = "verify --model " + model.string() + " --target_tool gptq --converted ";
  EXPECT_EQ(RunMs2vllm(verify + v2.string() + " --gptq-format v2").exit_code, 0);
  EXPECT_EQ(RunMs2vllm(verify + v2.string() + " --gptq-format v1").exit_code, 6);
  EXPECT_EQ(RunMs2vllm(verify + bf16.string() + " --scales-dtype bf16").exit_code, 0);
  EXPECT_EQ(RunMs2vllm(verify + bf16.string() + " --scales-dtype f16").exit_code, 6);
  EXPECT_EQ(RunMs2vllm(verify + bf16.string() + " --scales-dtype keep").exit_code, 6);
  EXPECT_EQ(RunMs2vllm(verify + bf16.string()).exit_code, 0);  // unstated: the input's dtype or a cast of it
}

// A cast scale matches exactly what --scales-dtype asked for, yet rounds: the OK line says so, and
// counts the finite scales the cast made 0 or infinite, which the conversion warned of.
TEST(VerifyCommandTest, ScalesCastAreNamedWithWhatTheCastLost) {
  TempDir dir;
  for (const auto& entry : fs::directory_iterator(GoldenDir() / "w4a16-g64-gptq")) {
    if (entry.path().filename().string().starts_with("quant_model_")) fs::copy_file(entry.path(), dir / entry.path().filename());
  }
  const fs::path weights = dir / "quant_model_weight_w4a16.safetensors";
  uint64_t offset = 0;
  {
    auto checkpoint = Checkpoint::Open(weights);
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.error().message;
    const TensorInfo* scale = checkpoint->table().Find("model.layers.0.mlp.up_proj.weight_scale");
    ASSERT_NE(scale, nullptr);
    ASSERT_EQ(scale->dtype, DType::kF32);
    offset = scale->file_offset;
  }
  const float small_and_large[2] = {1e-9f, 1e6f};  // below F16's least subnormal, above its largest
  {
    std::fstream stream(weights, std::ios::in | std::ios::out | std::ios::binary);
    stream.seekp(static_cast<std::streamoff>(offset));
    stream.write(reinterpret_cast<const char*>(small_and_large), sizeof small_and_large);
  }
  const fs::path f16 = dir / "f16.safetensors", kept = dir / "kept.safetensors";
  const std::string convert = "--model " + weights.string() + " --target_tool gptq -q --save_path ";
  ASSERT_EQ(RunMs2vllm(convert + f16.string() + " --scales-dtype f16").exit_code, 0);
  ASSERT_EQ(RunMs2vllm(convert + kept.string()).exit_code, 0);

  const std::string verify = "verify --model " + weights.string() + " --converted ";
  const CommandResult cast = RunMs2vllm(verify + f16.string());
  EXPECT_EQ(cast.exit_code, 0) << cast.output;
  EXPECT_NE(cast.output.find("; 2176 scales matched their --scales-dtype cast, which rounds them, and made 2 of them 0 or "
                             "infinite\n"),
            std::string::npos) << cast.output;
  const CommandResult same = RunMs2vllm(verify + kept.string());
  EXPECT_EQ(same.exit_code, 0) << same.output;
  EXPECT_EQ(same.output.find("cast"), std::string::npos) << same.output;
}

// A GPTQ file of another bit width is still GPTQ by its qweight shapes ([in/p, out]): compared as
// such, not called a wrong AWQ file with advice to pass --target_tool gptq.
TEST(VerifyCommandTest, AGptqFileOfAnotherWidthIsTakenForGptq) {
  TempDir dir;
  const fs::path four = dir / "w4.safetensors";
  ASSERT_EQ(RunMs2vllm("--model " + (GoldenDir() / "w4a16-g64-gptq").string() + " --target_tool gptq -q --save_path " +
                       four.string()).exit_code, 0);
  const CommandResult result =
      RunMs2vllm("verify --model " + (GoldenDir() / "w8a16-g64-gptq").string() + " --converted " + four.string());
  EXPECT_EQ(result.exit_code, 6) << result.output;
  EXPECT_NE(result.output.find("is not the exact gptq (v1) 8-bit conversion of the input"), std::string::npos)
      << result.output;
  EXPECT_EQ(result.output.find("--target_tool gptq"), std::string::npos) << result.output;
}

// A converted path that is a link leading nowhere is named as one, as the conversion names its inputs.
TEST(VerifyCommandTest, AConvertedLinkThatLeadsNowhereIsNamedAsOne) {
  TempDir dir;
  fs::create_symlink("gone.safetensors", dir / "link.safetensors");
  fs::create_symlink("link.safetensors", dir / "chain.safetensors");
  const CommandResult result = RunMs2vllm("verify --model " + (GoldenDir() / "w4a16-g64-awq").string() + " --converted " +
                                          (dir / "chain.safetensors").string());
  EXPECT_EQ(result.exit_code, 3) << result.output;
  EXPECT_NE(result.output.find("chain.safetensors: is a symbolic link to link.safetensors, a link that leads nowhere"),
            std::string::npos) << result.output;
}

TEST(VerifyCommandTest, ConvertWithVerifyChecksItsOutput) {
  TempDir out;
  const fs::path dir = GoldenDir() / "w4a16-g32-awq-antioutlier-bf16";
  CommandResult result = RunMs2vllm("--model " + dir.string() + " --save_path " + (out / "res.safetensors").string() + " --verify");
  EXPECT_EQ(result.exit_code, 0) << result.output;
  EXPECT_NE(result.output.find("verify: OK"), std::string::npos) << result.output;

  CommandResult dry = RunMs2vllm("--model " + dir.string() + " --save_path " + (out / "res.safetensors").string() + " --verify --dry-run");
  EXPECT_EQ(dry.exit_code, 2) << dry.output;
}

}  // namespace
}  // namespace ms2vllm
