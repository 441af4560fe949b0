// Chooses a kernel variant once, from what was compiled in and what the CPU runs.
#include <array>
#include <string>

#include "kernels/kernels.h"
#include "kernels/variants.h"

namespace ms2vllm::kernels {

std::span<const KernelTable* const> CompiledKernels() {
  static const auto kAll = std::to_array<const KernelTable*>({
      &ScalarKernels(),
#if defined(MS2VLLM_HAVE_NEON)
      &NeonKernels(),
#endif
#if defined(MS2VLLM_HAVE_AVX2)
      &Avx2Kernels(),
#endif
#if defined(MS2VLLM_HAVE_AVX512)
      &Avx512Kernels(),
#endif
  });
  return kAll;
}

const KernelTable* SelectKernels(std::string_view forced) {
  const auto all = CompiledKernels();
  if (!forced.empty()) {
    for (const KernelTable* table : all) {
      if (table->name == forced) return table->supported() ? table : nullptr;
    }
    return nullptr;
  }
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if ((*it)->supported()) return *it;
  }
  return &ScalarKernels();
}

std::string CpuFeatureString() {
  std::string features;
  auto add = [&features](bool present, const char* name) {
    if (!present) return;
    if (!features.empty()) features += ' ';
    features += name;
  };
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  add(__builtin_cpu_supports("sse4.2"), "sse4.2");
  add(__builtin_cpu_supports("avx2"), "avx2");
  add(__builtin_cpu_supports("bmi2"), "bmi2");
  add(__builtin_cpu_supports("avx512f"), "avx512f");
  add(__builtin_cpu_supports("avx512bw"), "avx512bw");
  add(__builtin_cpu_supports("avx512vl"), "avx512vl");
  add(__builtin_cpu_supports("avx512vbmi"), "avx512vbmi");
#elif defined(__aarch64__)
  add(true, "neon");  // Advanced SIMD is part of the AArch64 baseline.
#endif
  return features.empty() ? std::string("none") : features;
}

}  // namespace ms2vllm::kernels
