#include "io/directory.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace ms2vllm {
namespace fs = std::filesystem;

Result<std::vector<fs::path>> ListDirectory(const fs::path& directory) {
  const auto failed = [&](int error) {
    return MakeError(OutOfResources(error) ? ErrorCode::kResources : ErrorCode::kInvalidInput,
                     directory.string() + ": cannot list: " + std::strerror(error));
  };
  DIR* dir = ::opendir(directory.c_str());
  if (dir == nullptr) return failed(errno);
  std::vector<fs::path> entries;
  errno = 0;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") entries.push_back(directory / name);
    errno = 0;
  }
  const int error = errno;
  ::closedir(dir);
  if (error != 0) return failed(error);
  std::sort(entries.begin(), entries.end());
  return entries;
}

namespace {

// Opens the directory `name` in `at` to empty it. Without read, write and search permission on a
// directory its entries can be neither listed nor removed: a directory this user owns gets them
// back (a read-only output directory, chmod 555, that --force replaced; one made 0333); another
// user's is left as it is. -1 when it cannot be opened.
int OpenToEmpty(int at, const char* name) {
  struct stat info {};
  if (::fstatat(at, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(info.st_mode) && info.st_uid == ::geteuid() &&
      (info.st_mode & S_IRWXU) != S_IRWXU) {
    ::fchmodat(at, name, (info.st_mode & 07777) | S_IRWXU, 0);
  }
  return ::openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

// Removes what is in the directory open as `dir` (children first, symlinks as links), reading it
// into a buffer on the stack: the stage of a run that ran out of memory must still go, and
// opendir, which nftw uses, allocates 32 KB. Passes repeat until one removes nothing, as removing
// entries while reading a directory may skip some.
void RemoveContents(int dir) {
  alignas(dirent64) char buffer[4096];
  for (bool removed = true; removed;) {
    removed = false;
    if (::lseek(dir, 0, SEEK_SET) != 0) return;
    for (ssize_t n; (n = ::getdents64(dir, buffer, sizeof buffer)) > 0;) {
      for (ssize_t at = 0; at < n;) {
        const auto* entry = reinterpret_cast<const dirent64*>(buffer + at);
        at += entry->d_reclen;
        const char* name = entry->d_name;
        if (std::strcmp(name, ".") == 0 || std::strcmp(name, "..") == 0) continue;
        if (::unlinkat(dir, name, 0) == 0) {
          removed = true;
          continue;
        }
        if (errno != EISDIR) continue;  // not ours to remove: left
        const int child = OpenToEmpty(dir, name);
        if (child < 0) continue;
        RemoveContents(child);
        ::close(child);
        removed |= ::unlinkat(dir, name, AT_REMOVEDIR) == 0;
      }
    }
  }
}

}  // namespace

bool RemoveTree(const fs::path& path) {
  if (::unlink(path.c_str()) != 0 && errno == EISDIR) {
    const int dir = OpenToEmpty(AT_FDCWD, path.c_str());
    if (dir >= 0) {
      RemoveContents(dir);
      ::close(dir);
    }
    ::rmdir(path.c_str());
  }
  struct stat left {};
  return ::lstat(path.c_str(), &left) != 0 && errno == ENOENT;
}

}  // namespace ms2vllm
