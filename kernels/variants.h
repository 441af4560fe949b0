// The per-instruction-set tables; each lives in its own file compiled with its own target flags.
#pragma once

#include "kernels/kernels.h"

namespace ms2vllm::kernels {

const KernelTable& Avx2Kernels();    // pack_avx2.cpp   (-mavx2 -mbmi2)
const KernelTable& Avx512Kernels();  // pack_avx512.cpp (-mavx512f -mavx512bw -mavx512vl -mavx512vbmi)
const KernelTable& NeonKernels();    // pack_neon.cpp   (AArch64 baseline)

}  // namespace ms2vllm::kernels
