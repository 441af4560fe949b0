#include "tools/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace ms2vllm {

ProgressBar::ProgressBar(const std::atomic<uint64_t>& done, const std::atomic<uint64_t>& total, bool enabled)
    : done_(done), total_(total), start_(std::chrono::steady_clock::now()) {
  if (enabled && ::isatty(STDERR_FILENO)) thread_ = std::thread([this] { Run(); });
}

ProgressBar::~ProgressBar() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (drawn_) std::fprintf(stderr, "\r\033[K");
}

void ProgressBar::Run() {
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stop_; })) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    if (seconds >= 1.0) Draw(seconds);
  }
}

void ProgressBar::Draw(double seconds) {
  constexpr int kWidth = 30;
  const uint64_t total = total_.load(std::memory_order_relaxed);
  if (total == 0) return;
  const uint64_t done = std::min(done_.load(std::memory_order_relaxed), total);
  const double fraction = static_cast<double>(done) / static_cast<double>(total);
  const double rate = static_cast<double>(done) / seconds;
  const int filled = static_cast<int>(fraction * kWidth);
  std::string bar(static_cast<size_t>(filled), '=');
  bar.resize(kWidth, ' ');
  const double left = rate > 0 ? static_cast<double>(total - done) / rate : 0;
  std::fprintf(stderr, "\r[%s] %6.2f / %.2f GB  %5.2f GB/s  %3.0f s left\033[K", bar.c_str(), done / 1e9, total / 1e9,
               rate / 1e9, left);
  drawn_ = true;
}

}  // namespace ms2vllm
