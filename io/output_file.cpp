#include "io/output_file.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>

#include "io/mapped_file.h"
#include "io/staging.h"

namespace ms2vllm {
namespace {

// EFBIG is the file system's limit, or the process's own (ulimit -f), which the user can lift.
std::string FileTooLarge() {
  rlimit limit{};
  std::string reason = "file too large for this file system";
  if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
    reason += ", or for this process's file size limit (ulimit -f) of " + std::to_string(limit.rlim_cur) + " bytes";
  }
  return reason;
}

Error OutputError(const std::filesystem::path& path, const std::string& what, int error_number) {
  std::string reason = std::strerror(error_number);
  if (error_number == ENOSPC) reason = "no space left on the device";
  if (error_number == EFBIG) reason = FileTooLarge();
  // The stage is an implementation detail: the message names the file the user asked for.
  return MakeError(ErrorCode::kOutput, UserPathFor(path).string() + ": " + what + ": " + reason);
}

// copy_file_range errors that mean "not between these files", not "the output failed".
bool CopyUnsupported(int error_number) {
  return error_number == EXDEV || error_number == EINVAL || error_number == EOPNOTSUPP || error_number == ENOSYS ||
         error_number == EBADF;
}

}  // namespace

Result<OutputFile> OutputFile::Create(const std::filesystem::path& path, uint64_t size) {
  OutputFile file;
  file.path_ = path;
  // Not O_EXCL: a file target's stage exists already, created and locked by its Staging.
  file.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
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
  return file;
}

OutputFile::OutputFile(OutputFile&& other) noexcept
    : path_(std::move(other.path_)), fd_(other.fd_),
      copy_file_range_works_(other.copy_file_range_works_), writeback_(other.writeback_) {
  other.fd_ = -1;
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
}

Status OutputFile::Write(uint64_t offset, std::span<const uint8_t> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::pwrite(fd_, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return OutputError(path_, "cannot write", n < 0 ? errno : ENOSPC);
    bytes = bytes.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Ok{};
}

Status OutputFile::WriteRows(const StridedRows& rows, const uint8_t* from) {
  // pwritev only reads the memory; TransferRows takes it mutable because preadv writes it.
  const int failure = TransferRows(fd_, &::pwritev, rows, const_cast<uint8_t*>(from), nullptr);
  if (failure == 0) return Ok{};
  return OutputError(path_, "cannot write", failure > 0 ? failure : ENOSPC);
}

Status OutputFile::CopyFrom(const MappedFile& input, uint64_t input_offset, uint64_t offset, uint64_t size) {
  // Threads copy disjoint ranges; once one finds the copy unsupported, all write instead.
  std::atomic_ref<bool> works(copy_file_range_works_);
  loff_t in = static_cast<loff_t>(input_offset), out = static_cast<loff_t>(offset);
  while (size > 0 && works.load(std::memory_order_relaxed)) {
    const ssize_t n = ::copy_file_range(input.fd(), &in, fd_, &out, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && !CopyUnsupported(errno)) return OutputError(path_, "cannot write", errno);
    if (n <= 0) {  // unsupported here, or the input ended early: write the rest from the mapping
      works.store(false, std::memory_order_relaxed);
      break;
    }
    size -= static_cast<uint64_t>(n);
  }
  if (size == 0) return Ok{};
  return Write(static_cast<uint64_t>(out), input.bytes().subspan(static_cast<size_t>(in), size));
}

void OutputFile::StartWriteback(uint64_t offset, uint64_t size) {
  if (!writeback_.Add({offset, size})) return;
  const ByteRange range = writeback_.Take();
  ::sync_file_range(fd_, static_cast<off_t>(range.offset), static_cast<off_t>(range.size), SYNC_FILE_RANGE_WRITE);
}

Status OutputFile::Finish() {
  if (::fsync(fd_) != 0) return OutputError(path_, "cannot write to disk", errno);
  if (::close(fd_) != 0) {
    fd_ = -1;
    return OutputError(path_, "cannot close", errno);
  }
  fd_ = -1;
  return Ok{};
}

}  // namespace ms2vllm
