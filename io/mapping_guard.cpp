#include "io/mapping_guard.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

namespace ms2vllm::mapping_guard {
namespace {

// Read by the signal handler, so lock-free atomics only; a slot is free when `begin` is 0.
struct Slot {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  std::atomic<bool> faulted{false};
};
// Every shard of the input, and with verify of the output too, is mapped for the whole run: room
// for a checkpoint of 4,000 shards and its conversion (zero pages until used: 192 KB at most).
constexpr size_t kSlots = 8192;
std::array<Slot, kSlots> slots;
uintptr_t page_size = 4096;

Slot* Find(uintptr_t address) {
  for (Slot& slot : slots) {
    const uintptr_t begin = slot.begin.load(std::memory_order_acquire);
    if (begin != 0 && address >= begin && address < slot.end.load(std::memory_order_acquire)) return &slot;
  }
  return nullptr;
}

void OnBusError(int signal, siginfo_t* info, void*) {
  const auto address = reinterpret_cast<uintptr_t>(info->si_addr);
  Slot* slot = Find(address);
  void* page = reinterpret_cast<void*>(address & ~(page_size - 1));
  if (slot != nullptr &&
      ::mmap(page, page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
    slot->faulted.store(true, std::memory_order_release);
    return;  // the read runs again and finds zeros
  }
  ::signal(signal, SIG_DFL);  // not ours: the read faults again and the default action ends the process
}

void Install() {
  static std::once_flag once;
  std::call_once(once, [] {
    page_size = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
    struct sigaction action {};
    action.sa_sigaction = &OnBusError;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGBUS, &action, nullptr);
  });
}

}  // namespace

void Register(const void* begin, size_t size) {
  if (begin == nullptr || size == 0) return;
  Install();
  for (Slot& slot : slots) {
    uintptr_t expected = 0;
    // Claimed with a placeholder first, so the handler never sees a begin without its end.
    if (!slot.begin.compare_exchange_strong(expected, UINTPTR_MAX, std::memory_order_acq_rel)) continue;
    slot.faulted.store(false, std::memory_order_relaxed);
    slot.end.store(reinterpret_cast<uintptr_t>(begin) + size, std::memory_order_release);
    slot.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
    return;
  }
}

void Unregister(const void* begin) {
  if (begin == nullptr) return;
  for (Slot& slot : slots) {
    if (slot.begin.load(std::memory_order_acquire) == reinterpret_cast<uintptr_t>(begin)) {
      slot.begin.store(0, std::memory_order_release);
      return;
    }
  }
}

bool Faulted(const void* begin) {
  for (const Slot& slot : slots) {
    if (slot.begin.load(std::memory_order_acquire) == reinterpret_cast<uintptr_t>(begin)) {
      return slot.faulted.load(std::memory_order_acquire);
    }
  }
  return false;
}

}  // namespace ms2vllm::mapping_guard
