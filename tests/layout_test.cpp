// The output layout on hand-built plans: where shards split, and every tensor aligned to its
// element size, as safetensors' own writer aligns them and zero-copy loaders need.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "engine/layout.h"

namespace ms2vllm {
namespace {

Plan PlanOf(const std::vector<std::pair<DType, std::vector<uint64_t>>>& tensors) {
  Plan plan;
  for (const auto& [dtype, shape] : tensors) {
    OutputTensor tensor;
    tensor.name = "t" + std::to_string(plan.tensors.size());
    tensor.dtype = dtype;
    tensor.shape = shape;
    plan.tensors.push_back(std::move(tensor));
  }
  return plan;
}

TEST(Layout, AShardHoldsTensorsUpToExactlyTheLimit) {
  const Plan plan = PlanOf({{DType::kF32, {100}}, {DType::kF32, {100}}, {DType::kF32, {100}}});  // 400 B each
  auto layout = ComputeLayout(plan, "model.safetensors", 800);
  ASSERT_TRUE(layout.ok()) << layout.error().message;
  ASSERT_EQ(layout->files.size(), 2u);
  EXPECT_EQ(layout->files[0].name, "model-00001-of-00002.safetensors");
  EXPECT_EQ(layout->files[0].tensors, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(layout->files[1].tensors, (std::vector<size_t>{2}));
  // One byte less, and each tensor gets a shard of its own.
  layout = ComputeLayout(plan, "model.safetensors", 799);
  ASSERT_TRUE(layout.ok()) << layout.error().message;
  EXPECT_EQ(layout->files.size(), 3u);
}

TEST(Layout, ALargerTensorThanTheLimitGetsAShardOfItsOwn) {
  const Plan plan = PlanOf({{DType::kU8, {10}}, {DType::kU8, {1000}}, {DType::kU8, {10}}});
  auto layout = ComputeLayout(plan, "model.safetensors", 100);
  ASSERT_TRUE(layout.ok()) << layout.error().message;
  ASSERT_EQ(layout->files.size(), 3u);
  EXPECT_EQ(layout->files[1].tensors, (std::vector<size_t>{1}));
}

TEST(Layout, EveryTensorIsAlignedToItsElementSize) {
  // Odd byte counts first, in description order: unsorted, the I32 and F32 would land misaligned.
  const Plan plan = PlanOf({{DType::kU8, {1}}, {DType::kBF16, {3}}, {DType::kI32, {8}}, {DType::kF32, {5}},
                            {DType::kF16, {1}}});
  auto layout = ComputeLayout(plan, "model.safetensors", 0);
  ASSERT_TRUE(layout.ok()) << layout.error().message;
  ASSERT_EQ(layout->files.size(), 1u);
  EXPECT_EQ(layout->files[0].data_start % 8, 0u);
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    EXPECT_EQ(layout->placements[i].offset % DTypeSize(plan.tensors[i].dtype), 0u) << plan.tensors[i].name;
  }
}

}  // namespace
}  // namespace ms2vllm
