// madvise() needs page-aligned ranges; these widen a byte range to the pages it touches.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

// Linux 5.14; older kernels answer EINVAL and pages fault in on demand as before.
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

namespace ms2vllm {

inline uint64_t PageSize() {
  static const uint64_t kPage = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return kPage;
}

// Applies `advice` to every page overlapping [base+offset, base+offset+size) of a mapping
// that starts at the page-aligned `base` and is `mapped` bytes long.
inline void AdvisePages(const uint8_t* base, uint64_t mapped, uint64_t offset, uint64_t size, int advice) {
  if (size == 0 || base == nullptr) return;
  const uint64_t page = PageSize();
  const uint64_t begin = offset / page * page;
  uint64_t end = (offset + size + page - 1) / page * page;
  if (end > (mapped + page - 1) / page * page) end = (mapped + page - 1) / page * page;
  if (end <= begin) return;
  ::madvise(const_cast<uint8_t*>(base) + begin, end - begin, advice);
}

}  // namespace ms2vllm
