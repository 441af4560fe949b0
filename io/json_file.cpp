#include "io/json_file.h"

#include "io/durable_file.h"
#include "io/mapped_file.h"
#include "io/python_json.h"

namespace ms2vllm {

Result<nlohmann::ordered_json> ReadJsonFile(const std::filesystem::path& path) {
  MS2VLLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const auto bytes = file.bytes();
  // Before the parser: its DOM is copied and destroyed recursively.
  MS2VLLM_ASSIGN_OR_RETURN(const std::string text,
                           WithPlaceholders(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                            path.string()));
  auto json = nlohmann::ordered_json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return MakeError(ErrorCode::kInvalidInput, path.string() + ": not valid JSON");
  return json;
}

Status WriteJsonFile(const std::filesystem::path& path, const nlohmann::ordered_json& json) {
  return WriteFileDurably(path, WithoutPlaceholders(json.dump(2)) + "\n");
}

}  // namespace ms2vllm
