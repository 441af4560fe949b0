// Buffers in which the tiles of one output band are assembled before the band is written out.
// Reused rather than freed: a fresh allocation's pages are zero-filled by the kernel on first
// touch, which is the very cost writing through buffers avoids. Buffers come in power-of-two
// sizes, each size with its own free list, so many small bands in flight (scales, zeros, small
// weights) never pin large buffers: resident memory stays about the largest number of bands of
// each size ever in flight at once (bounded by the pipeline's tokens) times that size.
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "engine/aligned_buffer.h"

namespace ms2vllm {

// Uninitialized: every byte of a band is written by its tiles. Its size is its size class.
using BandBuffer = AlignedBuffer;

class BandBuffers {
 public:
  // A buffer of at least `size` bytes.
  BandBuffer Take(uint64_t size) {
    const uint64_t capacity = std::bit_ceil(std::max<uint64_t>(size, kSmallest));
    {
      std::lock_guard lock(mutex_);
      auto& free = free_[capacity];
      if (!free.empty()) {
        BandBuffer buffer = std::move(free.back());
        free.pop_back();
        return buffer;
      }
    }
    return BandBuffer(capacity);
  }

  void Give(BandBuffer buffer) {
    std::lock_guard lock(mutex_);
    free_[buffer.size()].push_back(std::move(buffer));
  }

 private:
  static constexpr uint64_t kSmallest = 64 << 10;
  std::mutex mutex_;
  std::map<uint64_t, std::vector<BandBuffer>> free_;  // by capacity
};

}  // namespace ms2vllm
