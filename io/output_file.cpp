#include "io/output_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "io/page_range.h"
#include "io/staging.h"


namespace ms2vllm {
namespace {

Error OutputError(const std::filesystem::path& path, const std::string& what, int error_number) {
  std::string reason = std::strerror(error_number);
  if (error_number == ENOSPC) reason = "no space left on the device";
  if (error_number == EFBIG) reason = "file too large for this file system";
  // The stage is an implementation detail: the message names the file the user asked for.
  return MakeError(ErrorCode::kOutput, UserPathFor(path).string() + ": " + what + ": " + reason);
}

}  // namespace

Result<OutputFile> OutputFile::Create(const std::filesystem::path& path, uint64_t size) {
  OutputFile file;
  file.path_ = path;
  file.size_ = size;
  file.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (file.fd_ < 0) return OutputError(path, "cannot create", errno);
  if (size == 0) return file;
  // tmpfs on older kernels stops a long fallocate at any pending signal (EINTR). A SIGINT is
  // the caller's to act on (its cancel check), not a failure of the output: reserve again
  // (the kernel undid the partial reservation; the handler has run, so the retry goes through).
  int rc = 0;
  do {
    rc = ::posix_fallocate(file.fd_, 0, static_cast<off_t>(size));
  } while (rc == EINTR);
  if (rc == EOPNOTSUPP || rc == EINVAL) rc = ::ftruncate(file.fd_, static_cast<off_t>(size)) == 0 ? 0 : errno;
  if (rc != 0) return OutputError(path, "cannot reserve " + std::to_string(size) + " bytes", rc);
  void* address = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, file.fd_, 0);
  if (address == MAP_FAILED) return OutputError(path, "cannot map", errno);
  file.data_ = static_cast<uint8_t*>(address);
  return file;
}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_), data_(other.data_), size_(other.size_) {
  other.fd_ = -1;
  other.data_ = nullptr;
}

OutputFile::~OutputFile() {
  Unmap();
  if (fd_ >= 0) ::close(fd_);
}

void OutputFile::Unmap() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
}

void OutputFile::Prepare(uint64_t offset, uint64_t size) { AdvisePages(data_, size_, offset, size, MADV_POPULATE_WRITE); }

void OutputFile::Retire(uint64_t offset, uint64_t size) {
  if (size == 0) return;
  ::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(size), SYNC_FILE_RANGE_WRITE);
  AdvisePages(data_, size_, offset, size, MADV_DONTNEED);
}

Status OutputFile::Finish() {
  Unmap();
  if (::fsync(fd_) != 0) return OutputError(path_, "cannot write to disk", errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return OutputError(path_, "cannot close", errno);
  }
  fd_ = -1;
  return Ok{};
}

}  // namespace ms2vllm
