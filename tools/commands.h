// The ms2vllm subcommands. Each parses its own flags and returns the process exit status.
#pragma once

namespace ms2vllm {

int RunConvert(int argc, char** argv);  // also what `ms2vllm --model ...` runs
int RunSynth(int argc, char** argv);

}  // namespace ms2vllm
