// msModelSlim's ascendV1 packed W4A16 (SPEC.md section 1, "Packed W4A16"): two signed 4-bit
// values per byte. The saver's own vectors unpack correctly, and a packed checkpoint converts to
// exactly the bytes of its unpacked twin; --packed yes/no override the detection.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/convert.h"
#include "kernels/unpack_int4.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;
using testing::LoadedTensor;
using testing::MsCheckpoint;
using testing::MsLinear;
using testing::MsLinearOptions;
using testing::TempDir;
using Tensors = std::map<std::string, LoadedTensor>;

std::vector<int8_t> AsInt8(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }
std::vector<uint8_t> AsBytes(const std::vector<int>& values) {
  std::vector<uint8_t> bytes;
  for (int v : values) bytes.push_back(static_cast<uint8_t>(static_cast<int8_t>(v)));
  return bytes;
}

// The saver's packing, written from SPEC.md: the even-index value in the low nibble, the odd one
// in the high nibble, two's complement. Per-group pairs rows (along out), per-channel columns (in).
std::vector<uint8_t> PackPairsAlongRows(const std::vector<uint8_t>& values, size_t rows, size_t cols) {
  std::vector<uint8_t> packed(rows / 2 * cols);
  for (size_t r = 0; r < rows; r += 2) {
    for (size_t c = 0; c < cols; ++c) {
      packed[r / 2 * cols + c] = static_cast<uint8_t>((values[r * cols + c] & 0xF) | (values[(r + 1) * cols + c] << 4));
    }
  }
  return packed;
}

std::vector<uint8_t> PackPairsAlongCols(const std::vector<uint8_t>& values, size_t rows, size_t cols) {
  std::vector<uint8_t> packed(rows * cols / 2);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; c += 2) {
      packed[r * cols / 2 + c / 2] =
          static_cast<uint8_t>((values[r * cols + c] & 0xF) | (values[r * cols + c + 1] << 4));
    }
  }
  return packed;
}

// [[1, 2, 3, 4], [5, 6, 7, 8]] as the saver sees it: 8 does not fit 4 signed bits and wraps to -8.
const std::vector<int> kSaverInput = {1, 2, 3, 4, 5, 6, 7, 8};
const std::vector<int8_t> kSaverInputAs4Bit = {1, 2, 3, 4, 5, 6, 7, -8};

TEST(SaverVectors, PerGroupPairsAlongOut) {
  const std::vector<uint8_t> packed = AsBytes({81, 98, 115, -124});
  EXPECT_EQ(PackPairsAlongRows(AsBytes(kSaverInput), 2, 4), packed);  // the packing above is the saver's
  std::vector<uint8_t> unpacked(8, 0xAA);
  kernels::UnpackPairsAlongRows(packed.data(), 4, 2, 4, unpacked.data(), 4);
  EXPECT_EQ(AsInt8(unpacked), kSaverInputAs4Bit);
}

TEST(SaverVectors, PerChannelPairsAlongIn) {
  const std::vector<uint8_t> packed = AsBytes({33, 67, 101, -121});
  EXPECT_EQ(PackPairsAlongCols(AsBytes(kSaverInput), 2, 4), packed);
  std::vector<uint8_t> unpacked(8, 0xAA);
  kernels::UnpackPairsAlongCols(packed.data(), 2, 2, 4, unpacked.data(), 4);
  EXPECT_EQ(AsInt8(unpacked), kSaverInputAs4Bit);
}

TEST(SaverVectors, EveryByteUnpacksToTheNibblesItWasPackedFrom) {
  for (int lo = -8; lo <= 7; ++lo) {
    for (int hi = -8; hi <= 7; ++hi) {
      const uint8_t byte = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      EXPECT_EQ(kernels::LowNibble(byte), lo);
      EXPECT_EQ(kernels::HighNibble(byte), hi);
    }
  }
}

// One quantized linear "l" [24, 96] plus a float tensor; `packed` stores the weight the ascendV1
// way and describes the checkpoint with its "version" key first.
struct Twins {
  MsCheckpoint packed, unpacked;
};

Twins MakeTwins(uint64_t groups, bool with_offset, bool version = true) {
  MsLinearOptions o;
  o.out = 24;
  o.in = 96;
  o.groups = groups;
  o.with_offset = with_offset;
  o.seed = 7 + groups;
  const MsLinear linear = MakeMsLinear(o);
  MsLinear packed = linear;
  packed.weight.bytes = groups > 1 ? PackPairsAlongRows(linear.weight.bytes, 24, 96)
                                   : PackPairsAlongCols(linear.weight.bytes, 24, 96);
  packed.weight.shape = groups > 1 ? std::vector<uint64_t>{12, 96} : std::vector<uint64_t>{24, 48};
  const LoadedTensor norm = testing::MakeTensor(DType::kBF16, {96}, std::vector<double>(96, 1.0));

  Twins twins;
  if (version) twins.packed.Describe("version", "1.0.0");
  twins.packed.Describe("model_quant_type", "W4A16");
  if (groups > 1 && version) twins.packed.Describe("group_size", 96 / groups);
  twins.unpacked.Describe("model_quant_type", "W4A16");
  twins.packed.Add("model.layers.0.input_layernorm.weight", norm, "FLOAT");
  twins.packed.AddLinear("model.layers.0.mlp.up_proj", packed, "W4A16");
  twins.unpacked.Add("model.layers.0.input_layernorm.weight", norm, "FLOAT");
  twins.unpacked.AddLinear("model.layers.0.mlp.up_proj", linear, "W4A16");
  return twins;
}

struct Converted {
  Result<ConvertReport> report;
  Tensors tensors;
};

Converted ConvertTwin(const MsCheckpoint& checkpoint, const fs::path& dir, const std::string& name, TargetTool target,
              PackedMode packed = PackedMode::kAuto, uint64_t chunk_bytes = 4 << 20) {
  fs::create_directories(dir / name);
  ConvertRequest request;
  request.model = dir / name / "w.safetensors";
  request.json = dir / name / "d.json";
  checkpoint.WriteWeights(request.model);
  checkpoint.WriteDescription(*request.json);
  request.save_path = dir / (name + ".safetensors");
  request.plan.target = target;
  request.plan.packed = packed;
  request.execution.chunk_bytes = chunk_bytes;
  request.execution.band_bytes = chunk_bytes;
  Converted converted{Convert(request), {}};
  if (converted.report.ok()) converted.tensors = testing::LoadTensors(request.save_path);
  return converted;
}

std::string WarningWith(const ConvertReport& report, const std::string& text) {
  for (const auto& line : report.warnings.Lines()) {
    if (line.find(text) != std::string::npos) return line;
  }
  return "";
}

struct TwinCase {
  std::string name;
  TargetTool target;
  uint64_t groups;
  bool with_offset;
};

void PrintTo(const TwinCase& c, std::ostream* os) { *os << c.name; }

class PackedTwinTest : public ::testing::TestWithParam<TwinCase> {};

TEST_P(PackedTwinTest, ConvertsToTheBytesOfItsUnpackedTwin) {
  const TwinCase& c = GetParam();
  const Twins twins = MakeTwins(c.groups, c.with_offset);
  TempDir dir;
  const Converted unpacked = ConvertTwin(twins.unpacked, dir.path(), "unpacked", c.target);
  ASSERT_TRUE(unpacked.report.ok()) << unpacked.report.error().message;
  for (uint64_t chunk : {uint64_t{64}, uint64_t{4} << 20}) {
    SCOPED_TRACE(chunk);
    const Converted packed = ConvertTwin(twins.packed, dir.path(), "packed" + std::to_string(chunk), c.target,
                                 PackedMode::kAuto, chunk);
    ASSERT_TRUE(packed.report.ok()) << packed.report.error().message;
    EXPECT_EQ(packed.tensors, unpacked.tensors);
    EXPECT_CONTAINS(WarningWith(*packed.report, "two 4-bit values per byte"), "model.layers.0.mlp.up_proj.weight");
    EXPECT_EQ(WarningWith(*unpacked.report, "two 4-bit values per byte"), "");
  }
}

INSTANTIATE_TEST_SUITE_P(Packed, PackedTwinTest,
                         ::testing::Values(TwinCase{"awq_per_group", TargetTool::kAwq, 2, true},
                                           TwinCase{"awq_per_group_symmetric", TargetTool::kAwq, 3, false},
                                           TwinCase{"gptq_per_group", TargetTool::kGptq, 2, true},
                                           TwinCase{"gptq_per_channel", TargetTool::kGptq, 1, false},
                                           TwinCase{"gptq_per_channel_offsets", TargetTool::kGptq, 1, true}),
                         [](const auto& info) { return info.param.name; });

TEST(PackedMixed, AOneGroupLinearOfAPerGroupCheckpointPairsAlongIn) {
  // Group 48: the 48-wide linear has a [out, 1] scale, so the saver pairs its values along in,
  // while the 96-wide one pairs along out. AWQ takes both (one group size, 48).
  MsCheckpoint packed, unpacked;
  packed.Describe("version", "1.0.0");
  packed.Describe("model_quant_type", "W4A16");
  packed.Describe("group_size", 48);
  unpacked.Describe("model_quant_type", "W4A16");
  uint64_t seed = 40;
  for (auto [name, in] : {std::pair{"wide", uint64_t{96}}, std::pair{"narrow", uint64_t{48}}}) {
    MsLinearOptions o;
    o.out = 24;
    o.in = in;
    o.groups = in / 48;
    o.seed = seed++;
    const MsLinear linear = MakeMsLinear(o);
    MsLinear packed_linear = linear;
    packed_linear.weight.bytes = o.groups > 1 ? PackPairsAlongRows(linear.weight.bytes, 24, in)
                                              : PackPairsAlongCols(linear.weight.bytes, 24, in);
    packed_linear.weight.shape = o.groups > 1 ? std::vector<uint64_t>{12, in} : std::vector<uint64_t>{24, in / 2};
    packed.AddLinear(name, packed_linear, "W4A16");
    unpacked.AddLinear(name, linear, "W4A16");
  }
  TempDir dir;
  for (TargetTool target : {TargetTool::kAwq, TargetTool::kGptq}) {
    SCOPED_TRACE(target == TargetTool::kAwq ? "awq" : "gptq");
    const std::string suffix = target == TargetTool::kAwq ? "awq" : "gptq";
    const Converted a = ConvertTwin(unpacked, dir.path(), "unpacked_" + suffix, target);
    const Converted b = ConvertTwin(packed, dir.path(), "packed_" + suffix, target, PackedMode::kAuto, 64);
    ASSERT_TRUE(a.report.ok()) << a.report.error().message;
    ASSERT_TRUE(b.report.ok()) << b.report.error().message;
    EXPECT_EQ(a.tensors, b.tensors);
    EXPECT_EQ(b.report->plan.group_size, 48u);
    EXPECT_FALSE(b.report->plan.per_channel);
  }
}

TEST(PackedOverride, YesUnpacksWithoutTheVersionKey) {
  for (uint64_t groups : {uint64_t{2}, uint64_t{1}}) {
    SCOPED_TRACE(groups);
    const Twins twins = MakeTwins(groups, true, /*version=*/false);
    TempDir dir;
    const Converted unpacked = ConvertTwin(twins.unpacked, dir.path(), "unpacked", TargetTool::kGptq);
    const Converted packed = ConvertTwin(twins.packed, dir.path(), "packed", TargetTool::kGptq, PackedMode::kYes);
    ASSERT_TRUE(unpacked.report.ok()) << unpacked.report.error().message;
    ASSERT_TRUE(packed.report.ok()) << packed.report.error().message;
    EXPECT_EQ(packed.tensors, unpacked.tensors);
  }
}

TEST(PackedOverride, NoRefusesAPackedPerGroupWeightThatDoesNotFitItsScale) {
  const Twins twins = MakeTwins(2, true);
  TempDir dir;
  const Converted packed = ConvertTwin(twins.packed, dir.path(), "packed", TargetTool::kAwq, PackedMode::kNo);
  ASSERT_FALSE(packed.report.ok());
  EXPECT_EQ(packed.report.error().code, ErrorCode::kUnsupported);
  EXPECT_CONTAINS(packed.report.error().message, "model.layers.0.mlp.up_proj.weight_scale");
  EXPECT_FALSE(fs::exists(dir / "packed.safetensors"));
}

TEST(PackedOverride, NoReadsAPackedPerChannelWeightAsTheScriptDoes) {
  // The bytes taken as [out, in/2] unpacked values: what the script does, clamped and warned.
  const Twins twins = MakeTwins(1, true);
  TempDir dir;
  const Converted as_is = ConvertTwin(twins.packed, dir.path(), "as_is", TargetTool::kGptq, PackedMode::kNo);
  ASSERT_TRUE(as_is.report.ok()) << as_is.report.error().message;
  EXPECT_EQ(as_is.tensors.at("model.layers.0.mlp.up_proj.qweight").shape, (std::vector<uint64_t>{6, 24}));
  EXPECT_EQ(WarningWith(*as_is.report, "two 4-bit values per byte"), "");
  EXPECT_NE(WarningWith(*as_is.report, "weight value(s)"), "");
  // Without the version key, auto detection reads it the same way.
  const Twins no_version = MakeTwins(1, true, /*version=*/false);
  const Converted automatic = ConvertTwin(no_version.packed, dir.path(), "auto", TargetTool::kGptq);
  ASSERT_TRUE(automatic.report.ok()) << automatic.report.error().message;
  EXPECT_EQ(automatic.tensors, as_is.tensors);
}

TEST(PackedOverride, YesOnAnUnpackedCheckpointIsAnError) {
  const Twins twins = MakeTwins(2, true);
  TempDir dir;
  const Converted converted = ConvertTwin(twins.unpacked, dir.path(), "unpacked", TargetTool::kAwq, PackedMode::kYes);
  ASSERT_FALSE(converted.report.ok());
  EXPECT_CONTAINS(converted.report.error().message, "model.layers.0.mlp.up_proj.weight");
  EXPECT_FALSE(fs::exists(dir / "unpacked.safetensors"));
}

}  // namespace
}  // namespace ms2vllm
