#include "io/staging.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "io/directory.h"
#include "io/json_file.h"
#include "io/mapped_file.h"

// Headers older than Linux 5.8's lack it; the kernel's stx_attributes_mask says whether it is known.
#ifndef STATX_ATTR_MOUNT_ROOT
#define STATX_ATTR_MOUNT_ROOT 0x2000
#endif

namespace ms2vllm {
namespace fs = std::filesystem;
namespace {

constexpr std::string_view kStageTag = ".ms2vllm-";
constexpr std::string_view kStageSuffix = ".tmp";
constexpr size_t kNameMax = 255;  // bytes in one path component (NAME_MAX on Linux file systems)
constexpr size_t kPidDigits = 10;
constexpr size_t kAttemptDigits = 4;  // "-999": another stage of the same pid (a run in another pid namespace)
constexpr int kMaxAttempts = 1000;
constexpr int kMaxLinks = 40;  // Linux's own limit (ELOOP)

// The whole names of this run's cut stems, so that a message about a stage names its target.
class CutNames {
 public:
  void Remember(const std::string& stem, const std::string& name) {
    std::lock_guard lock(mutex_);
    names_.emplace(stem, name);
  }
  std::string WholeName(const std::string& stem) {
    std::lock_guard lock(mutex_);
    const auto it = names_.find(stem);
    return it == names_.end() ? stem : it->second;
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, std::string> names_;
};

CutNames& CutNamesOfThisRun() {
  static CutNames names;
  return names;
}

// The part of a target's name that its stage name carries: all of it, unless the dot, the tag,
// a pid and the suffix would push the stage's name past NAME_MAX. Then the start of it, cut at a
// UTF-8 character, and a hash (FNV-1a) of the whole, so two long names sharing a start differ.
std::string StageStem(const std::string& name) {
  constexpr size_t kRoom = kNameMax - 1 - kStageTag.size() - kPidDigits - kAttemptDigits - kStageSuffix.size();
  if (name.size() <= kRoom) return name;
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : name) hash = (hash ^ c) * 1099511628211ull;
  char hex[18];
  std::snprintf(hex, sizeof hex, "~%016llx", static_cast<unsigned long long>(hash));
  size_t end = kRoom - (sizeof hex - 1);
  while (end > 0 && (static_cast<unsigned char>(name[end]) & 0xC0) == 0x80) --end;
  std::string stem = name.substr(0, end) + hex;
  CutNamesOfThisRun().Remember(stem, name);
  return stem;
}

Error OutputError(const fs::path& path, const std::string& what) {
  return MakeError(ErrorCode::kOutput, UserPathFor(path).string() + ": " + what);
}

// The run's part of a stage name: `<pid>` or `<pid>-<attempt>`.
bool IsRunId(std::string_view id) {
  const auto digits = [](std::string_view text) {
    return !text.empty() && text.find_first_not_of("0123456789") == std::string_view::npos;
  };
  const size_t dash = id.find('-');
  return dash == std::string_view::npos ? digits(id) : digits(id.substr(0, dash)) && digits(id.substr(dash + 1));
}

// The target name in a stage name `.<name>.ms2vllm-<pid>[-<attempt>].tmp`, or empty when it is not one.
std::string TargetNameOfStage(const std::string& name) {
  if (!name.starts_with('.') || !name.ends_with(kStageSuffix)) return "";
  const size_t tag = name.rfind(kStageTag);
  if (tag == std::string::npos || tag < 2) return "";
  if (!IsRunId(std::string_view(name).substr(tag + kStageTag.size(), name.size() - tag - kStageTag.size() - kStageSuffix.size()))) {
    return "";
  }
  return CutNamesOfThisRun().WholeName(name.substr(1, tag - 1));
}

fs::path ParentOf(const fs::path& target) {
  fs::path parent = target.parent_path();
  return parent.empty() ? fs::path(".") : parent;
}

// A run holds an exclusive flock on its stage for as long as it lives, whatever pid namespace it
// runs in; a stage nobody holds was left by a killed run.
struct StageLock {
  int fd = -1;        // holding the lock
  bool held = false;  // another run holds it
};

StageLock LockStage(const fs::path& stage) {
  // Read-write where it can be: NFSv4 grants an exclusive lock only on a file open for writing.
  int fd = ::open(stage.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == EISDIR) fd = ::open(stage.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return {};
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return {fd, false};
  const bool held = errno == EWOULDBLOCK;
  ::close(fd);
  return {-1, held};
}

// Removes `.<name>.ms2vllm-<run>.tmp` entries no live run holds.
void RemoveStaleStages(const fs::path& target) {
  const std::string prefix = "." + StageStem(target.filename().string()) + std::string(kStageTag);
  auto entries = ListDirectory(ParentOf(target));
  if (!entries) return;  // nothing known to remove; creating the stage will say what is wrong
  for (const auto& entry : *entries) {
    const std::string name = entry.filename().string();
    if (!name.starts_with(prefix) || !name.ends_with(kStageSuffix)) continue;
    if (!IsRunId(std::string_view(name).substr(prefix.size(), name.size() - prefix.size() - kStageSuffix.size()))) continue;
    const StageLock lock = LockStage(entry);
    if (lock.fd < 0) continue;  // held, or no locks on this file system: not known dead, left alone
    RemoveTree(entry);
    ::close(lock.fd);
  }
}

Status SyncDirectory(const fs::path& directory) {
  const int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return OutputError(directory, std::string("cannot open directory: ") + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) return OutputError(directory, std::string("cannot sync directory: ") + std::strerror(saved));
  return Ok{};
}

Status CheckParent(const fs::path& target) {
  const fs::path parent = ParentOf(target);
  struct stat info {};
  if (::stat(parent.c_str(), &info) != 0) {
    const int error = errno;
    if (error == ENOENT) return OutputError(target, "directory " + parent.string() + " does not exist");
    // It may well exist: a directory above it this user cannot search, a path past PATH_MAX.
    return OutputError(target, "cannot reach directory " + parent.string() + ": " + std::strerror(error));
  }
  if (!S_ISDIR(info.st_mode)) return OutputError(target, parent.string() + " is not a directory");
  if (::access(parent.c_str(), W_OK | X_OK) != 0) {
    // Said only when it is not the permission bits: a read-only mount looks writable to `ls -l`.
    const std::string why = errno == EACCES ? "" : std::string(" (") + std::strerror(errno) + ")";
    return OutputError(target, "directory " + parent.string() + " is not writable" + why);
  }
  return Ok{};
}

// The stage's name is cut to fit the file system (StageStem), the target's cannot be: a name
// longer than it takes is refused here, not by the rename after all the work. `target` is where
// `requested` leads (a symlink's destination); its directory exists.
Status CheckNameLength(const fs::path& requested, const fs::path& target) {
  const long limit = ::pathconf(ParentOf(target).c_str(), _PC_NAME_MAX);
  const size_t most = limit > 0 ? static_cast<size_t>(limit) : kNameMax;
  const size_t length = target.filename().string().size();
  if (length <= most) return Ok{};
  return OutputError(requested, std::string(requested == target ? "its name" : "the name it points to") + " is " +
                                    std::to_string(length) + " bytes, over the file system's limit of " +
                                    std::to_string(most) + " bytes for a name");
}

// /dev/stdout, /dev/fd/N and /proc/self/fd/N lead to a descriptor's link in /proc, which names
// whatever the descriptor is: followed, the rename would replace the file stdout appends to, or
// name "pipe:[N]", a path the user never gave. Nothing in /proc takes a file renamed into place.
// Checked through every link, as FollowSymlinks goes; a path that leads nowhere is left to it.
bool LeadsIntoProc(const fs::path& requested) {
  fs::path path = requested;
  for (int links = 0; links <= kMaxLinks; ++links) {
    struct statfs where {};
    if (::statfs(ParentOf(path).c_str(), &where) == 0 && where.f_type == PROC_SUPER_MAGIC) return true;
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(path, ec))) return false;
    const fs::path next = fs::read_symlink(path, ec);
    if (ec) return false;
    path = LinkDestination(path, next);
  }
  return false;
}

Error NotAPathError(const fs::path& requested, const std::string& kind) {
  return OutputError(requested, "leads into /proc (a file descriptor, such as standard output), not to a " + kind +
                                    ": ms2vllm writes a " + kind + " it renames into place and needs a " + kind +
                                    " path");
}

// The rename would replace a symlink itself: the path it points to, through every link, as a
// plain open follows them (creating the file a dangling link names).
Result<fs::path> FollowSymlinks(const fs::path& requested) {
  fs::path path = requested;
  for (int links = 0;; ++links) {
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(path, ec))) return path;
    if (links == kMaxLinks) return OutputError(requested, "too many levels of symbolic links");
    const fs::path next = fs::read_symlink(path, ec);
    if (ec) return OutputError(requested, "cannot read the symlink: " + ec.message());
    path = LinkDestination(path, next);
  }
}

}  // namespace

fs::path UserPathFor(const fs::path& path) {
  fs::path user;
  bool replaced = false;
  for (const auto& part : path) {
    const std::string target = replaced ? "" : TargetNameOfStage(part.string());
    replaced = replaced || !target.empty();
    user /= target.empty() ? part : fs::path(target);
  }
  return user;
}

fs::path StagePathFor(const fs::path& target, long pid, int attempt) {
  const std::string run = std::to_string(pid) + (attempt > 0 ? "-" + std::to_string(attempt) : "");
  return ParentOf(target) / ("." + StageStem(target.filename().string()) + std::string(kStageTag) + run +
                             std::string(kStageSuffix));
}

namespace {

// A bind mount (of a directory of the same file system, or of a file) keeps the device number:
// only statx tells it is a mount point (Linux 5.8 and later; older kernels leave it to the device check).
bool IsMountRoot(const fs::path& path) {
  struct statx info {};
  return ::statx(AT_FDCWD, path.c_str(), AT_NO_AUTOMOUNT, 0, &info) == 0 &&
         (info.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) != 0 && (info.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0;
}

// The path a file target is written at, once every check a rename onto it needs has passed.
Result<fs::path> FileTarget(const fs::path& requested) {
  if (requested.filename().empty()) return OutputError(requested, "is not a file name");
  if (LeadsIntoProc(requested)) return NotAPathError(requested, "file");
  MS2VLLM_ASSIGN_OR_RETURN(const fs::path target, FollowSymlinks(requested));
  if (target.filename().empty()) return OutputError(requested, "points to " + target.string() + ", not a file name");
  MS2VLLM_TRY(CheckParent(target));
  MS2VLLM_TRY(CheckNameLength(requested, target));
  struct stat info {};
  if (::stat(target.c_str(), &info) == 0) {
    if (S_ISDIR(info.st_mode)) {
      return OutputError(requested, "is a directory: name a file in it, or give --out-dir for a model directory");
    }
    // The rename would put a regular file in place of a device (/dev/null) or a FIFO.
    if (!S_ISREG(info.st_mode)) return OutputError(requested, "exists and is not a regular file (a device, FIFO or socket)");
    if (IsMountRoot(target)) {
      return OutputError(requested, "is a mount point (a file bound over it), which the finished file cannot be "
                                    "renamed onto: give another file name");
    }
  }
  return target;
}

// See EarlierOutput. msModelSlim's own output (its description beside the weights) is not synth's:
// a real checkpoint may have taken hours on an NPU to make.
bool IsAnEarlierOutput(const std::vector<fs::path>& entries, EarlierOutput earlier) {
  return std::any_of(entries.begin(), entries.end(), [earlier](const fs::path& entry) {
    const std::string name = entry.filename().string();
    if (earlier == EarlierOutput::kSynthetic) return name == kSynthMarker;
    if (name != "config.json") return false;
    const auto config = ReadJsonFile(entry);
    if (!config || !config->is_object()) return false;
    const auto quantization = config->find("quantization_config");
    if (quantization == config->end() || !quantization->is_object()) return false;
    const auto method = quantization->find("quant_method");
    return method != quantization->end() && (*method == "awq" || *method == "gptq");
  });
}

// Refuses a directory --force must not replace, with or without --force (so the message never
// sends the user to a --force that would be refused in turn).
Status CheckReplaceable(const fs::path& directory, const std::vector<fs::path>& entries, EarlierOutput earlier) {
  std::error_code ec;
  for (const auto& entry : entries) {
    if (fs::is_directory(fs::symlink_status(entry, ec))) {
      return OutputError(directory, "holds a directory, " + entry.filename().string() +
                                        ", which ms2vllm never writes: only its own earlier output is replaced; "
                                        "remove it yourself if it is to go");
    }
  }
  if (IsAnEarlierOutput(entries, earlier)) return Ok{};
  if (earlier == EarlierOutput::kSynthetic) {
    return OutputError(directory, "is not an earlier synthetic checkpoint (no " + std::string(kSynthMarker) +
                                      "): only one is replaced; remove it yourself if it is to go");
  }
  return OutputError(directory, "is not an earlier conversion (no config.json with an AWQ or GPTQ "
                                "quantization_config): only one is replaced; remove it yourself if it is to go");
}

// The finished directory is renamed onto an existing one: a mount point, or the working
// directory (".", or the shell's cwd, which would be left in a deleted directory), cannot take
// that. Said before the work, not after it.
Status CheckRenamedOnto(const fs::path& directory) {
  std::error_code ec;
  const fs::path absolute = fs::absolute(directory, ec).lexically_normal();
  const fs::path here = fs::current_path(ec);
  if (fs::equivalent(directory, here, ec)) {
    return OutputError(directory, "is the working directory, which the finished directory cannot replace: give a "
                                  "new directory (inside it, say)");
  }
  struct stat target {}, parent {};
  const fs::path above = absolute.has_filename() ? absolute.parent_path() : absolute.parent_path().parent_path();
  if (IsMountRoot(directory) ||
      (::stat(directory.c_str(), &target) == 0 && ::stat(above.c_str(), &parent) == 0 && target.st_dev != parent.st_dev)) {
    return OutputError(directory, "is a mount point, which the finished directory cannot be renamed onto: give a "
                                  "new directory inside it");
  }
  return Ok{};
}

// The same for a directory target. An empty directory (made for the output) is taken as new: the
// rename replaces it. A symlink to a directory is followed: the output goes where it points (a
// link to a larger disk), under the same rules. A link to nothing is an existing entry: with
// `replace`, the link is what the new directory replaces.
Result<fs::path> DirectoryTarget(const fs::path& target, bool replace, EarlierOutput earlier) {
  fs::path clean = target.filename().empty() ? target.parent_path() : target;
  if (LeadsIntoProc(clean)) return NotAPathError(clean, "directory");
  std::error_code ec;
  if (fs::is_symlink(fs::symlink_status(clean, ec)) && fs::is_directory(clean, ec)) {
    const fs::path resolved = fs::canonical(clean, ec);
    if (!ec) clean = resolved;
  }
  MS2VLLM_TRY(CheckParent(clean));
  MS2VLLM_TRY(CheckNameLength(clean, clean));
  const fs::file_status entry = fs::symlink_status(clean, ec);
  if (!fs::exists(entry)) return clean;
  const bool link = fs::is_symlink(entry);
  const bool dangling = link && !fs::exists(clean, ec);
  if (!dangling && !fs::is_directory(clean, ec)) return OutputError(clean, "exists and is not a directory");
  std::vector<fs::path> entries;
  if (!link) {
    auto listed = ListDirectory(clean);
    if (!listed) return MakeError(listed.error().code == ErrorCode::kResources ? ErrorCode::kResources : ErrorCode::kOutput,
                                  listed.error().message);
    entries = std::move(*listed);
    MS2VLLM_TRY(CheckRenamedOnto(clean));
    if (entries.empty()) return clean;
    MS2VLLM_TRY(CheckReplaceable(clean, entries, earlier));
  }
  if (dangling && !replace) {
    const fs::path points_to = fs::read_symlink(clean, ec);
    // A loop, or a chain of links: there is no directory to create.
    if (fs::is_symlink(fs::symlink_status(LinkDestination(clean, points_to), ec))) {
      return OutputError(clean, WhyNotAFile(clean) + ": use --force to replace the link");
    }
    return OutputError(clean, "is a symlink to " + points_to.string() + ", which does not exist: create that directory "
                              "for the output to go there, or use --force to replace the link");
  }
  if (!replace) return OutputError(clean, "already exists (use --force to replace it)");
  return clean;
}

}  // namespace

Status Staging::Check(const fs::path& target, bool is_directory, bool replace, EarlierOutput earlier) {
  MS2VLLM_TRY(is_directory ? DirectoryTarget(target, replace, earlier) : FileTarget(target));
  return Ok{};
}

// Creates this run's stage, a new file or directory no other run has, and locks it. The name
// carries the pid; a live run of the same pid (in another pid namespace: a container sharing the
// volume) holds it already, so the next attempt's name is taken.
Status Staging::CreateStage() {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    const fs::path stage = StagePathFor(target_, ::getpid(), attempt);
    int created = 0;
    if (is_directory_) {
      created = ::mkdir(stage.c_str(), 0777);  // less the umask, as any new directory
    } else {
      const int fd = ::open(stage.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      created = fd < 0 ? -1 : ::close(fd);
    }
    if (created != 0 && errno == EEXIST) continue;
    if (created != 0) return OutputError(stage, std::string("cannot create: ") + std::strerror(errno));
    // The mode the umask gave it is the output's, set at commit. Until then its owner may read and
    // write it (and enter a directory stage) whatever the umask (0222 takes write away): a file
    // stage is opened again to be written, a directory stage gets files, and either is locked.
    struct stat made {};
    if (::lstat(stage.c_str(), &made) != 0) continue;  // taken for a killed run's and removed already
    mode_ = made.st_mode & 07777;
    const mode_t to_build = is_directory_ ? S_IRWXU : S_IRUSR | S_IWUSR;
    if ((mode_ & to_build) != to_build) ::chmod(stage.c_str(), mode_ | to_build);
    stage_ = stage;
    const StageLock lock = LockStage(stage);
    // A file system without locks: the stage stays unlocked (and other runs leave it alone).
    if (lock.fd < 0 && !lock.held) return Ok{};
    lock_ = lock.fd;
    // Between the create and the lock, another run's cleanup may have taken the new stage for a
    // killed run's and removed it (held: it is removing it now): then the lock is on nothing, or
    // on nothing there now.
    struct stat locked {}, named {};
    if (lock_ >= 0 && ::fstat(lock_, &locked) == 0 && ::lstat(stage.c_str(), &named) == 0 &&
        locked.st_ino == named.st_ino && locked.st_dev == named.st_dev) {
      return Ok{};
    }
    if (lock_ >= 0) ::close(lock_);
    lock_ = -1;
    stage_.clear();
  }
  return OutputError(target_, "cannot create a temp " + std::string(is_directory_ ? "directory" : "file") + " beside it");
}

Result<Staging> Staging::ForFile(const fs::path& requested) {
  MS2VLLM_ASSIGN_OR_RETURN(const fs::path target, FileTarget(requested));
  RemoveStaleStages(target);
  Staging staging;
  staging.target_ = target;
  MS2VLLM_TRY(staging.CreateStage());
  return staging;
}

Result<Staging> Staging::ForDirectory(const fs::path& target, bool replace, EarlierOutput earlier) {
  MS2VLLM_ASSIGN_OR_RETURN(const fs::path clean, DirectoryTarget(target, replace, earlier));
  RemoveStaleStages(clean);
  Staging staging;
  staging.target_ = clean;
  staging.is_directory_ = true;
  staging.replace_ = replace;
  MS2VLLM_TRY(staging.CreateStage());
  return staging;
}

Staging::Staging(Staging&& other) noexcept
    : target_(std::move(other.target_)),
      stage_(std::move(other.stage_)),
      is_directory_(other.is_directory_),
      replace_(other.replace_),
      committed_(other.committed_),
      mode_(other.mode_),
      lock_(other.lock_) {
  other.committed_ = true;  // the moved-from object owns nothing
  other.lock_ = -1;
}

Staging::~Staging() {
  if (!committed_ && !stage_.empty()) RemoveTree(stage_);
  if (lock_ >= 0) ::close(lock_);  // removed first, so no other run's cleanup races this one
}

fs::path Staging::PathFor(const std::string& name) const { return is_directory_ ? stage_ / name : stage_; }

Status ReplaceInTwoSteps(const fs::path& stage, const fs::path& target, const fs::path& aside) {
  if (::rename(target.c_str(), aside.c_str()) != 0) {
    return OutputError(target, std::string("cannot replace: cannot move it aside: ") + std::strerror(errno));
  }
  if (::rename(stage.c_str(), target.c_str()) != 0) {
    const int saved = errno;
    if (::rename(aside.c_str(), target.c_str()) != 0) {
      return OutputError(target, std::string("cannot replace: ") + std::strerror(saved) +
                                     "; the old directory could not move back, it is at " + aside.string());
    }
    return OutputError(target, std::string("cannot replace: ") + std::strerror(saved));
  }
  return Ok{};
}

// Where the old target moves aside on file systems without an atomic exchange: a name no
// cleanup takes for a stage (`-old`), so a run killed between the two renames leaves the old
// directory there to recover, never removed by the next run.
fs::path Staging::AsidePath() const {
  const fs::path stage = StagePathFor(target_, ::getpid());
  fs::path aside = stage;
  return aside.replace_filename(stage.stem().string() + "-old" + std::string(kStageSuffix));
}

Status Staging::Commit() {
  if (is_directory_) MS2VLLM_TRY(SyncDirectory(stage_));
  // The stage gets back the mode the umask gave it (CreateStage let its owner write it). What it
  // replaces passes on its group and permissions instead: a directory (an empty one made for the
  // output, or an earlier conversion), so that a shared, setgid directory stays shared; a file, as
  // the script's open for writing keeps them. Best effort: a group the user is not in stays as made.
  mode_t mode = mode_;
  struct stat replaced {};
  if (::lstat(target_.c_str(), &replaced) == 0 && (is_directory_ ? S_ISDIR(replaced.st_mode) : S_ISREG(replaced.st_mode))) {
    const int regrouped = ::chown(stage_.c_str(), static_cast<uid_t>(-1), replaced.st_gid);
    (void)regrouped;
    mode = replaced.st_mode & 07777;
  }
  struct stat built {};
  if (::lstat(stage_.c_str(), &built) == 0 && (built.st_mode & 07777) != mode) ::chmod(stage_.c_str(), mode);
  std::error_code ec;
  if (is_directory_ && replace_ && fs::exists(fs::symlink_status(target_, ec))) {
    // Swap atomically, then delete the old tree from where the stage was.
    if (::renameat2(AT_FDCWD, stage_.c_str(), AT_FDCWD, target_.c_str(), RENAME_EXCHANGE) != 0) {
      // FUSE, NFS and CIFS have no exchange: move the old one aside first, and it is at stage_.
      if (errno != EINVAL && errno != ENOSYS) return OutputError(target_, std::string("cannot replace: ") + std::strerror(errno));
      const fs::path aside = AsidePath();
      MS2VLLM_TRY(ReplaceInTwoSteps(stage_, target_, aside));
      stage_ = aside;
    }
    committed_ = true;
    if (!RemoveTree(stage_)) leftover_ = stage_;  // another user's directory, which this user may not empty
  } else {
    if (::rename(stage_.c_str(), target_.c_str()) != 0) {
      // It was missing or empty when the run began: another run, or someone, filled it since.
      if (is_directory_ && (errno == ENOTEMPTY || errno == EEXIST)) {
        return OutputError(target_, "was filled by another process while this run wrote it (a second run into it?): "
                                    "left as it is");
      }
      return OutputError(target_, std::string("cannot rename into place: ") + std::strerror(errno));
    }
    committed_ = true;
  }
  return SyncDirectory(ParentOf(target_));
}

}  // namespace ms2vllm
