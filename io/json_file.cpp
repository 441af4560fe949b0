#include "io/json_file.h"

#include "io/durable_file.h"
#include "io/mapped_file.h"

namespace ms2vllm {

Result<nlohmann::ordered_json> ReadJsonFile(const std::filesystem::path& path) {
  MS2VLLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const auto bytes = file.bytes();
  auto json = nlohmann::ordered_json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return MakeError(ErrorCode::kInvalidInput, path.string() + ": not valid JSON");
  return json;
}

Status WriteJsonFile(const std::filesystem::path& path, const nlohmann::ordered_json& json) {
  return WriteFileDurably(path, json.dump(2) + "\n");
}

}  // namespace ms2vllm
