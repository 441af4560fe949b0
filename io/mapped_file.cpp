#include "io/mapped_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/file_mapping.hpp>
#include <boost/interprocess/mapped_region.hpp>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "io/mapping_guard.h"
#include "io/page_range.h"

namespace ms2vllm {

namespace bip = boost::interprocess;

bool IsDanglingSymlink(const std::filesystem::path& path) {
  std::error_code ec;  // a link that leads nowhere fails exists(); that is the answer, not an error
  return std::filesystem::is_symlink(std::filesystem::symlink_status(path, ec)) && !std::filesystem::exists(path, ec);
}

std::string WhyNotAFile(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  if (!IsDanglingSymlink(path)) return "is not a regular file";  // a FIFO, a device, a link to one
  std::error_code ec, followed;
  const fs::path target = fs::read_symlink(path, ec);
  static_cast<void>(fs::status(path, followed));  // only its error: a loop, or a missing target
  if (followed == std::errc::too_many_symbolic_link_levels) return "is a symbolic link in a loop (to " + target.string() + ")";
  const bool chain = fs::is_symlink(fs::symlink_status(LinkDestination(path, target), ec));
  return "is a symbolic link to " + target.string() + (chain ? ", a link that leads nowhere" : ", which does not exist");
}

Result<MappedFile> MappedFile::Open(const std::filesystem::path& path) {
  MappedFile file;
  file.path_ = path;
  // Opened first and checked through the descriptor, so the file checked is the file read.
  // O_NONBLOCK: a FIFO put in the file's place must fail the check below, not hang the open.
  file.fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (file.fd_ < 0) {
    const int error = errno;
    if (error == ENOENT && IsDanglingSymlink(path)) {  // a shard's blob gone
      return MakeError(ErrorCode::kInvalidInput, path.string() + ": " + WhyNotAFile(path));
    }
    const char* what = error == EACCES ? ": cannot read: " : ": cannot open: ";
    return MakeError(OutOfResources(error) ? ErrorCode::kResources : ErrorCode::kInvalidInput,
                     path.string() + what + std::strerror(error));
  }
  struct stat info {};
  if (::fstat(file.fd_, &info) != 0) {
    return MakeError(ErrorCode::kInvalidInput, path.string() + ": cannot open: " + std::strerror(errno));
  }
  if (S_ISDIR(info.st_mode)) {
    return MakeError(ErrorCode::kInvalidInput, path.string() + ": is a directory, expected a file");
  }
  if (!S_ISREG(info.st_mode)) {
    return MakeError(ErrorCode::kInvalidInput, path.string() + ": not a regular file");
  }
  file.size_ = static_cast<uint64_t>(info.st_size);
  file.modified_ = info.st_mtim;
  if (file.size_ == 0) return file;  // nothing to map; callers see an empty span
  // The mapping opens a second descriptor for a moment. Out of descriptors, that open would fail
  // inside Boost's exception machinery; the slot is proved free here instead, and named.
  const int spare = ::fcntl(file.fd_, F_DUPFD_CLOEXEC, 0);
  if (spare < 0) {
    const int error = errno;
    return MakeError(OutOfResources(error) ? ErrorCode::kResources : ErrorCode::kInvalidInput,
                     path.string() + ": cannot map: " + std::strerror(error));
  }
  ::close(spare);
  try {
    // Mapped through the descriptor's own link, not the path: the same inode whatever the
    // path names by now.
    const std::string self = "/proc/self/fd/" + std::to_string(file.fd_);
    bip::file_mapping mapping(self.c_str(), bip::read_only);
    file.region_ = std::make_unique<bip::mapped_region>(mapping, bip::read_only, 0, file.size_);
  } catch (const bip::interprocess_exception& e) {
    const bool exhausted = OutOfResources(e.get_native_error());
    return MakeError(exhausted ? ErrorCode::kResources : ErrorCode::kInvalidInput, path.string() + ": cannot map: " + e.what());
  }
  file.data_ = static_cast<const uint8_t*>(file.region_->get_address());
  mapping_guard::Register(file.data_, file.size_);
  return file;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), region_(std::move(other.region_)), data_(other.data_), size_(other.size_),
      modified_(other.modified_), fd_(other.fd_) {
  other.data_ = nullptr;
  other.fd_ = -1;
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    mapping_guard::Unregister(data_);
    if (fd_ >= 0) ::close(fd_);
    path_ = std::move(other.path_);
    region_ = std::move(other.region_);
    data_ = other.data_;
    size_ = other.size_;
    modified_ = other.modified_;
    fd_ = other.fd_;
    other.data_ = nullptr;
    other.fd_ = -1;
  }
  return *this;
}

MappedFile::~MappedFile() {
  mapping_guard::Unregister(data_);
  if (fd_ >= 0) ::close(fd_);
}

Status MappedFile::CheckUnchanged() const {
  struct stat info {};
  if (::fstat(fd_, &info) != 0) return MakeError(ErrorCode::kInvalidInput, path_.string() + ": cannot stat: " + std::strerror(errno));
  const auto now = static_cast<uint64_t>(info.st_size);
  const bool rewritten = info.st_mtim.tv_sec != modified_.tv_sec || info.st_mtim.tv_nsec != modified_.tv_nsec;
  if (now == size_ && !rewritten && !mapping_guard::Faulted(data_)) return Ok{};
  if (now == size_ && rewritten) {
    return MakeError(ErrorCode::kInvalidInput, path_.string() + ": changed while being read (modified since it was opened)");
  }
  if (now == size_) {  // a page faulted, yet size and time are as they were
    // An I/O error (NFS, a failing disk), or a cut and a regrowth within one tick of a file
    // system's clock (coarse timestamps: ramfs, NFS, kernels before 6.13).
    return MakeError(ErrorCode::kInvalidInput,
                     path_.string() + ": changed while being read, or a read of it failed (a page could not be read, "
                                      "though its size and time are as when it was opened: an I/O error?)");
  }
  return MakeError(ErrorCode::kInvalidInput, path_.string() + ": changed while being read (" + std::to_string(size_) +
                                                 " bytes when opened, " + std::to_string(now) + " now)");
}

Status MappedFile::Read(uint64_t offset, std::span<uint8_t> into) const {
  while (!into.empty()) {
    const ssize_t n = ::pread(fd_, into.data(), into.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = n < 0 ? std::strerror(errno) : "the file is shorter than when it was opened";
      return MakeError(ErrorCode::kInvalidInput, path_.string() + ": cannot read: " + reason);
    }
    into = into.subspan(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Ok{};
}

Status MappedFile::ReadRows(const StridedRows& rows, uint8_t* into) const {
  // The bytes between rows are read into a scratch buffer and dropped (less than a row: tens of
  // KB). Per call, not thread_local: see TransferRows.
  const auto gap = std::make_unique_for_overwrite<uint8_t[]>(rows.file_stride - rows.row_bytes);
  const int failure = TransferRows(fd_, &::preadv, rows, into, gap.get());
  if (failure == 0) return Ok{};
  const std::string reason = failure > 0 ? std::strerror(failure) : "the file is shorter than when it was opened";
  return MakeError(ErrorCode::kInvalidInput, path_.string() + ": cannot read: " + reason);
}

void MappedFile::WillNeed(uint64_t offset, uint64_t size) const {
  AdvisePages(data_, size_, offset, size, MADV_WILLNEED);
}

void MappedFile::Prefault(uint64_t offset, uint64_t size) const {
  AdvisePages(data_, size_, offset, size, MADV_POPULATE_READ);
}

void MappedFile::Release(uint64_t offset, uint64_t size) const {
  AdvisePages(data_, size_, offset, size, MADV_DONTNEED);
}

}  // namespace ms2vllm
