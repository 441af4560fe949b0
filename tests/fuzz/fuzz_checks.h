// What every fuzz target checks besides the sanitizers: an error is one printable line that
// starts with the file's label. A broken invariant aborts, which libFuzzer reports as a crash.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/status.h"

namespace ms2vllm::fuzz {

inline constexpr const char* kLabel = "input.bin";

inline void Require(bool condition, const char* what, const std::string& detail = "") {
  if (condition) return;
  std::fprintf(stderr, "invariant broken: %s %s\n", what, detail.c_str());
  std::abort();
}

inline void CheckError(const Error& error) {
  Require(error.code == ErrorCode::kInvalidInput, "error code is not kInvalidInput", error.message);
  Require(error.message.starts_with(std::string(kLabel) + ": "), "message does not name the file", error.message);
  for (char c : error.message) {
    Require(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "control character in the message", error.message);
  }
}

}  // namespace ms2vllm::fuzz
