// `ms2vllm [convert] --model FILE --json FILE [--save_path FILE] [--w_bit 4|8] [--target_tool awq|gptq] ...`
#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>

#include "engine/convert.h"
#include "engine/verify.h"
#include "io/json_scan.h"
#include "tools/cli_support.h"
#include "tools/command_line.h"
#include "tools/commands.h"
#include "tools/exit_codes.h"
#include "tools/plan_printer.h"
#include "tools/progress.h"

namespace ms2vllm {
namespace {

constexpr const char* kExamples = R"(Examples:
  # drop-in for msModelSlim's ms_to_vllm.py (AutoAWQ layout, res.safetensors)
  ms2vllm --model quant_model_weight_w4a16.safetensors --json quant_model_description_w4a16.json
  # AutoGPTQ layout, bit width taken from the description
  ms2vllm --model w8.safetensors --json desc.json --save_path out/gptq.safetensors --target_tool gptq
  # a model directory vLLM and transformers load as is, from a sharded checkpoint
  ms2vllm convert --model ckpt/ --out-dir qwen2-7b-awq
  # the same, with the float model's configs and tokenizer from its own directory
  ms2vllm convert --model ckpt/ --out-dir qwen2-7b-awq --base-model Qwen2-7B-Instruct
  # show the plan and every warning, write nothing
  ms2vllm --model ckpt/ --target_tool gptq --dry-run)";

struct ConvertFlags {
  std::string model, json, save_path = "res.safetensors", out_dir, base_model;
  std::optional<int> w_bit;
  std::string target = "awq", gptq_format = "v1", packed = "auto", scales_dtype = "keep";
  std::string max_shard_size = "5GB", chunk_size = "4MB", kernels;
  int threads = 0;
  bool quiet = false, dry_run = false, force = false, verify = false;
};

void AddFlags(CLI::App& app, ConvertFlags& f) {
  app.add_option("--model", f.model, "msModelSlim weights: a .safetensors file, a sharded .safetensors.index.json, or a directory")
      ->required()
      ->check(NonEmpty());
  app.add_option("--json", f.json, "the quant_model_description*.json (found beside the weights when omitted)")
      ->check(NonEmpty());
  auto* save_path = app.add_option("--save_path,--save-path", f.save_path, "output file; its directory must exist")
                        ->capture_default_str()
                        ->check(NonEmpty());
  app.add_option("--w_bit,--w-bit", f.w_bit, "4 or 8; taken from the description when omitted")->transform(FourOrEight());
  app.add_option("--target_tool,--target-tool", f.target, "awq or gptq")->check(CLI::IsMember({"awq", "gptq"}))->capture_default_str();
  app.add_option("--gptq-format,--gptq_format", f.gptq_format, "v1 (checkpoint_format gptq) or v2 (gptq_v2, exact for zero point 0)")
      ->check(CLI::IsMember({"v1", "v2"}))->capture_default_str();
  app.add_option("--packed", f.packed, "two 4-bit values per byte (msModelSlim ascendV1): auto, yes or no")
      ->check(CLI::IsMember({"auto", "yes", "no"}))->capture_default_str();
  auto* out_dir = app.add_option("--out-dir,--out_dir", f.out_dir, "write a loadable model directory instead of --save_path")
                      ->excludes(save_path)
                      ->check(NonEmpty());
  app.add_option("--base-model,--base_model", f.base_model, "the float model's directory: config.json, tokenizer, ... (with --out-dir; without it, the configs "
                 "msModelSlim copied beside the weights)")
      ->needs(out_dir)
      ->check(NonEmpty());
  app.add_option("--max-shard-size", f.max_shard_size, "shard limit with --out-dir: bytes, KB, MB, GB, TB (or KiB, MiB, GiB, TiB; any case); a larger "
                 "tensor gets a shard of its own, as in transformers")
      ->capture_default_str()
      ->needs(out_dir);
  app.add_option("--scales-dtype", f.scales_dtype, "keep (the input's dtype, as the script writes), f16 or bf16")
      ->check(CLI::IsMember({"keep", "f16", "bf16"}))->capture_default_str();
  app.add_flag("--force", f.force, "replace an existing --out-dir that holds an earlier conversion (an empty one needs no --force)")->needs(out_dir);
  auto* dry_run = app.add_flag("--dry-run,--dry_run", f.dry_run, "print the plan and every warning; write nothing");
  app.add_flag("--verify", f.verify,
               "prove the output exact as `ms2vllm verify` does before it replaces the target (exit 6 if not)")
      ->excludes(dry_run);
  app.add_option("--threads", f.threads, "worker threads (default and most: every core)")->check(CLI::Range(1, 4096));
  app.add_option("--chunk-size", f.chunk_size, "input bytes per unit of work")->capture_default_str();
  app.add_option("--kernels", f.kernels, "force a kernel variant (scalar, avx2, avx512, neon); also MS2VLLM_KERNELS");
  app.add_flag("-q,--quiet", f.quiet, "no progress bar, summary or warnings (a --dry-run still prints its plan and warnings)");
  app.footer(kExamples);
}

Result<ConvertRequest> MakeRequest(const ConvertFlags& f) {
  ConvertRequest request;
  request.model = f.model;
  if (!f.json.empty()) request.json = f.json;
  request.save_path = f.save_path;
  if (!f.out_dir.empty()) request.out_dir = f.out_dir;
  if (!f.base_model.empty()) request.base_model = f.base_model;
  request.force = f.force;
  request.dry_run = f.dry_run;
  MS2VLLM_ASSIGN_OR_RETURN(request.max_shard_bytes, ParseSizeOption("--max-shard-size", f.max_shard_size, "5GB"));
  MS2VLLM_ASSIGN_OR_RETURN(request.execution.chunk_bytes, ParseSizeOption("--chunk-size", f.chunk_size, "4MB"));
  request.execution.threads = f.threads;
  MS2VLLM_ASSIGN_OR_RETURN(request.execution.kernels, ChooseKernels(f.kernels));
  request.plan.target = f.target == "gptq" ? TargetTool::kGptq : TargetTool::kAwq;
  request.plan.w_bit = f.w_bit;
  request.plan.gptq_format = f.gptq_format == "v2" ? GptqFormat::kV2 : GptqFormat::kV1;
  request.plan.packed = f.packed == "yes" ? PackedMode::kYes : f.packed == "no" ? PackedMode::kNo : PackedMode::kAuto;
  request.plan.scales_dtype = f.scales_dtype == "f16" ? ScalesDType::kF16 : f.scales_dtype == "bf16" ? ScalesDType::kBF16 : ScalesDType::kKeep;
  return request;
}

// --verify: the staged output checked as `ms2vllm verify` would, with the conversion's inputs and
// options; what it reports names the output as the user will find it, not by the stage's name.
Status VerifyStaged(const ConvertRequest& convert, const std::filesystem::path& staged, std::atomic<uint64_t>& done,
                    std::atomic<uint64_t>& total, std::optional<VerifyReport>& verified) {
  VerifyRequest request;
  request.model = convert.model;
  request.json = convert.json;
  request.converted = staged;
  request.target = convert.plan.target;
  request.gptq_format = convert.plan.gptq_format;
  request.scales_dtype = convert.plan.scales_dtype;
  request.w_bit = convert.plan.w_bit;  // else the description's, as the conversion took it
  request.packed = convert.plan.packed;
  request.settings.threads = convert.execution.threads;
  request.settings.cancel = convert.execution.cancel;
  request.settings.progress = &done;
  request.settings.progress_total = &total;
  MS2VLLM_ASSIGN_OR_RETURN(verified, Verify(request));
  verified->target_source.clear();  // the conversion's own target, whether --target_tool was given or not
  const std::string stage_name = verified->weights.filename().string();
  verified->weights = convert.out_dir ? *convert.out_dir / verified->weights.filename() : convert.save_path;
  verified->converted = convert.out_dir ? *convert.out_dir : convert.save_path;
  for (auto& problem : verified->problems) {
    if (problem.tensor == stage_name) problem.tensor = verified->weights.filename().string();
  }
  if (!verified->ok()) return VerifyFailure(*verified);
  return Ok{};
}

void PrintSummary(const ConvertReport& report) {
  const double rate = report.seconds > 0 ? report.input_bytes / report.seconds : 0;
  std::fprintf(stderr, "ms2vllm: wrote %s: %zu tensors, %s in, %s out, %.2f s, %s/s\n", Printable(report.target.string()).c_str(),
               report.plan.tensors.size(), HumanBytes(report.input_bytes).c_str(), HumanBytes(report.output_bytes).c_str(),
               report.seconds, HumanBytes(rate).c_str());
}

}  // namespace

int RunConvert(int argc, char** argv) {
  CLI::App app{"Converts msModelSlim W4A16/W8A16 checkpoints to the AutoAWQ or AutoGPTQ layout (a drop-in for "
               "ms_to_vllm.py), or to a model directory vLLM loads as is (--out-dir). Other commands: ms2vllm verify, "
               "inspect and synth (each with --help)."};
  app.name("ms2vllm [convert]");
  ConvertFlags flags;
  AddFlags(app, flags);
  if (auto status = ParseCommandLine(app, argc, argv, "--help")) return *status;
  // A GPTQ option given for AWQ would be silently ignored: the user meant one of the two.
  if (app.count("--gptq-format") > 0 && flags.target != "gptq") {
    return ReportError(MakeError(ErrorCode::kUsage, "--gptq-format applies to --target_tool gptq (see --help)"));
  }
  auto request = MakeRequest(flags);
  if (!request) return ReportError(request.error());

  InstallInterruptHandlers();
  std::atomic<uint64_t> done{0}, total{0};
  request->execution.cancel = &InterruptFlag();
  request->execution.progress = &done;
  request->execution.progress_total = &total;
  const bool show_progress = !flags.quiet && !flags.dry_run;
  std::optional<ProgressBar> bar;
  std::optional<VerifyReport> verified;
  if (flags.verify) {
    request->check_before_commit = [&](const std::filesystem::path& staged) -> Status {
      bar.reset();  // a new bar, over the bytes verify reads
      done = 0;
      total = 0;
      bar.emplace(done, total, show_progress);
      return VerifyStaged(*request, staged, done, total, verified);
    };
  }
  bar.emplace(done, total, show_progress);
  Result<ConvertReport> report = Convert(*request);
  bar.reset();
  if (!report) {
    if (!verified || verified->ok()) return ReportError(report.error());
    PrintVerifyReport(*verified, flags.quiet, stderr);
    const std::filesystem::path target = request->out_dir ? *request->out_dir : request->save_path;
    return ReportError(MakeError(ErrorCode::kVerifyFailed, target.string() + ": not written: the conversion failed "
                                                           "its verification (an ms2vllm bug: please report it)"));
  }
  if (flags.dry_run) PrintPlan(*request, *report, stdout);
  if (!flags.quiet || flags.dry_run) {
    for (const auto& line : report->warnings.Lines()) PrintWarning(line);
  }
  if (flags.dry_run) return kExitOk;
  if (!flags.quiet) PrintSummary(*report);
  if (verified) return PrintVerifyReport(*verified, flags.quiet, stderr);
  return kExitOk;
}

}  // namespace ms2vllm
