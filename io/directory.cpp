#include "io/directory.h"

#include <dirent.h>
#include <ftw.h>
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

bool RemoveTree(const fs::path& path) {
  // Children first (FTW_DEPTH), links not followed (FTW_PHYS), each removed where it is.
  const auto remove_one = [](const char* name, const struct stat*, int, FTW*) {
    ::remove(name);
    return 0;  // go on past what cannot be removed
  };
  ::nftw(path.c_str(), remove_one, 16, FTW_DEPTH | FTW_PHYS);
  struct stat left {};
  return ::lstat(path.c_str(), &left) != 0 && errno == ENOENT;
}

}  // namespace ms2vllm
