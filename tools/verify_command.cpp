// `ms2vllm verify --model SRC --converted OUT [...]`: proves OUT the exact conversion of SRC.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/verify.h"
#include "io/json_scan.h"
#include "tools/cli_support.h"
#include "tools/command_line.h"
#include "tools/commands.h"
#include "tools/exit_codes.h"
#include "tools/progress.h"

namespace ms2vllm {
namespace {

constexpr const char* kDescription =
    "Checks that a converted checkpoint is exactly the conversion of its msModelSlim input: every tensor present "
    "with the right dtype and shape and nothing else, copied tensors byte-equal, and every quantized linear "
    "dequantizing, as AutoAWQ / AutoGPTQ v1 / GPTQ v2 read it, to exactly msModelSlim's (q - offset) * scale. Of a "
    "model directory, also its configs, shard index and dtype. Reads both in bounded memory. Exit status 0 when all "
    "of that holds, 6 when it does not; as for a conversion, 2 for bad flags, 3 when an input cannot be read, 5 "
    "when the machine runs out of memory or descriptors.";

constexpr const char* kExamples = R"(Examples:
  ms2vllm verify --model ckpt/ --converted res.safetensors --target_tool gptq
  ms2vllm verify --model ckpt/ --converted qwen2-7b-awq/     # target read from the directory's config)";

struct VerifyFlags {
  std::string model, json, converted, target, gptq_format, packed = "auto", scales_dtype, chunk_size = "4MB";
  std::optional<int> w_bit;
  int threads = 0;
  size_t examples = 5;
  bool quiet = false;
};

void AddFlags(CLI::App& app, VerifyFlags& f) {
  app.add_option("--model", f.model, "the msModelSlim input: a .safetensors file, a sharded index, or a directory")
      ->required()
      ->check(NonEmpty());
  app.add_option("--json", f.json, "its quant_model_description*.json (found beside the weights when omitted)")
      ->check(NonEmpty());
  app.add_option("--converted", f.converted, "the conversion: a .safetensors file, a sharded index, or an --out-dir directory")
      ->required()
      ->check(NonEmpty());
  app.add_option("--target_tool,--target-tool", f.target,
                 "awq or gptq (default: the directory's config, else the qweight shapes)")
      ->check(CLI::IsMember({"awq", "gptq"}));
  app.add_option("--gptq-format,--gptq_format", f.gptq_format, "v1 or v2 (default: the directory's config, else v1)")
      ->check(CLI::IsMember({"v1", "v2"}));
  app.add_option("--w_bit,--w-bit", f.w_bit, "4 or 8; taken from the description when omitted")->transform(FourOrEight());
  app.add_option("--packed", f.packed, "input holds two 4-bit values per byte (ascendV1): auto, yes or no")
      ->check(CLI::IsMember({"auto", "yes", "no"}))->capture_default_str();
  app.add_option("--scales-dtype", f.scales_dtype,
                 "keep, f16 or bf16, as given to convert (default: the input's dtype or its cast to f16/bf16)")
      ->check(CLI::IsMember({"keep", "f16", "bf16"}));
  app.add_option("--max-differences", f.examples, "differences listed per wrong tensor")->capture_default_str();
  app.add_option("--threads", f.threads, "worker threads (default and most: every core)")->check(CLI::Range(1, 4096));
  app.add_option("--chunk-size", f.chunk_size, "input bytes per block of rows")->capture_default_str();
  app.add_flag("-q,--quiet", f.quiet, "no progress bar; print only what is wrong");
  app.footer(kExamples);
}

Result<VerifyRequest> MakeRequest(const VerifyFlags& f) {
  VerifyRequest request;
  request.model = f.model;
  if (!f.json.empty()) request.json = f.json;
  request.converted = f.converted;
  if (!f.target.empty()) request.target = f.target == "gptq" ? TargetTool::kGptq : TargetTool::kAwq;
  if (!f.gptq_format.empty()) request.gptq_format = f.gptq_format == "v2" ? GptqFormat::kV2 : GptqFormat::kV1;
  if (!f.scales_dtype.empty()) {
    request.scales_dtype = f.scales_dtype == "f16" ? ScalesDType::kF16 : f.scales_dtype == "bf16" ? ScalesDType::kBF16 : ScalesDType::kKeep;
  }
  request.w_bit = f.w_bit;
  request.packed = f.packed == "yes" ? PackedMode::kYes : f.packed == "no" ? PackedMode::kNo : PackedMode::kAuto;
  MS2VLLM_ASSIGN_OR_RETURN(request.settings.chunk_bytes, ParseSizeOption("--chunk-size", f.chunk_size, "4MB"));
  request.settings.threads = f.threads;
  request.settings.examples = f.examples;
  return request;
}

std::string TargetText(const VerifyReport& report) {
  return std::string(TargetName(report.target, report.gptq_format)) + " " + std::to_string(report.bits) + "-bit";
}

}  // namespace

int PrintVerifyReport(const VerifyReport& report, bool quiet, std::FILE* out) {
  for (const auto& problem : report.problems) {
    std::fprintf(out, "ms2vllm: verify: %s: %s\n", Printable(problem.tensor).c_str(), Printable(problem.problem).c_str());
    for (const auto& example : problem.examples) std::fprintf(out, "    %s\n", Printable(example).c_str());
  }
  const std::string converted = Printable(report.converted.string());
  const std::string source = report.target_source.empty() ? "" : "target from " + report.target_source;
  if (!report.ok()) {
    // No tensors planned: the converted weights could not be read, which the problem line says.
    std::vector<std::string> about;
    if (report.tensors > 0) about.push_back(std::to_string(report.tensors) + " tensors planned");
    if (!source.empty()) about.push_back(source);
    const std::string aside = about.empty() ? "" : " (" + about.front() + (about.size() > 1 ? ", " + about[1] : "") + ")";
    const std::string hint = report.hint.empty() ? "" : "; " + report.hint;
    std::fprintf(out, "ms2vllm: verify: FAILED: %zu problem(s): %s is not the exact %s conversion of the input%s%s\n",
                 report.problems.size(), converted.c_str(), TargetText(report).c_str(), aside.c_str(), hint.c_str());
    return ExitCodeFor(ErrorCode::kVerifyFailed);
  }
  if (!quiet) {
    // Exact against the cast, which rounds: said, with the scales the cast lost, as the conversion warned.
    std::string cast;
    if (report.scales_cast > 0) {
      cast = "; " + std::to_string(report.scales_cast) + " scales matched their --scales-dtype cast, which rounds them";
      if (report.scales_lost > 0) cast += ", and made " + std::to_string(report.scales_lost) + " of them 0 or infinite";
    }
    std::fprintf(out, "ms2vllm: verify: OK: %s is the exact %s conversion of the input: %llu tensors, %llu linears, "
                 "%llu quantized values and %.2f MB of copies compared, %.2f s%s%s\n",
                 converted.c_str(), TargetText(report).c_str(), static_cast<unsigned long long>(report.tensors),
                 static_cast<unsigned long long>(report.linears), static_cast<unsigned long long>(report.values),
                 report.copied_bytes / 1e6, report.seconds, (source.empty() ? "" : ", " + source).c_str(), cast.c_str());
  }
  return kExitOk;
}

namespace {

int VerifyAndReport(VerifyRequest request, bool quiet, std::FILE* out) {
  std::atomic<uint64_t> done{0}, total{0};
  request.settings.cancel = &InterruptFlag();
  request.settings.progress = &done;
  request.settings.progress_total = &total;
  Result<VerifyReport> report = [&] {
    ProgressBar bar(done, total, !quiet);
    return Verify(request);
  }();
  if (!report) return ReportError(report.error());
  const int status = PrintVerifyReport(*report, quiet, out);
  // The report goes to `out`; a failure also gets the one error line every command gives.
  if (!report->ok()) ReportError(VerifyFailure(*report));
  return status;
}

}  // namespace

int RunVerify(int argc, char** argv) {
  CLI::App app{kDescription};
  app.name("ms2vllm verify");
  VerifyFlags flags;
  AddFlags(app, flags);
  if (auto status = ParseCommandLine(app, argc, argv, "ms2vllm verify --help")) return *status;
  if (!flags.gptq_format.empty() && flags.target == "awq") {
    return ReportError(MakeError(ErrorCode::kUsage, "--gptq-format applies to --target_tool gptq (see --help)"));
  }
  auto request = MakeRequest(flags);
  if (!request) return ReportError(request.error());
  InstallInterruptHandlers();
  return VerifyAndReport(std::move(*request), flags.quiet, stdout);
}

}  // namespace ms2vllm
