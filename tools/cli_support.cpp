#include "tools/cli_support.h"

#include <algorithm>
#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "io/json_scan.h"
#include "tools/exit_codes.h"

namespace ms2vllm {
namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<int> g_first_signal{0};

void OnSignal(int signal) {
  int none = 0;
  g_first_signal.compare_exchange_strong(none, signal);
  g_interrupted.store(true);
}

// The variant --kernels, else MS2VLLM_KERNELS, forces; empty for the best this CPU runs.
std::string ForcedKernels(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("MS2VLLM_KERNELS");
  return env ? env : "";
}

}  // namespace

const std::atomic<bool>& InterruptFlag() { return g_interrupted; }

void InstallInterruptHandlers() {
  struct sigaction action {};
  action.sa_handler = &OnSignal;
  sigemptyset(&action.sa_mask);
  // SIGHUP: the ssh session or terminal the run was started from went away. A signal the caller
  // ignores stays ignored: nohup's SIGHUP, a background job's SIGINT.
  for (int signal : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
    struct sigaction current {};
    if (sigaction(signal, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) continue;
    sigaction(signal, &action, nullptr);
  }
  // Past a file size limit, fail the write with EFBIG and report it, instead of dying.
  std::signal(SIGXFSZ, SIG_IGN);
}

// A program that cleans up on SIGINT and then merely exits leaves its caller unaware: bash goes on
// with the next command of a loop. Dying by the same signal (the shell shows 130 or 143) tells it.
void EndBySignalIfInterrupted(int status) {
  const int signal = g_first_signal.load();
  if (signal == 0 || status != ExitCodeFor(ErrorCode::kInterrupted)) return;
  std::fflush(nullptr);
  std::signal(signal, SIG_DFL);
  std::raise(signal);
}

// Messages quote names from files; escaping their control characters keeps each message one
// line and keeps a crafted name from driving the terminal.
int ReportError(const Error& error) {
  std::fprintf(stderr, "ms2vllm: error: %s\n", Printable(error.message).c_str());
  return ExitCodeFor(error.code);
}

void PrintWarning(const std::string& line) { std::fprintf(stderr, "ms2vllm: warning: %s\n", Printable(line).c_str()); }

Result<const kernels::KernelTable*> ChooseKernels(const std::string& flag) {
  const std::string forced = ForcedKernels(flag);
  const kernels::KernelTable* table = kernels::SelectKernels(forced);
  if (table == nullptr) {
    std::string available;
    bool compiled = false;
    for (const auto* candidate : kernels::CompiledKernels()) {
      if (candidate->supported()) available += (available.empty() ? "" : ", ") + std::string(candidate->name);
      compiled = compiled || candidate->name == forced;
    }
    const std::string what = compiled ? "kernel variant '" + forced + "' is not available on this CPU"
                                      : "'" + forced + "' is not a kernel variant of this build";
    const std::string from = flag.empty() ? "MS2VLLM_KERNELS: " : "--kernels: ";
    return MakeError(ErrorCode::kUsage, from + what + " (available: " + available + ")");
  }
  return table;
}

std::optional<uint64_t> ParseByteSize(std::string_view text) {
  static constexpr std::pair<std::string_view, uint64_t> kUnits[] = {
      {"TB", 1'000'000'000'000}, {"GB", 1'000'000'000}, {"MB", 1'000'000}, {"KB", 1'000},
      {"TiB", 1ull << 40},       {"GiB", 1ull << 30},     {"MiB", 1ull << 20}, {"KiB", 1ull << 10},
      {"B", 1}};
  // Units in any case, as transformers' max_shard_size reads them ("5gb", "500MiB").
  const auto ends_with = [&](std::string_view suffix) {
    if (text.size() <= suffix.size()) return false;
    const std::string_view tail = text.substr(text.size() - suffix.size());
    return std::equal(tail.begin(), tail.end(), suffix.begin(),
                      [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == std::toupper(static_cast<unsigned char>(b)); });
  };
  uint64_t multiplier = 1;
  for (const auto& [suffix, factor] : kUnits) {
    if (ends_with(suffix)) {
      text.remove_suffix(suffix.size());
      multiplier = factor;
      break;
    }
  }
  if (text.empty()) return std::nullopt;
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    if (__builtin_mul_overflow(value, 10, &value) || __builtin_add_overflow(value, static_cast<uint64_t>(c - '0'), &value)) {
      return std::nullopt;
    }
  }
  if (__builtin_mul_overflow(value, multiplier, &value) || value == 0) return std::nullopt;
  return value;
}

Result<uint64_t> ParseSizeOption(std::string_view option, const std::string& value, std::string_view example,
                                 std::string_view also) {
  if (auto size = ParseByteSize(value)) return *size;
  return MakeError(ErrorCode::kUsage, std::string(option) + " '" + value + "' is not a size: a whole number above 0, " +
                                          "of bytes or with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB or TiB), such as " +
                                          std::string(example) + std::string(also));
}

std::string HumanBytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KB", "MB", "GB", "TB"};
  size_t unit = 0;
  while (bytes >= 1000 && unit + 1 < std::size(kUnits)) {
    bytes /= 1000;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof(text), unit == 0 ? "%.0f %s" : "%.2f %s", bytes, kUnits[unit]);
  return text;
}

std::string VersionText(const std::string& kernels_flag) {
  std::string compiled;
  for (const auto* table : kernels::CompiledKernels()) compiled += (compiled.empty() ? "" : " ") + std::string(table->name);
  const std::string forced = ForcedKernels(kernels_flag);
  const std::string by = kernels_flag.empty() ? "MS2VLLM_KERNELS" : "--kernels";
  const kernels::KernelTable* chosen = kernels::SelectKernels(forced);
  const std::string chosen_text = chosen ? std::string(chosen->name) + (forced.empty() ? "" : " (" + by + ")")
                                         : "none: " + by + " names no variant this CPU runs";
#if defined(__x86_64__)
  const char* arch = "x86_64";
#elif defined(__aarch64__)
  const char* arch = "aarch64";
#else
  const char* arch = "unknown";
#endif
  return std::string("ms2vllm ") + MS2VLLM_VERSION + "\narchitecture: " + arch + "\ncpu features: " +
         kernels::CpuFeatureString() + "\nkernels compiled: " + compiled + "\nkernel chosen: " + chosen_text;
}

}  // namespace ms2vllm
