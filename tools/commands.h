// The ms2vllm subcommands. Each parses its own flags and returns the process exit status.
#pragma once

#include <cstdio>

namespace ms2vllm {

struct VerifyReport;

int RunConvert(int argc, char** argv);  // also what `ms2vllm --model ...` runs
int RunSynth(int argc, char** argv);
int RunVerify(int argc, char** argv);
int RunInspect(int argc, char** argv);

// Prints what verification found wrong and one summary line to `out`, as `ms2vllm verify` does
// (also `convert --verify`). Returns 0 when the conversion is exact, else its exit status.
int PrintVerifyReport(const VerifyReport& report, bool quiet, std::FILE* out);

}  // namespace ms2vllm
