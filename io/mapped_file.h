// A whole input file mapped read-only (Boost.Interprocess), with page release behind a reader.
#pragma once

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "io/status.h"
#include "io/strided_rows.h"

namespace boost::interprocess {
class mapped_region;
}

namespace ms2vllm {

// A symbolic link that leads to no file: its target is missing, a link that leads nowhere, or a loop.
bool IsDanglingSymlink(const std::filesystem::path& path);

// The path that `target`, read from the symbolic link `link`, names: a relative target is relative
// to the link's own directory, as the kernel follows it.
inline std::filesystem::path LinkDestination(const std::filesystem::path& link, const std::filesystem::path& target) {
  return target.is_absolute() ? target : link.parent_path() / target;
}

// Why `path`, which names no regular file, cannot be read: for a dangling link, which of the three
// ("is a symbolic link to T, which does not exist"; open's "No such file or directory" reads as a
// missing file, though `ls` lists it), else "is not a regular file".
std::string WhyNotAFile(const std::filesystem::path& path);

class MappedFile {
 public:
  // Fails with kInvalidInput naming the file when it is missing, not a regular file or unreadable.
  static Result<MappedFile> Open(const std::filesystem::path& path);

  MappedFile(MappedFile&&) noexcept;
  MappedFile& operator=(MappedFile&&) noexcept;
  ~MappedFile();

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  uint64_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

  // A descriptor of the file, for copy_file_range.
  int fd() const { return fd_; }

  // Copies [offset, offset + into.size()) into `into` with pread. Reading a block this way is
  // about 3x cheaper than touching it through the mapping under a hypervisor (the kernel reads
  // the page cache through its own huge-page mapping; bench/README.md has the figures).
  Status Read(uint64_t offset, std::span<uint8_t> into) const;
  // Reads `rows` into `into` (rows.pitch apart) with preadv; the file bytes between rows are
  // read but dropped. Safe to call from several threads.
  Status ReadRows(const StridedRows& rows, uint8_t* into) const;
  // Starts reading [offset, offset+size) from disk in the background.
  void WillNeed(uint64_t offset, uint64_t size) const;
  // Maps the pages of [offset, offset+size) in one call instead of one fault per page.
  void Prefault(uint64_t offset, uint64_t size) const;
  // Fails with kInvalidInput naming the file when it has been cut short or changed size since
  // it was opened: reads through the mapping past the new end then gave zeros (mapping_guard.h),
  // and preads short reads. Whatever was read from it must not be used.
  Status CheckUnchanged() const;
  // Drops the pages covering [offset, offset+size) from this process; the page cache keeps
  // them, so a later read is still correct, only slower. Keeps resident memory bounded.
  void Release(uint64_t offset, uint64_t size) const;

 private:
  MappedFile() = default;
  std::filesystem::path path_;
  std::unique_ptr<boost::interprocess::mapped_region> region_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  timespec modified_{};  // st_mtim when opened: a write in place keeps the size
  int fd_ = -1;
};

}  // namespace ms2vllm
