#include "io/json_file.h"

#include <string>
#include <string_view>

#include "io/durable_file.h"
#include "io/mapped_file.h"

namespace ms2vllm {
namespace {

// Python's json stops at its recursion limit (1000 calls, so under 1000 levels): no config
// transformers reads is deeper. nlohmann's DOM is copied and written recursively: 100k levels
// overflow the stack.
constexpr size_t kMaxDepth = 1000;

// Whether arrays and objects in `text` nest deeper than kMaxDepth; brackets in strings do not count.
bool NestedTooDeep(std::string_view text) {
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      in_string = c != '"';
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxDepth) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

}  // namespace

Result<nlohmann::ordered_json> ReadJsonFile(const std::filesystem::path& path) {
  MS2VLLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const auto bytes = file.bytes();
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  // Before the parser: its DOM is copied and destroyed recursively.
  if (NestedTooDeep(text)) {
    return MakeError(ErrorCode::kInvalidInput, path.string() + ": nested deeper than " + std::to_string(kMaxDepth) +
                                                   " levels");
  }
  auto json = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return MakeError(ErrorCode::kInvalidInput, path.string() + ": not valid JSON");
  return json;
}

Status WriteJsonFile(const std::filesystem::path& path, const nlohmann::ordered_json& json) {
  return WriteFileDurably(path, json.dump(2) + "\n");
}

}  // namespace ms2vllm
