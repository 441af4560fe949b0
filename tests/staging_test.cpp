// Stages: each run's temp file or directory is its own and locked, even where another live run
// has the same pid (a container sharing the volume); only stages nobody holds are removed.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <vector>

#include "io/durable_file.h"
#include "io/output_file.h"
#include "io/staging.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;

// Two stagings of one target in one process stand for two runs of the same pid.
TEST(Staging, ARunOfTheSamePidGetsAStageOfItsOwn) {
  for (const bool directory : {false, true}) {
    SCOPED_TRACE(directory ? "directory" : "file");
    testing::TempDir dir;
    const fs::path target = dir / "out";
    auto first = directory ? Staging::ForDirectory(target, true, EarlierOutput::kConversion) : Staging::ForFile(target);
    ASSERT_TRUE(first.ok()) << first.error().message;
    EXPECT_EQ(first->stage(), StagePathFor(target, ::getpid()));
    if (directory) testing::WriteText(first->PathFor("model.safetensors"), "first run");

    std::optional<Staging> second;
    {
      auto made = directory ? Staging::ForDirectory(target, true, EarlierOutput::kConversion) : Staging::ForFile(target);
      ASSERT_TRUE(made.ok()) << made.error().message;
      second.emplace(std::move(*made));
    }
    EXPECT_EQ(second->stage(), StagePathFor(target, ::getpid(), 1));
    // The first run's stage was held: neither removed by the second's cleanup nor shared.
    EXPECT_TRUE(fs::exists(first->stage()));
    if (directory) {
      EXPECT_EQ(testing::ReadText(first->PathFor("model.safetensors")), "first run");
    }

    testing::WriteText(second->PathFor("model.safetensors"), "second run");
    ASSERT_TRUE(second->Commit().ok());
    ASSERT_TRUE(first->Commit().ok());  // the later commit wins, whole
    EXPECT_EQ(testing::ReadText(directory ? target / "model.safetensors" : target), directory ? "first run" : "");
    EXPECT_FALSE(fs::exists(StagePathFor(target, ::getpid())));
    EXPECT_FALSE(fs::exists(StagePathFor(target, ::getpid(), 1)));
  }
}

// A stage nobody holds, with this very pid in its name, is a killed run's: removed, and its
// name taken again.
TEST(Staging, AnUnheldStageIsRemovedWhateverItsPid) {
  testing::TempDir dir;
  const fs::path target = dir / "res.safetensors";
  testing::WriteText(StagePathFor(target, ::getpid()), "left by a killed run");
  testing::WriteText(StagePathFor(target, 99, 3), "left by another");
  // Names a stage never has are the user's, however alike: a date, the old directory set aside.
  const fs::path dated = dir / ".res.safetensors.ms2vllm-2024-01-01.tmp";
  const fs::path aside = dir / ".res.safetensors.ms2vllm-99-old.tmp";
  testing::WriteText(dated, "the user's");
  testing::WriteText(aside, "an old directory to recover");
  auto staging = Staging::ForFile(target);
  ASSERT_TRUE(staging.ok()) << staging.error().message;
  EXPECT_EQ(staging->stage(), StagePathFor(target, ::getpid()));
  EXPECT_EQ(testing::ReadText(staging->stage()), "");  // a new, empty stage
  EXPECT_FALSE(fs::exists(StagePathFor(target, 99, 3)));
  EXPECT_TRUE(fs::exists(dated));
  EXPECT_TRUE(fs::exists(aside));
}

// A directory stage is made as any new directory is: all permissions, less the umask.
TEST(Staging, ADirectoryStageFollowsTheUmask) {
  testing::TempDir dir;
  const mode_t before = ::umask(002);
  auto staging = Staging::ForDirectory(dir / "out", false, EarlierOutput::kConversion);
  ::umask(before);
  ASSERT_TRUE(staging.ok()) << staging.error().message;
  EXPECT_EQ(fs::status(staging->stage()).permissions() & fs::perms::all, fs::perms::all & ~fs::perms::others_write);
}

fs::perms ModeOf(const fs::path& path) { return fs::symlink_status(path).permissions(); }

// A umask that takes the owner's write away (0222) gives the output the mode it gives any new
// file, read-only, and ms2vllm still writes it: the stage is its owner's to write until the
// commit (a user's permission bits would stop the reopen of a 0444 file stage, and the files
// made in a 0555 directory stage).
TEST(Staging, AUmaskWithoutOwnerWriteGivesItsModeToAnOutputStillWritten) {
  testing::TempDir dir;
  const fs::path file = dir / "res.safetensors", directory = dir / "out";
  const auto build = [](const fs::path& target, bool is_directory) {
    return testing::RunWherePermissionsApply([&] {  // the child's umask, not the test's
      ::umask(0222);
      const auto failed = [](const Error& error, int code) {
        std::fprintf(stderr, "%s\n", error.message.c_str());
        return code;
      };
      auto staging = is_directory ? Staging::ForDirectory(target, false, EarlierOutput::kConversion) : Staging::ForFile(target);
      if (!staging) return failed(staging.error(), 1);
      const uint8_t bytes[] = {'d', 'a', 't', 'a'};
      auto output = OutputFile::Create(staging->PathFor("model.safetensors"), sizeof bytes);
      if (!output) return failed(output.error(), 2);
      if (auto written = output->Write(0, bytes); !written.ok()) return failed(written.error(), 3);
      if (auto finished = output->Finish(); !finished.ok()) return failed(finished.error(), 4);
      if (is_directory) {
        if (auto config = WriteFileDurably(staging->PathFor("config.json"), "{}"); !config.ok()) return failed(config.error(), 5);
      }
      if (auto committed = staging->Commit(); !committed.ok()) return failed(committed.error(), 6);
      return 0;
    });
  };
  const fs::perms read_only = fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read;
  EXPECT_EQ(build(file, false), 0);
  EXPECT_EQ(testing::ReadText(file), "data");
  EXPECT_EQ(ModeOf(file), read_only);
  EXPECT_EQ(build(directory, true), 0);
  EXPECT_EQ(testing::ReadText(directory / "model.safetensors"), "data");
  EXPECT_EQ(ModeOf(directory), read_only | fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec);
  EXPECT_EQ(ModeOf(directory / "model.safetensors"), read_only);
  EXPECT_EQ(ModeOf(directory / "config.json"), read_only);
  std::vector<fs::path> left(fs::directory_iterator(dir.path()), fs::directory_iterator());
  std::sort(left.begin(), left.end());
  EXPECT_EQ(left, (std::vector<fs::path>{directory, file}));  // no stage left
  if (fs::exists(directory)) fs::permissions(directory, fs::perms::owner_write, fs::perm_options::add);  // for TempDir
}

// A file target replaced keeps its mode, as the script's open for writing keeps it: an output
// made private (0600) stays private.
TEST(Staging, AFileReplacedPassesOnItsMode) {
  testing::TempDir dir;
  const fs::path file = dir / "res.safetensors";
  testing::WriteText(file, "earlier");
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  auto staging = Staging::ForFile(file);
  ASSERT_TRUE(staging.ok()) << staging.error().message;
  testing::WriteText(staging->stage(), "new");
  ASSERT_TRUE(staging->Commit().ok());
  EXPECT_EQ(testing::ReadText(file), "new");
  EXPECT_EQ(ModeOf(file), fs::perms::owner_read | fs::perms::owner_write);
}

// --force replacing an earlier output its owner made read-only (chmod 555): the new directory
// takes its mode, as it takes any replaced directory's, and the old one is removed whole, so the
// next run meets the same and replaces it as well.
TEST(Staging, AReadOnlyDirectoryReplacedIsRemovedWhole) {
  testing::TempDir dir;
  const fs::path target = dir / "out";
  fs::create_directories(target);
  testing::WriteText(target / std::string(kSynthMarker), "old");
  fs::permissions(target, fs::perms(0555));
  const int outcome = testing::RunWherePermissionsApply([&] {
    for (int run = 0; run < 2; ++run) {
      auto staging = Staging::ForDirectory(target, true, EarlierOutput::kSynthetic);
      if (!staging) return 1;
      if (!WriteFileDurably(staging->PathFor(std::string(kSynthMarker)), "run " + std::to_string(run)).ok()) return 2;
      if (!staging->Commit().ok()) return 3;
      if (!staging->leftover().empty()) return 4;  // the old directory stayed, under a temp name
    }
    return 0;
  });
  EXPECT_EQ(outcome, 0);
  EXPECT_EQ(testing::ReadText(target / std::string(kSynthMarker)), "run 1");
  EXPECT_EQ(ModeOf(target), fs::perms(0555));
  EXPECT_EQ(std::vector<fs::path>(fs::directory_iterator(dir.path()), fs::directory_iterator()), std::vector<fs::path>{target});
  fs::permissions(target, fs::perms::owner_write, fs::perm_options::add);
}

// The stage of a killed run, or what an earlier version left of a read-only directory it
// replaced, is removed even when its owner cannot write it.
TEST(Staging, AReadOnlyStaleStageIsRemoved) {
  testing::TempDir dir;
  const fs::path target = dir / "out", stale = StagePathFor(target, 99);
  fs::create_directories(stale);
  testing::WriteText(stale / "model.safetensors", "left");
  fs::permissions(stale, fs::perms(0555));
  const int outcome = testing::RunWherePermissionsApply([&] {
    return Staging::ForDirectory(target, false, EarlierOutput::kConversion).ok() ? 0 : 1;
  });
  EXPECT_EQ(outcome, 0);
  EXPECT_FALSE(fs::exists(stale));
  if (fs::exists(stale)) fs::permissions(stale, fs::perms::owner_write, fs::perm_options::add);
}

// A directory missing when the run began and filled before it ends (two runs racing to one new
// --out-dir): the finished one is left as it is, and the message says what happened.
TEST(Staging, ADirectoryFilledWhileConvertingIsLeftAsItIs) {
  testing::TempDir dir;
  const fs::path target = dir / "out";
  {
    auto staging = Staging::ForDirectory(target, false, EarlierOutput::kConversion);
    ASSERT_TRUE(staging.ok()) << staging.error().message;
    testing::WriteText(staging->PathFor("model.safetensors"), "this run");
    fs::create_directories(target);
    testing::WriteText(target / "model.safetensors", "the other run");
    const Status committed = staging->Commit();
    ASSERT_FALSE(committed.ok());
    EXPECT_EQ(committed.error().code, ErrorCode::kOutput);
    EXPECT_EQ(committed.error().message,
              target.string() + ": was filled by another process while this run wrote it (a second run into "
                                "it?): left as it is");
  }
  EXPECT_EQ(testing::ReadText(target / "model.safetensors"), "the other run");
  EXPECT_FALSE(fs::exists(StagePathFor(target, ::getpid())));  // this run's stage is gone
}

// Where there is no atomic exchange, --force moves the old directory aside first, and back when
// the new one cannot move in.
TEST(Staging, ReplaceInTwoStepsMovesTheOldAsideAndBackOnFailure) {
  testing::TempDir dir;
  fs::create_directories(dir / "target");
  testing::WriteText(dir / "target/old.txt", "old");
  fs::create_directories(dir / "stage");
  testing::WriteText(dir / "stage/new.txt", "new");
  ASSERT_TRUE(ReplaceInTwoSteps(dir / "stage", dir / "target", dir / "aside").ok());
  EXPECT_EQ(testing::ReadText(dir / "target/new.txt"), "new");
  EXPECT_EQ(testing::ReadText(dir / "aside/old.txt"), "old");
  EXPECT_FALSE(fs::exists(dir / "stage"));

  const Status failed = ReplaceInTwoSteps(dir / "no-such-stage", dir / "target", dir / "aside2");
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.error().code, ErrorCode::kOutput);
  EXPECT_EQ(testing::ReadText(dir / "target/new.txt"), "new");  // moved back
  EXPECT_FALSE(fs::exists(dir / "aside2"));
}

// Messages name the target, not the stage, for every form of stage name.
TEST(Staging, UserPathForNamesTheTarget) {
  EXPECT_EQ(UserPathFor(StagePathFor("dir/res.safetensors", 7)), fs::path("dir/res.safetensors"));
  EXPECT_EQ(UserPathFor(StagePathFor("dir/out", 7, 12) / "config.json"), fs::path("dir/out/config.json"));
  EXPECT_EQ(UserPathFor("dir/.out.ms2vllm-x.tmp"), fs::path("dir/.out.ms2vllm-x.tmp"));
  // A name too long for its stage's (NAME_MAX) is cut and hashed there, and whole in messages.
  const std::string long_name = std::string(240, 'n') + ".safetensors";
  const fs::path stage = StagePathFor("dir/" + long_name, 7);
  EXPECT_LE(stage.filename().string().size(), 255u);
  EXPECT_EQ(UserPathFor(stage), fs::path("dir/" + long_name));
  EXPECT_EQ(UserPathFor(StagePathFor("dir/" + long_name + "-dir", 8) / "model.safetensors"),
            fs::path("dir/" + long_name + "-dir/model.safetensors"));
}

void ExpectRefused(const fs::path& target, bool directory, const std::string& message) {
  SCOPED_TRACE(target.string());
  const Status checked = Staging::Check(target, directory, false, EarlierOutput::kConversion);
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().code, ErrorCode::kOutput);
  EXPECT_EQ(checked.error().message, message);
}

// The stage's name is cut to fit NAME_MAX, the target's cannot be: a longer name is refused
// before the work, not by the rename after it.
TEST(Staging, ANameOverTheFileSystemsLimitIsRefusedUpFront) {
  testing::TempDir dir;
  const std::string too_long(300, 'M');
  for (const bool directory : {false, true}) {
    ExpectRefused(dir / too_long, directory,
                  (dir / too_long).string() + ": its name is 300 bytes, over the file system's limit of 255 bytes for a name");
  }
  // Through a symlink, the name it points to is the one renamed onto.
  fs::create_symlink(too_long, dir / "link.safetensors");
  ExpectRefused(dir / "link.safetensors", false,
                (dir / "link.safetensors").string() +
                    ": the name it points to is 300 bytes, over the file system's limit of 255 bytes for a name");
  const auto made = Staging::ForFile(dir / too_long);
  ASSERT_FALSE(made.ok());
  EXPECT_FALSE(fs::exists(StagePathFor(dir / too_long, ::getpid())));
  EXPECT_TRUE(Staging::Check(dir / std::string(255, 'M'), false, false, EarlierOutput::kConversion).ok());
}

// A directory that cannot be looked up is not said to be missing: the system's reason is given.
TEST(Staging, ADirectoryThatCannotBeReachedSaysWhy) {
  testing::TempDir dir;
  ExpectRefused(dir / "missing/o.safetensors", false,
                (dir / "missing/o.safetensors").string() + ": directory " + (dir / "missing").string() + " does not exist");
  // A path over PATH_MAX (4096 bytes) is refused before any of it is looked up, however much exists.
  fs::path deep = dir.path();
  for (int i = 0; i < 20; ++i) deep /= std::string(250, 'd');
  ASSERT_GT(deep.string().size(), 4096u);
  ExpectRefused(deep / "o.safetensors", false,
                (deep / "o.safetensors").string() + ": cannot reach directory " + deep.string() + ": File name too long");
  ExpectRefused(deep / "out", true, (deep / "out").string() + ": cannot reach directory " + deep.string() + ": File name too long");
}

// A dangling link as --out-dir: to nothing, the directory may be created; in a loop or a chain of
// links, there is none to create.
TEST(Staging, ALinkLoopAsTheDirectoryIsNamedSo) {
  testing::TempDir dir;
  fs::create_symlink("b", dir / "a");
  fs::create_symlink("a", dir / "b");
  ExpectRefused(dir / "a", true, (dir / "a").string() + ": is a symbolic link in a loop (to b): use --force to replace the link");
  fs::create_symlink("d", dir / "c");
  fs::create_symlink("nowhere", dir / "d");
  ExpectRefused(dir / "c", true,
                (dir / "c").string() + ": is a symbolic link to d, a link that leads nowhere: use --force to replace the link");
}

// /dev/stdout leads to /proc/self/fd/1, whose link names whatever stdout is: the output would be
// renamed over the file stdout appends to, or be refused naming "pipe:[N]". Refused as given.
TEST(Staging, ADescriptorInProcIsNoTarget) {
  testing::TempDir dir;
  fs::create_symlink("/dev/stdout", dir / "out.safetensors");
  for (const fs::path& target : {fs::path("/dev/stdout"), fs::path("/dev/fd/1"), fs::path("/proc/self/fd/1"),
                                 fs::path("/dev/stderr"), dir / "out.safetensors"}) {
    ExpectRefused(target, false, target.string() + ": leads into /proc (a file descriptor, such as standard output), not "
                                                   "to a file: ms2vllm writes a file it renames into place and needs a file path");
  }
  ExpectRefused("/dev/fd/1", true, "/dev/fd/1: leads into /proc (a file descriptor, such as standard output), not to a "
                                   "directory: ms2vllm writes a directory it renames into place and needs a directory path");
  // Other paths under /dev are paths: /dev/shm is a tmpfs directory.
  EXPECT_TRUE(Staging::Check("/dev/shm/o.safetensors", false, false, EarlierOutput::kConversion).ok());
}

}  // namespace
}  // namespace ms2vllm
