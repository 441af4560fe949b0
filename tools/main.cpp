// ms2vllm: converts msModelSlim W4A16/W8A16 checkpoints to AutoAWQ/AutoGPTQ layouts.
// `ms2vllm --model ...` is `ms2vllm convert --model ...`, a drop-in for ms_to_vllm.py.
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tools/cli_support.h"
#include "tools/commands.h"

namespace {

int RunCommand(int argc, char** argv) {
  using Command = int (*)(int, char**);
  static constexpr std::pair<std::string_view, Command> kCommands[] = {
      {"convert", &ms2vllm::RunConvert}, {"synth", &ms2vllm::RunSynth},
      {"verify", &ms2vllm::RunVerify},   {"inspect", &ms2vllm::RunInspect}};
  if (argc > 1) {
    for (const auto& [name, run] : kCommands) {
      if (name == argv[1]) return run(argc - 1, argv + 1);
    }
    // The drop-in's flags all start with a dash; a bare first word is a command, maybe mistyped.
    if (argv[1][0] != '-') {
      // A path given without --model is the likeliest slip.
      std::error_code ec;
      const std::string hint = std::filesystem::exists(argv[1], ec)
                                   ? std::string(" (to convert it: ms2vllm --model ") + argv[1] + " ...)"
                                   : "";
      return ms2vllm::ReportError(ms2vllm::MakeError(
          ms2vllm::ErrorCode::kUsage, std::string("unknown command '") + argv[1] +
                                          "': the commands are convert (the default), verify, inspect and synth (see "
                                          "ms2vllm COMMAND --help)" + hint));
    }
  }
  return ms2vllm::RunConvert(argc, argv);
}

// Errors are values, but the standard library and oneTBB throw when memory, threads or other
// resources run out. Caught here, the stack unwinds, so the staged output is removed.
int RunCatchingExhaustion(int argc, char** argv) {
  using ms2vllm::ErrorCode;
  try {
    return RunCommand(argc, argv);
  } catch (const std::bad_alloc&) {
    return ms2vllm::ReportError(ms2vllm::MakeError(ErrorCode::kResources, "out of memory (see ulimit -v and the memory limit)"));
  } catch (const std::logic_error& e) {
    return ms2vllm::ReportError(
        ms2vllm::MakeError(ErrorCode::kOutput, std::string("internal error (please report it): ") + e.what()));
  } catch (const std::exception& e) {
    // For instance oneTBB's "pthread_create has failed: Resource temporarily unavailable".
    return ms2vllm::ReportError(ms2vllm::MakeError(ErrorCode::kResources, std::string("cannot go on (out of memory or threads? see ulimit -v and ulimit -u): ") + e.what()));
  }
}

// Every input and output shard stays open for the whole run: a checkpoint of 2,000 shards needs
// more descriptors than the usual soft limit of 1,024, and the hard limit is the user's to lift.
void RaiseOpenFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= limit.rlim_max) return;
  limit.rlim_cur = limit.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &limit);
}

}  // namespace

int main(int argc, char** argv) {
  RaiseOpenFileLimit();
  const int status = RunCatchingExhaustion(argc, argv);
  ms2vllm::EndBySignalIfInterrupted(status);
  // A report that never reached its reader (stdout on a full disk) is not a success.
  if ((std::fflush(stdout) != 0 || std::ferror(stdout)) && status == 0) {
    return ms2vllm::ReportError(
        ms2vllm::MakeError(ms2vllm::ErrorCode::kOutput, std::string("standard output: cannot write: ") + std::strerror(errno)));
  }
  return status;
}
