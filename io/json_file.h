// Small JSON files (configs, indexes) read into and written from nlohmann's ordered DOM,
// which keeps every key in its order; written durably (fsynced) and in full or not at all.
#pragma once

#include <filesystem>
#include <string_view>
#include <nlohmann/json.hpp>

#include "io/status.h"

namespace ms2vllm {

Result<nlohmann::ordered_json> ReadJsonFile(const std::filesystem::path& path);
// Writes `json` indented by 2 spaces, with a final newline, and fsyncs it.
Status WriteJsonFile(const std::filesystem::path& path, const nlohmann::ordered_json& json);
// Writes text built without a DOM (a 200k-tensor shard index), durably as WriteJsonFile does.
Status WriteTextFile(const std::filesystem::path& path, std::string_view text);
// Copies a file byte for byte and fsyncs the copy.
Status CopyFileDurably(const std::filesystem::path& from, const std::filesystem::path& to);

}  // namespace ms2vllm
