// RemoveTree: a whole tree goes, links as links, read-only directories of this user's too, and it
// needs no memory, as a run out of memory still removes its stage.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "io/directory.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;

// A tree with nested directories, more entries than one read of a directory returns, and links
// to things outside it.
void MakeTree(const fs::path& root, const fs::path& outside) {
  fs::create_directories(root / "a" / "b" / "c");
  for (int i = 0; i < 300; ++i) testing::WriteText(root / "a" / ("file-with-a-long-name-" + std::to_string(i)), "x");
  testing::WriteText(root / "a" / "b" / "c" / "deep", "x");
  fs::create_directories(root / "empty");
  fs::create_symlink(outside, root / "a" / "link-to-outside");
  fs::create_symlink(outside / "kept", root / "link-to-file");
}

TEST(RemoveTree, RemovesATreeAndFollowsNoLink) {
  testing::TempDir dir;
  const fs::path outside = dir / "outside", root = dir / "root";
  fs::create_directories(outside);
  testing::WriteText(outside / "kept", "mine");
  MakeTree(root, outside);
  EXPECT_TRUE(RemoveTree(root));
  EXPECT_FALSE(fs::exists(fs::symlink_status(root)));
  EXPECT_EQ(testing::ReadText(outside / "kept"), "mine");
  // A file, a link, and a path that is not there.
  EXPECT_TRUE(RemoveTree(outside / "kept"));
  EXPECT_FALSE(fs::exists(outside / "kept"));
  fs::create_symlink(outside, dir / "link");
  EXPECT_TRUE(RemoveTree(dir / "link"));
  EXPECT_TRUE(fs::exists(outside));
  EXPECT_TRUE(RemoveTree(dir / "absent"));
}

// A directory its owner made read-only (an output directory chmod 555, which --force replaced)
// is emptied and removed, however deep; a user's own permission bits stop it otherwise.
TEST(RemoveTree, RemovesADirectoryItsOwnerMadeReadOnly) {
  testing::TempDir dir;
  const fs::path root = dir / "root";
  fs::create_directories(root / "sub");
  fs::create_directories(root / "unreadable");
  fs::create_directories(root / "closed");
  testing::WriteText(root / "model.safetensors", "x");
  testing::WriteText(root / "sub" / "deep", "x");
  testing::WriteText(root / "unreadable" / "deep", "x");
  testing::WriteText(root / "closed" / "deep", "x");
  fs::permissions(root / "sub", fs::perms(0555));
  fs::permissions(root / "unreadable", fs::perms(0333));
  fs::permissions(root / "closed", fs::perms(0));
  fs::permissions(root, fs::perms(0555));
  EXPECT_EQ(testing::RunWherePermissionsApply([&] { return RemoveTree(root) ? 0 : 1; }), 0);
  EXPECT_FALSE(fs::exists(fs::symlink_status(root)));
}

// In the AddressSpaceLimit suite, which the sanitizer and qemu test presets leave out (both reserve
// address space of their own).
TEST(AddressSpaceLimit, RemoveTreeNeedsNoMemory) {
  testing::TempDir dir;
  const fs::path outside = dir / "outside", root = dir / "root";
  fs::create_directories(outside);
  MakeTree(root, outside);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // No address space beyond what the process holds: any mmap or heap growth fails.
    rlimit limit{};
    ::getrlimit(RLIMIT_AS, &limit);
    FILE* maps = std::fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (maps == nullptr || std::fscanf(maps, "%lu", &pages) != 1) _exit(2);
    std::fclose(maps);
    limit.rlim_cur = pages * static_cast<rlim_t>(::sysconf(_SC_PAGESIZE));
    if (::setrlimit(RLIMIT_AS, &limit) != 0) _exit(3);
    if (::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED) _exit(4);
    _exit(RemoveTree(root) ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_FALSE(fs::exists(fs::symlink_status(root)));
}

}  // namespace
}  // namespace ms2vllm
