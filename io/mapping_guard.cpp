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

// Every shard of the input, and with verify of the output too, is mapped for the whole run. The
// first block (24 KB of zero pages until used) covers a checkpoint of 500 shards and its
// conversion; more blocks are chained on as needed and kept to the end of the process, so that
// the handler can walk the chain without a lock.
struct Block {
  std::array<Slot, 1024> slots;
  std::atomic<Block*> next{nullptr};
};
Block first_block;
std::mutex registry;  // serialises Register and Unregister; the handler never takes it
uintptr_t page_size = 4096;

template <class Visit>
Slot* FindSlot(Visit&& matches) {
  for (Block* block = &first_block; block != nullptr; block = block->next.load(std::memory_order_acquire)) {
    for (Slot& slot : block->slots) {
      if (matches(slot)) return &slot;
    }
  }
  return nullptr;
}

Slot* SlotStarting(const void* begin) {
  const auto address = reinterpret_cast<uintptr_t>(begin);
  return FindSlot([&](const Slot& slot) { return slot.begin.load(std::memory_order_acquire) == address; });
}

void OnBusError(int signal, siginfo_t* info, void*) {
  const auto address = reinterpret_cast<uintptr_t>(info->si_addr);
  Slot* slot = FindSlot([&](const Slot& candidate) {
    const uintptr_t begin = candidate.begin.load(std::memory_order_acquire);
    return begin != 0 && address >= begin && address < candidate.end.load(std::memory_order_acquire);
  });
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

// A free slot, from a new block chained on when every block is full.
Slot& FreeSlot() {
  if (Slot* slot = SlotStarting(nullptr)) return *slot;
  Block* last = &first_block;
  while (Block* next = last->next.load(std::memory_order_acquire)) last = next;
  Block* added = new Block;
  last->next.store(added, std::memory_order_release);
  return added->slots[0];
}

}  // namespace

void Register(const void* begin, size_t size) {
  if (begin == nullptr || size == 0) return;
  Install();
  const std::lock_guard lock(registry);
  Slot& slot = FreeSlot();
  // The end is stored before the begin, so the handler never sees a begin without its end.
  slot.faulted.store(false, std::memory_order_relaxed);
  slot.end.store(reinterpret_cast<uintptr_t>(begin) + size, std::memory_order_release);
  slot.begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
}

void Unregister(const void* begin) {
  if (begin == nullptr) return;
  const std::lock_guard lock(registry);
  if (Slot* slot = SlotStarting(begin)) slot->begin.store(0, std::memory_order_release);
}

bool Faulted(const void* begin) {
  const Slot* slot = begin == nullptr ? nullptr : SlotStarting(begin);
  return slot != nullptr && slot->faulted.load(std::memory_order_acquire);
}

}  // namespace ms2vllm::mapping_guard
