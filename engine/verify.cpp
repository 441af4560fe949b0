#include "engine/verify.h"

#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <unordered_set>

#include "engine/cancel.h"
#include "engine/executor.h"
#include "engine/input_error.h"
#include "engine/model_directory.h"
#include "engine/plan.h"
#include "engine/verify_files.h"
#include "engine/verify_tensor.h"
#include "engine/warnings.h"
#include "io/description.h"
#include "io/model_locator.h"

namespace ms2vllm {
namespace {

// Without a flag or a config, the qweight shapes tell AWQ ([in, out/8]) from GPTQ ([in/p, out]):
// by the columns, which are out for GPTQ whatever the bit width, so that a GPTQ file of another
// width is compared as GPTQ (shapes that differ) rather than called AWQ.
TargetTool GuessTarget(const Checkpoint& input, const Description& description, PlanOptions options,
                       const Checkpoint& output) {
  options.target = TargetTool::kGptq;
  auto plan = BuildPlan(input.table(), description, options);
  if (!plan) return TargetTool::kAwq;
  for (const auto& tensor : plan->tensors) {
    if (tensor.kind != TransformKind::kQWeight) continue;
    const TensorInfo* actual = output.table().Find(tensor.name);
    if (actual) {
      const bool gptq = actual->shape.size() == 2 && tensor.shape.size() == 2 && actual->shape[1] == tensor.shape[1];
      return gptq ? TargetTool::kGptq : TargetTool::kAwq;
    }
  }
  return TargetTool::kAwq;
}

// A flag that asks for another layout than the directory's config declares: then every qweight
// and qzeros differs, and the list would bury its one cause. Empty when they agree.
std::string DeclaredOtherwise(const DeclaredQuantization& declared, const PlanOptions& asked) {
  if (!declared.target) return "";  // without flags, `asked` is what it declares
  const GptqFormat declared_format = declared.gptq_format.value_or(GptqFormat::kV1);
  const bool same = asked.target == *declared.target &&
                    (asked.target == TargetTool::kAwq || asked.gptq_format == declared_format);
  if (same) return "";
  return declared.source + " declares " + TargetName(*declared.target, declared_format) + ", not " +
         TargetName(asked.target, asked.gptq_format) +
         ": leave out --target_tool and --gptq-format to verify the layout it declares";
}

// The dtype the converted tensor must have. Unless --scales-dtype was given, a scales tensor may
// keep the input's dtype or hold its cast to F16 or BF16 (what --scales-dtype writes).
bool DTypeFits(const OutputTensor& expected, DType actual, bool strict_scales) {
  if (actual == expected.dtype) return true;
  if (expected.kind != TransformKind::kScales || strict_scales) return false;
  return actual == DType::kF16 || actual == DType::kBF16;
}

struct Work {
  size_t plan_index;
  const TensorInfo* actual;
};

// Problems by plan index, so they print in the plan's order. Kept sparse: a verify of 200k
// tensors would otherwise hold an empty problem per tensor (about 100 bytes each).
using ProblemsByPlan = std::map<size_t, VerifyProblem>;

// What the value checks found, summed over the tensors.
struct ValueFindings {
  uint64_t values = 0;
  uint64_t copied_bytes = 0;
  uint64_t copies = 0, copies_mostly_different = 0;
  uint64_t scales_cast = 0, scales_lost = 0;
  bool offsets_all_zero = true;
  ProblemsByPlan problems;
};

// Names, dtypes and shapes; returns the tensors whose values can be compared.
std::vector<Work> CheckStructure(const Plan& plan, const Checkpoint& output, bool strict_scales,
                                 ProblemsByPlan& by_plan, std::vector<VerifyProblem>& extra) {
  std::vector<Work> work;
  std::unordered_set<std::string_view> planned;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const OutputTensor& t = plan.tensors[i];
    planned.insert(t.name);
    const TensorInfo* actual = output.table().Find(t.name);
    const std::string source = t.source ? " (from " + t.source->name + ")" : "";
    if (actual == nullptr) {
      by_plan[i] = VerifyProblem{t.name, "is missing" + source, {}};
    } else if (!DTypeFits(t, actual->dtype, strict_scales)) {
      by_plan[i] = VerifyProblem{t.name, "is " + std::string(DTypeName(actual->dtype)) + ", expected " +
                                             std::string(DTypeName(t.dtype)) + source, {}};
    } else if (actual->shape != t.shape) {
      by_plan[i] =
          VerifyProblem{t.name, "has shape " + ShapeString(actual->shape) + ", expected " + ShapeString(t.shape) + source, {}};
    } else {
      work.push_back({i, actual});
    }
  }
  for (const auto& tensor : output.table().tensors()) {
    if (!planned.contains(tensor.name)) {
      extra.push_back({tensor.name, "is not written by the conversion of the input (" + std::string(DTypeName(tensor.dtype)) + " " +
                                        ShapeString(tensor.shape) + ")", {}});
    }
  }
  return work;
}

// Checks every tensor's values, the largest first so the threads finish together.
Result<ValueFindings> CheckValues(const TensorCheckContext& context, std::vector<Work>& work) {
  const Plan& plan = context.plan;
  std::sort(work.begin(), work.end(), [&](const Work& a, const Work& b) { return a.actual->byte_size > b.actual->byte_size; });
  if (context.settings.progress_total) {
    uint64_t total = 0;
    for (const auto& item : work) {
      const OutputTensor& t = plan.tensors[item.plan_index];
      if (t.source) total += t.source->byte_size;  // what the checks add to `progress`
    }
    context.settings.progress_total->store(total);
  }
  ValueFindings findings;
  std::atomic<uint64_t> values{0}, copied_bytes{0}, copies{0}, copies_mostly_different{0}, scales_cast{0}, scales_lost{0};
  std::atomic<bool> offsets_all_zero{true}, cancelled{false};
  std::mutex problems_mutex;
  const int threads = WorkerThreads(context.settings.threads);
  tbb::task_arena arena(threads);
  arena.execute([&] {
    tbb::parallel_for(tbb::blocked_range<size_t>(0, work.size(), 1), [&](const tbb::blocked_range<size_t>& range) {
      for (size_t i = range.begin(); i != range.end(); ++i) {
        TensorVerdict verdict = CheckTensorValues(context, plan.tensors[work[i].plan_index], *work[i].actual);
        values += verdict.values;
        copied_bytes += verdict.copied_bytes;
        scales_cast += verdict.scales_cast;
        scales_lost += verdict.scales_lost;
        const OutputTensor& planned = plan.tensors[work[i].plan_index];
        copies += planned.kind == TransformKind::kCopy && planned.source->byte_size > 0;  // an empty one says nothing
        copies_mostly_different += verdict.most_elements_differ;
        if (!verdict.offsets_all_zero) offsets_all_zero = false;
        if (verdict.cancelled) cancelled = true;
        if (verdict.problem) {
          std::lock_guard lock(problems_mutex);
          findings.problems.emplace(work[i].plan_index, std::move(*verdict.problem));
        }
      }
    });
  });
  if (cancelled) return Interrupted();
  findings.values = values;
  findings.copied_bytes = copied_bytes;
  findings.scales_cast = scales_cast;
  findings.scales_lost = scales_lost;
  findings.copies = copies;
  findings.copies_mostly_different = copies_mostly_different;
  findings.offsets_all_zero = offsets_all_zero;
  return findings;
}

}  // namespace

Result<VerifyReport> Verify(const VerifyRequest& request) {
  const auto start = std::chrono::steady_clock::now();
  MS2VLLM_ASSIGN_OR_RETURN(ModelFiles files, LocateModel(request.model, request.json));
  MS2VLLM_ASSIGN_OR_RETURN(Description description, LoadDescription(files.description.string()));
  MS2VLLM_ASSIGN_OR_RETURN(Checkpoint input, Checkpoint::Open(files.weights));
  MS2VLLM_ASSIGN_OR_RETURN(ConvertedFiles converted, LocateConverted(request.converted));

  VerifyReport report;
  report.weights = converted.weights;
  report.converted = converted.directory ? request.converted : converted.weights;
  const std::string weights_name = converted.weights.filename().string();
  auto opened = Checkpoint::Open(converted.weights);
  if (!opened) {  // a converted file that does not even parse is a failed verification
    // A machine out of memory or descriptors says nothing of the file: that is the run's error.
    if (opened.error().code == ErrorCode::kResources) return opened.take_error();
    report.problems.push_back({weights_name, "is not a valid safetensors checkpoint: " + opened.error().message, {}});
    return report;
  }
  const Checkpoint& output = *opened;

  const DeclaredQuantization declared = ReadDeclaredQuantization(converted);
  PlanOptions options;
  options.w_bit = request.w_bit;
  options.packed = request.packed;
  options.scales_dtype = request.scales_dtype.value_or(ScalesDType::kKeep);
  options.gptq_format = request.gptq_format.value_or(declared.gptq_format.value_or(GptqFormat::kV1));
  if (request.target) {
    options.target = *request.target;
    report.target_source = "--target_tool";
  } else if (declared.target) {
    options.target = *declared.target;
    report.target_source = declared.source;
  } else {
    options.target = GuessTarget(input, description, options, output);
    report.target_source = "the qweight shapes";
  }
  report.target = options.target;
  report.gptq_format = options.gptq_format;
  const std::string declared_otherwise = DeclaredOtherwise(declared, options);

  auto plan = BuildPlan(input.table(), description, options, request.settings.cancel);
  if (!plan) {
    Error error = NamingTheFile(plan.take_error(), input, description);
    // The input has no conversion to this target, so the file cannot be a correct one.
    if (error.code != ErrorCode::kUnsupported) return error;
    report.bits = request.w_bit.value_or(report.bits);  // the summary names the width asked about
    report.problems.push_back({weights_name, "cannot be the " + std::string(TargetName(options.target, options.gptq_format)) +
                                                 " conversion of the input: " + error.message, {}});
    report.hint = declared_otherwise;
    return report;
  }
  description.DropEntries();
  report.bits = plan->bits;
  report.tensors = plan->tensors.size();
  for (const auto& t : plan->tensors) report.linears += t.kind == TransformKind::kQWeight;

  ProblemsByPlan by_plan;
  std::vector<VerifyProblem> extra;
  std::vector<Work> work = CheckStructure(*plan, output, request.scales_dtype.has_value(), by_plan, extra);
  const TensorCheckContext context{*plan, input, output, request.settings};
  MS2VLLM_ASSIGN_OR_RETURN(ValueFindings findings, CheckValues(context, work));
  // Findings on a file that changed underneath are about bytes it no longer has.
  MS2VLLM_TRY(input.CheckUnchanged());
  MS2VLLM_TRY(output.CheckUnchanged());

  report.values = findings.values;
  report.copied_bytes = findings.copied_bytes;
  report.scales_cast = findings.scales_cast;
  report.scales_lost = findings.scales_lost;
  // A conversion copies them byte for byte: when each of them has another shape or mostly
  // different elements, the two checkpoints are unrelated (another model, or another size of it),
  // and every other problem listed follows from that. (Another dtype alone is a cast copy of this
  // input, as some exporters write, not another model.)
  uint64_t copies_reshaped = 0, copies_cast = 0;  // present, of another shape or only another dtype: never compared
  for (const auto& [index, problem] : by_plan) {
    const OutputTensor& t = plan->tensors[index];
    if (t.kind != TransformKind::kCopy || t.source->byte_size == 0) continue;
    const TensorInfo* actual = output.table().Find(t.name);
    if (actual == nullptr) continue;
    copies_reshaped += actual->shape != t.shape;
    copies_cast += actual->shape == t.shape;
  }
  const uint64_t copies = findings.copies + copies_reshaped;
  if (copies > 0 && copies_cast == 0 && findings.copies_mostly_different + copies_reshaped == copies) {
    report.hint = "every copied tensor (" + std::to_string(copies) + ") differs from the input's" +
                  (copies_reshaped > 0 ? " in shape or in most of its elements" : " in most of its elements") +
                  ": this is not a conversion of this input";
  }
  if (!declared_otherwise.empty()) {
    report.hint = report.hint.empty() ? declared_otherwise : declared_otherwise + "; " + report.hint;
  }
  by_plan.merge(findings.problems);  // no tensor is in both: only structurally sound ones had their values checked
  for (auto& [index, problem] : by_plan) report.problems.push_back(std::move(problem));
  for (auto& problem : extra) report.problems.push_back(std::move(problem));
  // A directory written before fused layers were exempted by name loads as well in current loaders.
  const bool symmetric = findings.offsets_all_zero;
  MS2VLLM_ASSIGN_OR_RETURN(std::vector<VerifyProblem> config_problems,
                           CheckConfigs(converted, QuantizationConfig(*plan, symmetric),
                                        QuantizationConfig(*plan, symmetric, /*fused_names=*/false)));
  for (auto& problem : config_problems) report.problems.push_back(std::move(problem));
  if (IsShardIndexPath(converted.weights)) {
    for (auto& problem : CheckShardIndex(converted.weights, output)) report.problems.push_back(std::move(problem));
  }
  for (auto& problem : CheckDirectoryFiles(converted, options.target)) report.problems.push_back(std::move(problem));
  for (auto& problem : CheckDtypeForVllm(converted, *plan, symmetric)) report.problems.push_back(std::move(problem));
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return report;
}

Error VerifyFailure(const VerifyReport& report) {
  // A file with several problems (config.json's quantization_config and its dtype) is named once.
  std::vector<std::string> named;  // at most 4: FirstNames shows 3, and "..." if there are more
  for (const auto& problem : report.problems) {
    if (named.size() > 3) break;
    if (std::find(named.begin(), named.end(), problem.tensor) == named.end()) named.push_back(problem.tensor);
  }
  return MakeError(ErrorCode::kVerifyFailed, report.converted.string() + ": not the exact conversion of the input: " +
                                                 std::to_string(report.problems.size()) + " problem(s), in " +
                                                 FirstNames(named) + (report.hint.empty() ? "" : "; " + report.hint));
}

}  // namespace ms2vllm
