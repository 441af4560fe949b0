// Byte ranges handed over one at a time, gathered into one call per batch: a system call per
// small tensor (a writeback start, a page release) cost more than converting the tensor on a
// checkpoint of 100k small tensors. Not thread-safe: each user calls it from one serial stage.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ms2vllm {

struct ByteRange {
  uint64_t offset = 0;
  uint64_t size = 0;
};

class RangeBatch {
 public:
  explicit RangeBatch(uint64_t batch_bytes) : batch_bytes_(batch_bytes) {}

  // Adds `range`; true once the ranges added since the last Take hold `batch_bytes` or more.
  bool Add(ByteRange range) {
    if (range.size == 0) return false;
    begin_ = bytes_ == 0 ? range.offset : std::min(begin_, range.offset);
    end_ = bytes_ == 0 ? range.offset + range.size : std::max(end_, range.offset + range.size);
    bytes_ += range.size;
    return bytes_ >= batch_bytes_;
  }

  // The range covering everything added since the last Take (gaps included), and a fresh batch.
  ByteRange Take() {
    const ByteRange covered = bytes_ == 0 ? ByteRange{} : ByteRange{begin_, end_ - begin_};
    bytes_ = 0;
    return covered;
  }

 private:
  uint64_t batch_bytes_;
  uint64_t bytes_ = 0, begin_ = 0, end_ = 0;
};

}  // namespace ms2vllm
