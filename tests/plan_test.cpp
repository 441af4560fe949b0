// The plan as a pure function (SPEC.md sections 2 and 4): every output rule and every departure
// from the script, on hand-built tensor tables and descriptions. No files.
#include <gtest/gtest.h>

#include <algorithm>
#include <span>
#include <string>
#include <vector>

#include "engine/plan.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

using Shape = std::vector<uint64_t>;

// A tensor table and a description, built entry by entry.
class PlanTest : public ::testing::Test {
 protected:
  PlanTest() { description_.path = "desc.json"; }  // as messages name the file

  void Tensor(const std::string& name, DType dtype, Shape shape) {
    TensorInfo info;
    info.name = name;
    info.dtype = dtype;
    info.shape = std::move(shape);
    info.byte_size = info.numel() * DTypeSize(dtype);
    ASSERT_TRUE(table_.Add(std::move(info))) << name;
  }
  void Entry(const std::string& name, const std::string& label) { description_.entries.push_back({name, label}); }
  // A tensor listed in the description.
  void Described(const std::string& name, DType dtype, Shape shape, const std::string& label) {
    Tensor(name, dtype, std::move(shape));
    Entry(name, label);
  }
  // X.weight [out, in] I8, X.weight_scale [out, G], X.weight_offset [out, G].
  void Linear(const std::string& x, uint64_t out, uint64_t in, uint64_t groups, const std::string& label = "W4A16",
              bool offset = true, DType scale_dtype = DType::kF32) {
    Described(x + ".weight", DType::kI8, {out, in}, label);
    Described(x + ".weight_scale", scale_dtype, {out, groups}, label);
    if (offset) Described(x + ".weight_offset", scale_dtype, {out, groups}, label);
  }

  Result<Plan> Build(PlanOptions options = {}) { return BuildPlan(table_, description_, options); }
  Plan BuildOk(PlanOptions options = {}) {
    auto plan = Build(options);
    EXPECT_TRUE(plan.ok()) << plan.error().message;
    return plan.ok() ? std::move(plan).value() : Plan{};
  }
  // The error of a plan that must fail, with its code checked.
  std::string BuildError(ErrorCode code, PlanOptions options = {}) {
    auto plan = Build(options);
    EXPECT_FALSE(plan.ok());
    if (plan.ok()) return "";
    EXPECT_EQ(plan.error().code, code) << plan.error().message;
    return plan.error().message;
  }

  static PlanOptions Gptq(std::optional<int> w_bit = std::nullopt) {
    PlanOptions options;
    options.target = TargetTool::kGptq;
    options.w_bit = w_bit;
    return options;
  }

  TensorTable table_;
  Description description_;
};

const OutputTensor* Find(const Plan& plan, const std::string& name) {
  for (const auto& tensor : plan.tensors) {
    if (tensor.name == name) return &tensor;
  }
  return nullptr;
}

// The output tensor `name`; a test failure (and an empty tensor) when the plan has none.
const OutputTensor& Get(const Plan& plan, const std::string& name) {
  if (const OutputTensor* tensor = Find(plan, name)) return *tensor;
  ADD_FAILURE() << "the plan has no " << name;
  static const OutputTensor kNone;
  return kNone;
}

std::vector<std::string> Names(const Plan& plan) {
  std::vector<std::string> names;
  for (const auto& tensor : plan.tensors) names.push_back(tensor.name);
  return names;
}

// The warning line that contains `text`, or "" when none does.
std::string WarningWith(const Warnings& warnings, const std::string& text) {
  for (const auto& line : warnings.Lines()) {
    if (line.find(text) != std::string::npos) return line;
  }
  return "";
}

// ---- SPEC 2, rule by rule ----

TEST_F(PlanTest, Rule1CopiesNonQuantizedLabelsUnchanged) {
  Described("model.embed_tokens.weight", DType::kF16, {32, 24}, "FLOAT");
  Described("model.layers.0.self_attn.q_proj.bias", DType::kBF16, {24}, "FLOAT");
  Described("model.layers.0.mlp.gate_proj.weight", DType::kI8, {24, 96}, "W8A8");  // other labels too
  Linear("q", 24, 96, 2);  // something to convert: a description without it is refused
  const Plan plan = BuildOk();
  ASSERT_EQ(Names(plan), (std::vector<std::string>{"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.bias",
                                                   "model.layers.0.mlp.gate_proj.weight", "q.qweight", "q.scales",
                                                   "q.qzeros"}));
  for (const auto& tensor : std::span(plan.tensors).first(3)) {
    const TensorInfo* source = table_.Find(tensor.name);
    EXPECT_EQ(tensor.kind, TransformKind::kCopy) << tensor.name;
    EXPECT_EQ(tensor.source, source) << tensor.name;
    EXPECT_EQ(tensor.dtype, source->dtype) << tensor.name;
    EXPECT_EQ(tensor.shape, source->shape) << tensor.name;
  }
  // Only the label that is neither FLOAT nor a weight-only one is pointed out (a typo looks the same).
  const std::string warning = WarningWith(plan.warnings, "label other than FLOAT, W4A16 and W8A16");
  EXPECT_NE(warning.find("1 tensor(s)"), std::string::npos) << warning;
  EXPECT_NE(warning.find("model.layers.0.mlp.gate_proj.weight (W8A8)"), std::string::npos) << warning;
  // Its int8 weight is no float linear: noted apart, for --out-dir to refuse.
  EXPECT_EQ(plan.float_linears, std::vector<std::string>{});
  ASSERT_EQ(plan.other_quantized_weights.size(), 1u);
  EXPECT_EQ(plan.other_quantized_weights[0].module, "model.layers.0.mlp.gate_proj");
  EXPECT_EQ(plan.other_quantized_weights[0].label, "W8A8");
}

TEST_F(PlanTest, Rule2WeightBecomesAwqQWeight) {
  Linear("l", 24, 96, 2);
  const Plan plan = BuildOk();
  const OutputTensor* qweight = Find(plan, "l.qweight");
  ASSERT_NE(qweight, nullptr);
  EXPECT_EQ(qweight->kind, TransformKind::kQWeight);
  EXPECT_EQ(qweight->dtype, DType::kI32);
  EXPECT_EQ(qweight->shape, (Shape{96, 3}));  // [in, out/8]
  EXPECT_EQ(qweight->source, table_.Find("l.weight"));
  EXPECT_EQ(qweight->geometry.out, 24u);
  EXPECT_EQ(qweight->geometry.in, 96u);
  EXPECT_EQ(qweight->geometry.groups, 2u);
  EXPECT_EQ(qweight->geometry.packing, LinearGeometry::Packing::kNone);
  EXPECT_EQ(Find(plan, "l.weight"), nullptr);
  EXPECT_EQ(plan.bits, 4);
  EXPECT_EQ(plan.target, TargetTool::kAwq);
}

TEST_F(PlanTest, Rule2To4GptqShapesFor4And8Bits) {
  for (int bits : {4, 8}) {
    SCOPED_TRACE(bits);
    table_ = {};
    description_ = {};
    const std::string label = bits == 4 ? "W4A16" : "W8A16";
    Linear("l", 40, 96, 3, label);
    const Plan plan = BuildOk(Gptq());
    const uint64_t p = 32 / bits;
    EXPECT_EQ(plan.bits, bits);
    ASSERT_NE(Find(plan, "l.qweight"), nullptr);
    EXPECT_EQ(Get(plan, "l.qweight").shape, (Shape{96 / p, 40}));  // [in/p, out]
    EXPECT_EQ(Get(plan, "l.qweight").dtype, DType::kI32);
    ASSERT_NE(Find(plan, "l.qzeros"), nullptr);
    EXPECT_EQ(Get(plan, "l.qzeros").shape, (Shape{3, 40 / p}));  // [G, out/p]
    EXPECT_EQ(Get(plan, "l.qzeros").dtype, DType::kI32);
    EXPECT_EQ(Get(plan, "l.qzeros").kind, TransformKind::kQZeros);
    ASSERT_NE(Find(plan, "l.scales"), nullptr);
    EXPECT_EQ(Get(plan, "l.scales").shape, (Shape{3, 40}));  // [G, out]
  }
}

TEST_F(PlanTest, Rule2GptqPerChannel) {
  Linear("l", 24, 96, 1);
  const Plan plan = BuildOk(Gptq());
  EXPECT_EQ(Get(plan, "l.qweight").shape, (Shape{12, 24}));
  EXPECT_EQ(Get(plan, "l.scales").shape, (Shape{1, 24}));
  EXPECT_EQ(Get(plan, "l.qzeros").shape, (Shape{1, 3}));
  EXPECT_TRUE(plan.per_channel);
  EXPECT_EQ(plan.group_size, 96u);
  EXPECT_FALSE(plan.group_size_conflict);
}

TEST_F(PlanTest, Rule2WritesNothingForAWeightWithAModuleWeight) {
  // A W4A16-labelled norm weight next to its anti-outlier copy: only the copy, renamed, is written.
  Described("n.weight", DType::kF32, {24}, "W4A16");
  Described("n.module.weight", DType::kF32, {24}, "W4A16");
  const Plan plan = BuildOk();
  ASSERT_EQ(Names(plan), (std::vector<std::string>{"n.weight"}));
  EXPECT_EQ(plan.tensors[0].source, table_.Find("n.module.weight"));
  EXPECT_EQ(Find(plan, "n.qweight"), nullptr);
}

TEST_F(PlanTest, Rule3ScalesTransposedKeepingTheirDType) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(dtype));
    table_ = {};
    description_ = {};
    Linear("l", 24, 96, 3, "W4A16", true, dtype);
    const Plan plan = BuildOk();
    const OutputTensor* scales = Find(plan, "l.scales");
    ASSERT_NE(scales, nullptr);
    EXPECT_EQ(scales->kind, TransformKind::kScales);
    EXPECT_EQ(scales->dtype, dtype);
    EXPECT_EQ(scales->shape, (Shape{3, 24}));
    EXPECT_EQ(scales->source, table_.Find("l.weight_scale"));
  }
}

TEST_F(PlanTest, ScalesDTypeOptionCastsScales) {
  Linear("l", 24, 96, 3);
  PlanOptions options;
  options.scales_dtype = ScalesDType::kF16;
  EXPECT_EQ(Get(BuildOk(options), "l.scales").dtype, DType::kF16);
  options.scales_dtype = ScalesDType::kBF16;
  EXPECT_EQ(Get(BuildOk(options), "l.scales").dtype, DType::kBF16);
}

TEST_F(PlanTest, Rule4OffsetBecomesAwqQZeros) {
  Linear("l", 24, 96, 2, "W4A16", true, DType::kF16);
  const Plan plan = BuildOk();
  const OutputTensor* qzeros = Find(plan, "l.qzeros");
  ASSERT_NE(qzeros, nullptr);
  EXPECT_EQ(qzeros->kind, TransformKind::kQZeros);
  EXPECT_EQ(qzeros->dtype, DType::kI32);
  EXPECT_EQ(qzeros->shape, (Shape{2, 3}));  // [G, out/8]
  EXPECT_EQ(qzeros->source, table_.Find("l.weight_offset"));
  EXPECT_FALSE(plan.all_offsets_missing);
}

TEST_F(PlanTest, Rule5RenamesModuleWeight) {
  Described("model.layers.0.input_layernorm.module.weight", DType::kBF16, {96}, "W4A16");
  Described("odd.module.weight.module.weight", DType::kBF16, {8}, "W4A16");  // every occurrence is replaced
  const Plan plan = BuildOk();
  ASSERT_EQ(Names(plan), (std::vector<std::string>{"model.layers.0.input_layernorm.weight", "odd.weight.weight"}));
  EXPECT_EQ(plan.tensors[0].source, table_.Find("model.layers.0.input_layernorm.module.weight"));
  EXPECT_EQ(plan.tensors[0].kind, TransformKind::kCopy);
  EXPECT_EQ(plan.tensors[0].dtype, DType::kBF16);
}

TEST_F(PlanTest, Rule6DropsTheFinalNormsModuleTensors) {
  Described("model.norm.weight", DType::kBF16, {96}, "FLOAT");
  Described("model.norm.bias", DType::kBF16, {96}, "FLOAT");
  Described("model.norm.module.weight", DType::kBF16, {96}, "W4A16");
  Described("model.norm.module.bias", DType::kBF16, {96}, "W4A16");
  const Plan plan = BuildOk();
  ASSERT_EQ(Names(plan), (std::vector<std::string>{"model.norm.weight", "model.norm.bias"}));
  EXPECT_EQ(plan.tensors[0].source, table_.Find("model.norm.weight"));
  // Dropped tensors are described: no "not in the description" warning for them.
  EXPECT_EQ(WarningWith(plan.warnings, "not in the description"), "");
}

TEST_F(PlanTest, Rule1ComesBeforeRule6) {
  Described("model.norm.module.weight", DType::kBF16, {96}, "FLOAT");
  Linear("q", 24, 96, 2);  // something to convert
  const Plan plan = BuildOk();
  EXPECT_EQ(Names(plan), (std::vector<std::string>{"model.norm.module.weight", "q.qweight", "q.scales", "q.qzeros"}));
}

TEST_F(PlanTest, Rule7CopiesModuleBiasUnderItsOwnName) {
  Described("n.bias", DType::kBF16, {96}, "FLOAT");
  Described("n.module.bias", DType::kBF16, {96}, "W4A16");
  const Plan plan = BuildOk();
  ASSERT_EQ(Names(plan), (std::vector<std::string>{"n.bias", "n.module.bias"}));
  EXPECT_EQ(plan.tensors[1].source, table_.Find("n.module.bias"));
  EXPECT_EQ(plan.tensors[1].kind, TransformKind::kCopy);
}

TEST_F(PlanTest, LaterRuleWinsWhenModuleWeightFollowsTheFloatWeight) {
  Described("n.weight", DType::kBF16, {96}, "FLOAT");
  Described("n.module.weight", DType::kBF16, {96}, "W4A16");
  const Plan plan = BuildOk();
  ASSERT_EQ(Names(plan), (std::vector<std::string>{"n.weight"}));
  EXPECT_EQ(plan.tensors[0].source, table_.Find("n.module.weight"));
}

TEST_F(PlanTest, LaterRuleWinsWhenFloatWeightFollowsTheModuleWeight) {
  Described("n.module.weight", DType::kBF16, {96}, "W4A16");
  Described("n.weight", DType::kBF16, {96}, "FLOAT");
  const Plan plan = BuildOk();
  ASSERT_EQ(Names(plan), (std::vector<std::string>{"n.weight"}));
  EXPECT_EQ(plan.tensors[0].source, table_.Find("n.weight"));
}

TEST_F(PlanTest, OutputFollowsDescriptionOrderNotFileOrder) {
  Tensor("b", DType::kF32, {4});
  Tensor("a", DType::kF32, {4});
  Tensor("c", DType::kF32, {4});
  Entry("c", "FLOAT");
  Entry("a", "FLOAT");
  Entry("b", "FLOAT");
  Linear("q", 24, 96, 2);  // something to convert
  EXPECT_EQ(Names(BuildOk()), (std::vector<std::string>{"c", "a", "b", "q.qweight", "q.scales", "q.qzeros"}));
}

TEST_F(PlanTest, SkipsDescriptionKeysThatAreNotTensors) {
  Entry("model_quant_type", "W4A16");
  Entry("version", "1.0.0");
  Entry("kv_cache_type", "C8");
  Entry("layers.9.ghost.weight", "W4A16");  // described, but not in the checkpoint (a shard given alone?)
  Entry("model.norm.weight", "FLOAT");
  description_.model_quant_type = "W4A16";
  Described("x", DType::kF32, {4}, "FLOAT");
  Linear("q", 24, 96, 2);  // something to convert
  const Plan plan = BuildOk();
  EXPECT_EQ(Names(plan), (std::vector<std::string>{"x", "q.qweight", "q.scales", "q.qzeros"}));
  // The missing tensors are pointed out; the keys that are no tensors are not.
  ASSERT_EQ(plan.warnings.Lines().size(), 1u);
  const std::string line = plan.warnings.Lines()[0];
  EXPECT_CONTAINS(line, "2 tensor(s) the description lists are not in the checkpoint");
  EXPECT_CONTAINS(line, "layers.9.ghost.weight, model.norm.weight");
}

TEST_F(PlanTest, TensorsAbsentFromTheDescriptionAreWarnedAndNotWritten) {
  Described("kept", DType::kF32, {4}, "FLOAT");
  for (const char* name : {"extra.0", "extra.1", "extra.2", "extra.3"}) Tensor(name, DType::kF32, {4});
  Linear("q", 24, 96, 2);  // something to convert
  const Plan plan = BuildOk();
  EXPECT_EQ(Names(plan), (std::vector<std::string>{"kept", "q.qweight", "q.scales", "q.qzeros"}));
  const std::string line = WarningWith(plan.warnings, "not in the description");
  EXPECT_CONTAINS(line, "4 tensor(s)");
  EXPECT_CONTAINS(line, "extra.0, extra.1, extra.2, ...");
}

// "..." stands for tensors left unnamed: a line naming all of them, one or three, ends with the last.
TEST_F(PlanTest, AWarningNamingEveryTensorEndsWithTheLast) {
  Described("kept", DType::kF32, {4}, "FLOAT");
  for (const char* name : {"extra.0", "extra.1", "extra.2"}) Tensor(name, DType::kF32, {4});
  Entry("ghost.weight", "FLOAT");  // described, not in the checkpoint
  Linear("q", 24, 96, 2);  // something to convert
  const Plan plan = BuildOk();
  const std::string three = WarningWith(plan.warnings, "not in the description");
  EXPECT_CONTAINS(three, "3 tensor(s)");
  EXPECT_TRUE(three.ends_with(": extra.0, extra.1, extra.2")) << three;
  const std::string one = WarningWith(plan.warnings, "not in the checkpoint");
  EXPECT_CONTAINS(one, "1 tensor(s)");
  EXPECT_TRUE(one.ends_with(": ghost.weight")) << one;
}

TEST_F(PlanTest, ListsLinearsLeftInFloat) {
  Described("model.embed_tokens.weight", DType::kBF16, {32, 24}, "FLOAT");
  Described("model.layers.0.input_layernorm.weight", DType::kBF16, {96}, "FLOAT");
  Linear("model.layers.0.mlp.up_proj", 24, 96, 2);
  Described("model.layers.0.mlp.down_proj.weight", DType::kBF16, {96, 24}, "FLOAT");
  Described("model.layers.0.mlp.down_proj.bias", DType::kBF16, {96}, "FLOAT");
  Described("lm_head.weight", DType::kBF16, {32, 24}, "FLOAT");
  const Plan plan = BuildOk();
  EXPECT_EQ(plan.float_linears, (std::vector<std::string>{"model.layers.0.mlp.down_proj"}));
  // Each target's way of exempting them is lost on some of its loaders: AWQ's full names on
  // AutoAWQ, GPTQ's `dynamic` on AutoGPTQ and transformers.
  EXPECT_CONTAINS(WarningWith(plan.warnings, "left in float"), "AutoAWQ matches that list");
  EXPECT_CONTAINS(WarningWith(plan.warnings, "left in float"), "model.layers.0.mlp.down_proj");
  const Plan gptq = BuildOk(Gptq());
  EXPECT_CONTAINS(WarningWith(gptq.warnings, "left in float"), "1 linear(s)");
  EXPECT_CONTAINS(WarningWith(gptq.warnings, "left in float"), "AutoGPTQ and transformers");
  EXPECT_CONTAINS(WarningWith(gptq.warnings, "left in float"), "model.layers.0.mlp.down_proj");
}

// A linear's parts labelled some FLOAT and some quantized: the weight copied as a float tensor of
// integers beside its scales, or a qweight beside a float copy of its scale. Either way it is
// invalid input naming the description, the linear and the part labelled otherwise.
TEST_F(PlanTest, ALinearWhosePartsAreLabelledFloatAndQuantizedIsInvalidInput) {
  for (const char* float_part : {".weight", ".weight_scale", ".weight_offset"}) {
    for (const std::string other_label : {"FLOAT", "W3A16"}) {  // a label it does not know is said as it is
      SCOPED_TRACE(float_part + (" " + other_label));
      table_ = TensorTable();
      description_.entries.clear();
      Linear("model.layers.0.mlp.up_proj", 24, 96, 2);
      for (const char* part : {".weight", ".weight_scale", ".weight_offset"}) {
        const std::string name = std::string("model.layers.0.self_attn.q_proj") + part;
        Described(name, std::string(part) == ".weight" ? DType::kI8 : DType::kF32,
                  std::string(part) == ".weight" ? Shape{24, 96} : Shape{24, 2},
                  std::string(part) == float_part ? other_label : "W4A16");
      }
      const std::string message = BuildError(ErrorCode::kInvalidInput);
      EXPECT_CONTAINS(message, "desc.json: model.layers.0.self_attn.q_proj: ");
      EXPECT_CONTAINS(message, std::string("model.layers.0.self_attn.q_proj") + float_part + " is labelled " + other_label +
                                   (other_label == "FLOAT" ? " but" : ", neither FLOAT nor W4A16 or W8A16, but"));
    }
  }
  // A linear may well have its whole self labelled FLOAT, a scale included: no contradiction. Its
  // weight being int8 here, it is noted as quantized another way, not as a float linear.
  table_ = TensorTable();
  description_.entries.clear();
  Linear("model.layers.0.mlp.up_proj", 24, 96, 2);
  Linear("model.layers.0.mlp.down_proj", 96, 24, 1, "FLOAT");
  const Plan plan = BuildOk();
  EXPECT_EQ(plan.float_linears, std::vector<std::string>{});
  ASSERT_EQ(plan.other_quantized_weights.size(), 1u);
  EXPECT_EQ(plan.other_quantized_weights[0].module, "model.layers.0.mlp.down_proj");
  EXPECT_CONTAINS(WarningWith(plan.warnings, "integer or FP8 values without a W4A16 or W8A16 label"),
                  "model.layers.0.mlp.down_proj.weight (FLOAT, I8)");
}

// FP8 weights are quantized as much as int8 ones, and a head or an embedding held in integers
// loads no better than a linear: all are noted apart, none as a float linear. A float embedding is
// neither.
TEST_F(PlanTest, Fp8WeightsAndAQuantizedHeadOrEmbeddingAreNotFloatLinears) {
  Linear("model.layers.0.mlp.up_proj", 24, 96, 2);
  Described("model.layers.0.mlp.down_proj.weight", DType::kF8E4M3, {24, 96}, "FLOAT");
  Described("lm_head.weight", DType::kI8, {32, 24}, "W8A8");
  Described("model.embed_tokens.weight", DType::kU8, {32, 24}, "FLOAT");
  Described("model.embed_positions.weight", DType::kF16, {32, 24}, "FLOAT");
  const Plan plan = BuildOk();
  EXPECT_EQ(plan.float_linears, std::vector<std::string>{});
  ASSERT_EQ(plan.other_quantized_weights.size(), 3u);
  EXPECT_EQ(plan.other_quantized_weights[0].module, "model.layers.0.mlp.down_proj");
  EXPECT_EQ(plan.other_quantized_weights[1].module, "lm_head");
  EXPECT_EQ(plan.other_quantized_weights[2].module, "model.embed_tokens");
  EXPECT_EQ(plan.other_quantized_weights[2].dtype, DType::kU8);
  const std::string warning = WarningWith(plan.warnings, "integer or FP8 values");
  EXPECT_CONTAINS(warning, "3 weight(s)");
  EXPECT_CONTAINS(warning, "model.layers.0.mlp.down_proj.weight (FLOAT, F8_E4M3)");
  EXPECT_CONTAINS(warning, "lm_head.weight (W8A8, I8)");
  EXPECT_CONTAINS(warning, "model.embed_tokens.weight (FLOAT, U8)");
}

TEST_F(PlanTest, ATensorWhoseLabelIsNotAStringIsInvalidInput) {
  Linear("model.layers.0.mlp.up_proj", 24, 96, 2);
  Tensor("model.norm.weight", DType::kBF16, {96});
  description_.non_string_keys = {"kv_cache_quant", "model.norm.weight"};  // metadata, then a tensor
  EXPECT_EQ(BuildError(ErrorCode::kInvalidInput), "desc.json: model.norm.weight: its label is not a string such as "
                                                  "\"FLOAT\" or \"W4A16\"");
  description_.non_string_keys = {"kv_cache_quant"};  // metadata alone is no problem
  BuildOk();
}

TEST_F(PlanTest, WarnsOfLayersVllmFusesThatAreLeftPartlyInFloat) {
  const std::string a = "model.layers.0.", b = "model.layers.1.";
  Linear(a + "self_attn.q_proj", 24, 96, 2);
  Described(a + "self_attn.k_proj.weight", DType::kBF16, {24, 96}, "FLOAT");
  Linear(a + "self_attn.v_proj", 24, 96, 2);
  Described(a + "mlp.gate_proj.weight", DType::kBF16, {24, 96}, "FLOAT");  // both parts float: loads
  Described(a + "mlp.up_proj.weight", DType::kBF16, {24, 96}, "FLOAT");
  Described(a + "mlp.down_proj.weight", DType::kBF16, {96, 24}, "FLOAT");  // fused with nothing
  Linear(b + "mlp.gate_proj", 24, 96, 2);
  Described(b + "mlp.up_proj.weight", DType::kBF16, {24, 96}, "FLOAT");
  const Plan plan = BuildOk();
  const std::string line = WarningWith(plan.warnings, "vLLM fuses");
  EXPECT_CONTAINS(line, "2 layer(s)");
  EXPECT_CONTAINS(line, "model.layers.0.self_attn.qkv_proj, model.layers.1.mlp.gate_up_proj");
  // Only the layer fused from float parts alone is exempted by its fused name, for older vLLM.
  EXPECT_EQ(plan.float_fused_layers, (std::vector<std::string>{"model.layers.0.mlp.gate_up_proj"}));
}

// DeepSeek V2/V3 (MLA with a q LoRA): vLLM fuses q_a_proj and kv_a_proj_with_mqa into fused_qkv_a_proj.
TEST_F(PlanTest, WarnsOfDeepSeekLatentProjectionsOfTwoPrecisions) {
  const std::string attn = "model.layers.0.self_attn.";
  Linear(attn + "q_a_proj", 24, 96, 2);
  Described(attn + "kv_a_proj_with_mqa.weight", DType::kBF16, {24, 96}, "FLOAT");
  Linear(attn + "q_b_proj", 24, 96, 2);  // fused with nothing
  const Plan plan = BuildOk();
  const std::string line = WarningWith(plan.warnings, "vLLM fuses");
  EXPECT_CONTAINS(line, "1 layer(s)");
  EXPECT_CONTAINS(line, "model.layers.0.self_attn.fused_qkv_a_proj");
  EXPECT_EQ(plan.float_fused_layers, std::vector<std::string>{});
}

TEST_F(PlanTest, NoFusedLayerWarningWhenEveryPartSharesAPrecision) {
  Linear("model.layers.0.self_attn.q_proj", 24, 96, 2);
  Linear("model.layers.0.self_attn.k_proj", 24, 96, 2);
  Described("model.layers.0.self_attn.o_proj.weight", DType::kBF16, {96, 24}, "FLOAT");
  Described("model.layers.1.self_attn.k_proj.weight", DType::kBF16, {24, 96}, "FLOAT");  // another layer's
  const Plan plan = BuildOk();
  EXPECT_EQ(WarningWith(plan.warnings, "vLLM fuses"), "");
  // A part alone in float (the other layer's k_proj) still makes a fused layer of float parts alone.
  EXPECT_EQ(plan.float_fused_layers, (std::vector<std::string>{"model.layers.1.self_attn.qkv_proj"}));
}

TEST_F(PlanTest, RecordsTheGroupSize) {
  Linear("a", 24, 96, 2);
  Linear("b", 40, 48, 1);  // one group of 48: per-group with the same group size, not per-channel
  const Plan plan = BuildOk();
  EXPECT_EQ(plan.group_size, 48u);
  EXPECT_FALSE(plan.per_channel);
  EXPECT_FALSE(plan.group_size_conflict);
  EXPECT_FALSE(plan.all_offsets_missing);
}

TEST_F(PlanTest, RecordsAGroupSizeConflict) {
  Linear("first", 24, 96, 2);   // group 48
  Linear("second", 24, 96, 3);  // group 32
  const Plan plan = BuildOk();  // a single file can hold both; a quantization_config cannot
  ASSERT_TRUE(plan.group_size_conflict);
  EXPECT_CONTAINS(*plan.group_size_conflict, "first");
  EXPECT_CONTAINS(*plan.group_size_conflict, "second");
  EXPECT_CONTAINS(*plan.group_size_conflict, "48");
  EXPECT_CONTAINS(*plan.group_size_conflict, "32");
}

TEST_F(PlanTest, RecordsAConflictBetweenPerGroupAndPerChannel) {
  Linear("grouped", 24, 96, 2);   // group 48
  Linear("channel", 24, 64, 1);   // per-channel: in 64 is not 48
  const Plan plan = BuildOk(Gptq());
  ASSERT_TRUE(plan.group_size_conflict);
  EXPECT_CONTAINS(*plan.group_size_conflict, "channel");
  EXPECT_CONTAINS(*plan.group_size_conflict, "per-channel");
}

TEST_F(PlanTest, WarnsWhenTheDescribedGroupSizeIsNotTheTensors) {
  Linear("a", 24, 96, 2);  // group 48
  description_.group_size = 48;
  EXPECT_EQ(WarningWith(BuildOk().warnings, "group_size"), "");
  description_.group_size = 32;
  const Plan plan = BuildOk();
  EXPECT_EQ(plan.group_size, 48u);  // the tensors decide
  EXPECT_CONTAINS(WarningWith(plan.warnings, "group_size"), "desc.json says 32, the tensors have 48");
}

TEST_F(PlanTest, PerChannelLinearsOfDifferentWidthsAreNoConflict) {
  Linear("a", 24, 96, 1);
  Linear("b", 96, 24 * 8, 1);
  const Plan plan = BuildOk(Gptq());
  EXPECT_TRUE(plan.per_channel);
  EXPECT_FALSE(plan.group_size_conflict);
}

// ---- SPEC 4, departure by departure ----

TEST_F(PlanTest, W8A16ToAwqIsAnErrorNamingTheTensor) {
  description_.model_quant_type = "W8A16";
  Linear("model.layers.0.mlp.up_proj", 24, 96, 2, "W8A16");
  const std::string message = BuildError(ErrorCode::kUnsupported);
  EXPECT_CONTAINS(message, "model.layers.0.mlp.up_proj.weight");
  EXPECT_CONTAINS(message, "4-bit only");
  EXPECT_CONTAINS(message, "gptq");
  PlanOptions explicit_8;
  explicit_8.w_bit = 8;
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported, explicit_8), "AWQ");
}

TEST_F(PlanTest, AwqPerChannelIsAnErrorSuggestingGptq) {
  Linear("model.layers.0.self_attn.o_proj", 24, 96, 1);
  Linear("model.layers.0.mlp.down_proj", 24, 192, 1);
  const std::string message = BuildError(ErrorCode::kUnsupported);
  EXPECT_CONTAINS(message, "model.layers.0.self_attn.o_proj.weight");
  EXPECT_CONTAINS(message, "per-channel");
  EXPECT_CONTAINS(message, "--target_tool gptq");
}

TEST_F(PlanTest, AwqAcceptsOneGroupWhenItIsTheModelsGroupSize) {
  // msModelSlim with group 48 on a 48-wide linear writes a [out, 1] scale: one group, not per-channel.
  Linear("narrow", 24, 48, 1);
  Linear("wide", 24, 96, 2);
  const Plan plan = BuildOk();
  EXPECT_EQ(plan.group_size, 48u);
  EXPECT_FALSE(plan.per_channel);
  EXPECT_FALSE(plan.group_size_conflict);
  EXPECT_EQ(Get(plan, "narrow.scales").shape, (Shape{1, 24}));
}

TEST_F(PlanTest, AwqRefusesAOneGroupLinearThatIsNotTheGroupSize) {
  Linear("wide", 24, 96, 2);     // group 48
  Linear("narrow", 24, 64, 1);   // per-channel
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported), "narrow.weight");
}

TEST_F(PlanTest, AwqJudgesAOneGroupLinearByEveryGroupSizeInWhateverOrder) {
  // Group sizes 64 and 32 (a conflict, which --out-dir refuses); a 64-wide one-group linear is
  // per-group whichever grouped linear the description lists first.
  for (const bool sixty_four_first : {true, false}) {
    SCOPED_TRACE(sixty_four_first);
    table_ = {};
    description_ = {};
    if (sixty_four_first) Linear("g64", 24, 128, 2);
    Linear("g32", 24, 128, 4);
    if (!sixty_four_first) Linear("g64", 24, 128, 2);
    Linear("one", 24, 64, 1);
    const Plan plan = BuildOk();
    EXPECT_TRUE(plan.group_size_conflict);
    EXPECT_EQ(Get(plan, "one.qweight").shape, (Shape{64, 3}));
  }
}

TEST_F(PlanTest, WBitDisagreeingWithTheDescriptionIsAnError) {
  description_.model_quant_type = "W8A16";
  Linear("l", 24, 96, 2, "W8A16");
  const std::string message = BuildError(ErrorCode::kUnsupported, Gptq(4));
  EXPECT_CONTAINS(message, "--w_bit 4");
  EXPECT_CONTAINS(message, "W8A16");
  EXPECT_EQ(BuildOk(Gptq(8)).bits, 8);
}

TEST_F(PlanTest, WBitTakenFromModelQuantType) {
  description_.model_quant_type = "W8A16";
  Linear("l", 24, 96, 2, "W8A16");
  const Plan plan = BuildOk(Gptq());
  EXPECT_EQ(plan.bits, 8);
  EXPECT_EQ(Get(plan, "l.qweight").shape, (Shape{24, 24}));
}

TEST_F(PlanTest, WBitTakenFromLabelsWithoutModelQuantType) {
  Linear("l", 24, 96, 2, "W8A16");
  EXPECT_EQ(BuildOk(Gptq()).bits, 8);
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported, Gptq(4)), "W8A16");
}

TEST_F(PlanTest, ModelQuantTypeContradictingTheLabelsIsInvalidInput) {
  for (auto [type, label] : {std::pair{"W4A16", "W8A16"}, std::pair{"W8A16", "W4A16"}}) {
    SCOPED_TRACE(type);
    table_ = {};
    description_.entries.clear();
    description_.model_quant_type = type;
    Linear("l", 24, 96, 2, label);
    for (PlanOptions options : {PlanOptions{}, Gptq()}) {
      const std::string message = BuildError(ErrorCode::kInvalidInput, options);
      EXPECT_TRUE(message.starts_with("desc.json: ")) << message;
      EXPECT_CONTAINS(message, std::string("model_quant_type ") + type);
      EXPECT_CONTAINS(message, label);
    }
  }
}

TEST_F(PlanTest, ModelQuantTypeNamingNoBitWidthLeavesItToTheLabels) {
  description_.model_quant_type = "W8A8_DYNAMIC";
  Linear("l", 24, 96, 2, "W8A16");
  EXPECT_EQ(BuildOk(Gptq()).bits, 8);
}

TEST_F(PlanTest, NoTensorLabelledQuantizedIsNothingToConvert) {
  Described("x", DType::kF32, {4}, "FLOAT");
  Described("l.weight", DType::kI8, {24, 96}, "W8A8");
  Entry("ghost.weight", "W4A16");  // labelled, but not a tensor of the checkpoint
  for (PlanOptions options : {PlanOptions{}, Gptq()}) {
    const std::string message = BuildError(ErrorCode::kUnsupported, options);
    EXPECT_CONTAINS(message, "desc.json");
    EXPECT_CONTAINS(message, "nothing to convert");
  }
}

TEST_F(PlanTest, NoTensorNamedByTheDescriptionIsInvalidInput) {
  Entry("model_quant_type", "W4A16");
  Entry("l.weight", "W4A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kInvalidInput), "desc.json");  // an empty checkpoint
  Tensor("other.weight", DType::kI8, {24, 96});
  EXPECT_CONTAINS(BuildError(ErrorCode::kInvalidInput, Gptq()), "desc.json");
}

TEST_F(PlanTest, MixedBitWidthLabelsAreAnError) {
  Linear("a", 24, 96, 2, "W4A16");
  Linear("b", 24, 96, 2, "W8A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported, Gptq()), "W8A16");
}

TEST_F(PlanTest, LegacyOutTimesGScaleIsReshapedWithAWarning) {
  Described("l.weight", DType::kI8, {24, 96}, "W4A16");
  Described("l.weight_scale", DType::kF32, {24 * 3, 1}, "W4A16");
  Described("l.weight_offset", DType::kF32, {24 * 3, 1}, "W4A16");
  const Plan plan = BuildOk();
  EXPECT_EQ(Get(plan, "l.qweight").geometry.groups, 3u);
  EXPECT_EQ(Get(plan, "l.scales").shape, (Shape{3, 24}));
  EXPECT_EQ(Get(plan, "l.qzeros").shape, (Shape{3, 3}));
  EXPECT_EQ(plan.group_size, 32u);
  const std::string line = WarningWith(plan.warnings, "legacy");
  EXPECT_CONTAINS(line, "l.weight_scale");
}

TEST_F(PlanTest, LegacyOneDimensionalPerChannelScaleIsReshapedWithAWarning) {
  Described("l.weight", DType::kI8, {24, 96}, "W8A16");
  Described("l.weight_scale", DType::kBF16, {24}, "W8A16");
  Described("l.weight_offset", DType::kBF16, {24}, "W8A16");
  const Plan plan = BuildOk(Gptq());
  EXPECT_EQ(Get(plan, "l.scales").shape, (Shape{1, 24}));
  EXPECT_EQ(Get(plan, "l.qzeros").shape, (Shape{1, 6}));
  EXPECT_TRUE(plan.per_channel);
  EXPECT_CONTAINS(WarningWith(plan.warnings, "legacy"), "l.weight_scale");
}

TEST_F(PlanTest, ModernShapesGiveNoLegacyWarning) {
  Linear("l", 24, 96, 1);
  EXPECT_EQ(WarningWith(BuildOk(Gptq()).warnings, "legacy"), "");
}

TEST_F(PlanTest, MissingOffsetGivesConstantZerosWithAWarning) {
  for (auto [target, bits, words] : {std::tuple{TargetTool::kAwq, 4, 3u}, std::tuple{TargetTool::kGptq, 4, 3u},
                                     std::tuple{TargetTool::kGptq, 8, 6u}}) {
    SCOPED_TRACE(bits);
    table_ = {};
    description_ = {};
    Linear("sym", 24, 96, 2, bits == 4 ? "W4A16" : "W8A16", /*offset=*/false);
    PlanOptions options;
    options.target = target;
    const Plan plan = BuildOk(options);
    const OutputTensor* qzeros = Find(plan, "sym.qzeros");
    ASSERT_NE(qzeros, nullptr);
    EXPECT_EQ(qzeros->kind, TransformKind::kQZerosConstant);
    EXPECT_EQ(qzeros->source, nullptr);
    EXPECT_EQ(qzeros->dtype, DType::kI32);
    EXPECT_EQ(qzeros->shape, (Shape{2, words}));
    EXPECT_TRUE(plan.all_offsets_missing);
    EXPECT_CONTAINS(WarningWith(plan.warnings, "no weight_offset"), "sym");
  }
}

TEST_F(PlanTest, ScaleAndOffsetMissingFromTheDescriptionAreStillConverted) {
  Described("l.weight", DType::kI8, {24, 96}, "W4A16");
  Tensor("l.weight_scale", DType::kF32, {24, 2});
  Tensor("l.weight_offset", DType::kF32, {24, 2});
  const Plan plan = BuildOk();
  ASSERT_NE(Find(plan, "l.scales"), nullptr);
  ASSERT_NE(Find(plan, "l.qzeros"), nullptr);
  EXPECT_EQ(Get(plan, "l.qzeros").kind, TransformKind::kQZeros);
  EXPECT_NE(WarningWith(plan.warnings, "missing from the description"), "");
  // Converted because the linear needs them, so not also reported as left out.
  EXPECT_EQ(WarningWith(plan.warnings, "not in the description"), "");
}

TEST_F(PlanTest, AWeightMissingFromTheDescriptionIsConvertedWithItsScaleAndOffset) {
  for (auto target : {TargetTool::kAwq, TargetTool::kGptq}) {
    table_ = {};
    description_.entries.clear();
    Tensor("l.weight", DType::kI8, {24, 96});
    Described("l.weight_scale", DType::kF32, {24, 2}, "W4A16");
    Described("l.weight_offset", DType::kF32, {24, 2}, "W4A16");
    PlanOptions options;
    options.target = target;
    const Plan plan = BuildOk(options);
    const OutputTensor& qweight = Get(plan, "l.qweight");
    EXPECT_EQ(qweight.kind, TransformKind::kQWeight);
    EXPECT_EQ(qweight.source, table_.Find("l.weight"));
    EXPECT_NE(Find(plan, "l.scales"), nullptr);
    EXPECT_NE(Find(plan, "l.qzeros"), nullptr);
    EXPECT_CONTAINS(WarningWith(plan.warnings, "missing from the description"), "l.weight");
    EXPECT_EQ(WarningWith(plan.warnings, "not in the description"), "");
  }
}

TEST_F(PlanTest, AWeightMissingFromTheDescriptionStaysUnwrittenWhenItHasAModuleWeight) {
  Tensor("n.weight", DType::kI8, {24, 96});
  Described("n.module.weight", DType::kBF16, {96}, "W4A16");
  Described("n.weight_scale", DType::kF32, {24, 2}, "W4A16");
  const Plan plan = BuildOk();
  EXPECT_EQ(Find(plan, "n.qweight"), nullptr);
  EXPECT_CONTAINS(WarningWith(plan.warnings, "not in the description"), "n.weight");
}

TEST_F(PlanTest, AwqRefusesOutNotAMultipleOf8) {
  Linear("l", 20, 96, 2);
  const std::string message = BuildError(ErrorCode::kUnsupported);
  EXPECT_CONTAINS(message, "l.weight");
  EXPECT_CONTAINS(message, "out = 20");
}

TEST_F(PlanTest, GptqRefusesInNotAMultipleOfValuesPerWord) {
  Linear("l", 24, 100, 2);  // 4-bit: 8 values per word
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported, Gptq()), "l.weight");
  table_ = {};
  description_ = {};
  Linear("l8", 24, 98, 1, "W8A16");  // 8-bit: 4 values per word
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported, Gptq()), "l8.weight");
}

TEST_F(PlanTest, GptqRefusesOutNotAMultipleOfValuesPerWord) {
  Linear("l", 20, 96, 2);  // qzeros pack 8 output channels per word
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported, Gptq()), "l.weight");
  table_ = {};
  description_ = {};
  Linear("l8", 22, 96, 2, "W8A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported, Gptq()), "l8.weight");
}

TEST_F(PlanTest, RefusesGroupsThatDoNotDivideIn) {
  Linear("l", 24, 96, 5);
  const std::string message = BuildError(ErrorCode::kUnsupported, Gptq());
  EXPECT_CONTAINS(message, "l.weight_scale");
  EXPECT_CONTAINS(message, "5 groups");
}

TEST_F(PlanTest, RefusesAScaleThatDoesNotFitTheWeight) {
  Described("l.weight", DType::kI8, {24, 96}, "W4A16");
  Described("l.weight_scale", DType::kF32, {23, 2}, "W4A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported), "l.weight_scale");
  table_ = {};
  description_ = {};
  Described("l.weight", DType::kI8, {24, 96}, "W4A16");
  Described("l.weight_scale", DType::kF32, {25, 1}, "W4A16");  // neither [out, 1] nor [out*G, 1]
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported, Gptq()), "l.weight_scale");
  table_ = {};
  description_ = {};
  Described("l.weight", DType::kI8, {24, 96}, "W4A16");
  Described("l.weight_scale", DType::kF32, {24, 2, 1}, "W4A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported), "l.weight_scale");
}

TEST_F(PlanTest, RefusesAnOffsetThatDoesNotFitItsScale) {
  Described("l.weight", DType::kI8, {24, 96}, "W4A16");
  Described("l.weight_scale", DType::kF32, {24, 2}, "W4A16");
  Described("l.weight_offset", DType::kF32, {24, 3}, "W4A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported), "l.weight_offset");
}

TEST_F(PlanTest, RefusesAnOffsetOfTheRightSizeInAnotherShape) {
  // [G, out] (already transposed) or flat: reading either as [out, G] would be a guess.
  for (const Shape& shape : {Shape{2, 24}, Shape{48}, Shape{48, 1}}) {
    SCOPED_TRACE(ShapeString(shape));
    table_ = {};
    description_ = {};
    Described("l.weight", DType::kI8, {24, 96}, "W4A16");
    Described("l.weight_scale", DType::kF32, {24, 2}, "W4A16");
    Described("l.weight_offset", DType::kF32, shape, "W4A16");
    EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported), "l.weight_offset");
  }
}

TEST_F(PlanTest, RefusesAFlatScaleOfSeveralGroups) {
  // Only [out] is a 1-D scale msModelSlim writes (per channel); [out*G] would be reshaped by guess.
  Described("l.weight", DType::kI8, {24, 96}, "W4A16");
  Described("l.weight_scale", DType::kF32, {48}, "W4A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported, Gptq()), "l.weight_scale");
}

TEST_F(PlanTest, RefusesAListedOffsetTheCheckpointLacksBesideOthersItHolds) {
  // One shard given alone: converted as symmetric, an asymmetric linear would dequantize wrongly.
  Linear("a", 24, 96, 2);
  Described("l.weight", DType::kI8, {24, 96}, "W4A16");
  Described("l.weight_scale", DType::kF32, {24, 2}, "W4A16");
  Entry("l.weight_offset", "W4A16");
  const std::string message = BuildError(ErrorCode::kInvalidInput);
  EXPECT_CONTAINS(message, "desc.json: lists l.weight_offset, which the checkpoint lacks");
  EXPECT_CONTAINS(message, "one shard given instead of the whole checkpoint?");
}

TEST_F(PlanTest, ListedOffsetsAllMissingAreASymmetricCheckpoint) {
  // No offset at all is SPEC 4's symmetric case, whatever the description lists.
  for (const char* linear : {"a", "l"}) {
    Described(std::string(linear) + ".weight", DType::kI8, {24, 96}, "W4A16");
    Described(std::string(linear) + ".weight_scale", DType::kF32, {24, 2}, "W4A16");
    Entry(std::string(linear) + ".weight_offset", "W4A16");
  }
  const Plan plan = BuildOk();
  EXPECT_EQ(Get(plan, "l.qzeros").kind, TransformKind::kQZerosConstant);
  EXPECT_CONTAINS(WarningWith(plan.warnings, "no weight_offset"), "a, l");
  EXPECT_EQ(WarningWith(plan.warnings, "not in the checkpoint"), "");  // no "one shard given?" hint
}

TEST_F(PlanTest, RefusesAQuantizedWeightThatIsNotI8) {
  Described("l.weight", DType::kI32, {24, 96}, "W4A16");
  Described("l.weight_scale", DType::kF32, {24, 2}, "W4A16");
  const std::string message = BuildError(ErrorCode::kInvalidInput);
  EXPECT_CONTAINS(message, "l.weight");
  EXPECT_CONTAINS(message, "I8");
  EXPECT_CONTAINS(message, "I32");
}

TEST_F(PlanTest, RefusesAQuantizedWeightThatIsNot2D) {
  Described("l.weight", DType::kI8, {24, 96, 1}, "W4A16");
  Described("l.weight_scale", DType::kF32, {24, 2}, "W4A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kInvalidInput), "l.weight");
}

TEST_F(PlanTest, RefusesAMissingOrNonFloatScale) {
  Described("l.weight", DType::kI8, {24, 96}, "W4A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kInvalidInput), "l.weight_scale");
  Described("l.weight_scale", DType::kI32, {24, 2}, "W4A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kInvalidInput), "l.weight_scale");
}

TEST_F(PlanTest, RefusesAScaleWithoutItsWeight) {
  Described("l.weight_scale", DType::kF32, {24, 2}, "W4A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kInvalidInput), "l.weight");
}

TEST_F(PlanTest, GptqV2FormatIsRecorded) {
  Linear("l", 24, 96, 2);
  PlanOptions options = Gptq();
  options.gptq_format = GptqFormat::kV2;
  EXPECT_EQ(BuildOk(options).gptq_format, GptqFormat::kV2);
}

// ---- Packed W4A16 (msModelSlim ascendV1) detection ----

TEST_F(PlanTest, PackedPerGroupDetectedFromVersionAndHalfShape) {
  description_.has_version = true;
  description_.model_quant_type = "W4A16";
  Described("l.weight", DType::kI8, {12, 96}, "W4A16");  // [out/2, in]
  Described("l.weight_scale", DType::kF32, {24, 2}, "W4A16");
  const Plan plan = BuildOk();
  const OutputTensor* qweight = Find(plan, "l.qweight");
  ASSERT_NE(qweight, nullptr);
  EXPECT_EQ(qweight->geometry.packing, LinearGeometry::Packing::kPairsAlongOut);
  EXPECT_EQ(qweight->geometry.out, 24u);
  EXPECT_EQ(qweight->geometry.in, 96u);
  EXPECT_EQ(qweight->shape, (Shape{96, 3}));
  EXPECT_CONTAINS(WarningWith(plan.warnings, "two 4-bit values per byte"), "l.weight");
}

TEST_F(PlanTest, PackedPerChannelDetectedFromTheVersionFirst) {
  description_.has_version = true;
  description_.version_first = true;  // as the ascendV1 saver writes its description
  Described("l.weight", DType::kI8, {24, 48}, "W4A16");  // [out, in/2]
  Described("l.weight_scale", DType::kF32, {24, 1}, "W4A16");
  const Plan plan = BuildOk(Gptq());
  const OutputTensor* qweight = Find(plan, "l.qweight");
  ASSERT_NE(qweight, nullptr);
  EXPECT_EQ(qweight->geometry.packing, LinearGeometry::Packing::kPairsAlongIn);
  EXPECT_EQ(qweight->geometry.in, 96u);
  EXPECT_EQ(qweight->shape, (Shape{12, 24}));
}

TEST_F(PlanTest, PerChannelUnderAVersionAfterTheTensorsIsNotPacked) {
  // The newer description layout of unpacked saves (golden w4a16-g64-gptq-v1desc-sym) puts
  // version after the tensors; per channel, nothing else tells the two apart.
  description_.has_version = true;
  Described("l.weight", DType::kI8, {24, 48}, "W4A16");
  Described("l.weight_scale", DType::kF32, {24, 1}, "W4A16");
  const Plan plan = BuildOk(Gptq());
  EXPECT_EQ(Get(plan, "l.qweight").geometry.packing, LinearGeometry::Packing::kNone);
  EXPECT_EQ(Get(plan, "l.qweight").geometry.in, 48u);
}

TEST_F(PlanTest, VersionWithFullShapePerGroupIsNotPacked) {
  description_.has_version = true;  // the newer description layout of an unpacked save
  Linear("l", 24, 96, 2);
  const Plan plan = BuildOk();
  EXPECT_EQ(Get(plan, "l.qweight").geometry.packing, LinearGeometry::Packing::kNone);
  EXPECT_EQ(WarningWith(plan.warnings, "two 4-bit values per byte"), "");
}

TEST_F(PlanTest, HalfShapeWithoutVersionIsNotPacked) {
  Described("l.weight", DType::kI8, {12, 96}, "W4A16");
  Described("l.weight_scale", DType::kF32, {24, 2}, "W4A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported), "l.weight_scale");
}

TEST_F(PlanTest, PackedYesOverridesTheMissingVersion) {
  Described("l.weight", DType::kI8, {12, 96}, "W4A16");
  Described("l.weight_scale", DType::kF32, {24, 2}, "W4A16");
  PlanOptions options;
  options.packed = PackedMode::kYes;
  EXPECT_EQ(Get(BuildOk(options), "l.qweight").geometry.packing, LinearGeometry::Packing::kPairsAlongOut);
}

TEST_F(PlanTest, PackedYesOnAnUnpackedShapeIsAnError) {
  Linear("l", 24, 96, 2);
  PlanOptions options;
  options.packed = PackedMode::kYes;
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported, options), "l.weight");
}

TEST_F(PlanTest, PackedNoOverridesTheVersion) {
  description_.has_version = true;
  Described("l.weight", DType::kI8, {24, 48}, "W4A16");
  Described("l.weight_scale", DType::kF32, {24, 1}, "W4A16");
  PlanOptions options = Gptq();
  options.packed = PackedMode::kNo;
  const Plan plan = BuildOk(options);
  const OutputTensor* qweight = Find(plan, "l.qweight");
  ASSERT_NE(qweight, nullptr);
  EXPECT_EQ(qweight->geometry.packing, LinearGeometry::Packing::kNone);
  EXPECT_EQ(qweight->geometry.in, 48u);
  // A packed per-group weight read as unpacked does not fit its scale.
  table_ = {};
  description_ = {};
  description_.has_version = true;
  Described("g.weight", DType::kI8, {12, 96}, "W4A16");
  Described("g.weight_scale", DType::kF32, {24, 2}, "W4A16");
  options.packed = PackedMode::kNo;
  EXPECT_CONTAINS(BuildError(ErrorCode::kUnsupported, options), "g.weight_scale");
}

TEST_F(PlanTest, W8A16IsNeverPacked) {
  description_.has_version = true;
  description_.model_quant_type = "W8A16";
  Linear("l", 24, 96, 1, "W8A16");
  EXPECT_EQ(Get(BuildOk(Gptq()), "l.qweight").geometry.packing, LinearGeometry::Packing::kNone);
  PlanOptions options = Gptq();
  options.packed = PackedMode::kYes;
  table_ = {};
  description_.entries.clear();
  Described("l.weight", DType::kI8, {24, 48}, "W8A16");
  Described("l.weight_scale", DType::kF32, {24, 1}, "W8A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kUsage, options), "W8A16 weights never are");
  // Per group too: said as such, not as a weight that does not fit its scale.
  table_ = {};
  description_.entries.clear();
  Linear("g", 24, 96, 2, "W8A16");
  EXPECT_CONTAINS(BuildError(ErrorCode::kUsage, options), "W8A16 weights never are");
}

// A one-column scale's weight has the same shape packed ([out, in/2]) as unpacked [out, in]
// would have at half the width: the checkpoint's per-group weights say how it was saved.
TEST_F(PlanTest, OneColumnLinearFollowsItsPerGroupSiblings) {
  for (const bool siblings_packed : {false, true}) {
    SCOPED_TRACE(siblings_packed);
    table_ = {};
    description_ = {};
    description_.has_version = true;
    description_.group_size = 64;
    if (siblings_packed) {
      Described("q.weight", DType::kI8, {12, 128}, "W4A16");  // [out/2, in]
      Described("q.weight_scale", DType::kF32, {24, 2}, "W4A16");
    } else {
      Linear("q", 24, 128, 2);
    }
    // A linear as wide as one group: [out, 1] scale.
    Described("one.weight", DType::kI8, {24, siblings_packed ? 32u : 64u}, "W4A16");
    Described("one.weight_scale", DType::kF32, {24, 1}, "W4A16");
    const Plan plan = BuildOk(Gptq());
    const OutputTensor& one = Get(plan, "one.qweight");
    EXPECT_EQ(one.geometry.packing,
              siblings_packed ? LinearGeometry::Packing::kPairsAlongIn : LinearGeometry::Packing::kNone);
    EXPECT_EQ(one.geometry.in, 64u);
    EXPECT_EQ(one.shape, (Shape{8, 24}));
    EXPECT_EQ(plan.group_size, 64u);
  }
}

TEST_F(PlanTest, OneColumnLinearBesideSiblingsSavedBothWaysIsInvalid) {
  description_.has_version = true;
  description_.version_first = true;
  // The one-column linear first: the evidence is the whole checkpoint's, not what came before.
  Described("one.weight", DType::kI8, {24, 64}, "W4A16");
  Described("one.weight_scale", DType::kF32, {24, 1}, "W4A16");
  Described("p.weight", DType::kI8, {12, 128}, "W4A16");  // packed
  Described("p.weight_scale", DType::kF32, {24, 2}, "W4A16");
  Linear("u", 24, 128, 2);  // unpacked
  const std::string message = BuildError(ErrorCode::kInvalidInput, Gptq());
  EXPECT_CONTAINS(message, "one.weight: cannot tell");
  EXPECT_CONTAINS(message, "mixes packed weights (p.weight) and unpacked ones (u.weight)");
}

TEST_F(PlanTest, AnEmptyWeightIsNoEvidenceOfPacking) {
  // The one-column linear first, so its packing is decided before the empty weight is refused:
  // counted as both half and full height, the empty weight would make it "mixed".
  description_.has_version = true;
  Described("one.weight", DType::kI8, {24, 64}, "W4A16");
  Described("one.weight_scale", DType::kF32, {24, 1}, "W4A16");
  Described("e.weight", DType::kI8, {0, 128}, "W4A16");
  Described("e.weight_scale", DType::kF32, {0, 2}, "W4A16");
  Linear("u", 24, 128, 2);
  EXPECT_CONTAINS(BuildError(ErrorCode::kInvalidInput, Gptq()), "e.weight: a quantized weight must be a non-empty");
}

TEST_F(PlanTest, AnOffsetMayDropTheScalesTrailingOne) {
  // [out] beside [out, 1] holds the same per-channel values in the same order.
  Described("l.weight", DType::kI8, {24, 96}, "W4A16");
  Described("l.weight_scale", DType::kF32, {24, 1}, "W4A16");
  Described("l.weight_offset", DType::kF32, {24}, "W4A16");
  EXPECT_EQ(Get(BuildOk(Gptq()), "l.qzeros").shape, (Shape{1, 3}));
}

}  // namespace
}  // namespace ms2vllm
