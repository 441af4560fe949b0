#include "engine/convert.h"

#include <chrono>

#include "engine/model_directory.h"
#include "engine/offset_scan.h"
#include "io/checkpoint.h"
#include "io/description.h"
#include "io/model_locator.h"
#include "io/staging.h"

namespace ms2vllm {
namespace fs = std::filesystem;
namespace {

// The script's --save_path may never overwrite an input: its bytes are still being read.
Status CheckNotAnInput(const fs::path& target, const Checkpoint& checkpoint, const fs::path& description) {
  std::error_code ec;
  std::vector<fs::path> inputs = checkpoint.Files();
  inputs.push_back(description);
  for (const auto& input : inputs) {
    if (fs::equivalent(target, input, ec)) {
      return MakeError(ErrorCode::kUsage, target.string() + ": the output would overwrite the input " + input.string());
    }
  }
  return Ok{};
}

Status WriteWeights(const ConvertRequest& request, const ConvertReport& report, const Checkpoint& checkpoint,
                    const Staging& staging, Warnings& warnings) {
  std::vector<OutputFile> outputs;
  outputs.reserve(report.layout.files.size());
  for (const auto& file : report.layout.files) {
    MS2VLLM_ASSIGN_OR_RETURN(OutputFile output, OutputFile::Create(staging.PathFor(file.name), file.size));
    outputs.push_back(std::move(output));
  }
  MS2VLLM_ASSIGN_OR_RETURN(ExecutionReport executed,
                           Execute(report.plan, report.layout, &checkpoint, outputs, request.execution));
  warnings.Merge(executed.warnings);
  for (auto& output : outputs) MS2VLLM_TRY(output.Finish());
  return Ok{};
}

}  // namespace

Result<ConvertReport> Convert(const ConvertRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  MS2VLLM_ASSIGN_OR_RETURN(ModelFiles files, LocateModel(request.model, request.json));
  MS2VLLM_ASSIGN_OR_RETURN(Description description, LoadDescription(files.description.string()));
  MS2VLLM_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(files.weights));

  ConvertReport report;
  MS2VLLM_ASSIGN_OR_RETURN(report.plan, BuildPlan(checkpoint.table(), description, request.plan));
  report.warnings.Merge(report.plan.warnings);
  MS2VLLM_ASSIGN_OR_RETURN(OffsetScan scan, ScanOffsets(report.plan, checkpoint, report.warnings));
  report.symmetric = scan.all_zero;
  report.input_bytes = checkpoint.TotalFileBytes();

  const bool directory = request.out_dir.has_value();
  report.target = directory ? *request.out_dir : request.save_path;
  if (directory) MS2VLLM_TRY(CheckModelDirectoryRequest(request, report));
  report.layout = directory ? ComputeLayout(report.plan, "model.safetensors", request.max_shard_bytes)
                            : ComputeLayout(report.plan, report.target.filename().string(), 0);
  for (const auto& file : report.layout.files) report.output_bytes += file.size;
  if (!directory) MS2VLLM_TRY(CheckNotAnInput(report.target, checkpoint, files.description));
  if (request.dry_run) return report;

  MS2VLLM_ASSIGN_OR_RETURN(Staging staging, directory ? Staging::ForDirectory(report.target, request.force)
                                                      : Staging::ForFile(report.target));
  MS2VLLM_TRY(WriteWeights(request, report, checkpoint, staging, report.warnings));
  if (directory) MS2VLLM_TRY(WriteModelDirectoryFiles(request, report, staging));
  if (request.execution.cancel && request.execution.cancel->load()) return MakeError(ErrorCode::kInterrupted, "interrupted");
  MS2VLLM_TRY(staging.Commit());
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

}  // namespace ms2vllm
