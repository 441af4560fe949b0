// Reusable buffers in which the tiles of one output band are assembled before the band is
// written out. Reused rather than freed: a fresh allocation's pages are zero-filled by the
// kernel on first touch, which is the very cost writing through buffers avoids.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace ms2vllm {

struct BandBuffer {
  std::unique_ptr<uint8_t[]> data;  // uninitialized: every byte of a band is written by its tiles
  uint64_t capacity = 0;
};

class BandBuffers {
 public:
  explicit BandBuffers(uint64_t usual_size) : usual_size_(usual_size) {}

  // A buffer of at least `size` bytes. The pipeline bounds how many are out at once.
  BandBuffer Take(uint64_t size) {
    {
      std::lock_guard lock(mutex_);
      auto fits = std::find_if(free_.begin(), free_.end(), [&](const BandBuffer& b) { return b.capacity >= size; });
      if (fits != free_.end()) {
        BandBuffer buffer = std::move(*fits);
        free_.erase(fits);
        return buffer;
      }
    }
    const uint64_t capacity = std::max(size, usual_size_);
    return {std::unique_ptr<uint8_t[]>(new uint8_t[capacity]), capacity};
  }

  void Give(BandBuffer buffer) {
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(buffer));
  }

 private:
  const uint64_t usual_size_;
  std::mutex mutex_;
  std::vector<BandBuffer> free_;
};

}  // namespace ms2vllm
