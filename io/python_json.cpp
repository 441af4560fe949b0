#include "io/python_json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>

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

bool IsDigits(std::string_view text) {
  return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
}

// -?(0|[1-9][0-9]*): a JSON integer, and nothing more.
bool IsInteger(std::string_view number) {
  if (number.starts_with('-')) number.remove_prefix(1);
  return IsDigits(number) && (number[0] != '0' || number.size() == 1);
}

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? with a fraction or an exponent: a JSON float.
bool IsFloat(std::string_view number) {
  const size_t e = number.find_first_of("eE");
  if (e != std::string_view::npos) {
    std::string_view exponent = number.substr(e + 1);
    if (exponent.starts_with('+') || exponent.starts_with('-')) exponent.remove_prefix(1);
    if (!IsDigits(exponent)) return false;
  }
  const std::string_view mantissa = number.substr(0, e);
  const size_t point = mantissa.find('.');
  if (point != std::string_view::npos && !IsDigits(mantissa.substr(point + 1))) return false;
  return (e != std::string_view::npos || point != std::string_view::npos) && IsInteger(mantissa.substr(0, point));
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

// repr(value), which json.dumps writes: the shortest digits that read back as `value` (to_chars
// gives them), positional from 1e-4 up to 1e16 with at least one decimal, else d.ddde+XX.
std::string PythonRepr(double value) {
  if (std::isinf(value)) return value < 0 ? "-Infinity" : "Infinity";  // 1e400 is inf to Python
  const std::string sign = std::signbit(value) ? "-" : "";
  char buffer[32];
  const char* end = std::to_chars(buffer, buffer + sizeof buffer, std::abs(value), std::chars_format::scientific).ptr;
  const std::string_view text(buffer, end - buffer);  // d(.d+)?e[+-]dd+
  const size_t e = text.find('e');
  int exponent = 0;
  std::from_chars(text.data() + e + (text[e + 1] == '+' ? 2 : 1), end, exponent);  // from_chars takes no '+'
  std::string digits(text.substr(0, e));
  if (digits.size() > 1) digits.erase(1, 1);  // the point
  const int point = exponent + 1;             // digits before the point
  if (point <= -4 || point > 16) {
    const std::string magnitude = std::to_string(std::abs(exponent));
    return sign + digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "") + "e" +
           (exponent < 0 ? "-" : "+") + (magnitude.size() < 2 ? "0" : "") + magnitude;
  }
  if (point <= 0) return sign + "0." + std::string(-point, '0') + digits;
  if (static_cast<size_t>(point) >= digits.size()) return sign + digits + std::string(point - digits.size(), '0') + ".0";
  return sign + digits.substr(0, point) + "." + digits.substr(point);
}

// The value at the start of `text` that needs a placeholder, or {0, ""}: its length there, and
// the text json.dumps writes for it. Anything else malformed is left as it is, for the parser
// to refuse.
struct BareValue {
  size_t length = 0;
  std::string written;
};

BareValue FindBareValue(std::string_view text) {
  for (std::string_view word : {"NaN", "Infinity", "-Infinity"}) {
    if (text.starts_with(word)) return {word.size(), std::string(word)};
  }
  const std::string_view number = text.substr(0, text.find_first_not_of("0123456789+-.eE"));
  if (IsInteger(number)) return FitsIn64Bits(number) ? BareValue() : BareValue{number.size(), std::string(number)};
  if (!IsFloat(number)) return {};
  // Read as nlohmann's parser reads it (strtod), which refuses an overflow (1e400) and writes
  // some floats otherwise than Python (1e+15 for 1000000000000000.0, 9.999999999999999e+22 for
  // 1e+23): those cross as repr writes them.
  const double value = std::strtod(std::string(number).c_str(), nullptr);
  std::string written = PythonRepr(value);
  if (std::isfinite(value) && nlohmann::json(value).dump() == written) return {};
  return {number.size(), std::move(written)};
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
                                    "Infinity, integers beyond 64 bits and some floats through its rewrite of the file");
      }
      out.append(text.substr(i, end - i));
      previous = c;
      i = end;
      continue;
    }
    // Only where a value goes: a placeholder for a key ({NaN: 1}) would make invalid JSON valid.
    const bool value_place = previous == 0 || previous == ':' || previous == '[' ||
                             (previous == ',' && !open.empty() && open.back() == '[');
    if (const BareValue bare = value_place ? FindBareValue(text.substr(i)) : BareValue(); bare.length > 0) {
      out.append(kPlaceholderStart).append(bare.written).append("\"");
      previous = '"';
      i += bare.length;
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
    const bool placeholder = end < text.size() && !value.empty() && FindBareValue(value).length == value.size();
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
