#include "io/json_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "io/mapped_file.h"
#include "io/staging.h"

namespace ms2vllm {
namespace {

// Messages name the file the user will see, not the temp one being written.
Status WriteAll(const std::filesystem::path& path, const void* data, size_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return MakeError(ErrorCode::kOutput, UserPathFor(path).string() + ": cannot create: " + std::strerror(errno));
  const auto* bytes = static_cast<const uint8_t*>(data);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, bytes + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      ::close(fd);
      return MakeError(ErrorCode::kOutput, UserPathFor(path).string() + ": cannot write: " + std::strerror(saved));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const int saved = errno;
  ::close(fd);
  if (!synced) return MakeError(ErrorCode::kOutput, UserPathFor(path).string() + ": cannot write to disk: " + std::strerror(saved));
  return Ok{};
}

}  // namespace

Result<nlohmann::ordered_json> ReadJsonFile(const std::filesystem::path& path) {
  MS2VLLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const auto bytes = file.bytes();
  auto json = nlohmann::ordered_json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return MakeError(ErrorCode::kInvalidInput, path.string() + ": not valid JSON");
  return json;
}

Status WriteJsonFile(const std::filesystem::path& path, const nlohmann::ordered_json& json) {
  return WriteTextFile(path, json.dump(2) + "\n");
}

Status WriteTextFile(const std::filesystem::path& path, std::string_view text) {
  return WriteAll(path, text.data(), text.size());
}

Status CopyFileDurably(const std::filesystem::path& from, const std::filesystem::path& to) {
  MS2VLLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(from));
  return WriteAll(to, file.bytes().data(), file.bytes().size());
}

}  // namespace ms2vllm
