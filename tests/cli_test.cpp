// The built ms2vllm command, run as a child process: exit codes, one-line error messages, the
// script-compatible flag spellings and defaults, --help/--version/--quiet/--dry-run, output
// hygiene on failure, and `synth` followed by a conversion.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

constexpr int kOk = 0, kUsage = 2, kInvalidInput = 3, kUnsupported = 4, kOutput = 5, kVerifyFailed = 6;

struct Outcome {
  int exit_code = -1;  // -1: did not exit normally
  std::string out, err;
};

// Runs MS2VLLM_BINARY with `args` in `cwd`; stdout and stderr go to files, read afterwards.
Outcome Ms2vllm(const std::vector<std::string>& args, const fs::path& cwd = fs::current_path()) {
  TempDir capture;
  const fs::path out_path = capture / "stdout", err_path = capture / "stderr";
  std::vector<std::string> storage = testing::Ms2vllmArgv();
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int in = ::open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || in < 0 || ::chdir(cwd.c_str()) != 0) _exit(126);
    ::dup2(in, STDIN_FILENO);
    ::dup2(out, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    _exit(127);
  }
  Outcome outcome;
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) {
    ADD_FAILURE() << "could not run " << MS2VLLM_BINARY;
    return outcome;
  }
  if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  outcome.out = testing::ReadText(out_path);
  outcome.err = testing::ReadText(err_path);
  return outcome;
}

std::string Show(const Outcome& o) {
  return "exit " + std::to_string(o.exit_code) + "\nstdout: " + o.out + "\nstderr: " + o.err;
}

// The failure the CLI promises: its exit code, nothing on stdout, one `ms2vllm: error:` line
// naming `subject`.
void ExpectError(const Outcome& o, int code, const std::string& subject) {
  EXPECT_EQ(o.exit_code, code) << Show(o);
  EXPECT_EQ(o.out, "") << Show(o);
  EXPECT_TRUE(o.err.starts_with("ms2vllm: error: ")) << Show(o);
  EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << Show(o);
  EXPECT_TRUE(o.err.ends_with("\n")) << Show(o);
  EXPECT_CONTAINS(o.err, subject);
}

// Every file under `dir` whose name marks a stage (".<name>.ms2vllm-<pid>.tmp").
std::vector<std::string> StageLeftovers(const fs::path& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (entry.path().filename().string().find(".ms2vllm-") != std::string::npos) found.push_back(entry.path().string());
  }
  return found;
}

// A copy of a golden case's inputs: <dir>/model.safetensors and <dir>/desc.json.
struct Inputs {
  fs::path model, json;
};
// The golden checkpoint's weights and description, with a config.json beside them as
// msModelSlim's saver leaves one (the float model's): --out-dir's base model.
Inputs CopyGolden(const std::string& name, const fs::path& dir) {
  Inputs inputs{dir / "model.safetensors", dir / "desc.json"};
  for (const auto& entry : fs::directory_iterator(testing::GoldenDir() / name)) {
    const std::string file = entry.path().filename().string();
    if (file.starts_with("quant_model_weight")) fs::copy_file(entry.path(), inputs.model);
    if (file.starts_with("quant_model_description")) fs::copy_file(entry.path(), inputs.json);
  }
  testing::WriteText(dir / "config.json", R"({"model_type": "qwen2"})");
  return inputs;
}

TEST(Cli, ConvertsAndExitsZero) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  const Outcome o = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "out.safetensors"});
  EXPECT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_EQ(testing::LoadTensors(dir / "out.safetensors"),
            testing::LoadTensors(testing::GoldenDir() / "w4a16-g64-awq" / "expected.safetensors"));
}

TEST(Cli, ScriptAndDashedSpellingsAndTheConvertCommandGiveIdenticalOutput) {
  TempDir dir;
  const Inputs in = CopyGolden("w8a16-g64-gptq", dir.path());
  const std::vector<std::vector<std::string>> spellings = {
      {"--model", in.model, "--json", in.json, "--save_path", dir / "a.safetensors", "--w_bit", "8", "--target_tool", "gptq"},
      {"--model", in.model, "--json", in.json, "--save-path", dir / "b.safetensors", "--w-bit", "8", "--target-tool", "gptq"},
      {"convert", "--model", in.model, "--json", in.json, "--save_path", dir / "c.safetensors", "--w_bit", "8",
       "--target_tool", "gptq"},
      // Shortened as the script's argparse takes them; "--t" is also a start of --threads.
      {"--mod", in.model, "--js", in.json, "--save=" + (dir / "d.safetensors").string(), "--w", "8", "--t", "gptq"},
  };
  for (const auto& args : spellings) {
    const Outcome o = Ms2vllm(args);
    ASSERT_EQ(o.exit_code, kOk) << Show(o);
  }
  const std::string a = testing::ReadText(dir / "a.safetensors");
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(testing::ReadText(dir / "b.safetensors"), a);
  EXPECT_EQ(testing::ReadText(dir / "c.safetensors"), a);
  EXPECT_EQ(testing::ReadText(dir / "d.safetensors"), a);
  // A start several options share, none of them or more than one the script's, names them all.
  ExpectError(Ms2vllm({"--model", in.model, "--ver"}), kUsage, "--ver could be --verify or --version (see --help)");
}

TEST(Cli, AmongSeveralDescriptionsTheOneNamedLikeTheWeightsIsUsed) {
  // Two of msModelSlim's checkpoints in one directory: _w4a16 and _w8a16 files side by side.
  TempDir dir;
  for (const std::string name : {"w4a16-g64-gptq", "w8a16-g64-gptq"}) {
    for (const auto& entry : fs::directory_iterator(testing::GoldenDir() / name)) {
      if (entry.path().filename().string().starts_with("quant_model_")) fs::copy_file(entry.path(), dir / entry.path().filename());
    }
  }
  const fs::path w8 = dir / "quant_model_weight_w8a16.safetensors";
  const Outcome found = Ms2vllm({"--model", w8, "--save_path", dir / "found.safetensors", "--target_tool", "gptq"});
  EXPECT_EQ(found.exit_code, kOk) << Show(found);
  const Outcome named = Ms2vllm({"--model", w8, "--json", dir / "quant_model_description_w8a16.json", "--save_path",
                                 dir / "named.safetensors", "--target_tool", "gptq"});
  EXPECT_EQ(named.exit_code, kOk) << Show(named);
  EXPECT_EQ(testing::ReadText(dir / "found.safetensors"), testing::ReadText(dir / "named.safetensors"));

  // ascendV1's names: quant_model_weights.safetensors with quant_model_description.json.
  fs::copy_file(w8, dir / "quant_model_weights.safetensors");
  fs::copy_file(dir / "quant_model_description_w8a16.json", dir / "quant_model_description.json");
  const Outcome v1 = Ms2vllm({"--model", dir / "quant_model_weights.safetensors", "--save_path", dir / "v1.safetensors",
                              "--target_tool", "gptq"});
  EXPECT_EQ(v1.exit_code, kOk) << Show(v1);
  EXPECT_EQ(testing::ReadText(dir / "v1.safetensors"), testing::ReadText(dir / "named.safetensors"));
  fs::remove(dir / "quant_model_weights.safetensors");
  fs::remove(dir / "quant_model_description.json");

  fs::copy_file(w8, dir / "renamed.safetensors");
  ExpectError(Ms2vllm({"--model", dir / "renamed.safetensors", "--save_path", dir / "o.safetensors"}), kInvalidInput,
              "several quant_model_description*.json (");
  ExpectError(Ms2vllm({"--model", dir / "renamed.safetensors", "--save_path", dir / "o.safetensors"}), kInvalidInput,
              "); name one with --json");
  ExpectError(Ms2vllm({"--model", dir.path(), "--save_path", dir / "o.safetensors"}), kInvalidInput,
              "several quant_model_weight*.safetensors (");

  // The description given as the weights.
  ExpectError(Ms2vllm({"--model", dir / "quant_model_description_w8a16.json", "--json",
                       dir / "quant_model_description_w8a16.json", "--save_path", dir / "o.safetensors"}),
              kInvalidInput, "quant_model_description_w8a16.json: header length ");
  ExpectError(Ms2vllm({"--model", dir / "quant_model_description_w8a16.json", "--json",
                       dir / "quant_model_description_w8a16.json", "--save_path", dir / "o.safetensors"}),
              kInvalidInput, "(the file is JSON, not safetensors: a description goes to --json)");
  // Another JSON file (a model's config.json) is said to be JSON, without the description's hint.
  TempDir base;
  testing::WriteText(base / "config.json", R"({"model_type": "qwen2", "hidden_size": 1536})");
  const Outcome config = Ms2vllm({"--model", base / "config.json", "--json", dir / "quant_model_description_w8a16.json",
                                  "--save_path", base / "o.safetensors"});
  ExpectError(config, kInvalidInput, "config.json: header length ");
  EXPECT_CONTAINS(config.err, "(the file is JSON, not safetensors)\n");

  // A directory of weights named otherwise (a float or converted model) says what it holds.
  TempDir other;
  fs::copy_file(w8, other / "model.safetensors");
  ExpectError(Ms2vllm({"--model", other.path(), "--save_path", dir / "o.safetensors"}), kInvalidInput,
              other.path().string() + ": no quant_model_weight*.safetensors found (it holds model.safetensors, not "
              "named as msModelSlim's); name the file with --model");
}

TEST(Cli, SavePathDefaultsToResSafetensorsInTheWorkingDirectory) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-gptq", dir.path());
  fs::create_directories(dir / "work");
  const Outcome o = Ms2vllm({"--model", in.model, "--json", in.json, "--target_tool", "gptq"}, dir / "work");
  ASSERT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_EQ(testing::LoadTensors(dir / "work/res.safetensors"),
            testing::LoadTensors(testing::GoldenDir() / "w4a16-g64-gptq" / "expected.safetensors"));
}

TEST(Cli, HelpShowsExamplesAndExitsZero) {
  for (const char* command : {"", "convert"}) {
    std::vector<std::string> args;
    if (*command) args.push_back(command);
    args.push_back("--help");
    const Outcome o = Ms2vllm(args);
    EXPECT_EQ(o.exit_code, kOk) << Show(o);
    EXPECT_CONTAINS(o.out, "Examples:");
    EXPECT_CONTAINS(o.out, "--save_path");
    EXPECT_CONTAINS(o.out, "ms2vllm --model");
  }
}

TEST(Cli, VersionNamesTheCpuFeaturesAndTheChosenKernel) {
  const Outcome o = Ms2vllm({"--version"});
  EXPECT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_CONTAINS(o.out, "ms2vllm ");
  EXPECT_CONTAINS(o.out, "cpu features:");
  EXPECT_CONTAINS(o.out, "kernel chosen:");
  for (const char* command : {"verify", "inspect", "synth"}) {
    const Outcome of_command = Ms2vllm({command, "--version"});
    EXPECT_EQ(of_command.exit_code, kOk) << Show(of_command);
    EXPECT_EQ(of_command.out, o.out);
  }
  // MS2VLLM_KERNELS chooses for conversions, so for --version too; a variant it cannot be is
  // named as the variable's.
  const char* suite_variant = std::getenv("MS2VLLM_KERNELS");  // restored below: the suite may run forced
  const std::optional<std::string> restore = suite_variant ? std::optional<std::string>(suite_variant) : std::nullopt;
  ::setenv("MS2VLLM_KERNELS", "scalar", 1);
  const Outcome forced = Ms2vllm({"--version"});
  ::setenv("MS2VLLM_KERNELS", "sse9", 1);
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  const Outcome unknown = Ms2vllm({"--model", in.model, "--save_path", dir / "o.safetensors"});
  if (restore) {
    ::setenv("MS2VLLM_KERNELS", restore->c_str(), 1);
  } else {
    ::unsetenv("MS2VLLM_KERNELS");
  }
  EXPECT_CONTAINS(forced.out, "kernel chosen: scalar (MS2VLLM_KERNELS)");
  // --kernels beside --version, before or after it, as a conversion would take it.
  for (const auto& args : {std::vector<std::string>{"--kernels", "scalar", "--version"},
                           std::vector<std::string>{"--version", "--kernels=scalar"}}) {
    EXPECT_CONTAINS(Ms2vllm(args).out, "kernel chosen: scalar (--kernels)");
  }
  ExpectError(unknown, kUsage, "MS2VLLM_KERNELS: 'sse9' is not a kernel variant of this build (available: scalar");
  ExpectError(Ms2vllm({"--model", in.model, "--save_path", dir / "o.safetensors", "--kernels", "sse9"}), kUsage,
              "--kernels: 'sse9' is not a kernel variant of this build");
  EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
}

TEST(Cli, AReportThatCannotBeWrittenIsAnOutputError) {
  // /dev/full takes the open but fails every write, as a full disk does.
  std::string command;
  for (const auto& word : testing::Ms2vllmArgv()) command += word + " ";
  for (const std::string& args : {"inspect " + (testing::GoldenDir() / "w4a16-g64-awq").string(), std::string("--version")}) {
    const int status = std::system((command + args + " >/dev/full 2>/dev/null").c_str());
    ASSERT_TRUE(WIFEXITED(status)) << args;
    EXPECT_EQ(WEXITSTATUS(status), kOutput) << args;
  }
}

TEST(Cli, QuietPrintsNothingOnSuccess) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-gptq-v1desc-sym", dir.path());
  const Outcome o = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "out.safetensors",
                         "--target_tool", "gptq", "--quiet"});
  EXPECT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_EQ(o.out, "");
  EXPECT_EQ(o.err, "");
  EXPECT_TRUE(fs::exists(dir / "out.safetensors"));
}

TEST(Cli, MoreThreadsThanCoresRunOnEveryCoreWithoutAWord) {
  // TBB runs no more workers than cores and says so on stderr unless the request is capped.
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  const Outcome o =
      Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "out.safetensors", "--threads", "4096", "--quiet"});
  EXPECT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_EQ(o.err, "");
  ASSERT_EQ(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "default.safetensors"}).exit_code, kOk);
  EXPECT_EQ(testing::ReadText(dir / "out.safetensors"), testing::ReadText(dir / "default.safetensors"));
}

TEST(Cli, WarningsGoToStandardError) {
  // One linear without an offset and a tensor the description does not list.
  TempDir dir;
  testing::MsCheckpoint checkpoint;
  testing::MsLinearOptions options;
  options.with_offset = false;
  checkpoint.AddLinear("l", testing::MakeMsLinear(options), "W4A16");
  checkpoint.AddUndescribed("stray", testing::MakeTensor(DType::kF32, {2}, {1, 2}));
  checkpoint.WriteWeights(dir / "w.safetensors");
  checkpoint.WriteDescription(dir / "d.json");
  const Outcome o = Ms2vllm({"--model", dir / "w.safetensors", "--json", dir / "d.json", "--save_path", dir / "o.safetensors"});
  EXPECT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_EQ(o.out, "");
  EXPECT_CONTAINS(o.err, "ms2vllm: warning: ");
  EXPECT_CONTAINS(o.err, "stray");
  EXPECT_CONTAINS(o.err, "no weight_offset");
}

// Names come from the files: on stdout too, a crafted one is escaped and cannot drive the terminal.
TEST(Cli, NamesOnStandardOutputAreEscaped) {
  TempDir dir;
  testing::MsCheckpoint checkpoint;
  checkpoint.AddLinear("l", testing::MakeMsLinear({}), "W4A16");
  checkpoint.Add("evil\x1b[2J.bias", testing::MakeTensor(DType::kF32, {2}, {1, 2}), "FLOAT");
  fs::create_directories(dir / "in");
  checkpoint.WriteInto(dir / "in");
  const Outcome dry = Ms2vllm({"--model", dir / "in", "--save_path", dir / "o.safetensors", "--dry-run"});
  const Outcome inspect = Ms2vllm({"inspect", dir / "in"});
  const Outcome json = Ms2vllm({"inspect", dir / "in", "--json-output"});
  for (const Outcome* o : {&dry, &inspect, &json}) {
    EXPECT_EQ(o->exit_code, kOk) << Show(*o);
    EXPECT_EQ(o->out.find('\x1b'), std::string::npos) << Show(*o);
    EXPECT_CONTAINS(o->out, o == &json ? "evil\\u001b[2J.bias" : "evil\\x1b[2J.bias");
  }
}

// The summary line of convert and synth names the paths written, escaped as error lines do: a
// newline in a name would split it in two.
TEST(Cli, PathsInTheSummaryLinesAreEscaped) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  const Outcome convert = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "two\nlines.safetensors"});
  const Outcome synth = Ms2vllm({"synth", "--preset", "tiny", "--out", dir / "synth\x1b[2J"});
  for (const Outcome* o : {&convert, &synth}) {
    EXPECT_EQ(o->exit_code, kOk) << Show(*o);
    EXPECT_EQ(std::count(o->err.begin(), o->err.end(), '\n'), 1) << Show(*o);
    EXPECT_EQ(o->err.find('\x1b'), std::string::npos) << Show(*o);
  }
  EXPECT_CONTAINS(convert.err, "two\\nlines.safetensors: ");
  EXPECT_CONTAINS(synth.err, "synth\\x1b[2J");
}

// A path that is not UTF-8 is still shown (its bytes replaced) in inspect's JSON.
TEST(Cli, InspectJsonOfAPathThatIsNotUtf8) {
  TempDir dir;
  testing::MsCheckpoint checkpoint;
  checkpoint.AddLinear("l", testing::MakeMsLinear({}), "W4A16");
  fs::create_directories(dir / "bad\xff");
  checkpoint.WriteInto(dir / "bad\xff");
  const Outcome o = Ms2vllm({"inspect", dir / "bad\xff", "--json-output"});
  EXPECT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_TRUE(nlohmann::json::accept(o.out)) << o.out;
}

TEST(Cli, ShardSizesTakeUnitsInAnyCaseAsTransformersDoes) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  std::vector<size_t> shard_counts;
  for (const std::string size : {"40KB", "40kb", "40000", "40Kb"}) {
    SCOPED_TRACE(size);
    const fs::path out = dir / ("model-" + size);
    const Outcome o = Ms2vllm({"--model", in.model, "--json", in.json, "--out-dir", out, "--max-shard-size", size, "-q"});
    ASSERT_EQ(o.exit_code, kOk) << Show(o);
    shard_counts.push_back(std::distance(fs::directory_iterator(out), fs::directory_iterator{}));
  }
  EXPECT_EQ(shard_counts, std::vector<size_t>(4, shard_counts.front()));
  const fs::path mib = dir / "model-mib";
  ASSERT_EQ(Ms2vllm({"--model", in.model, "--json", in.json, "--out-dir", mib, "--max-shard-size", "1mib", "-q"}).exit_code, kOk);
  EXPECT_TRUE(fs::exists(mib / "model.safetensors"));  // 116 KB fits in one
  EXPECT_GT(shard_counts.front(), std::distance(fs::directory_iterator(mib), fs::directory_iterator{}));
}

// KB is 1000 bytes, KiB 1024, as in transformers: an output of 1010 tensor bytes is sharded at
// 1KB and fits in one file at 1KiB.
TEST(Cli, AKilobyteIsAThousandBytesAndAKibibyte1024) {
  TempDir dir;
  testing::MsCheckpoint checkpoint;
  checkpoint.Describe("model_quant_type", "W4A16");
  testing::MsLinearOptions options;
  options.out = 8;
  options.in = 64;
  checkpoint.AddLinear("model.layers.0.mlp.down_proj", testing::MakeMsLinear(options), "W4A16");  // 328 bytes converted
  checkpoint.Add("model.norm.weight", testing::MakeTensor(DType::kF16, {8}, std::vector<double>(8, 1)), "FLOAT");
  checkpoint.Add("lm_head.weight", testing::MakeTensor(DType::kF16, {333}, std::vector<double>(333, 1)), "FLOAT");
  fs::create_directories(dir / "in");
  checkpoint.WriteInto(dir / "in");
  testing::WriteText(dir / "in/config.json", R"({"model_type": "qwen2"})");

  const Outcome kib = Ms2vllm({"--model", dir / "in", "--out-dir", dir / "kib", "--max-shard-size", "1KiB", "-q"});
  ASSERT_EQ(kib.exit_code, kOk) << Show(kib);
  ASSERT_TRUE(fs::exists(dir / "kib/model.safetensors"));
  uint64_t tensor_bytes = 0;
  for (const auto& [name, tensor] : testing::LoadTensors(dir / "kib/model.safetensors")) tensor_bytes += tensor.bytes.size();
  ASSERT_GT(tensor_bytes, 1000u);
  ASSERT_LE(tensor_bytes, 1024u);

  const Outcome kb = Ms2vllm({"--model", dir / "in", "--out-dir", dir / "kb", "--max-shard-size", "1KB", "-q"});
  ASSERT_EQ(kb.exit_code, kOk) << Show(kb);
  EXPECT_TRUE(fs::exists(dir / "kb/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(dir / "kb/model-00002-of-00002.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "kb/model.safetensors"));
}

TEST(Cli, ExitCodeForUsageErrors) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  const std::vector<std::string> base = {"--model", in.model, "--json", in.json, "--save_path", dir / "o.safetensors"};
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--w_bit", "5"}, "--w_bit: '5' is not 4 or 8"},
      {{"--w_bit", "four"}, "--w_bit: 'four' is not 4 or 8"},
      {{"--target_tool", "foo"}, "--target_tool"},
      {{"--threads", "0"}, "--threads"},
      {{"--max-shard-size", "abc"}, "--max-shard-size"},
      {{"--gptq-format", "v3"}, "--gptq-format"},
      {{"--no-such-flag"}, "--no-such-flag"},
      {{"--base-model", dir.path()}, "--base-model"},
  };
  for (const auto& [extra, subject] : cases) {
    SCOPED_TRACE(subject);
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    ExpectError(Ms2vllm(args), kUsage, subject);
    EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
  }
  ExpectError(Ms2vllm({"--json", in.json}), kUsage, "--model");
  // What the script's int() took of a width, ms2vllm takes.
  const Outcome padded =
      Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "o.safetensors", "--w_bit", " 04"});
  EXPECT_EQ(padded.exit_code, kOk) << Show(padded);
  fs::remove(dir / "o.safetensors");
  // An empty value (an unset shell variable) is not a left-out option: `--out-dir ""` would
  // otherwise convert into ./res.safetensors.
  ExpectError(Ms2vllm({"--model", in.model, "--out-dir", ""}), kUsage, "--out-dir: is empty");
  ExpectError(Ms2vllm({"verify", "--model", in.model, "--converted", ""}), kUsage, "--converted: is empty");
  ExpectError(Ms2vllm({"inspect", ""}), kUsage, "path: is empty");
  ExpectError(Ms2vllm({"synth", "--preset", "tiny", "--out", ""}), kUsage, "--out: is empty");
  ExpectError(Ms2vllm({"synth", "--preset", "tiny", "--out", dir / "s", "--group-size", "-64"}), kUsage,
              "--group-size: Value -64 not in range 1 to");
  // A mistyped command would otherwise read as a stray argument of the drop-in conversion.
  ExpectError(Ms2vllm({"convrt", "--model", in.model}), kUsage, "unknown command 'convrt': the commands are convert");
}

TEST(Cli, ExitCodeForInvalidInputNamesTheFile) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  ExpectError(Ms2vllm({"--model", dir / "missing.safetensors", "--json", in.json, "--save_path", dir / "o.safetensors"}),
              kInvalidInput, "missing.safetensors");
  // Without --json the description is looked for beside the model: the missing model is named,
  // not a missing description in its directory.
  for (const fs::path& missing : {dir / "missing.safetensors", dir / "missing_dir"}) {
    const Outcome o = Ms2vllm({"--model", missing, "--save_path", dir / "o.safetensors"});
    ExpectError(o, kInvalidInput, missing.string() + ": cannot open: No such file or directory");
    EXPECT_EQ(o.err.find("description"), std::string::npos) << Show(o);
  }
  ExpectError(Ms2vllm({"--model", in.model.string() + "/", "--save_path", dir / "o.safetensors"}), kInvalidInput,
              in.model.string() + "/: is a file, not a directory: leave out the trailing '/'");
  testing::WriteText(dir / "truncated.safetensors", testing::ReadText(in.model).substr(0, 100));
  ExpectError(Ms2vllm({"--model", dir / "truncated.safetensors", "--json", in.json, "--save_path", dir / "o.safetensors"}),
              kInvalidInput, "truncated.safetensors");
  testing::WriteText(dir / "bad.json", "{\"a\": ");
  ExpectError(Ms2vllm({"--model", in.model, "--json", dir / "bad.json", "--save_path", dir / "o.safetensors"}), kInvalidInput,
              "bad.json");
  EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
}

TEST(Cli, ExitCodeForUnsupportedNamesTheTensor) {
  TempDir dir;
  const Inputs in = CopyGolden("w8a16-g64-gptq", dir.path());
  ExpectError(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "o.safetensors"}), kUnsupported,
              "model.layers.0.self_attn.q_proj.weight");
  ExpectError(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "o.safetensors", "--target_tool", "gptq",
                   "--w_bit", "4"}),
              kUnsupported, "--w_bit 4");
  EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
}

// Rewrites a copied description with `edit` applied, its key order kept.
void EditDescription(const fs::path& json, const std::function<void(nlohmann::ordered_json&)>& edit) {
  auto description = nlohmann::ordered_json::parse(testing::ReadText(json));
  edit(description);
  testing::WriteText(json, description.dump());
}

TEST(Cli, ModelQuantTypeContradictingTheLabelsIsInvalidInputNamingTheDescription) {
  struct Case {
    const char *golden, *type, *label;
  };
  for (const Case& c : {Case{"w8a16-g64-gptq", "W4A16", "W8A16"}, Case{"w4a16-g64-awq", "W8A16", "W4A16"}}) {
    TempDir dir;
    const Inputs in = CopyGolden(c.golden, dir.path());
    EditDescription(in.json, [&](auto& description) { description["model_quant_type"] = c.type; });
    for (const char* target : {"awq", "gptq"}) {
      const Outcome o =
          Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "o.safetensors", "--target_tool", target});
      ExpectError(o, kInvalidInput, in.json.string() + ": model_quant_type " + c.type);
      EXPECT_CONTAINS(o.err, c.label);
      EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
    }
  }
}

TEST(Cli, AWeightMissingFromTheDescriptionIsConvertedAndVerified) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  const std::string linear = "model.layers.0.self_attn.q_proj";
  EditDescription(in.json, [&](auto& description) { description.erase(linear + ".weight"); });
  const fs::path out = dir / "out.safetensors";
  const Outcome o = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", out});
  EXPECT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_CONTAINS(o.err, "needed by their linear: converted: " + linear + ".weight");
  EXPECT_EQ(o.err.find("not in the description"), std::string::npos) << Show(o);
  EXPECT_EQ(testing::LoadTensors(out), testing::LoadTensors(testing::GoldenDir() / "w4a16-g64-awq" / "expected.safetensors"));

  const std::vector<std::string> verify = {"verify", "--model", in.model, "--json", in.json, "--converted", out};
  EXPECT_EQ(Ms2vllm(verify).exit_code, kOk);
  auto tensors = testing::LoadTensors(out);
  tensors.erase(linear + ".qweight");
  testing::WriteSafetensors(out, {tensors.begin(), tensors.end()});
  const Outcome failed = Ms2vllm(verify);
  EXPECT_EQ(failed.exit_code, kVerifyFailed) << Show(failed);
  EXPECT_CONTAINS(failed.out, linear + ".qweight");
  // The report is on stdout; stderr has the one error line naming the file and the first tensors.
  EXPECT_TRUE(failed.err.starts_with("ms2vllm: error: " + out.string() + ": ")) << Show(failed);
  EXPECT_CONTAINS(failed.err, linear + ".qweight");
  EXPECT_EQ(std::count(failed.err.begin(), failed.err.end(), '\n'), 1) << Show(failed);
}

// verify of a model directory names the directory, since its problems may be in any of its files;
// and weights that do not parse plan no tensors, which the FAILED line does not claim to count.
TEST(Cli, VerifyNamesTheDirectoryAndCountsNoTensorsItCouldNotRead) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  ASSERT_EQ(Ms2vllm({"--model", in.model, "--json", in.json, "--out-dir", dir / "out", "-q"}).exit_code, kOk);
  fs::resize_file(dir / "out/model.safetensors", 5000);
  const Outcome o = Ms2vllm({"verify", "--model", in.model, "--json", in.json, "--converted", dir / "out"});
  EXPECT_EQ(o.exit_code, kVerifyFailed) << Show(o);
  EXPECT_CONTAINS(o.out, "verify: model.safetensors: is not a valid safetensors checkpoint: ");
  EXPECT_CONTAINS(o.out, "verify: FAILED: 1 problem(s): " + (dir / "out").string() + " is not the exact awq 4-bit "
                         "conversion of the input\n");
  EXPECT_TRUE(o.err.starts_with("ms2vllm: error: " + (dir / "out").string() + ": not the exact conversion")) << Show(o);
}

// --verify checks the stage, but what it prints names the output as the user finds it.
TEST(Cli, ConvertVerifyNamesTheTargetNotItsStage) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-gptq", dir.path());
  const Outcome file = Ms2vllm({"--model", in.model, "--json", in.json, "--target_tool", "gptq", "--save_path",
                                dir / "out.safetensors", "--verify"});
  ASSERT_EQ(file.exit_code, kOk) << Show(file);
  EXPECT_CONTAINS(file.err, "verify: OK: " + (dir / "out.safetensors").string() + " is the exact gptq (v1) 4-bit");
  const Outcome directory =
      Ms2vllm({"--model", in.model, "--json", in.json, "--target_tool", "gptq", "--out-dir", dir / "out", "--verify"});
  ASSERT_EQ(directory.exit_code, kOk) << Show(directory);
  EXPECT_CONTAINS(directory.err, "verify: OK: " + (dir / "out").string() + " is the exact gptq (v1) 4-bit");
  EXPECT_EQ(directory.err.find("target from"), std::string::npos) << Show(directory);
  for (const Outcome* o : {&file, &directory}) EXPECT_EQ(o->err.find(".ms2vllm-"), std::string::npos) << Show(*o);
  EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});

  // As in convert, a GPTQ flag given for AWQ is a mistake, not something to ignore.
  ExpectError(Ms2vllm({"verify", "--model", in.model, "--json", in.json, "--converted", dir / "out", "--target_tool",
                       "awq", "--gptq-format", "v2"}),
              kUsage, "--gptq-format applies to --target_tool gptq");
}

// A per-channel 4-bit weight whose description starts with "version" reads as packed two values
// a byte (msModelSlim's ascendV1) or not: --packed decides, and --verify must read the input the
// way the conversion did, or it finds the conversion wrong.
TEST(Cli, ConvertVerifyReadsTheInputWithTheConversionsPacking) {
  TempDir dir;
  testing::MsCheckpoint checkpoint;
  checkpoint.Describe("version", "1.0.0");
  checkpoint.Describe("model_quant_type", "W4A16");
  testing::MsLinearOptions options;
  options.out = 8;
  options.in = 64;
  options.groups = 1;
  checkpoint.AddLinear("model.layers.0.mlp.down_proj", testing::MakeMsLinear(options), "W4A16");  // unpacked
  fs::create_directories(dir / "in");
  checkpoint.WriteInto(dir / "in");
  const std::vector<std::string> convert = {"--model", dir / "in", "--target_tool", "gptq", "--packed", "no", "-q"};
  std::vector<std::string> plain = convert, verified = convert;
  plain.insert(plain.end(), {"--save_path", dir / "plain.safetensors"});
  verified.insert(verified.end(), {"--save_path", dir / "verified.safetensors", "--verify"});
  const Outcome p = Ms2vllm(plain);
  ASSERT_EQ(p.exit_code, kOk) << Show(p);
  const Outcome v = Ms2vllm(verified);
  EXPECT_EQ(v.exit_code, kOk) << Show(v);
  ASSERT_TRUE(fs::exists(dir / "verified.safetensors"));
  EXPECT_EQ(testing::ReadText(dir / "verified.safetensors"), testing::ReadText(dir / "plain.safetensors"));
}

TEST(Cli, NothingLabelledQuantizedIsUnsupportedNamingTheDescription) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-gptq", dir.path());
  EditDescription(in.json, [](auto& description) {
    for (auto& item : description.items()) {
      if (item.key() != "model_quant_type" && item.value() == "W4A16") item.value() = "W8A8";
    }
  });
  const Outcome o = Ms2vllm({"--model", in.model, "--json", in.json, "--target_tool", "gptq", "--out-dir", dir / "od"});
  ExpectError(o, kUnsupported, in.json.string());
  EXPECT_CONTAINS(o.err, "nothing to convert");
  EXPECT_FALSE(fs::exists(dir / "od"));
  const Outcome inspected = Ms2vllm({"inspect", in.model, "--json", in.json});
  EXPECT_EQ(inspected.exit_code, kUnsupported) << Show(inspected);
  EXPECT_CONTAINS(inspected.out, "nothing to convert");
  // The report holds every problem; stderr the first, as one error line like any command's.
  EXPECT_TRUE(inspected.err.starts_with("ms2vllm: error: ")) << Show(inspected);
  EXPECT_CONTAINS(inspected.err, "nothing to convert");
  EXPECT_EQ(std::count(inspected.err.begin(), inspected.err.end(), '\n'), 1) << Show(inspected);
}

// Where no weights are found there is no report to print: the error line alone, naming the path
// and, for inspect, how to name the file (its PATH argument, not convert's --model).
TEST(Cli, InspectOfNoWeightsIsTheErrorLineAlone) {
  TempDir dir;
  fs::create_directories(dir / "empty");
  ExpectError(Ms2vllm({"inspect", dir / "nowhere"}), kInvalidInput, (dir / "nowhere").string() + ": cannot open");
  const Outcome empty = Ms2vllm({"inspect", dir / "empty"});
  ExpectError(empty, kInvalidInput, (dir / "empty").string() + ": no quant_model_weight*.safetensors found; name the file as PATH");
  const Outcome json = Ms2vllm({"inspect", dir / "empty", "--json-output"});  // scripts still get their object
  EXPECT_EQ(json.exit_code, kInvalidInput) << Show(json);
  EXPECT_EQ(nlohmann::json::parse(json.out)["ok"], false);
  ExpectError(Ms2vllm({"--model", dir / "empty", "--save_path", dir / "o.safetensors"}), kInvalidInput,
              "found; name the file with --model");
}

TEST(Cli, ACheckpointHoldingNoTensorOfTheDescriptionIsInvalidInputNamingBoth) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  testing::WriteText(dir / "empty.safetensors", std::string("\x02\0\0\0\0\0\0\0{}", 10));
  const fs::path weights = dir / "empty.safetensors";
  const Outcome o = Ms2vllm({"--model", weights, "--json", in.json, "--save_path", dir / "o.safetensors"});
  ExpectError(o, kInvalidInput, weights.string() + ": none of the checkpoint's tensors");
  EXPECT_CONTAINS(o.err, in.json.string());
  const Outcome inspected = Ms2vllm({"inspect", weights, "--json", in.json});
  EXPECT_EQ(inspected.exit_code, kInvalidInput) << Show(inspected);
  EXPECT_CONTAINS(inspected.out, "none of the checkpoint's tensors");
  // An index naming no tensor is the index's fault, not the description's.
  const fs::path index = dir / "empty.safetensors.index.json";
  testing::WriteText(index, R"({"metadata": {"total_size": 0}, "weight_map": {}})");
  ExpectError(Ms2vllm({"--model", index, "--json", in.json, "--save_path", dir / "o.safetensors"}), kInvalidInput,
              index.string() + ": \"weight_map\" is empty: the index names no tensor");
  const Outcome inspected_index = Ms2vllm({"inspect", index, "--json", in.json});
  EXPECT_EQ(inspected_index.exit_code, kInvalidInput) << Show(inspected_index);
  EXPECT_CONTAINS(inspected_index.err, index.string() + ": \"weight_map\" is empty: the index names no tensor");
  EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
}

TEST(Cli, AMissingWeightIsReportedNamingTheWeightsFile) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  auto tensors = testing::LoadTensors(in.model);
  tensors.erase("model.layers.0.self_attn.q_proj.weight");
  testing::WriteSafetensors(in.model, {tensors.begin(), tensors.end()});
  ExpectError(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "o.safetensors"}), kInvalidInput,
              in.model.string() + ": model.layers.0.self_attn.q_proj: ");
}

TEST(Cli, SavePathInAMissingDirectoryIsAnOutputError) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  ExpectError(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "no/such/dir/o.safetensors"}), kOutput,
              (dir / "no/such/dir").string());
  EXPECT_FALSE(fs::exists(dir / "no"));
}

TEST(Cli, OnErrorNoOutputNoTempFileAndAnExistingTargetIsUntouched) {
  TempDir dir;
  const Inputs in = CopyGolden("w8a16-g64-gptq", dir.path());
  testing::WriteText(dir / "res.safetensors", "precious");
  ExpectError(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "res.safetensors"}), kUnsupported,
              "W8A16");
  EXPECT_EQ(testing::ReadText(dir / "res.safetensors"), "precious");

  // A failure found while reading the data: an offset that is not an integer.
  testing::MsCheckpoint checkpoint;
  testing::MsLinear linear = testing::MakeMsLinear({});
  auto offsets = testing::Elements(*linear.offset);
  offsets[3] = 0.5;
  linear.offset = testing::MakeTensor(linear.offset->dtype, linear.offset->shape, offsets);
  checkpoint.AddLinear("l", linear, "W4A16");
  checkpoint.WriteWeights(dir / "w.safetensors");
  checkpoint.WriteDescription(dir / "d.json");
  ExpectError(Ms2vllm({"--model", dir / "w.safetensors", "--json", dir / "d.json", "--save_path", dir / "res.safetensors"}),
              kInvalidInput, "l.weight_offset");
  EXPECT_EQ(testing::ReadText(dir / "res.safetensors"), "precious");
  ExpectError(Ms2vllm({"--model", dir / "w.safetensors", "--json", dir / "d.json", "--save_path", dir / "new.safetensors"}),
              kInvalidInput, "l.weight_offset");
  EXPECT_FALSE(fs::exists(dir / "new.safetensors"));
  EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});
}

TEST(Cli, SavePathEqualToAnInputIsAnErrorAndTheInputIsUnchanged) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  const std::string model = testing::ReadText(in.model), json = testing::ReadText(in.json);
  ExpectError(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", in.model}), kUsage, in.model.string());
  ExpectError(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", in.json}), kUsage, in.json.string());
  // The same file under another name.
  fs::create_symlink(in.model, dir / "link.safetensors");
  ExpectError(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "link.safetensors"}), kUsage,
              "link.safetensors");
  EXPECT_EQ(testing::ReadText(in.model), model);
  EXPECT_EQ(testing::ReadText(in.json), json);
  EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});
}

// A symlinked target is written where it points, through every link, as the script's plain open
// would, even where it points to no file yet; the links stay. A name near NAME_MAX still gets a
// stage: its name is cut to fit.
TEST(Cli, SymlinkedAndLongTargetNamesAreWritten) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  const auto expected = testing::LoadTensors(testing::GoldenDir() / "w4a16-g64-awq" / "expected.safetensors");
  fs::create_directory(dir / "real");
  testing::WriteText(dir / "real/out.safetensors", "an older conversion");
  fs::create_symlink(dir / "real/out.safetensors", dir / "link.safetensors");
  Outcome o = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "link.safetensors", "--quiet"});
  ASSERT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_TRUE(fs::is_symlink(dir / "link.safetensors"));
  EXPECT_EQ(testing::LoadTensors(dir / "real/out.safetensors"), expected);
  // A dangling link, relative to its own directory, through a second link: the file is created.
  fs::create_directory(dir / "links");
  fs::create_symlink("../real/new.safetensors", dir / "links/dangling.safetensors");
  fs::create_symlink("links/dangling.safetensors", dir / "chain.safetensors");
  o = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "chain.safetensors", "--quiet"});
  ASSERT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_TRUE(fs::is_symlink(dir / "chain.safetensors"));
  EXPECT_TRUE(fs::is_symlink(dir / "links/dangling.safetensors"));
  EXPECT_EQ(testing::LoadTensors(dir / "real/new.safetensors"), expected);

  const std::string longest = std::string(255 - 12, 'a') + ".safetensors";  // 255 bytes, as `touch` takes
  o = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / longest, "--quiet"});
  ASSERT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_EQ(testing::LoadTensors(dir / longest), expected);
  EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});
}

// Parsed, a description takes about 7 times its size: one far larger than any model's is refused
// by its size (the file is sparse: it takes no disk).
TEST(Cli, ADescriptionOverTheSizeLimitIsInvalidInput) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  fs::resize_file(in.json, 256'000'001);
  ExpectError(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "o.safetensors"}), kInvalidInput,
              in.json.string() + ": 256000001 bytes, over the 256 MB");
  EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
}

// A mistyped option names the one meant, spelt as the user spells options.
TEST(Cli, AMistypedOptionNamesTheLikeliestOne) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  ExpectError(Ms2vllm({"--model", in.model, "--savepath", dir / "o.safetensors"}), kUsage,
              "(--savepath: did you mean --save_path?) (see --help)");
  ExpectError(Ms2vllm({"--model", in.model, "--target-tol", "gptq"}), kUsage, "(--target-tol: did you mean --target-tool?)");
  ExpectError(Ms2vllm({"--model", in.model, "--w-bits=4"}), kUsage, "(--w-bits: did you mean --w-bit?)");
  ExpectError(Ms2vllm({"verify", "--model", in.model, "--convertd", dir.path()}), kUsage,
              "(--convertd: did you mean --converted?) (see ms2vllm verify --help)");
  // A path given without --model.
  ExpectError(Ms2vllm({in.model.string(), "--save_path", dir / "o.safetensors"}), kUsage,
              "(to convert it: ms2vllm --model " + in.model.string() + " ...)");
  // An option's value forgotten: the next option is not taken for it.
  ExpectError(Ms2vllm({"--max-shard-size", "--model", in.model, "--out-dir", dir / "d"}), kUsage,
              "--max-shard-size needs a value, not the option --model (see --help)");
  ExpectError(Ms2vllm({"--model", in.model, "--save_path", "--w_bit=8"}), kUsage,
              "--save_path needs a value, not the option --w_bit=8");
  ExpectError(Ms2vllm({"verify", "--model", "--converted", dir.path()}), kUsage,
              "--model needs a value, not the option --converted (see ms2vllm verify --help)");
  // An option of ms2vllm's own given twice, under either spelling, with '=' or without: which one
  // was meant? (The script's flags take the last, as argparse did: DropEarlierScriptFlags.)
  ExpectError(Ms2vllm({"--model", in.model, "--save_path", dir / "a", "--threads=1", "--threads", "2"}), kUsage,
              "--threads is given twice (1, then 2): give it once (see --help)");
  ExpectError(Ms2vllm({"--model", in.model, "--threads", "2", "--threads", "2", "--threads", "1"}), kUsage,
              "--threads is given 3 times (2, 2, 1): give it once (see --help)");
  ExpectError(Ms2vllm({"verify", "--model", in.model, "--converted", "x", "--threads", "2", "--converted", "y"}), kUsage,
              "--converted is given twice (x, then y): give it once (see ms2vllm verify --help)");
  const Outcome far = Ms2vllm({"--model", in.model, "--frobnicate"});
  ExpectError(far, kUsage, "--frobnicate");
  EXPECT_EQ(far.err.find("did you mean"), std::string::npos) << Show(far);
  EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
  EXPECT_FALSE(fs::exists(dir / "d"));
}

// argparse takes the last of a flag given twice: a wrapper running `ms_to_vllm.py $DEFAULTS "$@"`
// overrode its defaults so. The script's five flags do the same here, under any spelling, and say so.
TEST(Cli, ScriptFlagsGivenTwiceTakeTheLastAsArgparseDid) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-gptq", dir.path());
  const Outcome once = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "once.safetensors",
                                "--target_tool", "gptq"});
  ASSERT_EQ(once.exit_code, kOk) << Show(once);
  const std::string expected = testing::ReadText(dir / "once.safetensors");
  const Outcome o = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "a.safetensors", "--target_tool",
                             "awq", "--save-path=" + (dir / "b.safetensors").string(), "--target", "gptq"});
  ASSERT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_FALSE(fs::exists(dir / "a.safetensors"));
  EXPECT_TRUE(testing::ReadText(dir / "b.safetensors") == expected);
  EXPECT_NE(o.err.find("ms2vllm: warning: --save_path is given twice (" + (dir / "a.safetensors").string() + ", then " +
                      (dir / "b.safetensors").string() + "): " + (dir / "b.safetensors").string() +
                      " is used, as the script used the last\n"),
            std::string::npos) << Show(o);
  EXPECT_NE(o.err.find("--target_tool is given twice (awq, then gptq): gptq is used"), std::string::npos) << Show(o);
  // -q keeps the warning back, as it does every other.
  const Outcome quiet = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "c.safetensors",
                                 "--save_path", dir / "d.safetensors", "--target_tool", "gptq", "-q"});
  ASSERT_EQ(quiet.exit_code, kOk) << Show(quiet);
  EXPECT_EQ(quiet.err, "");
  EXPECT_FALSE(fs::exists(dir / "c.safetensors"));
  EXPECT_TRUE(testing::ReadText(dir / "d.safetensors") == expected);
  // Three times: one note, naming every value and the last as the one used.
  const Outcome thrice = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", "e", "--save_path", "e",
                                  "--save_path", dir / "f.safetensors", "--target_tool", "gptq"});
  ASSERT_EQ(thrice.exit_code, kOk) << Show(thrice);
  EXPECT_NE(thrice.err.find("ms2vllm: warning: --save_path is given 3 times (e, e, " + (dir / "f.safetensors").string() +
                            "): " + (dir / "f.safetensors").string() + " is used"),
            std::string::npos) << Show(thrice);
  EXPECT_TRUE(testing::ReadText(dir / "f.safetensors") == expected);
  // A last one without its value is that mistake, said before any note.
  const Outcome unfinished = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "g.safetensors",
                                      "--target_tool", "gptq", "--save_path"});
  ExpectError(unfinished, kUsage, "--save_path needs a value (see --help)");
  EXPECT_EQ(unfinished.err.find("warning"), std::string::npos) << Show(unfinished);
  ExpectError(Ms2vllm({"--model", in.model, "--save_path", "h", "--save_path", "--target_tool", "gptq"}), kUsage,
              "--save_path needs a value, not the option --target_tool (see --help)");
  // "--save_path=" is no value: CLI11 would take the next argument for it and write a file of that
  // name. "--" ends the options: what follows is no value of one before it.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path());
  ExpectError(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path=", "--dry-run"}), kUsage,
              "--save_path needs a value (see --help)");
  ExpectError(Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", "--", "--save_path", "i", "--dry-run"}), kUsage,
              "--save_path needs a value (see --help)");
  fs::current_path(cwd);
  EXPECT_FALSE(fs::exists(dir / "--dry-run"));
  EXPECT_FALSE(fs::exists(dir / "i"));
}

TEST(Cli, DryRunPrintsThePlanAndWritesNothing) {
  TempDir dir;
  const Inputs in = CopyGolden("w4a16-g64-awq", dir.path());
  const Outcome o = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "o.safetensors", "--dry-run"});
  EXPECT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_CONTAINS(o.out, "plan: 4-bit, group size 64, awq, asymmetric, ");
  EXPECT_CONTAINS(o.out, "model.layers.0.self_attn.q_proj.qweight");
  EXPECT_CONTAINS(o.out, "model.layers.0.mlp.down_proj.qzeros");
  EXPECT_CONTAINS(o.out, "\noutput: " + (dir / "o.safetensors").string() + " (new)\n");
  EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
  const Outcome d = Ms2vllm({"--model", in.model, "--json", in.json, "--out-dir", dir / "out", "--dry-run"});
  EXPECT_EQ(d.exit_code, kOk) << Show(d);
  EXPECT_CONTAINS(d.out, "model.safetensors");
  EXPECT_CONTAINS(d.out, "\noutput: " + (dir / "out").string() + " (new)\n");
  // Sizes in any unit transformers reads, and terabytes: one file.
  for (const char* size : {"2TB", "1tib", "5GB", "500MiB"}) {
    const Outcome sized = Ms2vllm({"--model", in.model, "--json", in.json, "--out-dir", dir / "out", "--max-shard-size", size,
                                   "--dry-run", "-q"});
    EXPECT_EQ(sized.exit_code, kOk) << size << Show(sized);
    EXPECT_CONTAINS(sized.out, "\nfile model.safetensors: ");
  }
  EXPECT_FALSE(fs::exists(dir / "out"));
  // What --force would delete is said before it does.
  testing::WriteText(dir / "o.safetensors", "older");
  fs::create_directories(dir / "earlier");
  testing::WriteText(dir / "earlier/config.json", R"({"quantization_config": {"quant_method": "awq"}})");
  const Outcome over_file = Ms2vllm({"--model", in.model, "--json", in.json, "--save_path", dir / "o.safetensors", "--dry-run"});
  EXPECT_CONTAINS(over_file.out, "\noutput: " + (dir / "o.safetensors").string() + " (replaces the file there)\n");
  const Outcome over_dir = Ms2vllm({"--model", in.model, "--json", in.json, "--out-dir", dir / "earlier", "--force", "--dry-run"});
  EXPECT_CONTAINS(over_dir.out,
                  "\noutput: " + (dir / "earlier").string() + " (replaces the earlier conversion there, every file in it)\n");
  EXPECT_EQ(testing::ReadText(dir / "o.safetensors"), "older");
  EXPECT_TRUE(fs::exists(dir / "earlier/config.json"));
  fs::remove(dir / "o.safetensors");
  // With a base model, what the directory gets beside the weights, quantization_config included.
  fs::create_directories(dir / "base");
  testing::WriteText(dir / "base/config.json", R"({"model_type": "qwen2"})");
  testing::WriteText(dir / "base/tokenizer.json", "{}");
  testing::WriteText(dir / "base/model.safetensors", "float weights, never copied");
  const Outcome g = Ms2vllm({"--model", in.model, "--json", in.json, "--out-dir", dir / "out", "--base-model",
                             dir / "base", "--target_tool", "gptq", "--dry-run"});
  EXPECT_EQ(g.exit_code, kOk) << Show(g);
  EXPECT_CONTAINS(g.out, "plan: 4-bit, group size 64, gptq (v1), asymmetric, ");
  EXPECT_CONTAINS(g.out, "\nconfig.json: " + (dir / "base").string() + "'s, with quantization_config {\"quant_method\":\"gptq\",\"bits\":4,"
                         "\"group_size\":64,\"desc_act\":false,\"sym\":false,\"checkpoint_format\":\"gptq\"}\n");
  EXPECT_CONTAINS(g.out, "\nquantize_config.json: {\"quant_method\":\"gptq\"");
  EXPECT_CONTAINS(g.out, "\ncopied from " + (dir / "base").string() + ": tokenizer.json\n");
  EXPECT_FALSE(fs::exists(dir / "out"));
  EXPECT_EQ(StageLeftovers(dir.path()), std::vector<std::string>{});
}

// -q silences progress, the summary and warnings, but a --dry-run is run for its plan and
// warnings: it prints them (as --help says).
TEST(Cli, AQuietDryRunStillPrintsItsPlanAndWarnings) {
  TempDir dir;
  testing::MsCheckpoint checkpoint;
  checkpoint.AddLinear("l", testing::MakeMsLinear({}), "W4A16");
  checkpoint.AddUndescribed("stray", testing::MakeTensor(DType::kF32, {2}, {1, 2}));
  checkpoint.WriteWeights(dir / "w.safetensors");
  checkpoint.WriteDescription(dir / "d.json");
  const Outcome o = Ms2vllm(
      {"--model", dir / "w.safetensors", "--json", dir / "d.json", "--save_path", dir / "o.safetensors", "--dry-run", "-q"});
  EXPECT_EQ(o.exit_code, kOk) << Show(o);
  EXPECT_CONTAINS(o.out, "plan: 4-bit");
  EXPECT_CONTAINS(o.err, "ms2vllm: warning: ");
  EXPECT_CONTAINS(o.err, "not in the description");
  EXPECT_CONTAINS(o.err, "stray");
  EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
}

// synth --force replaces only what synth wrote (its marker file): never msModelSlim's own
// checkpoint, nor a conversion. Either stays whole, and the message names the missing marker.
TEST(Cli, SynthForceReplacesOnlyAnEarlierSynthesis) {
  TempDir dir;
  ASSERT_EQ(Ms2vllm({"synth", "--preset", "tiny", "--out", dir / "ckpt", "-q"}).exit_code, kOk);
  EXPECT_TRUE(fs::exists(dir / "ckpt/ms2vllm-synthetic.txt"));
  testing::WriteText(dir / "ckpt/notes.txt", "mine");
  const Outcome again = Ms2vllm({"synth", "--preset", "tiny", "--layers", "3", "--out", dir / "ckpt", "--force", "-q"});
  ASSERT_EQ(again.exit_code, kOk) << Show(again);
  EXPECT_FALSE(fs::exists(dir / "ckpt/notes.txt"));

  // msModelSlim's output: a description beside the weights, no marker.
  fs::create_directories(dir / "real");
  for (const char* name : {"quant_model_description_w4a16.json", "quant_model_weight_w4a16.safetensors", "config.json"}) {
    fs::copy_file(dir / "ckpt" / name, dir / "real" / name);
  }
  const auto before = testing::ReadText(dir / "real/quant_model_weight_w4a16.safetensors");
  const Outcome over_real = Ms2vllm({"synth", "--preset", "tiny", "--out", dir / "real", "--force", "-q"});
  ExpectError(over_real, kOutput, (dir / "real").string() + ": is not an earlier synthetic checkpoint (no ms2vllm-synthetic.txt)");
  EXPECT_EQ(testing::ReadText(dir / "real/quant_model_weight_w4a16.safetensors"), before);

  // A conversion is convert's to replace, not synth's.
  ASSERT_EQ(Ms2vllm({"--model", dir / "ckpt", "--out-dir", dir / "awq", "-q"}).exit_code, kOk);
  const Outcome over_conversion = Ms2vllm({"synth", "--preset", "tiny", "--out", dir / "awq", "--force", "-q"});
  ExpectError(over_conversion, kOutput, "is not an earlier synthetic checkpoint");
  EXPECT_TRUE(fs::exists(dir / "awq/model.safetensors"));
}

// One shard given alone fails whichever check its missing tensors meet first (here: the last
// shard holds no quantized linear); the error says it is a shard and what to give instead.
TEST(Cli, ALoneShardsErrorSaysToGiveItsIndex) {
  TempDir dir;
  ASSERT_EQ(Ms2vllm({"synth", "--preset", "tiny", "--out", dir / "in", "--max-shard-size", "50KB", "-q"}).exit_code, kOk);
  const fs::path last = dir / "in/quant_model_weight_w4a16-00006-of-00006.safetensors";
  ASSERT_TRUE(fs::exists(last));
  const Outcome o = Ms2vllm({"--model", last, "--save_path", dir / "o.safetensors"});
  ExpectError(o, kUnsupported, last.string() + ": ");
  EXPECT_CONTAINS(o.err, "(quant_model_weight_w4a16-00006-of-00006.safetensors is shard 6 of 6: give its index, "
                         "quant_model_weight_w4a16.safetensors.index.json, or its directory)\n");
  EXPECT_FALSE(fs::exists(dir / "o.safetensors"));
}

// Linears of two group sizes: the drop-in mode converts them, as the script does, and warns that
// no quantization_config describes them; --out-dir, which writes one, refuses them naming the file.
TEST(Cli, LinearsOfTwoGroupSizesAreWarnedOfOrRefused) {
  TempDir dir;
  testing::MsCheckpoint checkpoint;
  testing::MsLinearOptions options;  // [24, 96]
  options.groups = 2;
  checkpoint.AddLinear("model.layers.0.mlp.up_proj", testing::MakeMsLinear(options), "W4A16");
  options.groups = 3;
  checkpoint.AddLinear("model.layers.0.mlp.gate_proj", testing::MakeMsLinear(options), "W4A16");
  checkpoint.WriteWeights(dir / "w.safetensors");
  checkpoint.WriteDescription(dir / "d.json");
  testing::WriteText(dir / "config.json", R"({"model_type": "qwen2"})");
  const Outcome dropped_in = Ms2vllm({"--model", dir / "w.safetensors", "--json", dir / "d.json", "--save_path",
                                      dir / "o.safetensors", "--target_tool", "gptq"});
  EXPECT_EQ(dropped_in.exit_code, kOk) << Show(dropped_in);
  EXPECT_CONTAINS(dropped_in.err, "ms2vllm: warning: linears disagree on the group size: converted as they are");
  EXPECT_CONTAINS(dropped_in.err, "model.layers.0.mlp.gate_proj (group 32) and model.layers.0.mlp.up_proj (group 48)");
  EXPECT_TRUE(fs::exists(dir / "o.safetensors"));
  const Outcome directory = Ms2vllm({"--model", dir / "w.safetensors", "--json", dir / "d.json", "--out-dir", dir / "od",
                                     "--target_tool", "gptq"});
  ExpectError(directory, kUnsupported, (dir / "w.safetensors").string() + ": linears disagree on the group size: ");
  EXPECT_FALSE(fs::exists(dir / "od"));
}

TEST(Cli, SynthTinyThenConvert) {
  TempDir dir;
  const Outcome synth = Ms2vllm({"synth", "--preset", "tiny", "--out", dir / "ckpt", "--quiet"});
  ASSERT_EQ(synth.exit_code, kOk) << Show(synth);
  EXPECT_EQ(synth.out + synth.err, "");
  const Outcome awq = Ms2vllm({"--model", dir / "ckpt", "--save_path", dir / "awq.safetensors", "--quiet"});
  ASSERT_EQ(awq.exit_code, kOk) << Show(awq);
  const auto tensors = testing::LoadTensors(dir / "awq.safetensors");
  EXPECT_TRUE(tensors.contains("model.layers.0.self_attn.q_proj.qweight"));
  EXPECT_TRUE(tensors.contains("model.layers.0.mlp.down_proj.qzeros"));
  // A model directory: the group size is detected from the tensors (128, with [out, 1] scales
  // on the 128-wide linears).
  const Outcome gptq = Ms2vllm({"convert", "--model", dir / "ckpt", "--out-dir", dir / "gptq", "--target_tool", "gptq", "-q"});
  ASSERT_EQ(gptq.exit_code, kOk) << Show(gptq);
  const auto config = nlohmann::json::parse(testing::ReadText(dir / "gptq/quantize_config.json"));
  EXPECT_EQ(config["group_size"], 128);
  EXPECT_EQ(config["bits"], 4);
}

}  // namespace
}  // namespace ms2vllm
