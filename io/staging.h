// Outputs are built at a temp path beside their target and appear there whole, by rename,
// or not at all. A stage left by a killed run is removed by the next run.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "io/status.h"

namespace ms2vllm {

// What an existing directory must be for --force to replace it: what the command itself writes,
// and nothing else, so that a mistyped path (a home directory, a project, the float model or the
// quantized checkpoint itself) is never deleted whole.
enum class EarlierOutput {
  kConversion,  // its config.json declares an AWQ or GPTQ quantization_config
  kSynthetic,   // it holds synth's marker file, kSynthMarker
};
inline constexpr std::string_view kSynthMarker = "ms2vllm-synthetic.txt";

class Staging {
 public:
  // A single-file target: the stage is the temp file `<dir>/.<name>.ms2vllm-<pid>.tmp` (a long
  // name cut, with a hash of it, to fit NAME_MAX), created empty. The target's directory must
  // exist; a symlink is followed, and an existing target that is not a regular file (a device, a
  // FIFO) is refused.
  static Result<Staging> ForFile(const std::filesystem::path& target);
  // A directory target: the stage is the temp directory `<parent>/.<name>.ms2vllm-<pid>.tmp`.
  // An existing target is an error unless it is empty, or an `earlier` output and `replace`.
  // Either holds an flock on its stage while it lives; stages of the same target that nobody
  // holds are a killed run's, and are removed first.
  static Result<Staging> ForDirectory(const std::filesystem::path& target, bool replace, EarlierOutput earlier);

  // What ForFile / ForDirectory would refuse, without creating or removing anything (--dry-run).
  static Status Check(const std::filesystem::path& target, bool is_directory, bool replace, EarlierOutput earlier);

  Staging(Staging&& other) noexcept;
  Staging& operator=(Staging&&) = delete;
  ~Staging();  // removes the stage unless committed

  // Where to create the output file `name` (a file target has exactly one: the stage itself).
  std::filesystem::path PathFor(const std::string& name) const;
  const std::filesystem::path& target() const { return target_; }
  const std::filesystem::path& stage() const { return stage_; }  // the file or directory being built

  // Moves the finished stage onto the target and makes the rename durable (fsync of the
  // parent directory). Files in the stage must already be fsynced. The stage, which its owner
  // could write while it was built, gets the mode the umask gave it when it was created, or the
  // replaced directory's.
  Status Commit();
  // After a commit that replaced a directory: what is left of the old one when it could not be
  // removed whole (another user's directory, which this user may not empty); empty otherwise.
  const std::filesystem::path& leftover() const { return leftover_; }

 private:
  Staging() = default;
  Status CreateStage();
  std::filesystem::path AsidePath() const;
  std::filesystem::path target_;
  std::filesystem::path stage_;
  bool is_directory_ = false;
  bool replace_ = false;
  bool committed_ = false;
  mode_t mode_ = 0;  // the stage's mode as created, less the umask
  int lock_ = -1;  // the stage's descriptor, holding its flock
  std::filesystem::path leftover_;
};

// The stage name for `target` of the run `pid` (its `attempt`th, 0 the first); exposed so tests
// can fake a stale one.
std::filesystem::path StagePathFor(const std::filesystem::path& target, long pid, int attempt = 0);

// Replaces the directory `target` by `stage` where the file system has no atomic exchange
// (FUSE, NFS, CIFS): `target` moves to `aside`, then `stage` to `target`; if that fails, `aside`
// moves back. Between the two renames the target is briefly missing. Exposed for tests.
Status ReplaceInTwoSteps(const std::filesystem::path& stage, const std::filesystem::path& target,
                         const std::filesystem::path& aside);

// For messages: the path the user asked for in place of a stage path. `<dir>/.<name>.ms2vllm-<pid>.tmp`
// and files inside it become `<dir>/<name>[/file]`; any other path comes back unchanged.
std::filesystem::path UserPathFor(const std::filesystem::path& path);

}  // namespace ms2vllm
