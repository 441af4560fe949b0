#include "engine/convert.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "engine/cancel.h"
#include "engine/input_error.h"
#include "engine/model_directory.h"
#include "engine/offset_scan.h"
#include "engine/scale_cast_scan.h"
#include "engine/warnings.h"
#include "io/checkpoint.h"
#include "io/description.h"
#include "io/json_file.h"
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

// --out-dir (with --force, replaced as a whole) may never be, or hold, an input or the base model.
// Compared by device and inode, not by path: a bind mount shows one directory under two paths.
Status CheckDirectoryHoldsNoInput(const fs::path& target, const Checkpoint& checkpoint, const fs::path& description,
                                  const std::optional<fs::path>& base_model) {
  // stat: a symlink to a directory is followed, as the output is (Staging); a link to nothing
  // is what --force replaces, and holds nothing.
  struct stat directory {};
  if (::stat(target.c_str(), &directory) != 0) return Ok{};  // a new directory holds nothing yet
  std::vector<fs::path> inputs = checkpoint.Files();
  inputs.push_back(description);
  if (base_model) inputs.push_back(*base_model);
  std::unordered_set<std::string> visited;  // a sharded input's files share their ancestors
  for (const auto& input : inputs) {
    std::error_code ec;
    // Where the file is, and where the name is: a symlinked input (a Hugging Face cache's
    // snapshot links to its blobs) is lost with the directory holding the link.
    const fs::path absolute = fs::absolute(input, ec);
    for (fs::path path : {fs::weakly_canonical(absolute, ec), fs::weakly_canonical(absolute.parent_path(), ec)}) {
      for (; visited.insert(path.string()).second; path = path.parent_path()) {
        struct stat info {};
        if (::stat(path.c_str(), &info) == 0 && info.st_dev == directory.st_dev && info.st_ino == directory.st_ino) {
          return MakeError(ErrorCode::kUsage,
                           target.string() + ": the output directory would replace the input " + input.string());
        }
        if (path == path.parent_path()) break;
      }
    }
  }
  return Ok{};
}

// msModelSlim's saver copies the float model's .json and .py files (config.json, tokenizer,
// generation config) beside its weights: without --base-model, those make the directory load.
// Without either, the directory would have no config.json, and no loader reads one without it:
// refused before the work rather than written and warned of, which a script would deploy.
Result<fs::path> BaseModelFor(const ConvertRequest& request, const ModelFiles& files) {
  if (request.base_model) {
    MS2VLLM_TRY(CheckBaseModelDirectory(*request.base_model));
    return *request.base_model;
  }
  const fs::path beside = files.weights.has_parent_path() ? files.weights.parent_path() : fs::path(".");
  std::error_code ec;
  if (fs::is_regular_file(beside / "config.json", ec)) return beside;
  return MakeError(ErrorCode::kUsage, (beside / "config.json").string() +
                                          ": not found, and no --base-model: --out-dir writes a model directory, "
                                          "which needs the float model's config.json; give its directory with "
                                          "--base-model (or --save_path for the weights alone)");
}

// A config.json stating tie_word_embeddings: lm_head is the embeddings, and needs no tensor.
bool TiesLmHead(const fs::path& base_model) {
  const auto config = ReadJsonFile(base_model / "config.json");
  if (!config || !config->is_object()) return false;  // CheckModelDirectoryRequest says what is wrong
  const auto tie = config->find("tie_word_embeddings");
  return tie != config->end() && tie->is_boolean() && tie->get<bool>();
}

// The script converts what one file holds and what the description lists, so a shard given
// alone or a tensor left out of the description is warned of, and converted without. A model
// directory without some of the model's tensors does not load as it is (transformers starts
// them random, vLLM fails or runs them as zeros): refused. msModelSlim lists every tensor it saves.
Status CheckTheModelIsWhole(const Plan& plan, const ModelFiles& files, const fs::path& base_model) {
  if (!plan.not_in_description.empty()) {
    return InvalidInput(files.description.string() + ": does not list " + std::to_string(plan.not_in_description.size()) +
                        " tensor(s) of the checkpoint (" + FirstNames(plan.not_in_description) + "), which --out-dir's "
                        "model would lack: the conversion keeps only what the description lists");
  }
  std::vector<std::string> missing = plan.not_in_checkpoint;
  if (TiesLmHead(base_model)) std::erase(missing, "lm_head.weight");
  if (missing.empty()) return Ok{};
  const std::string named = FirstNames(missing);
  return InvalidInput(files.weights.string() + ": lacks " + std::to_string(missing.size()) +
                      " tensor(s) the description lists (" + named + "), without which --out-dir's model does not "
                      "load; give the whole checkpoint (its index or directory), not one shard");
}

// An integer or FP8 weight labelled W8A8 (or anything but W4A16 and W8A16), of a linear, the head or
// an embedding, is quantized in a way AWQ and GPTQ cannot state: the drop-in mode copies it
// unchanged, as the script does, and warns; in --out-dir's model no loader could read it, so
// --out-dir refuses.
Status CheckEveryQuantizedWeightConverts(const Plan& plan, const ModelFiles& files) {
  if (plan.other_quantized_weights.empty()) return Ok{};
  std::vector<std::string> named;
  for (const auto& copied : plan.other_quantized_weights) {
    named.push_back(copied.module + " (" + copied.LabelAndDType() + ")");
  }
  return MakeError(ErrorCode::kUnsupported,
                   files.description.string() + ": labels " + std::to_string(named.size()) +
                       " weight(s) holding integer or FP8 values, neither W4A16 nor W8A16 (" + FirstNames(named) +
                       "): AWQ and GPTQ configs state only weight-only 4- and 8-bit linears beside float weights, so "
                       "--out-dir's model could not load them (without --out-dir they are copied unchanged, as the script does)");
}

// A quantization_config states one group size. Linears of two cannot be described by it: --out-dir
// refuses them; the drop-in mode converts them, as the script does, and warns that no config will
// describe the file.
Status RefuseOrWarnOfTwoGroupSizes(const ConvertRequest& request, const ModelFiles& files, ConvertReport& report) {
  const std::optional<std::string>& conflict = report.plan.group_size_conflict;
  if (!conflict) return Ok{};
  if (!request.out_dir) {
    report.warnings.Add(WarningKind::kGroupSizeConflict, *conflict);
    return Ok{};
  }
  return MakeError(ErrorCode::kUnsupported, files.weights.string() + ": linears disagree on the group size: " +
                                                *conflict + "; one quantization_config cannot describe both");
}

Status WriteWeights(const ConvertRequest& request, const ConvertReport& report, const Checkpoint& checkpoint,
                    const Staging& staging, Warnings& warnings) {
  std::vector<OutputFile> outputs;
  outputs.reserve(report.layout.files.size());
  for (const auto& file : report.layout.files) {
    MS2VLLM_ASSIGN_OR_RETURN(OutputFile output, OutputFile::Create(staging.PathFor(file.name), file.size));
    outputs.push_back(std::move(output));
  }
  auto executed = Execute(report.plan, report.layout, &checkpoint, outputs, request.execution);
  // An input cut short while it was read is the error, also when a write from its vanished pages
  // is what failed (EFAULT).
  MS2VLLM_TRY(checkpoint.CheckUnchanged());
  if (!executed) return executed.take_error();
  warnings.Merge(executed->warnings);
  for (auto& output : outputs) MS2VLLM_TRY(output.Finish());
  return Ok{};
}

// A disk that fills while a conversion replaces an earlier one: the error names a staged file,
// and the user needs to know that the earlier one is untouched (it is replaced only at the commit).
Error SayingTheTargetIsKept(Error error, const fs::path& target, bool replacing) {
  if (error.code == ErrorCode::kOutput && replacing) error.message += "; " + target.string() + " is left as it was";
  return error;
}

}  // namespace

Result<ConvertReport> Convert(const ConvertRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  const std::atomic<bool>* cancel = request.execution.cancel;
  MS2VLLM_ASSIGN_OR_RETURN(ModelFiles files, LocateModel(request.model, request.json));
  std::optional<fs::path> base_model;
  if (request.out_dir) {
    MS2VLLM_ASSIGN_OR_RETURN(base_model, BaseModelFor(request, files));
  }
  MS2VLLM_ASSIGN_OR_RETURN(Description description, LoadDescription(files.description.string()));
  if (Cancelled(cancel)) return Interrupted();
  MS2VLLM_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(files.weights));

  ConvertReport report;
  report.sources = checkpoint.shared_table();
  auto plan = BuildPlan(*report.sources, description, request.plan, cancel);
  if (!plan.ok()) return NamingTheFile(plan.take_error(), checkpoint, description);
  report.plan = std::move(*plan);
  if (request.out_dir) {  // before the scans
    MS2VLLM_TRY(CheckTheModelIsWhole(report.plan, files, *base_model));
    MS2VLLM_TRY(CheckEveryQuantizedWeightConverts(report.plan, files));
  }
  MS2VLLM_TRY(RefuseOrWarnOfTwoGroupSizes(request, files, report));
  description.DropEntries();
  report.warnings.Merge(report.plan.warnings);
  // A scan's read cut short is the input changing under it, and said so.
  const auto scan_failed = [&](Error error) -> Error {
    if (auto changed = checkpoint.CheckUnchanged(); !changed.ok()) return changed.take_error();
    return NamingTheFile(std::move(error), checkpoint, description);
  };
  auto scan = ScanOffsets(report.plan, checkpoint, report.warnings, cancel);
  if (!scan.ok()) return scan_failed(scan.take_error());
  if (auto casts = ScanScaleCasts(report.plan, checkpoint, report.warnings, cancel, request.dry_run); !casts.ok()) {
    return scan_failed(casts.take_error());
  }
  report.symmetric = scan->all_zero;
  report.input_bytes = checkpoint.TotalFileBytes();

  const bool directory = request.out_dir.has_value();
  report.target = directory ? *request.out_dir : request.save_path;
  if (directory) {
    report.base_model = base_model;
    report.base_beside_weights = !request.base_model;
    if (report.base_beside_weights) report.warnings.Add(WarningKind::kBaseBesideWeights, base_model->string());
    MS2VLLM_TRY(CheckModelDirectoryRequest(report));
    MS2VLLM_TRY(CheckDirectoryHoldsNoInput(report.target, checkpoint, files.description, report.base_model));
  }
  MS2VLLM_ASSIGN_OR_RETURN(report.layout,
                           directory ? ComputeLayout(report.plan, "model.safetensors", request.max_shard_bytes, "model", cancel)
                                     : ComputeLayout(report.plan, report.target.filename().string(), 0, "model", cancel));
  for (const auto& file : report.layout.files) report.output_bytes += file.size;
  if (!directory) MS2VLLM_TRY(CheckNotAnInput(report.target, checkpoint, files.description));
  if (request.dry_run) {
    MS2VLLM_TRY(Staging::Check(report.target, directory, request.force, EarlierOutput::kConversion));
    return report;
  }

  std::error_code ec;
  const bool replacing = fs::exists(report.target, ec);
  MS2VLLM_ASSIGN_OR_RETURN(Staging staging,
                           directory ? Staging::ForDirectory(report.target, request.force, EarlierOutput::kConversion)
                                     : Staging::ForFile(report.target));
  Status written = WriteWeights(request, report, checkpoint, staging, report.warnings);
  if (written.ok() && directory) written = WriteModelDirectoryFiles(report, staging);
  if (!written.ok()) return SayingTheTargetIsKept(written.take_error(), report.target, replacing);
  if (Cancelled(cancel)) return Interrupted();
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (request.check_before_commit) {
    MS2VLLM_TRY(request.check_before_commit(staging.stage()));
    if (Cancelled(cancel)) return Interrupted();  // a signal in a stretch of the check that does not poll
  }
  MS2VLLM_TRY(staging.Commit());
  if (!staging.leftover().empty()) report.warnings.Add(WarningKind::kOldTargetLeft, staging.leftover().string());
  return report;
}

}  // namespace ms2vllm
