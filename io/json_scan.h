// Shared pieces of the simdjson On-Demand scans (safetensors header, description, index).
#pragma once

#include <simdjson.h>

#include <string>

#include "io/status.h"

namespace ms2vllm {

inline Error InvalidInput(const std::string& label, const std::string& what) {
  return MakeError(ErrorCode::kInvalidInput, label + ": " + what);
}

// Starts a scan of `json` that must be one JSON object; `what` names the document in messages.
inline Status OpenObject(simdjson::ondemand::parser& parser, const simdjson::padded_string& json,
                         simdjson::ondemand::document& document, simdjson::ondemand::object& root,
                         const std::string& label, const std::string& what) {
  if (parser.iterate(json).get(document) != simdjson::SUCCESS) return InvalidInput(label, what + " is not valid JSON");
  if (document.get_object().get(root) != simdjson::SUCCESS) return InvalidInput(label, what + " is not a JSON object");
  return Ok{};
}

// After the root object was read to its end: anything but whitespace left is an error.
inline Status CheckNothingAfter(simdjson::ondemand::document& document, const std::string& label, const std::string& what) {
  const char* rest = nullptr;
  if (document.current_location().get(rest) == simdjson::SUCCESS) {
    return InvalidInput(label, what + " is not valid JSON (content after the object)");
  }
  return Ok{};
}

}  // namespace ms2vllm
