// Interrupting a conversion: SIGINT, SIGTERM and SIGHUP at several moments of a real conversion leave
// nothing at the target (or the old target untouched) and no temp file, and the process ends by
// that signal; after `kill -9` the temp file stays behind, the target is absent or intact, and
// the next run removes the stale temp file (io/staging.cpp does this by pid).
//
// The moments are defined by the conversion's own progress, never by the clock: the test
// polls the temp file beside the target until it exists, or until the bytes at a given
// fraction of it have been written (the file is preallocated with zeros; the synthetic
// checkpoint's data is random, so a written page is not all zeros), then signals.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <sstream>
#include <thread>

#include "io/checkpoint.h"
#include "io/staging.h"
#include "tests/child_process.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;
using testing::ChildOutcome;
using testing::ChildProcess;

// `ms2vllm synth --preset qwen2-0.5b --layers 4`: about 0.6 GB, a conversion of a second or
// two. Made once per build of the binary and shared by the tests (ctest runs each test in its
// own process, possibly two at a time: a file lock keeps them from making it twice).
fs::path SharedCheckpoint() {
  static const fs::path model = [] {
    const fs::path root = fs::path(MS2VLLM_BINARY).parent_path() / "interrupt-test-checkpoint";
    fs::create_directories(root);
    const int lock = ::open((root / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    ::flock(lock, LOCK_EX);
    struct stat binary {};
    ::stat(MS2VLLM_BINARY, &binary);
    const std::string stamp = std::to_string(binary.st_size) + " " + std::to_string(binary.st_mtim.tv_sec) + "." +
                              std::to_string(binary.st_mtim.tv_nsec) + "\n";
    if (!fs::exists(root / "stamp") || testing::ReadText(root / "stamp") != stamp) {
      fs::remove(root / "stamp");
      fs::remove_all(root / "model");  // this test's own: an older synth's lacks the marker --force asks for
      const ChildOutcome made = testing::RunBinary(
          {"synth", "--preset", "qwen2-0.5b", "--layers", "4", "--out", (root / "model").string(), "--force", "-q"});
      EXPECT_EQ(made.exit_code, 0) << "synth failed: " << made.err;
      if (made.exit_code == 0) testing::WriteText(root / "stamp", stamp);
    }
    ::flock(lock, LOCK_UN);
    ::close(lock);
    return root / "model";
  }();
  return model;
}

// Every `.ms2vllm-` name in `directory`.
std::vector<std::string> StageNames(const fs::path& directory) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".ms2vllm-") != std::string::npos) names.push_back(name);
  }
  return names;
}

// Waits until the child's stage exists (fraction < 0: even while it is being reserved), has
// its full preallocated size (0), or holds written data at `fraction` of its length (> 0).
// False if the child ended first.
bool WaitForProgress(ChildProcess& child, const fs::path& stage, double fraction) {
  int fd = -1;
  std::array<char, 4096> page{};
  while (!child.Ended()) {
    struct stat info {};
    if (fraction < 0 && ::stat(stage.c_str(), &info) == 0) return true;
    if (fd < 0 && ::stat(stage.c_str(), &info) == 0 && info.st_size > 0) {
      if (fraction == 0) return true;
      fd = ::open(stage.c_str(), O_RDONLY | O_CLOEXEC);
    }
    if (fd >= 0 && ::fstat(fd, &info) == 0) {
      const off_t offset = static_cast<off_t>(static_cast<double>(info.st_size) * fraction) & ~off_t{4095};
      const ssize_t n = ::pread(fd, page.data(), page.size(), offset);
      if (n > 0 && std::any_of(page.begin(), page.begin() + n, [](char c) { return c != 0; })) {
        ::close(fd);
        return true;
      }
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // polling, not timing
  }
  if (fd >= 0) ::close(fd);
  return false;
}

// The output directory of a run: on a tmpfs (/dev/shm) when it has room, where reserving
// 0.6 GB takes long enough for a signal to land inside the reservation; else a temp directory.
class OutputDir {
 public:
  explicit OutputDir(bool prefer_tmpfs) {
    struct statvfs shm {};
    if (prefer_tmpfs && ::statvfs("/dev/shm", &shm) == 0 && shm.f_bavail * shm.f_frsize > (2ull << 30)) {
      std::string pattern = "/dev/shm/ms2vllm-test-XXXXXX";
      if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
    }
    if (path_.empty()) path_ = fallback_.path();
  }
  ~OutputDir() {
    std::error_code ec;
    if (path_ != fallback_.path()) fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  testing::TempDir fallback_;
  fs::path path_;
};

std::vector<std::string> ConvertArgs(const fs::path& target) {
  return {"--model", SharedCheckpoint().string(), "--save_path", target.string(), "-q"};
}

struct Moment {
  const char* name;
  int signal;
  double fraction;  // -1: as soon as the temp file exists; 0: once it is reserved
  bool pre_existing;
  bool on_tmpfs = false;
};

void PrintTo(const Moment& m, std::ostream* os) { *os << m.name; }

class InterruptTest : public ::testing::TestWithParam<Moment> {};

TEST_P(InterruptTest, LeavesNothingBehindAndEndsByTheSignal) {
  const Moment& moment = GetParam();
  ASSERT_FALSE(SharedCheckpoint().empty());
  OutputDir out(moment.on_tmpfs);
  const fs::path target = out / "res.safetensors";
  const std::string old = "the user's previous file";
  if (moment.pre_existing) testing::WriteText(target, old);

  ChildProcess child(ConvertArgs(target));
  ASSERT_TRUE(child.started());
  const fs::path stage = StagePathFor(target, child.pid());
  ASSERT_TRUE(WaitForProgress(child, stage, moment.fraction))
      << "the conversion ended before reaching the moment; stderr: " << child.Wait().err;
  child.Signal(moment.signal);
  const ChildOutcome outcome = child.Wait();

  ASSERT_FALSE(outcome.timed_out) << "did not stop after the signal";
  // Cleaned up, then ended by the same signal, so a calling shell loop stops too.
  ASSERT_FALSE(outcome.exited) << "exited with " << outcome.exit_code << "; stderr: " << outcome.err;
  EXPECT_EQ(outcome.signal, moment.signal) << outcome.err;
  EXPECT_EQ(outcome.err, "ms2vllm: error: interrupted\n");
  EXPECT_TRUE(outcome.out.empty()) << outcome.out;
  EXPECT_FALSE(fs::exists(stage));
  EXPECT_TRUE(StageNames(out.path()).empty());
  if (moment.pre_existing) {
    EXPECT_EQ(testing::ReadText(target), old);
  } else {
    EXPECT_FALSE(fs::exists(target));
  }
  // Nothing else appeared either.
  EXPECT_EQ(std::distance(fs::directory_iterator(out.path()), fs::directory_iterator()), moment.pre_existing ? 1 : 0);
}

INSTANTIATE_TEST_SUITE_P(Signals, InterruptTest,
                         ::testing::Values(Moment{"sigint_while_reserving", SIGINT, -1, false, /*on_tmpfs=*/true},
                                           Moment{"sigterm_while_reserving", SIGTERM, -1, true, /*on_tmpfs=*/true},
                                           Moment{"sigint_at_start", SIGINT, 0.0, false},
                                           Moment{"sigterm_at_start", SIGTERM, 0.0, true},
                                           Moment{"sigint_at_a_quarter", SIGINT, 0.25, true},
                                           Moment{"sigterm_at_a_quarter", SIGTERM, 0.25, false},
                                           Moment{"sigint_past_half", SIGINT, 0.6, false},
                                           Moment{"sigterm_near_the_end", SIGTERM, 0.9, true},
                                           Moment{"sighup_at_a_quarter", SIGHUP, 0.25, true}),
                         [](const auto& info) { return std::string(info.param.name); });

// nohup ignores SIGHUP for the run it starts: the conversion must go on, not take the hang-up
// for an interrupt.
TEST(InterruptIgnored, AnIgnoredHangUpStaysIgnored) {
  ASSERT_FALSE(SharedCheckpoint().empty());
  testing::TempDir out;
  const fs::path target = out / "res.safetensors";
  ChildProcess child(ConvertArgs(target), [] { ::signal(SIGHUP, SIG_IGN); });
  ASSERT_TRUE(child.started());
  ASSERT_TRUE(WaitForProgress(child, StagePathFor(target, child.pid()), 0.25)) << child.Wait().err;
  child.Signal(SIGHUP);
  const ChildOutcome outcome = child.Wait();
  ASSERT_TRUE(outcome.exited) << "killed by signal " << outcome.signal << "; stderr: " << outcome.err;
  EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
  EXPECT_TRUE(fs::exists(target));
}

// Waits until the child has mapped `file` read-only, as verify maps the finished output (the
// conversion maps it read-write). False if the child ended first.
bool WaitForReadOnlyMapping(ChildProcess& child, const fs::path& file) {
  const std::string maps = "/proc/" + std::to_string(child.pid()) + "/maps";
  while (!child.Ended()) {
    std::istringstream lines(testing::ReadText(maps));
    for (std::string line; std::getline(lines, line);) {
      // address perms offset dev inode path
      if (line.find(" r--") != std::string::npos && line.ends_with(" " + file.string())) return true;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));  // polling, not timing
  }
  return false;
}

// --verify checks the finished output before it replaces the target, so a signal then (or a
// failed check) leaves the target as it was, as at any other moment.
TEST(InterruptVerify, ASignalWhileVerifyingLeavesTheTargetAsItWas) {
  for (const bool pre_existing : {false, true}) {
    SCOPED_TRACE(pre_existing ? "over an existing target" : "no target");
    ASSERT_FALSE(SharedCheckpoint().empty());
    testing::TempDir out;
    const fs::path target = out / "res.safetensors";
    const std::string old = "the user's previous file";
    if (pre_existing) testing::WriteText(target, old);
    std::vector<std::string> args = ConvertArgs(target);
    args.push_back("--verify");
    ChildProcess child(args);
    ASSERT_TRUE(child.started());
    const fs::path stage = StagePathFor(target, child.pid());
    ASSERT_TRUE(WaitForReadOnlyMapping(child, stage)) << "verify never mapped the output; " << child.Wait().err;
    child.Signal(SIGINT);
    const ChildOutcome outcome = child.Wait();
    ASSERT_FALSE(outcome.exited) << "exited with " << outcome.exit_code << "; stderr: " << outcome.err;
    EXPECT_EQ(outcome.signal, SIGINT);
    EXPECT_EQ(outcome.err, "ms2vllm: error: interrupted\n");
    EXPECT_TRUE(StageNames(out.path()).empty());
    if (pre_existing) {
      EXPECT_EQ(testing::ReadText(target), old);
    } else {
      EXPECT_FALSE(fs::exists(target));
    }
  }
}

// kill -9 cannot be caught: the temp file stays. The target is untouched, and the next run
// into the same directory removes the dead run's temp file and converts.
void KillThenRerun(bool pre_existing) {
  ASSERT_FALSE(SharedCheckpoint().empty());
  testing::TempDir out;
  const fs::path target = out / "res.safetensors";
  const std::string old = "the user's previous file";
  if (pre_existing) testing::WriteText(target, old);

  fs::path stale;
  {
    ChildProcess child(ConvertArgs(target));
    ASSERT_TRUE(child.started());
    stale = StagePathFor(target, child.pid());
    ASSERT_TRUE(WaitForProgress(child, stale, 0.5)) << "ended early: " << child.Wait().err;
    child.Signal(SIGKILL);
    const ChildOutcome outcome = child.Wait();
    ASSERT_FALSE(outcome.exited);
    ASSERT_EQ(outcome.signal, SIGKILL);
  }
  ASSERT_TRUE(fs::exists(stale)) << "kill -9 should leave the temp file behind";
  const auto stale_size = fs::file_size(stale);
  if (pre_existing) {
    EXPECT_EQ(testing::ReadText(target), old);
  } else {
    EXPECT_FALSE(fs::exists(target));
  }

  const ChildOutcome rerun = testing::RunBinary(ConvertArgs(target));
  ASSERT_TRUE(rerun.exited);
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  EXPECT_FALSE(fs::exists(stale)) << "the stale temp file of the killed run is still there";
  EXPECT_TRUE(StageNames(out.path()).empty());
  ASSERT_TRUE(fs::exists(target));
  EXPECT_EQ(fs::file_size(target), stale_size);  // the same layout, now complete
  auto converted = Checkpoint::Open(target);
  ASSERT_TRUE(converted.ok()) << converted.error().message;
  EXPECT_TRUE(converted->table().Contains("model.layers.3.mlp.down_proj.qweight"));
  EXPECT_TRUE(converted->table().Contains("lm_head.weight"));
}

TEST(InterruptKill, KilledRunLeavesNoTargetAndTheNextRunCleansUp) { KillThenRerun(/*pre_existing=*/false); }
TEST(InterruptKill, KilledRunLeavesTheOldTargetAndTheNextRunCleansUp) { KillThenRerun(/*pre_existing=*/true); }

// A stage name carries its target's name, cut (with a hash of the whole) when the tag and the pid
// would push it past NAME_MAX: two long names sharing a start still get distinct stages.
TEST(StageNames, LongTargetNamesGetDistinctStagesWithinNameMax) {
  const std::string start(240, 'a');
  const fs::path a = StagePathFor("dir/" + start + "-one.safetensors", 4194304);
  const fs::path b = StagePathFor("dir/" + start + "-two.safetensors", 4194304);
  EXPECT_NE(a, b);
  for (const fs::path& stage : {a, b}) {
    EXPECT_LE(stage.filename().string().size(), 255u) << stage;
    EXPECT_EQ(stage.parent_path(), "dir");
    EXPECT_TRUE(stage.filename().string().starts_with("." + start.substr(0, 200))) << stage;
  }
  EXPECT_EQ(StagePathFor("dir/short.safetensors", 7), fs::path("dir/.short.safetensors.ms2vllm-7.tmp"));
}

// The stale-stage cleanup removes only stages no live run holds (a run holds an flock on its
// stage): one held here is another conversion in progress, in this pid namespace or another,
// and must be left alone whatever its pid.
TEST(InterruptKill, StagesOfLiveRunsAreLeftAloneAndDeadOnesRemoved) {
  const fs::path corpus = fs::path(MS2VLLM_SOURCE_DIR) / "tests" / "corpus" / "base";
  testing::TempDir out;
  const fs::path target = out / "res.safetensors";
  const fs::path live = StagePathFor(target, 1);  // pid 1 in some container
  testing::WriteText(live, "another conversion, still running");
  const int held = ::open(live.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(held, 0);
  ASSERT_EQ(::flock(held, LOCK_EX), 0);
  const fs::path dead = StagePathFor(target, ::getpid(), 2);  // alive pid, but nobody holds it
  testing::WriteText(dead, "left by a killed run");
  const fs::path other = StagePathFor(out / "other.safetensors", 12345);  // another target's stage
  testing::WriteText(other, "not ours to remove");

  const ChildOutcome run = testing::RunBinary({"--model", (corpus / "model.safetensors").string(), "--json",
                                               (corpus / "description.json").string(), "--save_path", target.string(), "-q"});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_TRUE(fs::exists(target));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_EQ(testing::ReadText(live), "another conversion, still running");
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(other));
  ::close(held);
}

}  // namespace
}  // namespace ms2vllm
