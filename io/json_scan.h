// Shared pieces of the simdjson On-Demand scans (safetensors header, description, index).
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>

#include "io/status.h"

namespace ms2vllm {

// Text from a file (a tensor name, a dtype) made safe for a one-line message: control
// characters, C0 and C1 (a newline, ESC starting a terminal sequence), are written escaped.
inline std::string Printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    const bool c1 = c == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9F;  // U+0080..U+009F in UTF-8
    if (c1) {
      const auto code = static_cast<unsigned char>(text[++i]);
      out += "\\u00";
      out += kHex[code >> 4];
      out += kHex[code & 15];
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

inline Error InvalidInput(const std::string& label, const std::string& what) {
  return MakeError(ErrorCode::kInvalidInput, label + ": " + what);
}

// `json` without a leading byte order mark, as some Windows editors save UTF-8: JSON parsers may
// skip it, and ms2vllm's readers of its own inputs (description, shard index) do.
inline std::string_view WithoutByteOrderMark(std::string_view json) {
  constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";
  if (json.starts_with(kByteOrderMark)) json.remove_prefix(kByteOrderMark.size());
  return json;
}

// Starts a scan of `json` that must be one JSON object; `what` names the document in messages.
inline Status OpenObject(simdjson::ondemand::parser& parser, simdjson::padded_string_view json,
                         simdjson::ondemand::document& document, simdjson::ondemand::object& root,
                         const std::string& label, const std::string& what) {
  const simdjson::error_code started = parser.iterate(json).get(document);
  if (started == simdjson::MEMALLOC) return MakeError(ErrorCode::kResources, label + ": out of memory reading " + what);
  if (started != simdjson::SUCCESS) return InvalidInput(label, what + " is not valid JSON");
  const simdjson::error_code error = document.get_object().get(root);
  // A document that starts an object but is cut short or malformed is not JSON at all.
  if (error == simdjson::INCORRECT_TYPE) return InvalidInput(label, what + " is not a JSON object");
  if (error != simdjson::SUCCESS) return InvalidInput(label, what + " is not valid JSON");
  return Ok{};
}

// Reads the key and value of one field of an object being iterated; `what` names the document.
template <typename Field>
inline Status ReadField(Field&& field, std::string_view& key, simdjson::ondemand::value& value, const std::string& label,
                        const std::string& what) {
  if (field.unescaped_key().get(key) != simdjson::SUCCESS || field.value().get(value) != simdjson::SUCCESS) {
    return InvalidInput(label, what + " is not valid JSON");
  }
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
