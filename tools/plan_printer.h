// --dry-run's report: every output tensor with its source, type, shape and size; the files.
#pragma once

#include <cstdio>

#include "engine/convert.h"

namespace ms2vllm {

void PrintPlan(const ConvertRequest& request, const ConvertReport& report, std::FILE* out);

}  // namespace ms2vllm
