#include "io/python_json.h"

#include <algorithm>
#include <charconv>
#include <cstdint>

namespace ms2vllm {
namespace {

// A placeholder as JSON text writes it: the quote, then U+0000 escaped (its only spelling).
constexpr std::string_view kPlaceholderStart = "\"\\u0000";

// The end of the string starting at text[begin] (a quote): past its closing quote. `holds_nul`:
// the string has U+0000, whose only spelling is the escape \u0000.
size_t StringEnd(std::string_view text, size_t begin, bool& holds_nul) {
  for (size_t i = begin + 1; i < text.size(); ++i) {
    if (text[i] == '\\') {
      holds_nul |= text.substr(i + 1, 5) == "u0000";
      ++i;
    } else if (text[i] == '"') {
      return i + 1;
    }
  }
  return text.size();  // cut short: the parser says so
}

// -?(0|[1-9][0-9]*): a JSON integer, and nothing more.
bool IsInteger(std::string_view number) {
  if (number.starts_with('-')) number.remove_prefix(1);
  if (number.empty() || (number[0] == '0' && number.size() > 1)) return false;
  return number.find_first_not_of("0123456789") == std::string_view::npos;
}

bool FitsIn64Bits(std::string_view integer) {
  const char* end = integer.data() + integer.size();
  if (integer.starts_with('-')) {
    int64_t value = 0;
    return std::from_chars(integer.data(), end, value).ec == std::errc();
  }
  uint64_t value = 0;
  return std::from_chars(integer.data(), end, value).ec == std::errc();
}

// The length of the value at the start of `text` that needs a placeholder, or 0. Anything else
// malformed is left as it is, for the parser to refuse.
size_t BareValueLength(std::string_view text) {
  for (std::string_view word : {"NaN", "Infinity", "-Infinity"}) {
    if (text.starts_with(word)) return word.size();
  }
  const std::string_view number = text.substr(0, text.find_first_not_of("0123456789+-.eE"));
  return IsInteger(number) && !FitsIn64Bits(number) ? number.size() : 0;
}

}  // namespace

Result<std::string> WithPlaceholders(std::string_view text, const std::string& label) {
  std::string out;
  out.reserve(text.size());
  std::string open;   // the arrays and objects around, '[' or '{', outermost first
  char previous = 0;  // the last character outside strings and whitespace; 0 before any
  for (size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '"') {
      bool holds_nul = false;
      const size_t end = StringEnd(text, i, holds_nul);
      // Placeholders start with U+0000: a string of the file with one could pass for one, so that
      // writing it back would make it a bare value. No config holds one.
      if (holds_nul) {
        return InvalidInput(label + ": a string holds U+0000 (\\u0000), which ms2vllm reserves to carry NaN, "
                                    "Infinity and integers beyond 64 bits through its rewrite of the file");
      }
      out.append(text.substr(i, end - i));
      previous = c;
      i = end;
      continue;
    }
    // Only where a value goes: a placeholder for a key ({NaN: 1}) would make invalid JSON valid.
    const bool value_place = previous == 0 || previous == ':' || previous == '[' ||
                             (previous == ',' && !open.empty() && open.back() == '[');
    if (const size_t length = value_place ? BareValueLength(text.substr(i)) : 0) {
      out.append(kPlaceholderStart).append(text.substr(i, length)).append("\"");
      previous = '"';
      i += length;
      continue;
    }
    if (c == '[' || c == '{') {
      open += c;
      if (open.size() > kMaxJsonDepth) {
        return InvalidInput(label + ": nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      }
    } else if ((c == ']' || c == '}') && !open.empty()) {
      open.pop_back();
    }
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') previous = c;
    out += c;
    ++i;
  }
  return out;
}

std::string WithoutPlaceholders(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t from = 0;  // text[from..] is not in `out` yet
  for (size_t at; (at = text.find(kPlaceholderStart, from)) != std::string_view::npos;) {
    const size_t begin = at + kPlaceholderStart.size();
    const size_t end = std::min(text.find('"', begin), text.size());
    const std::string_view value = text.substr(begin, end - begin);
    // Only what WithPlaceholders makes: any other string (a program's) is written as it is.
    const bool placeholder = end < text.size() && !value.empty() && BareValueLength(value) == value.size();
    if (placeholder) {
      out.append(text.substr(from, at - from)).append(value);
      from = end + 1;
    } else {
      out.append(text.substr(from, begin - from));
      from = begin;
    }
  }
  return out.append(text.substr(from));
}

}  // namespace ms2vllm
