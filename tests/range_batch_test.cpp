// RangeBatch gathers the ranges of many small writebacks or releases into one call per batch.
#include <gtest/gtest.h>

#include "io/range_batch.h"

namespace ms2vllm {
namespace {

TEST(RangeBatch, IsFullOnceItHoldsTheBatchAndCoversWhatWasAdded) {
  RangeBatch batch(100);
  EXPECT_FALSE(batch.Add({1000, 40}));
  EXPECT_FALSE(batch.Add({0, 0}));      // empty ranges count for nothing, not even their offset
  EXPECT_FALSE(batch.Add({500, 40}));   // before the first: the cover grows down
  EXPECT_TRUE(batch.Add({2000, 20}));   // 100 bytes: full
  const ByteRange covered = batch.Take();
  EXPECT_EQ(covered.offset, 500u);
  EXPECT_EQ(covered.size, 1520u);       // 500..2020, the gaps included
}

TEST(RangeBatch, TakeStartsAFreshBatch) {
  RangeBatch batch(10);
  EXPECT_EQ(batch.Take().size, 0u);     // nothing added: nothing to do
  EXPECT_TRUE(batch.Add({64, 16}));     // one range over the batch is full at once
  EXPECT_EQ(batch.Take().offset, 64u);
  EXPECT_FALSE(batch.Add({8, 4}));
  const ByteRange second = batch.Take();
  EXPECT_EQ(second.offset, 8u);         // not stretched back to the first batch
  EXPECT_EQ(second.size, 4u);
}

}  // namespace
}  // namespace ms2vllm
