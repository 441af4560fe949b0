// `inspect`: the quantization the tensors show, the targets and every problem, without converting.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include "engine/convert.h"
#include "engine/inspect.h"
#include "engine/synth_plan.h"
#include "engine/synth_writer.h"
#include "engine/weight_range_scan.h"
#include "io/checkpoint.h"
#include "io/description.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;
using testing::GoldenDir;
using testing::TempDir;

const TargetVerdict* Target(const Inspection& inspection, const std::string& name) {
  for (const auto& t : inspection.targets) {
    if (t.target == name) return &t;
  }
  return nullptr;
}

std::string Problems(const Inspection& inspection) {
  std::string text;
  for (const auto& p : inspection.problems) text += p.message + "\n";
  return text;
}

fs::path FindFile(const fs::path& dir, const std::string& prefix) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with(prefix)) return entry.path();
  }
  return {};
}

std::pair<int, std::string> RunMs2vllm(const std::string& args) {
  FILE* pipe = ::popen((ms2vllm::testing::Ms2vllmCommandLine() + " " + args + " 2>/dev/null").c_str(), "r");
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

class InspectGoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(InspectGoldenTest, ReportsBitsGroupAndSymmetry) {
  const std::string name = GetParam();
  const fs::path dir = GoldenDir() / name;
  const auto args = nlohmann::json::parse(testing::ReadText(dir / "args.json"));
  const Inspection inspection = Inspect({dir, std::nullopt, PackedMode::kAuto});
  EXPECT_TRUE(inspection.ok()) << Problems(inspection);
  EXPECT_EQ(inspection.tensors.size(), testing::LoadTensors(inspection.weights).size());
  ASSERT_TRUE(inspection.bits.has_value());
  EXPECT_EQ(*inspection.bits, args["w_bit"].get<int>());
  EXPECT_EQ(inspection.linears, 7u);
  const bool per_channel = name.find("perchannel") != std::string::npos;
  EXPECT_EQ(inspection.per_channel, per_channel);
  if (!per_channel) {
    ASSERT_TRUE(inspection.group_size.has_value());
    EXPECT_EQ(*inspection.group_size, name.find("g32") != std::string::npos ? 32u : 64u);
  }
  ASSERT_TRUE(inspection.symmetric.has_value());
  EXPECT_EQ(*inspection.symmetric, name.find("sym") != std::string::npos);
  EXPECT_EQ(inspection.packing.rfind("none", 0), 0u) << inspection.packing;
  // The target the script was run with always works; AWQ needs 4 bits and groups.
  const std::string target = args["target_tool"].get<std::string>();
  ASSERT_NE(Target(inspection, target), nullptr);
  EXPECT_TRUE(Target(inspection, target)->ok) << Target(inspection, target)->reason;
  const bool awq_possible = args["w_bit"].get<int>() == 4 && !per_channel;
  EXPECT_EQ(Target(inspection, "awq")->ok, awq_possible) << Target(inspection, "awq")->reason;
  EXPECT_TRUE(Target(inspection, "gptq_v2")->ok);
  for (const auto& t : inspection.tensors) {
    if (t.name.ends_with(".weight_scale")) {
      EXPECT_EQ(t.label, "W" + std::to_string(*inspection.bits) + "A16") << t.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, InspectGoldenTest, ::testing::ValuesIn(testing::GoldenCases()), [](const auto& info) {
  std::string name = info.param;
  for (char& c : name) if (c == '-') c = '_';
  return name;
});

TEST(InspectTest, BadHeaderIsAProblemNamingTheFile) {
  TempDir dir;
  testing::WriteText(dir / "quant_model_weight_w4a16.safetensors", std::string("\x10\0\0\0\0\0\0\0{\"a\":", 14));
  testing::WriteText(dir / "quant_model_description_w4a16.json", "{}");
  const Inspection inspection = Inspect({dir.path(), std::nullopt, PackedMode::kAuto});
  ASSERT_FALSE(inspection.ok());
  EXPECT_EQ(inspection.problems[0].code, ErrorCode::kInvalidInput);
  EXPECT_NE(inspection.problems[0].message.find("quant_model_weight_w4a16.safetensors"), std::string::npos)
      << Problems(inspection);

  auto [code, output] = RunMs2vllm("inspect " + dir.path().string());
  EXPECT_EQ(code, 3);
  EXPECT_NE(output.find("problem:"), std::string::npos) << output;
}

TEST(InspectTest, NonIntegralOffsetAndMissingDescriptionAreProblems) {
  TempDir dir;
  const fs::path golden = GoldenDir() / "w4a16-g64-gptq";
  auto tensors = testing::LoadTensors(FindFile(golden, "quant_model_weight"));
  auto& offset = tensors.at("model.layers.0.mlp.up_proj.weight_offset");
  const float half = 0.5f;
  std::memcpy(offset.bytes.data() + 8, &half, 4);  // F32 offsets
  fs::create_directories(dir / "model");
  testing::WriteSafetensors(dir / "model" / "quant_model_weight_w4a16.safetensors",
                            std::vector<std::pair<std::string, testing::LoadedTensor>>(tensors.begin(), tensors.end()));
  const Inspection no_description = Inspect({dir / "model", std::nullopt, PackedMode::kAuto});
  ASSERT_FALSE(no_description.ok());
  EXPECT_NE(Problems(no_description).find("quant_model_description"), std::string::npos) << Problems(no_description);
  EXPECT_EQ(no_description.tensors.size(), 29u);  // the table is shown all the same
  ASSERT_EQ(no_description.targets.size(), 3u);
  EXPECT_EQ(no_description.targets[0].reason, "no description (give --json)");
  // A --json that cannot be read: the targets do not ask for the flag the user gave.
  const Inspection unreadable = Inspect({dir / "model", dir / "missing.json", PackedMode::kAuto});
  ASSERT_EQ(unreadable.targets.size(), 3u);
  for (const auto& t : unreadable.targets) EXPECT_EQ(t.reason, "the description given with --json is not usable (see the problem)");
  EXPECT_NE(Problems(unreadable).find("missing.json: cannot open"), std::string::npos) << Problems(unreadable);

  const Inspection inspection = Inspect({dir / "model", FindFile(golden, "quant_model_description"), PackedMode::kAuto});
  ASSERT_EQ(inspection.problems.size(), 1u) << Problems(inspection);
  EXPECT_NE(inspection.problems[0].message.find("model.layers.0.mlp.up_proj.weight_offset"), std::string::npos);
  for (const auto& t : inspection.targets) EXPECT_FALSE(t.ok) << t.target;
}

TEST(InspectTest, ACheckpointNoLayoutAcceptsIsAProblem) {
  TempDir dir;
  const fs::path golden = GoldenDir() / "w4a16-g64-gptq";
  auto tensors = testing::LoadTensors(FindFile(golden, "quant_model_weight"));
  auto& scale = tensors.at("model.layers.0.mlp.up_proj.weight_scale");
  ASSERT_EQ(scale.shape.size(), 2u);
  scale.shape = {scale.shape[0] / 2, scale.shape[1] * 2};  // same bytes, a shape that fits no weight
  fs::create_directories(dir / "model");
  testing::WriteSafetensors(dir / "model" / "quant_model_weight_w4a16.safetensors",
                            std::vector<std::pair<std::string, testing::LoadedTensor>>(tensors.begin(), tensors.end()));
  fs::copy_file(FindFile(golden, "quant_model_description"), dir / "model" / "quant_model_description_w4a16.json");
  const Inspection inspection = Inspect({dir / "model", std::nullopt, PackedMode::kAuto});
  ASSERT_EQ(inspection.problems.size(), 1u) << Problems(inspection);
  EXPECT_EQ(inspection.problems[0].code, ErrorCode::kUnsupported);
  EXPECT_NE(inspection.problems[0].message.find("up_proj.weight_scale"), std::string::npos) << Problems(inspection);
  EXPECT_EQ(RunMs2vllm("inspect " + (dir / "model").string()).first, 4);
}

TEST(InspectTest, PackedAndZeroPointZeroInputs) {
  TempDir dir;
  SynthRequest request;
  request.options.shape = *FindModelShape("tiny");
  request.options.group_size = 64;
  request.options.packed = true;
  request.out_dir = dir / "packed";
  ASSERT_TRUE(WriteSynthCheckpoint(request).ok());
  const Inspection packed = Inspect({dir / "packed", std::nullopt, PackedMode::kAuto});
  EXPECT_TRUE(packed.ok()) << Problems(packed);
  EXPECT_NE(packed.packing.find("ascendV1"), std::string::npos) << packed.packing;
  EXPECT_TRUE(packed.offsets_missing);
  EXPECT_EQ(packed.symmetric, true);

  request.options.packed = false;
  request.options.full_offset_range = true;
  request.options.seed = 3;
  request.out_dir = dir / "full";
  ASSERT_TRUE(WriteSynthCheckpoint(request).ok());
  const Inspection full = Inspect({dir / "full", std::nullopt, PackedMode::kAuto});
  EXPECT_TRUE(full.ok()) << Problems(full);
  EXPECT_FALSE(Target(full, "gptq")->ok);
  EXPECT_NE(Target(full, "gptq")->reason.find("gptq-format v2"), std::string::npos) << Target(full, "gptq")->reason;
  EXPECT_TRUE(Target(full, "gptq_v2")->ok);
  EXPECT_TRUE(Target(full, "awq")->ok);
}

TEST(InspectTest, JsonOutputIsOneObjectForScripts) {
  const fs::path dir = GoldenDir() / "w4a16-perchannel-gptq";
  auto [code, output] = RunMs2vllm("inspect " + dir.string() + " --json-output");
  EXPECT_EQ(code, 0) << output;
  const auto json = nlohmann::json::parse(output);
  EXPECT_EQ(json["quantization"]["bits"], 4);
  EXPECT_EQ(json["quantization"]["per_channel"], true);
  EXPECT_TRUE(json["quantization"]["group_size"].is_null());
  EXPECT_EQ(json["quantization"]["symmetric"], false);
  EXPECT_EQ(json["targets"]["awq"]["ok"], false);
  EXPECT_EQ(json["targets"]["gptq"]["ok"], true);
  EXPECT_EQ(json["tensors"].size(), 29u);
  EXPECT_EQ(json["problems"].size(), 0u);
  EXPECT_EQ(json["ok"], true);

  auto [text_code, text] = RunMs2vllm("inspect " + dir.string());
  EXPECT_EQ(text_code, 0);
  EXPECT_NE(text.find("per-channel"), std::string::npos) << text;
  auto [help_code, help] = RunMs2vllm("inspect --help");
  EXPECT_EQ(help_code, 0);
  EXPECT_NE(help.find("--json-output"), std::string::npos) << help;
}

// A converted model directory: its layout as its config declares it, and its shards counted
// without their index.
TEST(InspectTest, AConvertedDirectoryShowsItsDeclaredLayoutAndShards) {
  TempDir dir;
  const std::string model = (dir / "model").string(), out = (dir / "out").string();
  ASSERT_EQ(RunMs2vllm("synth --preset tiny --group-size 64 -q --out " + model).first, 0);
  ASSERT_EQ(RunMs2vllm("--model " + model + " --target_tool gptq --gptq-format v2 --max-shard-size 40KB -q --out-dir " + out)
                .first,
            0);
  size_t shards = 0;
  for (const auto& entry : fs::directory_iterator(out)) shards += entry.path().filename().string().starts_with("model-");
  ASSERT_GT(shards, 1u);
  auto [code, text] = RunMs2vllm("inspect " + out);
  EXPECT_EQ(code, 0) << text;
  EXPECT_NE(text.find("(" + std::to_string(shards) + " shard(s), "), std::string::npos) << text;
  EXPECT_NE(text.find("quantization:  converted: gptq (checkpoint_format gptq_v2), 4-bit, group size 64 (config.json)"),
            std::string::npos)
      << text;
  auto [json_code, json_text] = RunMs2vllm("inspect " + out + " --json-output");
  EXPECT_EQ(json_code, 0);
  EXPECT_EQ(nlohmann::json::parse(json_text)["quantization"]["converted_layout"],
            "gptq (checkpoint_format gptq_v2), 4-bit, group size 64 (config.json)");
  // Not a directory: nothing declares a layout.
  const Inspection file = Inspect({FindFile(GoldenDir() / "w4a16-g64-gptq", "expected"), std::nullopt, PackedMode::kAuto});
  EXPECT_FALSE(file.converted_layout.has_value());
}

// `packing` says how msModelSlim stored the 4-bit weights; of a file that is no msModelSlim
// checkpoint (a conversion) or has no description, nothing is known: null, not "".
TEST(InspectTest, JsonPackingIsNullWhenTheInputTellsNothing) {
  const fs::path golden = GoldenDir() / "w4a16-g64-awq";
  TempDir dir;
  fs::copy_file(FindFile(golden, "quant_model_weight"), dir / "undescribed.safetensors");
  for (const fs::path& input : {golden / "expected.safetensors", dir / "undescribed.safetensors"}) {
    const auto [code, output] = RunMs2vllm("inspect " + input.string() + " --json-output");
    ASSERT_TRUE(nlohmann::json::accept(output)) << input << ": " << output;
    const auto json = nlohmann::json::parse(output);
    EXPECT_TRUE(json["quantization"]["packing"].is_null()) << input << ": " << json["quantization"].dump();
  }
  const auto [code, output] = RunMs2vllm("inspect " + golden.string() + " --json-output");
  EXPECT_TRUE(nlohmann::json::parse(output)["quantization"]["packing"].is_string()) << output;
}

// Symmetric in two ways, told apart: offsets absent, or present and all 0.
TEST(InspectTest, TextSaysHowACheckpointIsSymmetric) {
  TempDir dir;
  for (const bool with_offset : {false, true}) {
    testing::MsCheckpoint checkpoint;
    checkpoint.Describe("model_quant_type", "W4A16");
    testing::MsLinearOptions options;
    options.with_offset = with_offset;
    options.offset_low = options.offset_high = 0;
    checkpoint.AddLinear("l", testing::MakeMsLinear(options), "W4A16");
    const fs::path input = dir / (with_offset ? "zero" : "none");
    fs::create_directories(input);
    checkpoint.WriteInto(input);
    const auto [code, output] = RunMs2vllm("inspect " + input.string());
    EXPECT_EQ(code, 0) << output;
    EXPECT_NE(output.find(with_offset ? "symmetric (all offsets 0)" : "symmetric (no offsets)"), std::string::npos)
        << output;
  }
}

// The line of `lines` holding `text`, or "".
std::string LineWith(const std::vector<std::string>& lines, const std::string& text) {
  for (const auto& line : lines) {
    if (line.find(text) != std::string::npos) return line;
  }
  return "";
}

// A warning line without the tensors it names (the conversion names qweights, inspect its inputs).
std::string WithoutNames(const std::string& line) { return line.substr(0, line.find(": model.")); }

// 8-bit weights described as W4A16: the conversion clamps most of their values and warns that
// its output is unusable; inspect reads the weights, counts the same values and calls it a problem.
TEST(InspectTest, EightBitWeightsLabelledW4A16AreAProblemCountedAsTheConversionCounts) {
  TempDir dir;
  const fs::path golden = GoldenDir() / "w8a16-g64-gptq";
  const fs::path weights = FindFile(golden, "quant_model_weight"), json = dir / "description.json";
  std::string text = testing::ReadText(FindFile(golden, "quant_model_description"));
  for (size_t at; (at = text.find("W8A16")) != std::string::npos;) text.replace(at, 5, "W4A16");
  testing::WriteText(json, text);

  ConvertRequest request;
  request.model = weights;
  request.json = json;
  request.save_path = dir / "out.safetensors";
  const auto converted = Convert(request);
  ASSERT_TRUE(converted.ok()) << converted.error().message;
  const std::vector<std::string> converted_lines = converted->warnings.Lines();
  const std::string converted_clamped = LineWith(converted_lines, "weight value(s)");
  const std::string converted_mostly = LineWith(converted_lines, "a quarter or more");
  ASSERT_NE(converted_clamped, "");
  ASSERT_NE(converted_mostly, "");

  const Inspection inspection = Inspect({weights, json, PackedMode::kAuto});
  EXPECT_FALSE(inspection.ok());
  EXPECT_EQ(WithoutNames(LineWith(inspection.warnings, "weight value(s)")), WithoutNames(converted_clamped));
  EXPECT_NE(LineWith(inspection.warnings, "weight value(s)").find("q_proj.weight,"), std::string::npos);
  ASSERT_EQ(inspection.problems.size(), 1u) << Problems(inspection);
  EXPECT_EQ(inspection.problems[0].code, ErrorCode::kInvalidInput);
  EXPECT_EQ(WithoutNames(inspection.problems[0].message), WithoutNames(converted_mostly));
  EXPECT_EQ(LineWith(inspection.warnings, "a quarter or more"), "");  // a problem, not also a warning
  ASSERT_EQ(inspection.targets.size(), 3u);
  for (const auto& target : inspection.targets) {  // converting would succeed, into unusable weights
    EXPECT_FALSE(target.ok) << target.target;
    if (target.target != "gptq") {  // v1 has a reason of its own first: zero points it cannot store
      EXPECT_NE(target.reason.find("unusable"), std::string::npos) << target.reason;
    }
  }

  const auto [code, output] = RunMs2vllm("inspect " + weights.string() + " --json " + json.string() + " --json-output");
  EXPECT_EQ(code, 3) << output;
  const auto report = nlohmann::json::parse(output);
  EXPECT_EQ(report["ok"], false);
  ASSERT_EQ(report["problems"].size(), 1u);
  EXPECT_EQ(report["problems"][0]["exit_code"], 3);
  EXPECT_NE(report["problems"][0]["message"].get<std::string>().find("a quarter or more"), std::string::npos);
  EXPECT_NE(LineWith(report["warnings"].get<std::vector<std::string>>(), "weight value(s)"), "");
  EXPECT_EQ(report["targets"]["awq"]["ok"], false);
}

// A few outliers are a quantizer's: counted and warned of, as the conversion does, but no problem.
TEST(InspectTest, AFewOutOfRangeWeightsAreAWarning) {
  TempDir dir;
  testing::MsLinear linear = testing::MakeMsLinear({});
  linear.weight.bytes.at(0) = 8;
  linear.weight.bytes.at(17) = static_cast<uint8_t>(-9);
  linear.weight.bytes.back() = 127;
  testing::MsCheckpoint checkpoint;
  checkpoint.Describe("model_quant_type", "W4A16");
  checkpoint.AddLinear("l", linear, "W4A16");
  checkpoint.WriteInto(dir.path());
  const Inspection inspection = Inspect({dir.path(), std::nullopt, PackedMode::kAuto});
  EXPECT_TRUE(inspection.ok()) << Problems(inspection);
  EXPECT_NE(LineWith(inspection.warnings, "3 weight value(s) in 1 tensor(s)"), "");
  EXPECT_NE(LineWith(inspection.warnings, "weight value(s)").find("l.weight"), std::string::npos);
}

// The weights are read in pieces: a value is counted once whichever piece it falls in.
TEST(WeightRangeScanTest, CountsTheSameWhateverThePieceSize) {
  TempDir dir;
  testing::MsLinear linear = testing::MakeMsLinear({});  // I8 [24, 96]
  for (size_t at = 0; at < linear.weight.bytes.size(); at += 7) linear.weight.bytes[at] = static_cast<uint8_t>(at % 2 ? 100 : -100);
  uint64_t expected = 0;
  for (const uint8_t byte : linear.weight.bytes) expected += static_cast<int8_t>(byte) < -8 || static_cast<int8_t>(byte) > 7;
  testing::MsCheckpoint ms;
  ms.Describe("model_quant_type", "W4A16");
  ms.AddLinear("l", linear, "W4A16");
  const fs::path weights = ms.WriteInto(dir.path());
  auto checkpoint = Checkpoint::Open(weights);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.error().message;
  auto description = LoadDescription((dir / "quant_model_description_w4a16.json").string());
  ASSERT_TRUE(description.ok()) << description.error().message;
  auto plan = BuildPlan(checkpoint->table(), *description, PlanOptions{});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  for (const uint64_t piece : {uint64_t{1}, uint64_t{7}, uint64_t{1000}, uint64_t{4} << 20}) {
    Warnings warnings;
    ASSERT_TRUE(ScanWeightRange(*plan, *checkpoint, warnings, piece).ok());
    EXPECT_NE(warnings.Line(WarningKind::kClampedWeights).find(std::to_string(expected) + " weight value(s) in 1 tensor(s)"),
              std::string::npos)
        << piece << ": " << warnings.Line(WarningKind::kClampedWeights);
  }
}

}  // namespace
}  // namespace ms2vllm
