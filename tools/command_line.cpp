#include "tools/command_line.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>
#include <vector>

#include "tools/cli_support.h"

namespace ms2vllm {
namespace {

// Edits between two option names; `loose`: '-' and '_' taken as one (the script's flags use '_').
size_t EditDistance(std::string_view a, std::string_view b, bool loose) {
  const auto same = [loose](char x, char y) {
    return x == y || (loose && (x == '-' || x == '_') && (y == '-' || y == '_'));
  };
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same(a[i - 1], b[j - 1]) ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// " (--savepath: did you mean --save_path?)" for the first long option of argv the app does
// not know, when one it knows is at most two edits from it; else "".
std::string Suggestion(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (!arg.starts_with("--") || arg.size() == 2) continue;
    const std::string name(arg.substr(2, arg.find('=') == std::string_view::npos ? std::string_view::npos
                                                                                    : arg.find('=') - 2));
    if (app.get_option_no_throw("--" + name) != nullptr) continue;
    // The nearest, '-' or '_' aside; among equals, the one spelt as the user spells.
    std::string best;
    std::pair<size_t, size_t> best_distance{3, 0};
    for (const CLI::Option* option : app.get_options()) {
      for (const std::string& known : option->get_lnames()) {
        const std::pair distance{EditDistance(name, known, true), EditDistance(name, known, false)};
        if (distance < best_distance) best = known, best_distance = distance;
      }
    }
    if (!best.empty()) return " (--" + name + ": did you mean --" + best + "?)";
  }
  return "";
}

// The option an argument names ("--model", "--model=x"), or nullptr for a value or an option the
// app does not know.
const CLI::Option* KnownOption(const CLI::App& app, std::string_view arg) {
  if (!arg.starts_with("-") || arg.size() < 2) return nullptr;
  return app.get_option_no_throw(std::string(arg.substr(0, arg.find('='))));
}

// The script's flags, which argparse reads: the conversion command takes them as the script did.
constexpr std::string_view kScriptFlags[] = {"model", "json", "save_path", "w_bit", "target_tool"};

// A value-taking option as args give it: args[at, at + count) hold it and its value.
struct GivenOption {
  const CLI::Option* option = nullptr;
  std::string spelled;  // as written, without '=' and the value ("--save-path")
  size_t at = 0, count = 1;
  std::optional<std::string> value;  // none when the line ends, "--" or an option follows, or "=" has nothing after it
  std::string instead;               // the option that follows in the value's place
};

// The value-taking options of args, in order, up to "--". An argument after one is its value
// even when it starts with '-' ("--threads -1"), unless it is an option the app knows.
std::vector<GivenOption> GivenOptions(const CLI::App& app, const std::vector<std::string>& args) {
  std::vector<GivenOption> given;
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") break;
    const CLI::Option* option = KnownOption(app, arg);
    if (option == nullptr || option->get_items_expected_min() == 0) continue;
    const size_t equals = arg.find('=');
    GivenOption g;
    g.option = option;
    g.spelled = arg.substr(0, equals);
    g.at = i;
    if (equals != std::string::npos) {
      // CLI11 takes "--save_path=" as no value and the next argument ("--dry-run") for it.
      if (equals + 1 < arg.size()) g.value = arg.substr(equals + 1);
    } else if (i + 1 < args.size() && args[i + 1] != "--" && KnownOption(app, args[i + 1]) == nullptr) {
      g.value = args[++i];
      g.count = 2;
    } else if (i + 1 < args.size() && args[i + 1] != "--") {
      g.instead = args[i + 1];
    }
    given.push_back(std::move(g));
  }
  return given;
}

// "--max-shard-size --model m": CLI11 takes --model for the size, then reports --model missing,
// though the user gave it. Returns "--max-shard-size needs a value, not the option --model" for
// the first option so given, or "--save_path needs a value" for one that ends the line, comes
// before "--" or is written "--save_path=" with nothing after; else "".
std::string OptionWithoutValue(const std::vector<GivenOption>& given) {
  for (const GivenOption& g : given) {
    if (g.value) continue;
    return g.spelled + " needs a value" + (g.instead.empty() ? "" : ", not the option " + g.instead);
  }
  return "";
}

// "twice (a, then b)", "twice (a both times)", "3 times (a, b, c)".
std::string Occurrences(const std::vector<std::string>& values) {
  if (values.size() > 2) {
    std::string list;
    for (const auto& value : values) list += (list.empty() ? "" : ", ") + value;
    return std::to_string(values.size()) + " times (" + list + ")";
  }
  return "twice (" + (values[0] == values[1] ? values[0] + " both times" : values[0] + ", then " + values[1]) + ")";
}

// The values given to each single-value option, in the order the options first appear.
std::vector<std::pair<const GivenOption*, std::vector<std::string>>> ValuesByOption(const std::vector<GivenOption>& given) {
  std::vector<std::pair<const GivenOption*, std::vector<std::string>>> by_option;
  for (const GivenOption& g : given) {
    if (!g.value || g.option->get_items_expected_max() != 1) continue;
    auto same = std::find_if(by_option.begin(), by_option.end(), [&](const auto& e) { return e.first->option == g.option; });
    if (same == by_option.end()) same = by_option.insert(by_option.end(), {&g, {}});
    same->second.push_back(*g.value);
  }
  return by_option;
}

// "--model a ... --model b": CLI11 says "--model: At Most 1 required but received 2". Returns
// "--model is given twice (a, then b): give it once" for the first option taking one value that
// appears more than once (under any of its names, with or without '='); else "".
std::string RepeatedOption(const std::vector<GivenOption>& given) {
  for (const auto& [first, values] : ValuesByOption(given)) {
    if (values.size() > 1) return first->spelled + " is given " + Occurrences(values) + ": give it once";
  }
  return "";
}

// argparse takes the last of a flag given more than once, so a wrapper that puts its defaults
// before "$@" worked with the script. For the conversion's script flags, removes from args every
// occurrence but the last (the flag and its value) and returns a note for each flag so given:
// "--save_path is given twice (a, then b): b is used, as the script used the last". ms2vllm's own
// options given twice stay an error (RepeatedOption).
std::vector<std::string> DropEarlierScriptFlags(const CLI::App& app, std::vector<std::string>& args) {
  std::vector<std::string> notes;
  if (app.get_option_no_throw("--save_path") == nullptr) return notes;  // not the script's command line
  const std::vector<GivenOption> given = GivenOptions(app, args);
  std::vector<bool> drop(args.size(), false);
  for (const auto& [first, values] : ValuesByOption(given)) {
    const std::string name = first->option->get_lnames().front();
    if (values.size() < 2 || std::find(std::begin(kScriptFlags), std::end(kScriptFlags), name) == std::end(kScriptFlags)) continue;
    notes.push_back("--" + name + " is given " + Occurrences(values) + ": " + values.back() +
                    " is used, as the script used the last");
    const auto last = std::find_if(given.rbegin(), given.rend(), [&](const GivenOption& g) { return g.option == first->option && g.value; });
    for (const GivenOption& g : given) {
      if (g.option != first->option || !g.value || &g == &*last) continue;
      for (size_t j = 0; j < g.count; ++j) drop[g.at + j] = true;
    }
  }
  std::vector<std::string> kept;
  for (size_t i = 0; i < args.size(); ++i) {
    if (!drop[i]) kept.push_back(std::move(args[i]));
  }
  args = std::move(kept);
  return notes;
}

// The script reads its flags with argparse, which takes any unique start of a long option
// ("--save" for --save_path, "--target" for --target_tool). Returns argv with each such start
// written out in full; a start several options share, but only one of the script's flags, is that
// flag, as it was for the script. A start shared otherwise sets `mistake` ("--t could be
// --target_tool or --threads"). Every argument before "--" that starts with "--" is taken as an
// option, as argparse takes it.
std::vector<std::string> ExpandAbbreviations(const CLI::App& app, int argc, char** argv, std::string& mistake) {
  std::vector<std::string> args(argv, argv + argc);
  for (int i = 1; i < argc; ++i) {
    std::string& arg = args[static_cast<size_t>(i)];
    if (arg == "--") break;
    if (!arg.starts_with("--") || arg.size() == 2) continue;
    const size_t equals = arg.find('=');
    const std::string name = arg.substr(2, equals == std::string::npos ? std::string::npos : equals - 2);
    if (name.empty() || app.get_option_no_throw("--" + name) != nullptr) continue;
    std::vector<std::string> prefix_matches, script_flags;  // an option's first name that starts so, once
    for (const CLI::Option* option : app.get_options()) {
      for (const std::string& known : option->get_lnames()) {
        if (!known.starts_with(name)) continue;
        prefix_matches.push_back(known);
        const auto* script_flag = std::find(std::begin(kScriptFlags), std::end(kScriptFlags), known);
        if (script_flag != std::end(kScriptFlags)) script_flags.push_back(known);
        break;
      }
    }
    if (prefix_matches.size() == 1 || script_flags.size() == 1) {
      arg = "--" + (prefix_matches.size() == 1 ? prefix_matches[0] : script_flags[0]) +
            (equals == std::string::npos ? "" : arg.substr(equals));
    } else if (prefix_matches.size() > 1 && mistake.empty()) {
      mistake = "--" + name + " could be --" + prefix_matches[0];
      for (size_t k = 1; k < prefix_matches.size(); ++k) mistake += (k + 1 < prefix_matches.size() ? ", --" : " or --") + prefix_matches[k];
    }
  }
  return args;
}


// The value of --kernels in args ("--kernels x" or "--kernels=x"), or "": --version reports the
// variant it forces, though the version flag acts while the line is parsed.
std::string KernelsFlag(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--") break;
    if (args[i] == "--kernels" && i + 1 < args.size()) return args[i + 1];
    if (args[i].starts_with("--kernels=")) return args[i].substr(std::string_view("--kernels=").size());
  }
  return "";
}

}  // namespace

std::optional<int> ParseCommandLine(CLI::App& app, int argc, char** argv, const std::string& help_command) {
  // Every command's, as README shows it; registered before the abbreviations are expanded ("--ver"
  // could be it), its text made when it is given, from the line's --kernels.
  auto kernels_flag = std::make_shared<std::string>();
  app.set_version_flag("--version", std::function<std::string()>([kernels_flag] { return VersionText(*kernels_flag); }));
  std::string ambiguous;
  std::vector<std::string> args = ExpandAbbreviations(app, argc, argv, ambiguous);
  if (app.get_option_no_throw("--kernels") != nullptr) *kernels_flag = KernelsFlag(args);
  const auto usage = [&](const std::string& mistake) {
    return ReportError(MakeError(ErrorCode::kUsage, mistake + " (see " + help_command + ")"));
  };
  // These mistakes first, so that no note of a flag given twice precedes them (CLI11's own
  // errors, raised while parsing, still come after the notes).
  for (const std::string& mistake : {ambiguous, OptionWithoutValue(GivenOptions(app, args))}) {
    if (!mistake.empty()) return usage(mistake);
  }
  const std::vector<std::string> notes = DropEarlierScriptFlags(app, args);
  if (const std::string repeated = RepeatedOption(GivenOptions(app, args)); !repeated.empty()) return usage(repeated);
  const bool quiet = std::find_if(args.begin(), args.end(), [](const std::string& a) { return a == "-q" || a == "--quiet"; }) != args.end();
  for (const std::string& note : notes) {
    if (!quiet) PrintWarning(note);
  }
  std::vector<char*> expanded;
  for (std::string& arg : args) expanded.push_back(arg.data());
  argc = static_cast<int>(expanded.size());
  argv = expanded.data();
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return ReportError(
        MakeError(ErrorCode::kUsage, std::string(e.what()) + Suggestion(app, argc, argv) + " (see " + help_command + ")"));
  }
}

}  // namespace ms2vllm
