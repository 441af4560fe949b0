// Parsing a command's flags with CLI11, as every command does it.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

namespace ms2vllm {

// Parses argv into `app`. Returns nothing when the command should run, else its exit status:
// 0 after --help, or 2 after one error line that points to `help_command` ("ms2vllm verify
// --help") and, for a mistyped option, names the likeliest one (--savepath: --save_path).
std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv, const std::string& help_command);

}  // namespace ms2vllm
