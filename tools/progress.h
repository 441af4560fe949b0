// A progress bar on stderr for runs longer than a second, when stderr is a terminal.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace ms2vllm {

class ProgressBar {
 public:
  // Shows `done` out of `total` bytes (0 until known); silent unless `enabled` and stderr is a terminal.
  ProgressBar(const std::atomic<uint64_t>& done, const std::atomic<uint64_t>& total, bool enabled);
  ~ProgressBar();  // stops and erases the bar

 private:
  void Run();
  void Draw(double seconds);

  const std::atomic<uint64_t>& done_;
  const std::atomic<uint64_t>& total_;
  std::chrono::steady_clock::time_point start_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool drawn_ = false;
  std::thread thread_;
};

}  // namespace ms2vllm
