// `ms2vllm synth --preset NAME --out DIR ...`: a synthetic msModelSlim checkpoint.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "engine/synth_writer.h"
#include "io/json_scan.h"
#include "tools/cli_support.h"
#include "tools/command_line.h"
#include "tools/commands.h"
#include "tools/exit_codes.h"
#include "tools/progress.h"

namespace ms2vllm {
namespace {

std::optional<DType> FloatDType(const std::string& name) {
  if (name == "f32") return DType::kF32;
  if (name == "f16") return DType::kF16;
  if (name == "bf16") return DType::kBF16;
  return std::nullopt;
}

}  // namespace

int RunSynth(int argc, char** argv) {
  CLI::App app{"Writes a synthetic msModelSlim W4A16/W8A16 checkpoint with real model shapes and seeded random values."};
  app.name("ms2vllm synth");
  std::string preset = "qwen2-0.5b", out, scale_dtype = "f32", float_dtype = "bf16", max_shard = "0", float_linears;
  int64_t layers = -1;
  int bits = 4, threads = 0;
  int64_t group_size = 128;
  uint64_t seed = 0;
  bool per_channel = false, sym = false, anti_outlier = false, packed = false, legacy = false, full_range = false;
  bool force = false, quiet = false;
  app.add_option("--preset", preset, "model shape")->check(CLI::IsMember(ModelShapeNames()))->capture_default_str();
  app.add_option("--out", out, "directory to create")->required()->check(NonEmpty());
  app.add_option("--layers", layers, "number of decoder layers (default: the preset's)")->check(CLI::Range(int64_t{0}, int64_t{100000}));
  app.add_option("--w-bit,--w_bit", bits, "4 or 8")->transform(FourOrEight())->capture_default_str();
  app.add_option("--group-size", group_size, "group size (ignored with --per-channel)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_flag("--per-channel", per_channel, "one scale per output channel");
  app.add_flag("--sym", sym, "symmetric: all-zero offsets");
  app.add_option("--scale-dtype", scale_dtype, "f32, f16 or bf16")->check(CLI::IsMember({"f32", "f16", "bf16"}))->capture_default_str();
  app.add_option("--float-dtype", float_dtype, "dtype of unquantized tensors")->check(CLI::IsMember({"f32", "f16", "bf16"}))->capture_default_str();
  app.add_flag("--anti-outlier", anti_outlier, "AWQ-style 'm3' norms (.module.weight/.module.bias)");
  app.add_flag("--packed", packed, "msModelSlim ascendV1 layout: two 4-bit values per byte, no offsets");
  app.add_flag("--legacy-scales", legacy, "[out*G, 1] scales and offsets");
  app.add_flag("--full-offset-range", full_range, "offsets may reach -2^(b-1) (zero point 0)");
  app.add_option("--float-linears", float_linears, "comma-separated linear suffixes left in float, e.g. mlp.down_proj");
  app.add_option("--seed", seed, "random seed")->capture_default_str();
  app.add_option("--max-shard-size", max_shard, "shard the weights (bytes, KB, MB, GB, TB; 0: one file)")->capture_default_str();
  app.add_option("--threads", threads, "worker threads (default and most: every core)")->check(CLI::Range(1, 4096));
  app.add_flag("--force", force, "replace an existing --out directory that holds an earlier synthetic checkpoint");
  app.add_flag("-q,--quiet", quiet, "no progress bar or summary");
  if (auto status = ParseCommandLine(app, argc, argv, "ms2vllm synth --help")) return *status;

  SynthRequest request;
  SynthOptions& o = request.options;
  o.shape = *FindModelShape(preset);
  if (layers >= 0) o.shape.layers = static_cast<uint64_t>(layers);
  o.bits = bits;
  o.group_size = per_channel ? 0 : static_cast<uint64_t>(group_size);  // checked positive by CLI::Range
  o.symmetric = sym;
  o.anti_outlier = anti_outlier;
  o.packed = packed;
  o.legacy_scales = legacy;
  o.full_offset_range = full_range;
  o.scale_dtype = *FloatDType(scale_dtype);
  o.float_dtype = *FloatDType(float_dtype);
  o.seed = seed;
  for (size_t start = 0; start < float_linears.size();) {
    const size_t comma = std::min(float_linears.find(',', start), float_linears.size());
    if (comma > start) o.float_linears.push_back(float_linears.substr(start, comma - start));
    start = comma + 1;
  }
  if (max_shard != "0") {
    auto bytes = ParseSizeOption("--max-shard-size", max_shard, "5GB", "; or 0 for one file");
    if (!bytes) return ReportError(bytes.error());
    request.max_shard_bytes = *bytes;
  }
  request.out_dir = out;
  request.force = force;
  request.execution.threads = threads;
  auto kernels = ChooseKernels("");
  if (!kernels) return ReportError(kernels.error());
  request.execution.kernels = *kernels;

  InstallInterruptHandlers();
  std::atomic<uint64_t> done{0}, total{0};
  request.execution.cancel = &InterruptFlag();
  request.execution.progress = &done;
  request.execution.progress_total = &total;
  Result<SynthReport> report = [&] {
    ProgressBar bar(done, total, !quiet);
    return WriteSynthCheckpoint(request);
  }();
  if (!report) return ReportError(report.error());
  if (!quiet) {
    std::fprintf(stderr, "ms2vllm: wrote %s and %s: %s in %.2f s\n", Printable(report->weights.string()).c_str(),
                 Printable(report->description.string()).c_str(), HumanBytes(report->bytes).c_str(), report->seconds);
  }
  return kExitOk;
}

}  // namespace ms2vllm
