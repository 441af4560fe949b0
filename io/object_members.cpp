#include "io/object_members.h"

#include <optional>
#include <vector>

#include "io/json_scan.h"

namespace ms2vllm {
namespace {

namespace od = simdjson::ondemand;

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool IsBlank(std::string_view text) {
  for (char c : text) {
    if (!IsJsonSpace(c)) return false;
  }
  return true;
}

// The object's member list cut at top-level commas into runs of at least `run_bytes` (the last
// may be shorter). Nullopt when the text is not `{...}` and whitespace as far as strings and
// brackets show: the whole text is then parsed at once, so simdjson reports what is wrong.
// For any other text, every run wrapped in braces is a valid object exactly when the whole is.
std::optional<std::vector<std::string_view>> SplitIntoRuns(std::string_view text, size_t run_bytes) {
  size_t i = 0;
  while (i < text.size() && IsJsonSpace(text[i])) ++i;
  if (i == text.size() || text[i] != '{') return std::nullopt;
  std::vector<std::string_view> runs;
  size_t run_start = ++i;
  int depth = 0;  // brackets open inside the object
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      for (++i; i < text.size() && text[i] != '"'; ++i) i += text[i] == '\\';
      if (i >= text.size()) return std::nullopt;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (depth == 0) break;
      --depth;
    } else if (c == ',' && depth == 0 && i - run_start >= run_bytes) {
      runs.push_back(text.substr(run_start, i - run_start));
      run_start = i + 1;
    }
  }
  if (i >= text.size() || text[i] != '}' || !IsBlank(text.substr(i + 1))) return std::nullopt;
  runs.push_back(text.substr(run_start, i - run_start));
  // `{"a":1,}` would otherwise pass as the runs `"a":1` and an empty one.
  if (runs.size() > 1) {
    for (auto run : runs) {
      if (IsBlank(run)) return std::nullopt;
    }
  }
  return runs;
}

Status VisitDocument(od::parser& parser, const simdjson::padded_string_view& json, const std::string& label,
                     const std::string& what, const MemberVisitor& visit) {
  od::document document;
  od::object root;
  MS2VLLM_TRY(OpenObject(parser, json, document, root, label, what));
  for (auto field : root) {
    std::string_view key;
    od::value value;
    MS2VLLM_TRY(ReadField(field, key, value, label, what));
    MS2VLLM_TRY(visit(key, value));
  }
  return CheckNothingAfter(document, label, what);
}

std::string_view TrimJsonSpace(std::string_view text) {
  while (!text.empty() && IsJsonSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsJsonSpace(text.back())) text.remove_suffix(1);
  return text;
}

}  // namespace

std::optional<std::vector<MemberText>> SplitMembers(std::string_view object_text) {
  const auto runs = SplitIntoRuns(object_text, 0);  // runs of at least 0 bytes: one per member
  if (!runs) return std::nullopt;
  std::vector<MemberText> members;
  if (runs->size() == 1 && IsBlank(runs->front())) return members;  // {}
  for (std::string_view run : *runs) {
    const std::string_view text = TrimJsonSpace(run);
    if (text.empty() || text.front() != '"') return std::nullopt;
    size_t end = 1;
    while (end < text.size() && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
    if (end >= text.size()) return std::nullopt;
    const std::string_view after_key = TrimJsonSpace(text.substr(end + 1));
    if (after_key.empty() || after_key.front() != ':') return std::nullopt;
    members.push_back({text.substr(1, end - 1), TrimJsonSpace(after_key.substr(1)), text});
  }
  return members;
}

Status ForEachMember(std::string_view object_text, const std::string& label, const std::string& what,
                     const MemberVisitor& visit, size_t run_bytes) {
  od::parser parser;
  const auto runs = SplitIntoRuns(object_text, run_bytes);
  if (!runs) {
    const simdjson::padded_string whole(object_text);
    return VisitDocument(parser, whole, label, what, visit);
  }
  std::string buffer;  // "{" run "}", then simdjson's padding
  for (std::string_view run : *runs) {
    buffer.assign("{").append(run).append("}");
    const size_t length = buffer.size();
    buffer.resize(length + simdjson::SIMDJSON_PADDING);
    MS2VLLM_TRY(VisitDocument(parser, simdjson::padded_string_view(buffer.data(), length, buffer.size()), label, what, visit));
  }
  return Ok{};
}

}  // namespace ms2vllm
