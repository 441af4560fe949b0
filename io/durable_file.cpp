#include "io/durable_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "io/mapped_file.h"
#include "io/staging.h"

namespace ms2vllm {

Result<DurableFileWriter> DurableFileWriter::Create(const std::filesystem::path& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return MakeError(ErrorCode::kOutput, UserPathFor(path).string() + ": cannot create: " + std::strerror(errno));
  return DurableFileWriter(path, fd);
}

DurableFileWriter::DurableFileWriter(DurableFileWriter&& other) noexcept
    : path_(std::move(other.path_)), fd_(std::exchange(other.fd_, -1)) {}

DurableFileWriter::~DurableFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Status DurableFileWriter::Append(std::string_view bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // a write of nothing sets no errno: a full disk is what makes it
      return MakeError(ErrorCode::kOutput,
                       UserPathFor(path_).string() + ": cannot write: " + std::strerror(n < 0 ? errno : ENOSPC));
    }
    done += static_cast<size_t>(n);
  }
  return Ok{};
}

Status DurableFileWriter::Finish() {
  const bool synced = ::fsync(fd_) == 0;
  const int saved = errno;
  ::close(std::exchange(fd_, -1));
  if (!synced) return MakeError(ErrorCode::kOutput, UserPathFor(path_).string() + ": cannot write to disk: " + std::strerror(saved));
  return Ok{};
}

Status WriteFileDurably(const std::filesystem::path& path, std::string_view bytes) {
  MS2VLLM_ASSIGN_OR_RETURN(DurableFileWriter file, DurableFileWriter::Create(path));
  MS2VLLM_TRY(file.Append(bytes));
  return file.Finish();
}

Status CopyFileDurably(const std::filesystem::path& from, const std::filesystem::path& to) {
  MS2VLLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(from));
  return WriteFileDurably(to, std::string_view(reinterpret_cast<const char*>(file.bytes().data()), file.bytes().size()));
}

}  // namespace ms2vllm
