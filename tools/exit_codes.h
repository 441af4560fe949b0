// The exit statuses of ms2vllm, one per ErrorCode (documented in README.md).
#pragma once

#include "io/status.h"

namespace ms2vllm {

inline constexpr int kExitOk = 0;

inline int ExitCodeFor(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUsage: return 2;
    case ErrorCode::kInvalidInput: return 3;
    case ErrorCode::kUnsupported: return 4;
    case ErrorCode::kOutput: return 5;
    case ErrorCode::kResources: return 5;  // like a full disk: nothing wrong with the input or the flags
    case ErrorCode::kVerifyFailed: return 6;
    case ErrorCode::kInterrupted: return 130;  // 128 + SIGINT, if the signal cannot be re-raised
  }
  return 1;
}

}  // namespace ms2vllm
