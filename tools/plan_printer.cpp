#include "tools/plan_printer.h"

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

}  // namespace

void PrintPlan(const ConvertReport& report, std::FILE* out) {
  const Plan& plan = report.plan;
  std::fprintf(out, "plan: %d-bit, %s%s, %zu output tensors, %llu bytes\n", plan.bits,
               plan.target == TargetTool::kAwq ? "awq" : "gptq",
               plan.target == TargetTool::kGptq ? (plan.gptq_format == GptqFormat::kV2 ? " (v2)" : " (v1)") : "",
               plan.tensors.size(), static_cast<unsigned long long>(report.layout.tensor_bytes));
  for (const auto& file : report.layout.files) {
    std::fprintf(out, "file %s: %zu tensors, %llu bytes\n", file.name.c_str(), file.tensors.size(),
                 static_cast<unsigned long long>(file.size));
    for (size_t index : file.tensors) {
      const OutputTensor& t = plan.tensors[index];
      std::fprintf(out, "  %-60s %-4s %-16s %12llu  <- %s (%s)\n", t.name.c_str(), DTypeName(t.dtype).data(),
                   ShapeString(t.shape).c_str(), static_cast<unsigned long long>(t.byte_size()),
                   t.source ? t.source->name.c_str() : "-", KindName(t.kind));
    }
  }
}

}  // namespace ms2vllm
