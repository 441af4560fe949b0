// Buffers in which the tiles of one output band are assembled before the band is written out.
// Large ones are reused rather than freed: a fresh allocation's pages are zero-filled by the
// kernel on first touch, which is the very cost writing through buffers avoids. Small bands
// (scales, zeros, small weights) get their own short-lived allocation, so many of them in
// flight at once never pin many large buffers: resident memory stays about
// (live tokens / tiles per large band + 1) x usual size.
#pragma once

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

  // A buffer of at least `size` bytes.
  BandBuffer Take(uint64_t size) {
    if (!Pooled(size)) return Allocate(size);
    {
      std::lock_guard lock(mutex_);
      if (!free_.empty()) {
        BandBuffer buffer = std::move(free_.back());
        free_.pop_back();
        return buffer;
      }
    }
    return Allocate(usual_size_);
  }

  void Give(BandBuffer buffer) {
    if (buffer.capacity != usual_size_) return;  // not a pooled one: freed here
    std::lock_guard lock(mutex_);
    free_.push_back(std::move(buffer));
  }

 private:
  bool Pooled(uint64_t size) const { return size > usual_size_ / 4 && size <= usual_size_; }
  static BandBuffer Allocate(uint64_t size) { return {std::unique_ptr<uint8_t[]>(new uint8_t[size]), size}; }

  const uint64_t usual_size_;
  std::mutex mutex_;
  std::vector<BandBuffer> free_;
};

}  // namespace ms2vllm
