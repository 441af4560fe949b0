// What every subcommand shares: messages, signals, kernel choice, size flags.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "io/status.h"
#include "kernels/kernels.h"

namespace ms2vllm {

// Set by SIGINT/SIGTERM once InstallInterruptHandlers() has run.
const std::atomic<bool>& InterruptFlag();
void InstallInterruptHandlers();
// After a command stopped for SIGINT/SIGTERM and cleaned up (its status is the interrupted one),
// ends the process by that signal; otherwise returns.
void EndBySignalIfInterrupted(int status);

// A check for path options: `--out-dir "$UNSET"` gives an empty value, which must not mean the
// option was left out (a drop-in conversion into ./res.safetensors instead).
inline CLI::Validator NonEmpty() {
  return CLI::Validator([](std::string& value) { return value.empty() ? std::string("is empty") : std::string(); },
                        "", "NONEMPTY");
}

// A check for --w_bit: CLI11's set check says only "abc" of a value that is not a number. Takes
// 4 and 8 with leading zeros or spaces and tabs around them ("08", " 8"), as the script's int() did.
inline CLI::Validator FourOrEight() {
  return CLI::Validator(
      [](std::string& value) {
        const size_t first = value.find_first_not_of(" \t"), last = value.find_last_not_of(" \t");
        const std::string number = first == std::string::npos ? "" : value.substr(first, last - first + 1);
        const size_t digits = number.find_first_not_of('0');
        const std::string stripped = digits == std::string::npos ? "0" : number.substr(digits);
        if (stripped != "4" && stripped != "8") return "'" + value + "' is not 4 or 8";
        value = stripped;
        return std::string();
      },
      "4|8", "FOUR_OR_EIGHT");
}

// Prints "ms2vllm: error: <message>" and returns the exit status for it.
int ReportError(const Error& error);
void PrintWarning(const std::string& line);

// The kernel table: --kernels, else the environment variable MS2VLLM_KERNELS, else the best.
Result<const kernels::KernelTable*> ChooseKernels(const std::string& flag);

// "5GB", "500MB", "1048576", "64KB", "2GiB", units in any case, as transformers' max_shard_size
// reads them (KB, MB, GB, TB decimal; KiB, MiB, GiB, TiB binary).
std::optional<uint64_t> ParseByteSize(std::string_view text);
// ParseByteSize of an option's value, or a usage error naming the option and the forms it takes
// (`also`: what else the option takes, such as "; or 0 for one file").
Result<uint64_t> ParseSizeOption(std::string_view option, const std::string& value, std::string_view example,
                                 std::string_view also = "");

// 1234567 -> "1.23 MB" (decimal units, as the sizes users type).
std::string HumanBytes(double bytes);

// The version, architecture, CPU features, kernel variants compiled and the one a conversion given
// `kernels_flag` (--kernels, or "") would run.
std::string VersionText(const std::string& kernels_flag = "");

}  // namespace ms2vllm
