// End to end through Convert: every converted linear, read back the way its consumer reads it
// (AutoAWQ, AutoGPTQ v1, GPTQ v2), equals msModelSlim's (q - offset) * scale of the input,
// exactly; and each departure of SPEC.md section 4 behaves as documented.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/convert.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;
using testing::LoadedTensor;
using testing::MakeMsLinear;
using testing::MakeTensor;
using testing::MsCheckpoint;
using testing::MsLinear;
using testing::MsLinearOptions;
using testing::TempDir;
using Tensors = std::map<std::string, LoadedTensor>;

struct Config {
  std::string name;
  TargetTool target = TargetTool::kAwq;
  int bits = 4;
  GptqFormat format = GptqFormat::kV1;
  uint64_t group = 48;  // 0: per-channel
  DType scale_dtype = DType::kF32;
  std::optional<DType> offset_dtype;  // default: the scale's
};

void PrintTo(const Config& config, std::ostream* os) { *os << config.name; }

std::string Label(int bits) { return bits == 4 ? "W4A16" : "W8A16"; }

uint64_t Groups(uint64_t in, uint64_t group) { return group == 0 ? 1 : in / group; }

ConvertRequest Request(const fs::path& weights, const fs::path& description, const fs::path& save_path,
                       TargetTool target, GptqFormat format = GptqFormat::kV1) {
  ConvertRequest request;
  request.model = weights;
  request.json = description;
  request.save_path = save_path;
  request.plan.target = target;
  request.plan.gptq_format = format;
  request.execution.threads = 2;
  return request;
}

// Writes `checkpoint` into a fresh directory of `dir` and converts it to <dir>/<name>.safetensors.
struct Converted {
  Result<ConvertReport> report;
  Tensors tensors;
};
Converted ConvertCheckpoint(const MsCheckpoint& checkpoint, const fs::path& dir, const std::string& name,
                            TargetTool target, GptqFormat format = GptqFormat::kV1,
                            const std::function<void(ConvertRequest&)>& adjust = {}) {
  const fs::path input = dir / (name + "-input");
  fs::create_directories(input);
  checkpoint.WriteWeights(input / "weights.safetensors");
  checkpoint.WriteDescription(input / "description.json");
  ConvertRequest request =
      Request(input / "weights.safetensors", input / "description.json", dir / (name + ".safetensors"), target, format);
  if (adjust) adjust(request);
  Converted converted{Convert(request), {}};
  if (converted.report.ok() && !request.dry_run) converted.tensors = testing::LoadTensors(request.save_path);
  return converted;
}

std::vector<double> ConsumerView(const Tensors& out, const std::string& linear, TargetTool target, int bits,
                                 GptqFormat format) {
  const auto qweight = out.find(linear + ".qweight"), qzeros = out.find(linear + ".qzeros"),
             scales = out.find(linear + ".scales");
  if (qweight == out.end() || qzeros == out.end() || scales == out.end()) {
    ADD_FAILURE() << "missing qweight, qzeros or scales of " << linear;
    return {};
  }
  if (target == TargetTool::kAwq) return testing::DequantizeAwq(qweight->second, qzeros->second, scales->second);
  return testing::DequantizeGptq(qweight->second, qzeros->second, scales->second, bits, format == GptqFormat::kV2);
}

// Bytes of every entry of the directory that is not one of `keep`: temp files left behind.
std::vector<std::string> Leftovers(const fs::path& dir, const std::vector<fs::path>& keep) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.is_directory()) continue;
    if (std::find(keep.begin(), keep.end(), entry.path()) == keep.end()) found.push_back(entry.path().string());
  }
  return found;
}

// The consumer views used below, checked on the script's own output for the golden cases (each
// verified to dequantize exactly, see tests/golden/README.md).
TEST(ConsumerViewOfScriptOutput, MatchesMsModelSlimOnEveryGoldenCase) {
  for (const std::string& name : testing::GoldenCases()) {
    SCOPED_TRACE(name);
    const fs::path dir = testing::GoldenDir() / name;
    const auto args = nlohmann::json::parse(testing::ReadText(dir / "args.json"));
    const int bits = args["w_bit"].get<int>();
    const TargetTool target = args["target_tool"] == "gptq" ? TargetTool::kGptq : TargetTool::kAwq;
    Tensors input;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().filename().string().starts_with("quant_model_weight")) input = testing::LoadTensors(entry.path());
    }
    const Tensors expected = testing::LoadTensors(dir / "expected.safetensors");
    int linears = 0;
    for (const auto& [tensor, value] : input) {
      if (!tensor.ends_with(".weight_scale")) continue;
      const std::string linear = tensor.substr(0, tensor.size() - std::string(".weight_scale").size());
      SCOPED_TRACE(linear);
      const auto offset = input.find(linear + ".weight_offset");
      EXPECT_EQ(ConsumerView(expected, linear, target, bits, GptqFormat::kV1),
                testing::DequantizeMsModelSlim(input.at(linear + ".weight"), value,
                                               offset == input.end() ? nullptr : &offset->second));
      ++linears;
    }
    EXPECT_GT(linears, 0);
  }
}

class ConsumerViewTest : public ::testing::TestWithParam<Config> {};

// Three linears of odd-but-valid sizes, float tensors and an anti-outlier norm around them.
TEST_P(ConsumerViewTest, EveryConsumerReadsMsModelSlimsWeights) {
  const Config& c = GetParam();
  const bool v1 = c.target == TargetTool::kGptq && c.format == GptqFormat::kV1;
  struct Shape {
    std::string name;
    uint64_t out, in;
  };
  const std::vector<Shape> shapes = {{"model.layers.0.self_attn.q_proj", 24, 96},
                                     {"model.layers.0.mlp.up_proj", 40, 96},
                                     {"model.layers.0.mlp.down_proj", 24, 192}};
  MsCheckpoint checkpoint;
  checkpoint.Describe("model_quant_type", Label(c.bits));
  checkpoint.Add("model.embed_tokens.weight", MakeTensor(DType::kBF16, {16, 8}, std::vector<double>(128, 0.5)), "FLOAT");
  checkpoint.Add("model.layers.0.input_layernorm.weight", MakeTensor(DType::kBF16, {96}, std::vector<double>(96, 1.5)),
                 "FLOAT");
  checkpoint.Add("model.layers.0.input_layernorm.bias", MakeTensor(DType::kBF16, {96}, std::vector<double>(96, 0.25)),
                 "FLOAT");
  checkpoint.Add("model.layers.0.input_layernorm.module.weight",
                 MakeTensor(DType::kBF16, {96}, std::vector<double>(96, 2.0)), Label(c.bits));
  checkpoint.Add("model.layers.0.input_layernorm.module.bias",
                 MakeTensor(DType::kBF16, {96}, std::vector<double>(96, -0.5)), Label(c.bits));
  uint64_t seed = 100;
  for (const auto& shape : shapes) {
    MsLinearOptions o;
    o.out = shape.out;
    o.in = shape.in;
    o.groups = Groups(shape.in, c.group);
    o.bits = c.bits;
    o.scale_dtype = c.scale_dtype;
    o.offset_dtype = c.offset_dtype;
    if (!v1) o.offset_low = -(int64_t{1} << (c.bits - 1));  // v1 cannot store zero point 0; the others can
    o.seed = seed++;
    checkpoint.AddLinear(shape.name, MakeMsLinear(o), Label(c.bits));
  }
  checkpoint.Add("model.layers.0.self_attn.q_proj.bias", MakeTensor(DType::kBF16, {24}, std::vector<double>(24, 3.0)),
                 "FLOAT");

  TempDir dir;
  // Tiny chunks and bands: many tiles per tensor, so tile edges are exercised too.
  const auto small_tiles = [](ConvertRequest& r) {
    r.execution.chunk_bytes = 64;
    r.execution.band_bytes = 64;
  };
  const Converted tiled = ConvertCheckpoint(checkpoint, dir.path(), "tiled", c.target, c.format, small_tiles);
  ASSERT_TRUE(tiled.report.ok()) << tiled.report.error().message;
  const Converted whole = ConvertCheckpoint(checkpoint, dir.path(), "whole", c.target, c.format);
  ASSERT_TRUE(whole.report.ok()) << whole.report.error().message;
  EXPECT_EQ(tiled.tensors, whole.tensors) << "the output depends on how the work is cut";

  const Tensors& out = whole.tensors;
  for (const auto& shape : shapes) {
    SCOPED_TRACE(shape.name);
    const LoadedTensor& offset = checkpoint.tensor(shape.name + ".weight_offset");
    const auto expected = testing::DequantizeMsModelSlim(checkpoint.tensor(shape.name + ".weight"),
                                                         checkpoint.tensor(shape.name + ".weight_scale"), &offset);
    const auto actual = ConsumerView(out, shape.name, c.target, c.bits, c.format);
    ASSERT_EQ(actual.size(), expected.size());
    size_t differences = 0;
    for (size_t i = 0; i < expected.size(); ++i) differences += actual[i] != expected[i];
    EXPECT_EQ(differences, 0u) << "of " << expected.size() << " values";
    const LoadedTensor& scales = out.at(shape.name + ".scales");
    EXPECT_EQ(scales.dtype, c.scale_dtype);
    EXPECT_EQ(out.at(shape.name + ".qweight").dtype, DType::kI32);
    EXPECT_EQ(out.at(shape.name + ".qzeros").dtype, DType::kI32);
  }
  // Float tensors unchanged; the anti-outlier norm's module copy replaces the norm weight.
  EXPECT_EQ(out.at("model.embed_tokens.weight"), checkpoint.tensor("model.embed_tokens.weight"));
  EXPECT_EQ(out.at("model.layers.0.input_layernorm.weight"),
            checkpoint.tensor("model.layers.0.input_layernorm.module.weight"));
  EXPECT_EQ(out.at("model.layers.0.input_layernorm.bias"), checkpoint.tensor("model.layers.0.input_layernorm.bias"));
  EXPECT_EQ(out.at("model.layers.0.input_layernorm.module.bias"),
            checkpoint.tensor("model.layers.0.input_layernorm.module.bias"));
  EXPECT_EQ(out.at("model.layers.0.self_attn.q_proj.bias"), checkpoint.tensor("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_EQ(out.size(), 5 + 3 * shapes.size());
}

std::vector<Config> Configs() {
  using enum TargetTool;
  using enum GptqFormat;
  return {
      {"awq_w4_g48_f32", kAwq, 4, kV1, 48, DType::kF32, {}},
      {"awq_w4_g32_f16", kAwq, 4, kV1, 32, DType::kF16, {}},
      {"awq_w4_g48_bf16", kAwq, 4, kV1, 48, DType::kBF16, {}},
      {"awq_w4_g32_f32_i32_offsets", kAwq, 4, kV1, 32, DType::kF32, DType::kI32},
      {"gptq_w4_g48_v1_f32", kGptq, 4, kV1, 48, DType::kF32, {}},
      {"gptq_w4_g32_v2_bf16", kGptq, 4, kV2, 32, DType::kBF16, {}},
      {"gptq_w4_perchannel_v1_f16", kGptq, 4, kV1, 0, DType::kF16, {}},
      {"gptq_w4_perchannel_v2_f32_i8_offsets", kGptq, 4, kV2, 0, DType::kF32, DType::kI8},
      {"gptq_w8_g48_v1_f32_i32_offsets", kGptq, 8, kV1, 48, DType::kF32, DType::kI32},
      {"gptq_w8_g32_v2_f16", kGptq, 8, kV2, 32, DType::kF16, {}},
      {"gptq_w8_perchannel_v1_bf16", kGptq, 8, kV1, 0, DType::kBF16, {}},
      {"gptq_w8_perchannel_v2_f32", kGptq, 8, kV2, 0, DType::kF32, {}},
  };
}

INSTANTIATE_TEST_SUITE_P(Departures, ConsumerViewTest, ::testing::ValuesIn(Configs()),
                         [](const auto& info) { return info.param.name; });

// One linear "l" [out, in] with G groups; `edit` may change its tensors before they are added.
MsCheckpoint OneLinear(int bits, uint64_t groups, const std::function<void(MsLinear&)>& edit = {},
                       MsLinearOptions o = {}) {
  o.bits = bits;
  o.groups = groups;
  MsLinear linear = MakeMsLinear(o);
  if (edit) edit(linear);
  MsCheckpoint checkpoint;
  checkpoint.Describe("model_quant_type", Label(bits));
  checkpoint.AddLinear("l", linear, Label(bits));
  return checkpoint;
}

// Sets element `i` of a float or integer tensor.
void SetElement(LoadedTensor& tensor, uint64_t i, double value) {
  auto values = testing::Elements(tensor);
  values.at(i) = value;
  tensor = MakeTensor(tensor.dtype, tensor.shape, values);
}

TEST(GptqV1ZeroPointZero, IsAnErrorNamingTheTensorAndWritesNothing) {
  for (int bits : {4, 8}) {
    SCOPED_TRACE(bits);
    const double lowest = -std::ldexp(1.0, bits - 1);
    const MsCheckpoint checkpoint = OneLinear(bits, 2, [&](MsLinear& l) { SetElement(*l.offset, 5, lowest); });
    TempDir dir;
    const Converted v1 = ConvertCheckpoint(checkpoint, dir.path(), "v1", TargetTool::kGptq);
    ASSERT_FALSE(v1.report.ok());
    EXPECT_EQ(v1.report.error().code, ErrorCode::kUnsupported);
    EXPECT_CONTAINS(v1.report.error().message, "l.weight_offset");
    EXPECT_CONTAINS(v1.report.error().message, "v2");
    // AWQ, the other exact layout, is 4-bit only.
    EXPECT_EQ(v1.report.error().message.find("--target_tool awq") != std::string::npos, bits == 4);
    EXPECT_FALSE(fs::exists(dir / "v1.safetensors"));
    EXPECT_EQ(Leftovers(dir.path(), {dir / "v1-input/weights.safetensors", dir / "v1-input/description.json"}),
              std::vector<std::string>{});

    const Converted v2 = ConvertCheckpoint(checkpoint, dir.path(), "v2", TargetTool::kGptq, GptqFormat::kV2);
    ASSERT_TRUE(v2.report.ok()) << v2.report.error().message;
    const LoadedTensor& offset = checkpoint.tensor("l.weight_offset");
    EXPECT_EQ(ConsumerView(v2.tensors, "l", TargetTool::kGptq, bits, GptqFormat::kV2),
              testing::DequantizeMsModelSlim(checkpoint.tensor("l.weight"), checkpoint.tensor("l.weight_scale"), &offset));
    // AWQ stores zero points as they are: zero point 0 is exact there too.
    if (bits == 4) {
      const Converted awq = ConvertCheckpoint(checkpoint, dir.path(), "awq", TargetTool::kAwq);
      ASSERT_TRUE(awq.report.ok()) << awq.report.error().message;
      EXPECT_EQ(ConsumerView(awq.tensors, "l", TargetTool::kAwq, 4, GptqFormat::kV1),
                testing::DequantizeMsModelSlim(checkpoint.tensor("l.weight"), checkpoint.tensor("l.weight_scale"), &offset));
    }
  }
}

// Refused too, but v2 would clamp as well: the message says so instead of promising an exact result.
TEST(GptqV1ZeroPointZero, AnOffsetClampedToTheLowestValueIsRefusedToo) {
  const MsCheckpoint checkpoint = OneLinear(4, 2, [&](MsLinear& l) { SetElement(*l.offset, 0, -11); });
  TempDir dir;
  const Converted v1 = ConvertCheckpoint(checkpoint, dir.path(), "v1", TargetTool::kGptq);
  ASSERT_FALSE(v1.report.ok());
  EXPECT_CONTAINS(v1.report.error().message, "l.weight_offset");
  EXPECT_CONTAINS(v1.report.error().message, "and 1 offsets lie outside the 4-bit range, so every layout clamps them");
  EXPECT_EQ(v1.report.error().message.find("exact result"), std::string::npos) << v1.report.error().message;
}

std::string WarningWith(const ConvertReport& report, const std::string& text) {
  for (const auto& line : report.warnings.Lines()) {
    if (line.find(text) != std::string::npos) return line;
  }
  return "";
}

TEST(OutOfRange, FourBitWeightsAndOffsetsAreClampedLikeTheScriptWithAWarningCount) {
  for (TargetTool target : {TargetTool::kAwq, TargetTool::kGptq}) {
    SCOPED_TRACE(target == TargetTool::kAwq ? "awq" : "gptq");
    MsLinearOptions options;
    options.offset_dtype = DType::kI32;
    const MsCheckpoint checkpoint = OneLinear(4, 2, [&](MsLinear& l) {
      SetElement(l.weight, 0, 8);             // -> 7
      SetElement(l.weight, 17, -9);           // -> -8
      SetElement(l.weight, 24 * 96 - 1, 127); // -> 7
      SetElement(*l.offset, 3, 12);           // -> 7
    }, options);
    TempDir dir;
    const Converted converted = ConvertCheckpoint(checkpoint, dir.path(), "out", target);
    ASSERT_TRUE(converted.report.ok()) << converted.report.error().message;
    const LoadedTensor& offset = checkpoint.tensor("l.weight_offset");
    EXPECT_EQ(ConsumerView(converted.tensors, "l", target, 4, GptqFormat::kV1),
              testing::DequantizeMsModelSlim(checkpoint.tensor("l.weight"), checkpoint.tensor("l.weight_scale"), &offset,
                                             /*clamp_bits=*/4));
    const std::string weights_line = WarningWith(*converted.report, "weight value(s)");
    EXPECT_CONTAINS(weights_line, "3 weight value(s) in 1 tensor(s)");
    EXPECT_CONTAINS(weights_line, "l.qweight");
    const std::string offsets_line = WarningWith(*converted.report, "offset value(s)");
    EXPECT_CONTAINS(offsets_line, "1 offset value(s) in 1 tensor(s)");
    EXPECT_CONTAINS(offsets_line, "l.weight_offset");
    EXPECT_EQ(WarningWith(*converted.report, "a quarter or more"), "");  // a few outliers are no sign
  }
}

// 8-bit weights under a W4A16 label clamp by the thousand: converted as the script does, with a
// warning that points at the label.
TEST(OutOfRange, WeightsMostlyOutOfRangeAreWarnedOfAsPerhapsMislabelled) {
  const MsCheckpoint checkpoint = OneLinear(4, 2, [&](MsLinear& l) {
    for (size_t at = 0; at < 24 * 96; ++at) SetElement(l.weight, at, static_cast<int>(at % 256) - 128);
  });
  TempDir dir;
  const Converted converted = ConvertCheckpoint(checkpoint, dir.path(), "out", TargetTool::kAwq);
  ASSERT_TRUE(converted.report.ok()) << converted.report.error().message;
  const std::string line = WarningWith(*converted.report, "a quarter or more");
  EXPECT_CONTAINS(line, "1 weight tensor(s)");
  EXPECT_CONTAINS(line, "8-bit ones labelled W4A16?");
  EXPECT_CONTAINS(line, "l.qweight");
}

TEST(OutOfRange, EightBitOffsetsAreClampedWithAWarningCount) {
  MsLinearOptions options;
  options.offset_dtype = DType::kI32;
  const MsCheckpoint checkpoint = OneLinear(8, 2, [&](MsLinear& l) {
    SetElement(*l.offset, 0, 200);   // -> 127
    SetElement(*l.offset, 1, -300);  // -> -128
  }, options);
  TempDir dir;
  const Converted converted = ConvertCheckpoint(checkpoint, dir.path(), "out", TargetTool::kGptq, GptqFormat::kV2);
  ASSERT_TRUE(converted.report.ok()) << converted.report.error().message;
  const LoadedTensor& offset = checkpoint.tensor("l.weight_offset");
  EXPECT_EQ(ConsumerView(converted.tensors, "l", TargetTool::kGptq, 8, GptqFormat::kV2),
            testing::DequantizeMsModelSlim(checkpoint.tensor("l.weight"), checkpoint.tensor("l.weight_scale"), &offset,
                                           /*clamp_bits=*/8));
  EXPECT_CONTAINS(WarningWith(*converted.report, "offset value(s)"), "2 offset value(s) in 1 tensor(s)");
  EXPECT_EQ(WarningWith(*converted.report, "weight value(s)"), "");
}

TEST(Offsets, NonIntegralOrNonFiniteOffsetsAreErrorsNamingTheTensor) {
  for (double bad : {1.5, -0.25, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    SCOPED_TRACE(bad);
    const MsCheckpoint checkpoint = OneLinear(4, 2, [&](MsLinear& l) { SetElement(*l.offset, 7, bad); });
    TempDir dir;
    const Converted converted = ConvertCheckpoint(checkpoint, dir.path(), "out", TargetTool::kAwq);
    ASSERT_FALSE(converted.report.ok());
    EXPECT_EQ(converted.report.error().code, ErrorCode::kInvalidInput);
    EXPECT_CONTAINS(converted.report.error().message, "l.weight_offset");
    EXPECT_FALSE(fs::exists(dir / "out.safetensors"));
    EXPECT_EQ(Leftovers(dir.path(), {dir / "out-input/weights.safetensors", dir / "out-input/description.json"}),
              std::vector<std::string>{});
  }
}

TEST(LegacyShapes, ConvertToTheSameBytesAsTheirModernTwin) {
  struct Case {
    TargetTool target;
    int bits;
    uint64_t groups;
    std::vector<uint64_t> legacy_shape;
  };
  for (const Case& c : {Case{TargetTool::kAwq, 4, 3, {24 * 3, 1}}, Case{TargetTool::kGptq, 4, 2, {24 * 2, 1}},
                        Case{TargetTool::kGptq, 8, 3, {24 * 3, 1}}, Case{TargetTool::kGptq, 4, 1, {24}},
                        Case{TargetTool::kGptq, 8, 1, {24}}}) {
    SCOPED_TRACE(testing::Numel(LoadedTensor{DType::kF32, c.legacy_shape, {}}));
    const MsCheckpoint modern = OneLinear(c.bits, c.groups);
    const MsCheckpoint legacy = OneLinear(c.bits, c.groups, [&](MsLinear& l) {
      l.scale.shape = c.legacy_shape;
      l.offset->shape = c.legacy_shape;
    });
    TempDir dir;
    const Converted a = ConvertCheckpoint(modern, dir.path(), "modern", c.target);
    const Converted b = ConvertCheckpoint(legacy, dir.path(), "legacy", c.target);
    ASSERT_TRUE(a.report.ok()) << a.report.error().message;
    ASSERT_TRUE(b.report.ok()) << b.report.error().message;
    EXPECT_EQ(a.tensors, b.tensors);
    EXPECT_EQ(b.tensors.at("l.scales").shape, (std::vector<uint64_t>{c.groups, 24}));
    EXPECT_CONTAINS(WarningWith(*b.report, "legacy"), "l.weight_scale");
    EXPECT_EQ(WarningWith(*a.report, "legacy"), "");
  }
}

TEST(MissingOffsets, GiveTheQZerosOfAllZeroOffsets) {
  for (auto [target, bits, format] : {std::tuple{TargetTool::kAwq, 4, GptqFormat::kV1},
                                      std::tuple{TargetTool::kGptq, 4, GptqFormat::kV1},
                                      std::tuple{TargetTool::kGptq, 4, GptqFormat::kV2},
                                      std::tuple{TargetTool::kGptq, 8, GptqFormat::kV1},
                                      std::tuple{TargetTool::kGptq, 8, GptqFormat::kV2}}) {
    SCOPED_TRACE(std::to_string(bits) + (target == TargetTool::kAwq ? " awq" : " gptq"));
    for (uint64_t groups : {uint64_t{2}, uint64_t{1}}) {
      if (target == TargetTool::kAwq && groups == 1) continue;
      const MsCheckpoint zeros = OneLinear(bits, groups, [](MsLinear& l) {
        l.offset = MakeTensor(l.scale.dtype, l.scale.shape, std::vector<double>(testing::Numel(l.scale), 0.0));
      });
      const MsCheckpoint missing = OneLinear(bits, groups, [](MsLinear& l) { l.offset.reset(); });
      TempDir dir;
      const Converted a = ConvertCheckpoint(zeros, dir.path(), "zeros", target, format);
      const Converted b = ConvertCheckpoint(missing, dir.path(), "missing", target, format);
      ASSERT_TRUE(a.report.ok()) << a.report.error().message;
      ASSERT_TRUE(b.report.ok()) << b.report.error().message;
      EXPECT_EQ(a.tensors, b.tensors);
      ASSERT_TRUE(b.tensors.contains("l.qzeros"));
      EXPECT_CONTAINS(WarningWith(*b.report, "no weight_offset"), "l");
      EXPECT_TRUE(b.report->symmetric);
      EXPECT_TRUE(a.report->symmetric);
      EXPECT_EQ(ConsumerView(b.tensors, "l", target, bits, format),
                testing::DequantizeMsModelSlim(missing.tensor("l.weight"), missing.tensor("l.weight_scale"), nullptr));
    }
  }
}

TEST(Offsets, AsymmetricOffsetsAreNotSymmetric) {
  TempDir dir;
  const Converted converted = ConvertCheckpoint(OneLinear(4, 2), dir.path(), "out", TargetTool::kGptq);
  ASSERT_TRUE(converted.report.ok()) << converted.report.error().message;
  EXPECT_FALSE(converted.report->symmetric);
}

TEST(Report, ItsPlanStaysValidAfterConvertReturns) {
  // --dry-run prints the plan, sources included, after the inputs are closed.
  TempDir dir;
  for (bool dry_run : {true, false}) {
    const Converted converted = ConvertCheckpoint(OneLinear(4, 2), dir.path(), dry_run ? "dry" : "wet",
                                                  TargetTool::kAwq, GptqFormat::kV1,
                                                  [&](ConvertRequest& r) { r.dry_run = dry_run; });
    ASSERT_TRUE(converted.report.ok()) << converted.report.error().message;
    EXPECT_EQ(fs::exists(dir / (dry_run ? "dry.safetensors" : "wet.safetensors")), !dry_run);
    std::vector<std::string> sources;
    for (const auto& tensor : converted.report->plan.tensors) {
      ASSERT_NE(tensor.source, nullptr) << tensor.name;
      sources.push_back(tensor.source->name + " " + ShapeString(tensor.source->shape));
    }
    EXPECT_EQ(sources, (std::vector<std::string>{"l.weight [24, 96]", "l.weight_scale [24, 2]",
                                                 "l.weight_offset [24, 2]"}));
  }
}

TEST(W8A16ToAwq, IsAnErrorAndWritesNothing) {
  TempDir dir;
  const Converted converted = ConvertCheckpoint(OneLinear(8, 2), dir.path(), "out", TargetTool::kAwq);
  ASSERT_FALSE(converted.report.ok());
  EXPECT_EQ(converted.report.error().code, ErrorCode::kUnsupported);
  EXPECT_CONTAINS(converted.report.error().message, "l.weight");
  EXPECT_FALSE(fs::exists(dir / "out.safetensors"));
}

}  // namespace
}  // namespace ms2vllm
