// The output file does not depend on how the work is executed: thread count, chunk size, band
// size (whole-row tiles read with pread, column bands read through the mapping), kernel
// variant and padded rows in the buffers all give the same bytes as one scalar thread with the
// defaults.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "engine/convert.h"
#include "kernels/kernels.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;
using testing::MsCheckpoint;
using testing::MsLinearOptions;
using testing::TempDir;

struct Execution {
  int threads;
  uint64_t chunk_bytes, band_bytes;
  const kernels::KernelTable* kernels;
  bool pad_every_row = false;
};

std::string Describe(const Execution& e) {
  return "threads " + std::to_string(e.threads) + ", chunk " + std::to_string(e.chunk_bytes) + ", band " +
         std::to_string(e.band_bytes) + ", kernels " + std::string(e.kernels->name) +
         (e.pad_every_row ? ", every row padded" : "");
}

// Linears of several shapes (one wider than the small bands, so it is cut into column bands; one
// with 2048-byte input rows, which the input buffers pad anyway), both bit widths' shapes,
// scales of two dtypes, and float tensors copied unchanged.
MsCheckpoint Checkpoint(int bits) {
  MsCheckpoint checkpoint;
  const std::string label = bits == 4 ? "W4A16" : "W8A16";
  struct Shape {
    std::string name;
    uint64_t out, in, groups;
    DType scale_dtype;
  };
  const std::vector<Shape> shapes = {
      {"model.layers.0.self_attn.q_proj", 64, 256, 2, DType::kF32},
      {"model.layers.0.mlp.gate_proj", 192, 512, 4, DType::kBF16},
      {"model.layers.0.mlp.down_proj", 64, 1536, 12, DType::kF16},
      {"model.layers.0.mlp.up_proj", 16, 2048, 16, DType::kBF16},
  };
  uint64_t seed = 7;
  checkpoint.Add("model.embed_tokens.weight",
                 testing::MakeTensor(DType::kBF16, {300, 64}, std::vector<double>(300 * 64, 0.5)), "FLOAT");
  for (const auto& shape : shapes) {
    MsLinearOptions o;
    o.out = shape.out;
    o.in = shape.in;
    o.groups = shape.groups;
    o.bits = bits;
    o.scale_dtype = shape.scale_dtype;
    o.seed = seed++;
    checkpoint.AddLinear(shape.name, testing::MakeMsLinear(o), label);
  }
  checkpoint.Add("model.norm.weight", testing::MakeTensor(DType::kF32, {64}, std::vector<double>(64, 1.0)), "FLOAT");
  return checkpoint;
}

std::string ConvertWith(const fs::path& weights, const fs::path& output, TargetTool target, const Execution& e) {
  ConvertRequest request;
  request.model = weights;
  request.save_path = output;
  request.plan.target = target;
  request.execution.threads = e.threads;
  request.execution.chunk_bytes = e.chunk_bytes;
  request.execution.band_bytes = e.band_bytes;
  request.execution.kernels = e.kernels;
  request.execution.pad_every_row = e.pad_every_row;
  auto report = Convert(request);
  if (!report.ok()) {
    ADD_FAILURE() << Describe(e) << ": " << report.error().message;
    return {};
  }
  std::string bytes = testing::ReadText(output);
  fs::remove(output);
  return bytes;
}

struct Case {
  std::string name;
  TargetTool target;
  int bits;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ExecutionInvarianceTest : public ::testing::TestWithParam<Case> {};

TEST_P(ExecutionInvarianceTest, SameBytesHoweverTheWorkIsRun) {
  const Case& c = GetParam();
  TempDir dir;
  const fs::path weights = Checkpoint(c.bits).WriteInto(dir.path(), c.bits);
  const Execution reference{1, 4ull << 20, 32ull << 20, &kernels::ScalarKernels()};
  const std::string expected = ConvertWith(weights, dir / "reference.safetensors", c.target, reference);
  ASSERT_FALSE(expected.empty());

  int runs = 0;
  for (const kernels::KernelTable* variant : kernels::CompiledKernels()) {
    if (!variant->supported()) continue;
    for (const int threads : {1, 2, 3}) {
      // 64 B chunks and bands: a tile per few rows and many column bands; 4096 B bands split only
      // the widest weight; the defaults keep every tensor whole.
      for (const auto& [chunk, band] : {std::pair<uint64_t, uint64_t>{64, 64}, {1000, 4096}, {4ull << 20, 32ull << 20}}) {
        // Every row padded: at one thread count, as the padding does not depend on it.
        for (const bool pad_every_row : threads == 2 ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
          const Execution e{threads, chunk, band, variant, pad_every_row};
          SCOPED_TRACE(Describe(e));
          EXPECT_EQ(ConvertWith(weights, dir / "run.safetensors", c.target, e), expected);
          ++runs;
        }
      }
    }
  }
  EXPECT_GE(runs, 12);  // at least the scalar reference ran in every shape
}

INSTANTIATE_TEST_SUITE_P(Targets, ExecutionInvarianceTest,
                         ::testing::Values(Case{"awq_w4", TargetTool::kAwq, 4}, Case{"gptq_w4", TargetTool::kGptq, 4},
                                           Case{"gptq_w8", TargetTool::kGptq, 8}),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace ms2vllm
