#include "tools/plan_printer.h"

#include "engine/model_directory.h"
#include "io/json_scan.h"

namespace ms2vllm {
namespace {

const char* KindName(TransformKind kind) {
  switch (kind) {
    case TransformKind::kCopy: return "copy";
    case TransformKind::kQWeight: return "pack weight";
    case TransformKind::kQZeros: return "pack zeros";
    case TransformKind::kQZerosConstant: return "zeros for offset 0";
    case TransformKind::kScales: return "transpose scales";
    case TransformKind::kGenerate: return "synthetic";
  }
  return "?";
}

std::string GroupText(const Plan& plan) {
  if (plan.per_channel) return "per channel";
  return plan.group_size ? "group size " + std::to_string(*plan.group_size) : "no quantized linear";
}

// What the run would do to its target. An existing one passed the checks already (an earlier
// conversion with --force, or an empty directory): said here, before --force replaces it.
std::string TargetLine(const ConvertRequest& request, const ConvertReport& report) {
  std::error_code ec;
  const std::string where = Printable(report.target.string());
  if (!std::filesystem::exists(report.target, ec)) {  // through symlinks, as a file target's are followed
    const bool link = std::filesystem::is_symlink(std::filesystem::symlink_status(report.target, ec));
    return "output: " + where + (request.out_dir && link ? " (replaces the symlink to nothing there)" : " (new)");
  }
  if (!request.out_dir) return "output: " + where + " (replaces the file there)";
  if (std::filesystem::is_empty(report.target, ec)) return "output: " + where + " (the empty directory there)";
  return "output: " + where + " (replaces the earlier conversion there, every file in it)";
}

}  // namespace

void PrintPlan(const ConvertRequest& request, const ConvertReport& report, std::FILE* out) {
  const Plan& plan = report.plan;
  std::fprintf(out, "plan: %d-bit, %s, %s, %s, %zu output tensors, %llu bytes\n", plan.bits, GroupText(plan).c_str(),
               TargetName(plan.target, plan.gptq_format), report.symmetric ? "symmetric" : "asymmetric", plan.tensors.size(),
               static_cast<unsigned long long>(report.layout.tensor_bytes));
  std::fprintf(out, "%s\n", TargetLine(request, report).c_str());
  if (request.out_dir) {
    for (const auto& line : DescribeModelDirectoryFiles(report)) std::fprintf(out, "%s\n", Printable(line).c_str());
  }
  for (const auto& file : report.layout.files) {
    std::fprintf(out, "file %s: %zu tensors, %llu bytes\n", Printable(file.name).c_str(), file.tensors.size(),
                 static_cast<unsigned long long>(file.size));
    for (size_t index : file.tensors) {
      const OutputTensor& t = plan.tensors[index];
      // Names come from the input: escaped, as in error lines, so none can drive the terminal.
      std::fprintf(out, "  %-60s %-4s %-16s %12llu  <- %s (%s)\n", Printable(t.name).c_str(), DTypeName(t.dtype).data(),
                   ShapeString(t.shape).c_str(), static_cast<unsigned long long>(t.byte_size()),
                   t.source ? Printable(t.source->name).c_str() : "-", KindName(t.kind));
    }
  }
}

}  // namespace ms2vllm
