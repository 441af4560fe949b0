// Small JSON files (configs) read into and written from nlohmann's ordered DOM, which keeps
// every key in its order; written durably (fsynced). Read as Python's json reads them
// (io/python_json.h): NaN, Infinity, integers beyond 64 bits and floats are written back as
// json.dumps writes them.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/status.h"

namespace ms2vllm {

// Refuses nesting deeper than kMaxJsonDepth. NaN, Infinity, -Infinity, integers beyond 64 bits
// and floats beyond a double or that nlohmann writes otherwise than Python are strings in the
// DOM, "\0" then the text json.dumps writes, which WriteJsonFile writes bare.
Result<nlohmann::ordered_json> ReadJsonFile(const std::filesystem::path& path);
// Writes `json` indented by 2 spaces, with a final newline, and fsyncs it.
Status WriteJsonFile(const std::filesystem::path& path, const nlohmann::ordered_json& json);

}  // namespace ms2vllm
