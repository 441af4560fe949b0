// Small JSON files (configs) read into and written from nlohmann's ordered DOM, which keeps
// every key in its order; written durably (fsynced).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/status.h"

namespace ms2vllm {

// Refuses nesting deeper than 1000 levels, which Python's json does not read either.
Result<nlohmann::ordered_json> ReadJsonFile(const std::filesystem::path& path);
// Writes `json` indented by 2 spaces, with a final newline, and fsyncs it.
Status WriteJsonFile(const std::filesystem::path& path, const nlohmann::ordered_json& json);

}  // namespace ms2vllm
