// Every golden case: ms2vllm's output equals msModelSlim's own script output, tensor by tensor
// (names, dtypes, shapes, bytes), and the file carries {"format": "pt"}.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "engine/convert.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;
using testing::GoldenDir;

fs::path FindFile(const fs::path& dir, const std::string& prefix) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().filename().string().starts_with(prefix)) return entry.path();
  }
  return {};
}

class GoldenTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, MatchesScriptOutputTensorByTensor) {
  const fs::path dir = GoldenDir() / GetParam();
  const auto args = nlohmann::json::parse(testing::ReadText(dir / "args.json"));
  testing::TempDir out;
  ConvertRequest request;
  request.model = FindFile(dir, "quant_model_weight");
  request.json = FindFile(dir, "quant_model_description");
  request.save_path = out / "res.safetensors";
  request.plan.target = args["target_tool"] == "gptq" ? TargetTool::kGptq : TargetTool::kAwq;
  request.plan.w_bit = args["w_bit"].get<int>();
  auto report = Convert(request);
  ASSERT_TRUE(report.ok()) << report.error().message;

  const auto expected = testing::LoadTensors(dir / "expected.safetensors");
  const auto actual = testing::LoadTensors(request.save_path);
  ASSERT_FALSE(expected.empty());
  for (const auto& [name, tensor] : expected) {
    auto it = actual.find(name);
    ASSERT_NE(it, actual.end()) << "missing " << name;
    EXPECT_EQ(it->second.dtype, tensor.dtype) << name;
    EXPECT_EQ(it->second.shape, tensor.shape) << name;
    EXPECT_TRUE(it->second.bytes == tensor.bytes) << name << " differs";
  }
  for (const auto& [name, tensor] : actual) {
    if (!expected.contains(name)) {
      // The only tensors the script does not write: qzeros for linears without offsets (SPEC 4).
      EXPECT_TRUE(name.ends_with(".qzeros")) << "extra " << name;
    }
  }
  EXPECT_EQ(testing::HeaderMetadata(request.save_path), R"({"format":"pt"})");
}

TEST_P(GoldenTest, BitWidthFromDescriptionGivesTheSameBytes) {
  const fs::path dir = GoldenDir() / GetParam();
  const auto args = nlohmann::json::parse(testing::ReadText(dir / "args.json"));
  testing::TempDir out;
  ConvertRequest request;
  request.model = dir;  // the directory: weights and description found by name
  request.save_path = out / "res.safetensors";
  request.plan.target = args["target_tool"] == "gptq" ? TargetTool::kGptq : TargetTool::kAwq;
  auto report = Convert(request);
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->plan.bits, args["w_bit"].get<int>());
  const auto expected = testing::LoadTensors(dir / "expected.safetensors");
  const auto actual = testing::LoadTensors(request.save_path);
  for (const auto& [name, tensor] : expected) EXPECT_TRUE(actual.at(name) == tensor) << name;
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenTest, ::testing::ValuesIn(testing::GoldenCases()),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) if (c == '-') c = '_';
                           return name;
                         });

}  // namespace
}  // namespace ms2vllm
