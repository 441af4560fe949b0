// Checkpoints of many tensors (MoE models have 100k+): headers, shard index and synth's
// description stay correct, and an interrupt stops the phases before the executor.
//
// Tests never time anything, so complexity is not asserted; these run at the size where the
// old quadratic building (ordered_json's linear key lookup per insert) took tens of seconds
// per table, and now take under a second each.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "engine/convert.h"
#include "engine/layout.h"
#include "engine/synth_writer.h"
#include "io/safetensors_header.h"
#include "io/shard_index.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;

constexpr size_t kManyTensors = 100'000;

// Small tensors of three element sizes, so the layout reorders them within each file.
Plan ManySmallTensors() {
  static constexpr DType kDTypes[] = {DType::kBF16, DType::kF32, DType::kI32};
  Plan plan;
  plan.tensors.resize(kManyTensors);
  for (size_t i = 0; i < kManyTensors; ++i) {
    OutputTensor& tensor = plan.tensors[i];
    tensor.name = "model.layers." + std::to_string(i / 8) + ".experts." + std::to_string(i % 8) + ".weight";
    tensor.dtype = kDTypes[i % 3];
    tensor.shape = {1 + i % 5, 2};
    tensor.kind = TransformKind::kGenerate;
  }
  return plan;
}

// The file as the executor would write it (zeros for data), read back by the validating parser.
SafetensorsHeader ReadBack(const OutputFileLayout& file) {
  std::vector<uint8_t> bytes(file.size, 0);
  const uint64_t header_size = file.header.size();
  std::memcpy(bytes.data(), &header_size, 8);
  std::memcpy(bytes.data() + 8, file.header.data(), file.header.size());
  auto header = ParseSafetensorsHeader(file.name, bytes);
  EXPECT_TRUE(header.ok()) << header.error().message;
  return header.ok() ? std::move(*header) : SafetensorsHeader{};
}

TEST(Scale, HeadersOfManyTensorsListEveryTensorInFileOrder) {
  const Plan plan = ManySmallTensors();
  auto layout = ComputeLayout(plan, "model.safetensors", plan.TotalBytes() / 3 + 1);
  ASSERT_TRUE(layout.ok()) << layout.error().message;
  ASSERT_GE(layout->files.size(), 3u);
  size_t seen = 0;
  for (uint32_t f = 0; f < layout->files.size(); ++f) {
    const OutputFileLayout& file = layout->files[f];
    EXPECT_TRUE(file.header.starts_with(R"({"__metadata__":{"format":"pt"},")")) << file.header.substr(0, 80);
    const SafetensorsHeader header = ReadBack(file);
    ASSERT_EQ(header.tensors.size(), file.tensors.size());
    EXPECT_EQ(header.data_start, file.data_start);
    for (size_t i = 0; i < file.tensors.size(); ++i) {
      const OutputTensor& expected = plan.tensors[file.tensors[i]];
      const TensorInfo& actual = header.tensors[i];
      ASSERT_EQ(actual.name, expected.name) << "header order differs from the file order at " << i;
      EXPECT_EQ(actual.dtype, expected.dtype);
      EXPECT_EQ(actual.shape, expected.shape);
      EXPECT_EQ(actual.file_offset, layout->placements[file.tensors[i]].offset);
      EXPECT_EQ(layout->placements[file.tensors[i]].file, f);
    }
    seen += file.tensors.size();
  }
  EXPECT_EQ(seen, kManyTensors);
}

std::string ShardIndexText(const Plan& plan, const Layout& layout, size_t piece_bytes = 1 << 20) {
  std::string text;
  const Status status = ShardIndexPieces(
      plan, layout,
      [&](std::string_view piece) -> Status {
        EXPECT_FALSE(piece.empty());
        text += piece;
        return Ok{};
      },
      piece_bytes);
  EXPECT_TRUE(status.ok());
  return text;
}

TEST(Scale, ShardIndexOfManyTensorsMapsEachOnceInNameOrder) {
  const Plan plan = ManySmallTensors();
  auto layout = ComputeLayout(plan, "model.safetensors", plan.TotalBytes() / 3 + 1);
  ASSERT_TRUE(layout.ok()) << layout.error().message;
  // Read back by the parser that reads checkpoints' indexes: it keeps the file's order.
  auto index = ParseShardIndex("model.safetensors.index.json", ShardIndexText(plan, *layout));
  ASSERT_TRUE(index.ok()) << index.error().message;
  EXPECT_EQ(index->total_size, layout->tensor_bytes);
  ASSERT_EQ(index->weight_map.size(), kManyTensors);
  std::string previous;
  std::unordered_map<std::string, std::string> file_of;
  for (const auto& entry : index->weight_map) {
    ASSERT_LT(previous, entry.tensor);
    previous = entry.tensor;
    file_of.emplace(entry.tensor, index->shard_files[entry.shard]);
  }
  for (const auto& file : layout->files) {
    for (size_t i : file.tensors) ASSERT_EQ(file_of.at(plan.tensors[i].name), file.name);
  }
}

// The index is written as text, not through a DOM; it must still be the bytes nlohmann's
// dump(2) gives, names needing escapes included.
TEST(Scale, ShardIndexTextIsWhatTheJsonLibraryWrites) {
  Plan plan;
  const std::vector<std::string> names = {"b.weight", "a\"quoted\\name", "\xce\xbb.unicode", "ctrl\x01\tname", "a"};
  for (const auto& name : names) {
    OutputTensor& tensor = plan.tensors.emplace_back();
    tensor.name = name;
    tensor.dtype = DType::kF32;
    tensor.shape = {4};
    tensor.kind = TransformKind::kGenerate;
  }
  for (uint64_t shard_bytes : {uint64_t{16}, uint64_t{0}}) {
    auto layout = ComputeLayout(plan, "model.safetensors", shard_bytes);
    ASSERT_TRUE(layout.ok()) << layout.error().message;
    std::map<std::string, std::string> sorted;
    for (const auto& file : layout->files) {
      for (size_t i : file.tensors) sorted[plan.tensors[i].name] = file.name;
    }
    nlohmann::ordered_json expected;
    expected["metadata"] = {{"total_size", layout->tensor_bytes}};
    expected["weight_map"] = nlohmann::ordered_json::object();
    for (const auto& [tensor, file] : sorted) expected["weight_map"][tensor] = file;
    for (size_t piece_bytes : {size_t{0}, size_t{1}, size_t{40}, size_t{1} << 20}) {
      EXPECT_EQ(ShardIndexText(plan, *layout, piece_bytes), expected.dump(2) + "\n") << piece_bytes;
    }
  }
  const Plan empty;
  auto layout = ComputeLayout(empty, "model.safetensors", 0);
  ASSERT_TRUE(layout.ok());
  nlohmann::ordered_json expected;
  expected["metadata"] = {{"total_size", 0}};
  expected["weight_map"] = nlohmann::ordered_json::object();
  EXPECT_EQ(ShardIndexText(empty, *layout), expected.dump(2) + "\n");
}

TEST(Scale, SynthDescriptionOfManyLayersListsEveryTensorInPlanOrder) {
  SynthOptions options;
  options.shape = *FindModelShape("tiny");
  options.shape.layers = 8'000;  // 104k tensors
  auto checkpoint = BuildSynthCheckpoint(options);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.error().message;
  const auto& description = checkpoint->description;
  ASSERT_EQ(description.size(), checkpoint->plan.tensors.size() + 1);
  auto member = description.items().begin();
  EXPECT_EQ(member.key(), "model_quant_type");
  for (const auto& tensor : checkpoint->plan.tensors) {
    ++member;
    ASSERT_EQ(member.key(), tensor.name);
  }
}

// The flag set before the run stands for a signal arriving in any phase: each long loop
// before the executor checks it, so even --dry-run (which never reaches the executor) stops.
class InterruptedBeforeTheExecutor : public ::testing::Test {
 protected:
  void SetUp() override {
    SynthRequest synth;
    synth.options.shape = *FindModelShape("tiny");
    synth.options.shape.layers = 2;
    synth.out_dir = dir_ / "model";
    auto written = WriteSynthCheckpoint(synth);
    ASSERT_TRUE(written.ok()) << written.error().message;
  }

  ConvertRequest Request(bool dry_run) {
    ConvertRequest request;
    request.model = dir_ / "model";
    request.save_path = dir_ / "res.safetensors";
    request.dry_run = dry_run;
    request.execution.cancel = &interrupted_;
    return request;
  }

  // Only the input directory is there: no target, no temp file.
  void ExpectNothingWritten() const {
    EXPECT_EQ(std::distance(fs::directory_iterator(dir_.path()), fs::directory_iterator()), 1);
  }

  testing::TempDir dir_;
  std::atomic<bool> interrupted_{true};
};

TEST_F(InterruptedBeforeTheExecutor, DryRunStops) {
  auto report = Convert(Request(/*dry_run=*/true));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kInterrupted);
  ExpectNothingWritten();
}

TEST_F(InterruptedBeforeTheExecutor, ConversionStopsAndLeavesNothing) {
  auto report = Convert(Request(/*dry_run=*/false));
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kInterrupted);
  ExpectNothingWritten();
}

TEST_F(InterruptedBeforeTheExecutor, SynthStopsAndLeavesNothing) {
  SynthRequest synth;
  synth.options.shape = *FindModelShape("tiny");
  synth.options.shape.layers = 2;
  synth.out_dir = dir_ / "synth";
  synth.execution.cancel = &interrupted_;
  auto report = WriteSynthCheckpoint(synth);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.error().code, ErrorCode::kInterrupted);
  ExpectNothingWritten();
}

}  // namespace
}  // namespace ms2vllm
