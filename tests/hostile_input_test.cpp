// The ms2vllm command on hostile input: every broken file of tests/corpus (see its README and
// make_corpus.py), bad flags, unusable output locations and a full disk. Each case runs the
// built binary and checks that it
//   - exits with the documented status (2 usage, 3 invalid input, 4 unsupported, 5 output);
//   - prints exactly one line on stderr, `ms2vllm: error: ...`, naming the file (and the
//     tensor where there is one) and the problem, and nothing on stdout;
//   - leaves everything as it was: no output at the target, a pre-existing target untouched,
//     the inputs unchanged (bytes, mode, mtime), no `.ms2vllm-` temp file anywhere.
// Every case runs twice: once with no file at the target, once with a pre-existing one.
#include <gtest/gtest.h>
#include <sched.h>
#include <linux/capability.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/child_process.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;
using testing::ChildOutcome;
using testing::RunBinary;

fs::path CorpusDir() { return fs::path(MS2VLLM_SOURCE_DIR) / "tests" / "corpus"; }

// ---------------------------------------------------------------------------------------------
// Snapshots: every entry under a directory, compared before and after a run.

struct EntryState {
  char type = '?';  // f file, d directory, l symlink, p fifo
  mode_t mode = 0;
  int64_t mtime_ns = 0;  // files and links only: a directory's changes when a temp file comes and goes
  std::string content;   // file bytes, or the link target
  bool operator==(const EntryState&) const = default;
};
using Snapshot = std::map<std::string, EntryState>;

Snapshot Take(const fs::path& root) {
  Snapshot snapshot;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    const fs::path& path = it->path();
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0) continue;
    EntryState state;
    state.mode = info.st_mode & 07777;
    if (S_ISREG(info.st_mode)) {
      state.type = 'f';
      state.mtime_ns = info.st_mtim.tv_sec * 1'000'000'000LL + info.st_mtim.tv_nsec;
      std::ifstream in(path, std::ios::binary);
      state.content.assign(std::istreambuf_iterator<char>(in), {});
    } else if (S_ISDIR(info.st_mode)) {
      state.type = 'd';
    } else if (S_ISLNK(info.st_mode)) {
      state.type = 'l';
      state.mtime_ns = info.st_mtim.tv_sec * 1'000'000'000LL + info.st_mtim.tv_nsec;
      state.content = fs::read_symlink(path, ec).string();
    } else if (S_ISFIFO(info.st_mode)) {
      state.type = 'p';
    }
    snapshot[path.lexically_relative(root).string()] = state;
  }
  return snapshot;
}

std::string Describe(const Snapshot& before, const Snapshot& after) {
  std::string text;
  for (const auto& [name, state] : after) {
    auto it = before.find(name);
    if (it == before.end()) text += "  new: " + name + "\n";
    else if (!(it->second == state)) text += "  changed: " + name + "\n";
  }
  for (const auto& [name, state] : before) {
    if (!after.contains(name)) text += "  removed: " + name + "\n";
  }
  return text;
}

// ---------------------------------------------------------------------------------------------
// How a case runs.

// Placeholders in arguments: {in} is a private copy of tests/corpus, {out} the output directory.
struct Paths {
  fs::path in, out;
};

enum class Privilege {
  kAsIs,
  // Permission bits really apply: as root, the child drops CAP_DAC_OVERRIDE and
  // CAP_DAC_READ_SEARCH from its bounding set before exec (else runs as nobody).
  kNoOverride,
};

struct Case {
  std::string name;
  std::vector<std::string> args;
  int exit_code;
  std::vector<std::string> expect;  // substrings of the error line: the file, the tensor, the problem
  std::function<void(const Paths&)> setup = {};
  Privilege privilege = Privilege::kAsIs;
  rlim_t file_size_limit = RLIM_INFINITY;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::vector<std::string> Convert(const std::string& weights, const std::string& description,
                                 std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--model", weights, "--json", description};
  const auto given = [&](const char* flag) { return std::find(extra.begin(), extra.end(), flag) != extra.end(); };
  if (!given("--save_path") && !given("--out-dir")) {
    args.insert(args.end(), {"--save_path", "{out}/res.safetensors"});
  }
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}
// A broken weights file with the valid description.
std::vector<std::string> Weights(const std::string& file) { return Convert("{in}/" + file, "{in}/base/description.json"); }
// The valid weights with a broken description.
std::vector<std::string> Described(const std::string& file) { return Convert("{in}/base/model.safetensors", "{in}/" + file); }
std::vector<std::string> Flags(std::vector<std::string> extra) {
  return Convert("{in}/base/model.safetensors", "{in}/base/description.json", std::move(extra));
}

// `steps` directory names of `length` bytes, joined: a path past PATH_MAX, no component past NAME_MAX.
std::string LongPath(int steps, size_t length) {
  fs::path path;
  for (int i = 0; i < steps; ++i) path /= std::string(length, 'd');
  return path.string();
}

void DropFileOverride() {
  if (::geteuid() != 0) return;  // permission bits already apply
  if (::prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) == 0 &&
      ::prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0) == 0) {
    return;  // still uid 0, but exec gives no capability outside the bounding set
  }
  if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(126);
}

// clang-format off
std::vector<Case> Cases() {
  const std::string kLinear = "model.layers.0.mlp.down_proj";
  std::vector<Case> cases = {
    // --- missing and unreadable inputs (io/mapped_file.cpp) ---
    {"weights_missing", Weights("header/does-not-exist.safetensors"), 3,
     {"does-not-exist.safetensors", "cannot open: No such file or directory"}},
    {"description_missing", Described("description/does-not-exist.json"), 3,
     {"does-not-exist.json", "cannot open: No such file or directory"}},
    {"weights_dangling_symlink", Weights("dangling.safetensors"), 3,
     {"dangling.safetensors: is a symbolic link to ", "nowhere.safetensors, which does not exist"},
     [](const Paths& p) { fs::create_symlink(p.in / "nowhere.safetensors", p.in / "dangling.safetensors"); }},
    // A model directory whose only weights or description is a dangling link (a Hugging Face
    // snapshot whose blob was pruned) or a FIFO: said of that entry, not "none found".
    {"weights_dangling_in_directory", Convert("{in}/linked", "{in}/base/description.json"), 3,
     {"linked: no quant_model_weight*.safetensors found (quant_model_weight.safetensors is a symbolic link to "
      "../blobs/gone, which does not exist)"},
     [](const Paths& p) {
       fs::create_directory(p.in / "linked");
       fs::create_symlink("../blobs/gone", p.in / "linked/quant_model_weight.safetensors");
     }},
    {"weights_link_loop_in_directory", Convert("{in}/looped", "{in}/base/description.json"), 3,
     {"looped: no quant_model_weight*.safetensors found (quant_model_weight.safetensors is a symbolic link in a loop "
      "(to quant_model_weight.safetensors))"},
     [](const Paths& p) {
       fs::create_directory(p.in / "looped");
       fs::create_symlink("quant_model_weight.safetensors", p.in / "looped/quant_model_weight.safetensors");
     }},
    {"weights_link_chain", Weights("chained/quant_model_weight.safetensors"), 3,
     {"quant_model_weight.safetensors: is a symbolic link to blobs/link, a link that leads nowhere"},
     [](const Paths& p) {
       fs::create_directories(p.in / "chained/blobs");
       fs::create_symlink("gone", p.in / "chained/blobs/link");
       fs::create_symlink("blobs/link", p.in / "chained/quant_model_weight.safetensors");
     }},
    {"weights_fifo_in_directory", Convert("{in}/piped", "{in}/base/description.json"), 3,
     {"piped: no quant_model_weight*.safetensors found (quant_model_weight.safetensors is not a regular file)"},
     [](const Paths& p) {
       fs::create_directory(p.in / "piped");
       ASSERT_EQ(::mkfifo((p.in / "piped/quant_model_weight.safetensors").c_str(), 0644), 0);
     }},
    {"description_dangling_in_directory", {"--model", "{in}/linked/quant_model_weight.safetensors", "--save_path", "{out}/res.safetensors"}, 3,
     {"no quant_model_description*.json found (quant_model_description.json is a symbolic link to "
      "gone.json, which does not exist)"},
     [](const Paths& p) {
       fs::create_directory(p.in / "linked");
       fs::copy_file(p.in / "base/model.safetensors", p.in / "linked/quant_model_weight.safetensors");
       fs::create_symlink("gone.json", p.in / "linked/quant_model_description.json");
     }},
    {"weights_symlink_loop", Weights("loop.safetensors"), 3,
     {"loop.safetensors", "cannot open: Too many levels of symbolic links"},
     [](const Paths& p) { fs::create_symlink(p.in / "loop.safetensors", p.in / "loop.safetensors"); }},
    {"weights_unreadable", Weights("base/unreadable.safetensors"), 3,
     {"unreadable.safetensors", "cannot read: Permission denied"},
     [](const Paths& p) {
       fs::copy_file(p.in / "base/model.safetensors", p.in / "base/unreadable.safetensors");
       fs::permissions(p.in / "base/unreadable.safetensors", fs::perms::none);
     }, Privilege::kNoOverride},
    {"description_unreadable", Described("base/unreadable.json"), 3,
     {"unreadable.json", "cannot read: Permission denied"},
     [](const Paths& p) {
       fs::copy_file(p.in / "base/description.json", p.in / "base/unreadable.json");
       fs::permissions(p.in / "base/unreadable.json", fs::perms::none);
     }, Privilege::kNoOverride},
    {"weights_fifo", Weights("fifo.safetensors"), 3, {"fifo.safetensors", "not a regular file"},
     [](const Paths& p) { ASSERT_EQ(::mkfifo((p.in / "fifo.safetensors").c_str(), 0644), 0); }},
    {"description_fifo", Described("fifo.json"), 3, {"fifo.json", "not a regular file"},
     [](const Paths& p) { ASSERT_EQ(::mkfifo((p.in / "fifo.json").c_str(), 0644), 0); }},
    {"weights_char_device", Convert("/dev/zero", "{in}/base/description.json"), 3, {"/dev/zero", "not a regular file"}},
    {"description_is_directory", Described("base"), 3, {"base", "is a directory, expected a file"}},
    {"weights_index_is_directory", Weights("dir.safetensors.index.json"), 3,
     {"dir.safetensors.index.json", "no quant_model_weight*.safetensors found"},
     [](const Paths& p) { fs::create_directory(p.in / "dir.safetensors.index.json"); }},
    {"model_directory_without_weights", Convert("{in}/description", "{in}/base/description.json"), 3,
     {"description", "no quant_model_weight*.safetensors found"}},

    // --- the safetensors header (io/safetensors_header.cpp) ---
    {"empty", Weights("header/empty.safetensors"), 3, {"empty.safetensors", "file is 0 bytes, shorter than the 8-byte header length"}},
    {"short_5_bytes", Weights("header/short-5-bytes.safetensors"), 3, {"short-5-bytes.safetensors", "file is 5 bytes"}},
    {"short_7_bytes", Weights("header/short-7-bytes.safetensors"), 3, {"short-7-bytes.safetensors", "file is 7 bytes"}},
    {"length_only", Weights("header/length-only.safetensors"), 3, {"length-only.safetensors", "header is not a JSON object"}},
    {"header_past_end", Weights("header/header-past-end.safetensors"), 3,
     {"header-past-end.safetensors", "header length 1000 runs past the end of the file (15 bytes)"}},
    {"header_past_end_by_one", Weights("header/header-past-end-by-one.safetensors"), 3,
     {"header-past-end-by-one.safetensors", "runs past the end of the file"}},
    {"header_over_100mb", Weights("header/header-over-100mb.safetensors"), 3,
     {"header-over-100mb.safetensors", "header length 100000001 is over the 100 MB limit"}},
    {"header_length_max", Weights("header/header-length-max.safetensors"), 3,
     {"header-length-max.safetensors", "header length 18446744073709551615 is over the 100 MB limit"}},
    {"header_not_utf8", Weights("header/header-not-utf8.safetensors"), 3, {"header-not-utf8.safetensors", "header is not valid UTF-8"}},
    {"header_not_json", Weights("header/header-not-json.safetensors"), 3, {"header-not-json.safetensors", "header is not valid JSON"}},
    {"header_garbage", Weights("header/header-garbage.safetensors"), 3, {"header-garbage.safetensors", "header is not valid JSON"}},
    {"header_array", Weights("header/header-array.safetensors"), 3, {"header-array.safetensors", "header is not a JSON object"}},
    {"header_string", Weights("header/header-string.safetensors"), 3, {"header-string.safetensors", "header is not a JSON object"}},
    {"header_content_after", Weights("header/header-content-after.safetensors"), 3,
     {"header-content-after.safetensors", "content after the object"}},
    {"entry_not_object", Weights("header/entry-not-object.safetensors"), 3, {"entry-not-object.safetensors", "tensor 't.weight' is not an object"}},
    {"entry_no_dtype", Weights("header/entry-no-dtype.safetensors"), 3, {"entry-no-dtype.safetensors", "tensor 't.weight' has no dtype"}},
    {"entry_no_shape", Weights("header/entry-no-shape.safetensors"), 3, {"entry-no-shape.safetensors", "tensor 't.weight' has no shape"}},
    {"entry_no_offsets", Weights("header/entry-no-offsets.safetensors"), 3,
     {"entry-no-offsets.safetensors", "tensor 't.weight' has no data_offsets"}},
    {"entry_dtype_twice", Weights("header/entry-dtype-twice.safetensors"), 3,
     {"entry-dtype-twice.safetensors", "tensor 't.weight' has \"dtype\" twice"}},
    // The valid model but for a field given twice, its last value valid: not "the last wins".
    {"entry_shape_twice", Weights("header/entry-shape-twice.safetensors"), 3,
     {"entry-shape-twice.safetensors", "tensor 'model.norm.weight' has \"shape\" twice"}},
    {"entry_offsets_twice", Weights("header/entry-offsets-twice.safetensors"), 3,
     {"entry-offsets-twice.safetensors", "tensor 'model.norm.weight' has \"data_offsets\" twice"}},
    {"dtype_not_string", Weights("header/dtype-not-string.safetensors"), 3,
     {"dtype-not-string.safetensors", "tensor 't.weight' dtype is not a string"}},
    {"dtype_unknown", Weights("header/dtype-unknown.safetensors"), 3,
     {"dtype-unknown.safetensors", "tensor 't.weight' has unknown dtype 'Q4_K'"}},
    {"dtype_lowercase", Weights("header/dtype-lowercase.safetensors"), 3,
     {"dtype-lowercase.safetensors", "tensor 't.weight' has unknown dtype 'f32'"}},
    {"shape_not_array", Weights("header/shape-not-array.safetensors"), 3,
     {"shape-not-array.safetensors", "tensor 't.weight' shape is not an array"}},
    {"shape_negative", Weights("header/shape-negative.safetensors"), 3,
     {"shape-negative.safetensors", "tensor 't.weight' shape entry is negative"}},
    {"shape_fraction", Weights("header/shape-fraction.safetensors"), 3,
     {"shape-fraction.safetensors", "tensor 't.weight' shape entry is not a non-negative integer"}},
    {"shape_exponent", Weights("header/shape-exponent.safetensors"), 3,
     {"shape-exponent.safetensors", "tensor 't.weight' shape entry is not a non-negative integer"}},
    {"shape_string", Weights("header/shape-string.safetensors"), 3,
     {"shape-string.safetensors", "tensor 't.weight' shape entry is not a non-negative integer"}},
    {"shape_huge_number", Weights("header/shape-huge-number.safetensors"), 3,
     {"shape-huge-number.safetensors", "tensor 't.weight' shape entry is not a non-negative integer"}},
    {"shape_overflow", Weights("header/shape-overflow.safetensors"), 3,
     {"shape-overflow.safetensors", "tensor 't.weight' shape is too large (overflow)"}},
    {"shape_overflow_dtype", Weights("header/shape-overflow-dtype.safetensors"), 3,
     {"shape-overflow-dtype.safetensors", "tensor 't.weight' shape is too large (overflow)"}},
    {"shape_mismatch", Weights("header/shape-mismatch.safetensors"), 3,
     {"shape-mismatch.safetensors", "tensor 't.weight' holds 8 bytes but F32 [4] needs 16"}},
    {"shape_mismatch_larger", Weights("header/shape-mismatch-larger.safetensors"), 3,
     {"shape-mismatch-larger.safetensors", "tensor 't.weight' holds 32 bytes but F32 [4] needs 16"}},
    {"offsets_one_number", Weights("header/offsets-one-number.safetensors"), 3,
     {"offsets-one-number.safetensors", "tensor 't.weight' data_offsets must hold 2 numbers"}},
    {"offsets_three_numbers", Weights("header/offsets-three-numbers.safetensors"), 3,
     {"offsets-three-numbers.safetensors", "tensor 't.weight' data_offsets must hold 2 numbers"}},
    {"offsets_negative", Weights("header/offsets-negative.safetensors"), 3,
     {"offsets-negative.safetensors", "tensor 't.weight' data_offsets entry is negative"}},
    {"offsets_reversed", Weights("header/offsets-reversed.safetensors"), 3,
     {"offsets-reversed.safetensors", "tensor 't.weight' data_offsets are reversed"}},
    {"offsets_out_of_bounds", Weights("header/offsets-out-of-bounds.safetensors"), 3,
     {"offsets-out-of-bounds.safetensors", "tensor 't.weight' ends at byte 16 past the end of the data (8 bytes)"}},
    {"offsets_far_out_of_bounds", Weights("header/offsets-far-out-of-bounds.safetensors"), 3,
     {"offsets-far-out-of-bounds.safetensors", "tensor 't.weight' ends at byte 18446744073709551615 past the end of the data"}},
    {"offsets_far_hole", Weights("header/offsets-far-hole.safetensors"), 3,
     {"offsets-far-hole.safetensors", "hole in the data before tensor 't.weight'"}},
    {"offsets_overlap", Weights("header/offsets-overlap.safetensors"), 3,
     {"offsets-overlap.safetensors", "tensor 'b.weight' overlaps the previous tensor"}},
    {"offsets_same_range", Weights("header/offsets-same-range.safetensors"), 3,
     {"offsets-same-range.safetensors", "overlaps the previous tensor"}},
    {"offsets_hole", Weights("header/offsets-hole.safetensors"), 3,
     {"offsets-hole.safetensors", "hole in the data before tensor 'b.weight' (bytes 4..8 belong to no tensor)"}},
    {"offsets_hole_at_start", Weights("header/offsets-hole-at-start.safetensors"), 3,
     {"offsets-hole-at-start.safetensors", "hole in the data before tensor 'a.weight' (bytes 0..4"}},
    {"trailing_bytes", Weights("header/trailing-bytes.safetensors"), 3,
     {"trailing-bytes.safetensors", "4 trailing bytes after the last tensor"}},
    {"duplicate_key", Weights("header/duplicate-key.safetensors"), 3,
     {"duplicate-key.safetensors", "duplicate key 't.weight' in the header"}},
    {"metadata_twice", Weights("header/metadata-twice.safetensors"), 3,
     {"metadata-twice.safetensors", "duplicate key '__metadata__' in the header"}},
    {"name_control_characters", Weights("header/name-control-characters.safetensors"), 3,
     {"name-control-characters.safetensors", R"(tensor 't\n.weight\x1b[31m\x00\u009b' is not an object)"}},
    {"metadata_not_object", Weights("header/metadata-not-object.safetensors"), 3,
     {"metadata-not-object.safetensors", "__metadata__ is not an object"}},
    {"metadata_not_strings", Weights("header/metadata-not-strings.safetensors"), 3,
     {"metadata-not-strings.safetensors", "__metadata__ values must be strings"}},

    // --- the description (io/description.cpp) ---
    {"description_empty", Described("description/empty.json"), 3, {"empty.json", "description is not valid JSON"}},
    {"description_whitespace", Described("description/whitespace.json"), 3, {"whitespace.json", "description is not valid JSON"}},
    {"description_truncated", Described("description/truncated.json"), 3, {"truncated.json", "description is not valid JSON"}},
    {"description_array", Described("description/not-object-array.json"), 3,
     {"not-object-array.json", "description is not a JSON object"}},
    {"description_string", Described("description/not-object-string.json"), 3,
     {"not-object-string.json", "description is not a JSON object"}},
    {"description_number", Described("description/not-object-number.json"), 3,
     {"not-object-number.json", "description is not a JSON object"}},
    {"description_content_after", Described("description/content-after.json"), 3,
     {"content-after.json", "content after the object"}},
    {"description_single_quotes", Described("description/single-quotes.json"), 3,
     {"single-quotes.json", "description is not valid JSON"}},
    {"description_trailing_comma", Described("description/trailing-comma.json"), 3,
     {"trailing-comma.json", "description is not valid JSON"}},
    {"description_deep_nesting_unclosed", Described("description/deep-nesting-unclosed.json"), 3,
     {"deep-nesting-unclosed.json", "description is not valid JSON"}},
    {"description_not_utf8", Described("description/not-utf8.json"), 3, {"not-utf8.json", "description is not valid JSON"}},
    {"description_mixed_bit_widths", Described("description/mixed-bit-widths.json"), 4,
     {"labels tensors both W4A16 and W8A16"}},

    // --- tensors that cannot be a quantized linear (engine/plan.cpp; the file named by input_error.cpp) ---
    {"weight_f16", Weights("plan/weight-f16.safetensors"), 3,
     {"weight-f16.safetensors: " + kLinear + ".weight", "a quantized weight must be I8, it is F16"}},
    {"weight_i32", Weights("plan/weight-i32.safetensors"), 3,
     {"weight-i32.safetensors: " + kLinear + ".weight", "a quantized weight must be I8, it is I32"}},
    {"weight_1d", Weights("plan/weight-1d.safetensors"), 3,
     {"weight-1d.safetensors: " + kLinear + ".weight", "must be a non-empty 2-D [out, in] tensor, it is [512]"}},
    {"scale_missing", Weights("plan/scale-missing.safetensors"), 3,
     {"scale-missing.safetensors: " + kLinear + ".weight", "its scale " + kLinear + ".weight_scale is missing"}},
    {"scale_i32", Weights("plan/scale-i32.safetensors"), 3,
     {"scale-i32.safetensors: " + kLinear + ".weight_scale", "a scale must be F32, F16 or BF16, it is I32"}},
    {"scale_rows", Weights("plan/scale-rows.safetensors"), 4,
     {"scale-rows.safetensors: " + kLinear + ".weight_scale", "shape [4, 2] does not fit weight [8, 64]"}},
    {"scale_groups_not_dividing", Weights("plan/scale-groups-not-dividing.safetensors"), 4,
     {"scale-groups-not-dividing.safetensors: " + kLinear + ".weight_scale", "3 groups do not divide the 64 input columns"}},
    {"scale_3d", Weights("plan/scale-3d.safetensors"), 4, {"scale-3d.safetensors: " + kLinear + ".weight_scale", "shape [8, 2, 1] is not [out, G]"}},
    {"offset_shape", Weights("plan/offset-shape.safetensors"), 4,
     {"offset-shape.safetensors: " + kLinear + ".weight_offset", "F32 [8, 3] does not fit its scale [8, 2]"}},

    // --- sharded checkpoints (io/shard_index.cpp, io/checkpoint.cpp) ---
    {"shard_missing", Weights("sharded/missing-shard/model.safetensors.index.json"), 3,
     {"model-00002-of-00002.safetensors", "cannot open: No such file or directory"}},
    // A Hugging Face snapshot whose second shard's blob was pruned: the link is named as dangling.
    {"shard_dangling_link", Weights("snapshot/model.safetensors.index.json"), 3,
     {"model-00002-of-00002.safetensors: is a symbolic link to ../blobs/pruned, which does not exist"},
     [](const Paths& p) {
       const fs::path valid = p.in / "sharded/valid", snapshot = p.in / "snapshot";
       fs::create_directory(snapshot);
       fs::copy_file(valid / "model.safetensors.index.json", snapshot / "model.safetensors.index.json");
       fs::create_symlink(valid / "model-00001-of-00002.safetensors", snapshot / "model-00001-of-00002.safetensors");
       fs::create_symlink("../blobs/pruned", snapshot / "model-00002-of-00002.safetensors");
     }},
    {"shard_tensor_absent", Weights("sharded/tensor-absent/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", "tensor 'model.layers.0.mlp.gate_proj.weight' is mapped to model-00001-of-00002.safetensors but that shard does not hold it"}},
    {"shard_tensor_in_other_shard", Weights("sharded/tensor-in-other-shard/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", "is mapped to model-0000", "but that shard does not hold it"}},
    {"shard_tensor_in_two_shards", Weights("sharded/tensor-in-two-shards/model.safetensors.index.json"), 3,
     {"model-00002-of-00002.safetensors", "tensor 'model.norm.weight' is also in another shard"}},
    {"shard_path_escape", Weights("sharded/shard-path-escape/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", "weight_map entry 'model.norm.weight' names '../valid/model-00002-of-00002.safetensors', not a file beside the index"}},
    {"shard_name_nul", Weights("sharded/shard-name-nul/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", R"(names 'model-00001-of-00002.safetensors\x00.evil', not a file beside the index)"}},
    {"shard_broken_header", Weights("sharded/shard-broken-header/model.safetensors.index.json"), 3,
     {"model-00002-of-00002.safetensors", "header is not valid JSON"}},
    {"shard_tensor_name_control_characters", Weights("sharded/tensor-name-control-characters/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", R"(tensor 'model.norm\n.weight\x1b[2J' is mapped to model-00002-of-00002.safetensors)"}},
    {"index_not_json", Weights("sharded/index-not-json/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", "index is not valid JSON"}},
    {"index_not_object", Weights("sharded/index-not-object/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", "index is not a JSON object"}},
    {"index_no_weight_map", Weights("sharded/index-no-weight-map/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", "index has no \"weight_map\""}},
    {"weight_map_not_object", Weights("sharded/weight-map-not-object/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", "\"weight_map\" is not an object"}},
    {"weight_map_entry_not_string", Weights("sharded/weight-map-entry-not-string/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", "weight_map entry '" + kLinear + ".weight' is not a file name"}},
    {"weight_map_duplicate", Weights("sharded/weight-map-duplicate/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", "tensor 'model.norm.weight' is listed twice"}},
    {"weight_map_twice", Weights("sharded/weight-map-twice/model.safetensors.index.json"), 3,
     {"model.safetensors.index.json", "index has \"weight_map\" twice"}},

    // --- the output location (io/staging.cpp, engine/convert.cpp) ---
    {"save_path_is_weights", Convert("{in}/base/model.safetensors", "{in}/base/description.json",
                                     {"--save_path", "{in}/base/model.safetensors"}), 2,
     {"model.safetensors", "the output would overwrite the input"}},
    {"save_path_is_description", Convert("{in}/base/model.safetensors", "{in}/base/description.json",
                                         {"--save_path", "{in}/base/description.json"}), 2,
     {"description.json", "the output would overwrite the input"}},
    {"save_path_is_shard", Convert("{in}/sharded/valid/model.safetensors.index.json", "{in}/base/description.json",
                                   {"--save_path", "{in}/sharded/valid/model-00002-of-00002.safetensors"}), 2,
     {"model-00002-of-00002.safetensors", "the output would overwrite the input"}},
    {"save_path_is_index", Convert("{in}/sharded/valid/model.safetensors.index.json", "{in}/base/description.json",
                                   {"--save_path", "{in}/sharded/valid/model.safetensors.index.json"}), 2,
     {"model.safetensors.index.json", "the output would overwrite the input"}},
    {"save_path_is_weights_by_other_path", Convert("{in}/base/model.safetensors", "{in}/base/description.json",
                                                   {"--save_path", "{in}/header/../base/./model.safetensors"}), 2,
     {"model.safetensors", "the output would overwrite the input"}},
    {"save_path_is_hard_link_to_weights", Convert("{in}/base/model.safetensors", "{in}/base/description.json",
                                                  {"--save_path", "{in}/link.safetensors"}), 2,
     {"link.safetensors", "the output would overwrite the input"},
     [](const Paths& p) { fs::create_hard_link(p.in / "base/model.safetensors", p.in / "link.safetensors"); }},
    {"save_path_missing_directory", Flags({"--save_path", "{out}/missing/res.safetensors"}), 5,
     {"missing/res.safetensors", "does not exist"}},
    {"save_path_parent_is_file", Flags({"--save_path", "{in}/base/description.json/res.safetensors"}), 5,
     {"description.json/res.safetensors", "description.json is not a directory"}},
    {"save_path_is_directory", Flags({"--save_path", "{out}/a-directory"}), 5,
     {"a-directory: is a directory: name a file in it, or give --out-dir for a model directory"},
     [](const Paths& p) { fs::create_directory(p.out / "a-directory"); }},
    {"save_path_trailing_slash", Flags({"--save_path", "{out}/"}), 5, {"is not a file name"}},
    // Renaming onto it would leave a regular file where the FIFO (or /dev/null) was.
    {"save_path_is_fifo", Flags({"--save_path", "{out}/a-fifo"}), 5, {"a-fifo", "is not a regular file"},
     [](const Paths& p) { ASSERT_EQ(::mkfifo((p.out / "a-fifo").c_str(), 0644), 0); }},
    {"save_path_links_to_fifo", Flags({"--save_path", "{out}/link"}), 5, {"link", "is not a regular file"},
     [](const Paths& p) {
       ASSERT_EQ(::mkfifo((p.out / "a-fifo").c_str(), 0644), 0);
       fs::create_symlink(p.out / "a-fifo", p.out / "link");
     }},
    {"save_path_unwritable_directory", Flags({"--save_path", "{out}/locked/res.safetensors"}), 5,
     {"locked/res.safetensors", "is not writable"},
     [](const Paths& p) {
       fs::create_directory(p.out / "locked");
       fs::permissions(p.out / "locked", fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                                             fs::perms::group_exec | fs::perms::others_read | fs::perms::others_exec);
     }, Privilege::kNoOverride},
    // The stage's name is cut to fit, the target's cannot be: refused before the work, not by the rename.
    {"save_path_name_too_long", Flags({"--save_path", "{out}/" + std::string(300, 'M')}), 5,
     {std::string(300, 'M') + ": its name is 300 bytes, over the file system's limit of 255 bytes"}},
    {"save_path_name_too_long_dry_run", Flags({"--save_path", "{out}/" + std::string(300, 'M'), "--dry-run"}), 5,
     {std::string(300, 'M') + ": its name is 300 bytes, over the file system's limit of 255 bytes"}},
    {"out_dir_name_too_long", Flags({"--out-dir", "{out}/" + std::string(300, 'M'), "--base-model", "{in}/configured"}), 5,
     {std::string(300, 'M') + ": its name is 300 bytes, over the file system's limit of 255 bytes"},
     [](const Paths& p) {
       fs::create_directory(p.in / "configured");
       testing::WriteText(p.in / "configured/config.json", R"({"model_type": "qwen2"})");
     }},
    // A directory above that this user cannot search is not a missing one.
    {"save_path_unsearchable_directory", Flags({"--save_path", "{out}/private/sub/res.safetensors"}), 5,
     {"private/sub/res.safetensors: cannot reach directory ", "private/sub: Permission denied"},
     [](const Paths& p) {
       fs::create_directory(p.out / "private");
       fs::permissions(p.out / "private", fs::perms::owner_read | fs::perms::owner_write);
     }, Privilege::kNoOverride},
    {"save_path_past_path_max", Flags({"--save_path", "{out}/" + LongPath(20, 250) + "/res.safetensors"}), 5,
     {"res.safetensors: cannot reach directory ", "d: File name too long"}},
    // These lead to /proc/self/fd/1: followed, the output would replace the file stdout appends to,
    // and with stdout a pipe (as here) the message would name "pipe:[N]".
    {"save_path_dev_stdout", Flags({"--save_path", "/dev/stdout"}), 5,
     {"/dev/stdout: leads into /proc", "ms2vllm writes a file it renames into place and needs a file path"}},
    {"save_path_dev_stdout_dry_run", Flags({"--save_path", "/dev/stdout", "--dry-run"}), 5,
     {"/dev/stdout: leads into /proc", "ms2vllm writes a file it renames into place and needs a file path"}},
    {"save_path_dev_fd", Flags({"--save_path", "/dev/fd/1"}), 5,
     {"/dev/fd/1: leads into /proc", "ms2vllm writes a file it renames into place and needs a file path"}},
    {"save_path_proc_fd", Flags({"--save_path", "/proc/self/fd/1"}), 5,
     {"/proc/self/fd/1: leads into /proc", "ms2vllm writes a file it renames into place and needs a file path"}},
    {"output_file_size_limit", Flags({}), 5, {"res.safetensors", "file size limit (ulimit -f) of 100 bytes"},
     {}, Privilege::kAsIs, /*file_size_limit=*/100},

    // --- flag values (tools/convert_command.cpp, CLI11) ---
    {"flag_w_bit_5", Flags({"--w_bit", "5"}), 2, {"--w_bit"}},
    {"flag_w_bit_text", Flags({"--w_bit", "four"}), 2, {"--w_bit"}},
    {"flag_w_bit_disagrees", Flags({"--w_bit", "8", "--target_tool", "gptq"}), 4,
     {"--w_bit 8 disagrees with the description"}},
    {"flag_target_tool", Flags({"--target_tool", "exllama"}), 2, {"--target_tool"}},
    {"flag_gptq_format", Flags({"--gptq-format", "v3"}), 2, {"--gptq-format"}},
    {"flag_packed", Flags({"--packed", "maybe"}), 2, {"--packed"}},
    {"flag_scales_dtype", Flags({"--scales-dtype", "f8"}), 2, {"--scales-dtype"}},
    {"flag_threads_zero", Flags({"--threads", "0"}), 2, {"--threads"}},
    {"flag_threads_negative", Flags({"--threads", "-3"}), 2, {"--threads"}},
    {"flag_chunk_size_zero", Flags({"--chunk-size", "0"}), 2, {"--chunk-size '0' is not a size"}},
    {"flag_chunk_size_text", Flags({"--chunk-size", "lots"}), 2,
     {"--chunk-size 'lots' is not a size: a whole number above 0, of bytes or with a unit (B, KB, MB, GB, TB, KiB, MiB, "
      "GiB or TiB), such as 4MB"}},
    {"flag_chunk_size_unit", Flags({"--chunk-size", "4PB"}), 2, {"--chunk-size '4PB' is not a size: "}},
    {"flag_max_shard_size_overflow", Flags({"--out-dir", "{out}/dir", "--max-shard-size", "99999999999999999999GB"}), 2,
     {"--max-shard-size '99999999999999999999GB' is not a size"}},
    {"flag_kernels_unknown", Flags({"--kernels", "quantum"}), 2, {"'quantum' is not a kernel variant of this build (available: "}},
    {"flag_unknown", Flags({"--frobnicate"}), 2, {"--frobnicate"}},
    {"flag_base_model_without_out_dir", Flags({"--base-model", "{in}/base"}), 2, {"--base-model requires --out-dir"}},
    {"base_model_missing", Flags({"--out-dir", "{out}/dir", "--base-model", "{in}/no-such-model"}), 3,
     {"no-such-model", "no such directory"}},
    {"base_model_is_a_file", Flags({"--out-dir", "{out}/dir", "--base-model", "{in}/base/description.json"}), 3,
     {"description.json", "not a directory"}},
    {"base_model_without_config", Flags({"--out-dir", "{out}/dir", "--base-model", "{in}/base"}), 3,
     {"base", "has no config.json"}},
    // The base config as Python's json reads it (io/python_json.h), and no more: no deeper, and
    // NaN as a value, not as a key; refused where a string could pass for a placeholder.
    {"base_config_nested_300k_deep", Flags({"--out-dir", "{out}/dir", "--base-model", "{in}/deep"}), 3,
     {"{in}/deep/config.json: nested deeper than 1000 levels"},
     [](const Paths& p) {
       const size_t levels = 300'000;
       fs::create_directory(p.in / "deep");
       testing::WriteText(p.in / "deep/config.json", R"({"model_type": "qwen2", "x": )" + std::string(levels, '[') +
                                                         std::string(levels, ']') + "}");
     }},
    {"base_config_nan_key", Flags({"--out-dir", "{out}/dir", "--base-model", "{in}/nan-key"}), 3,
     {"{in}/nan-key/config.json: not valid JSON"},
     [](const Paths& p) {
       fs::create_directory(p.in / "nan-key");
       testing::WriteText(p.in / "nan-key/config.json", R"({"model_type": "qwen2", NaN: 1})");
     }},
    // U+0000 starts the placeholders that carry NaN through the rewrite: a string with one, NaN
    // elsewhere or not, would come back a bare value (or broken JSON after an escaped quote).
    {"base_config_u0000", Flags({"--out-dir", "{out}/dir", "--base-model", "{in}/nul"}), 3,
     {"{in}/nul/config.json: a string holds U+0000 (\\u0000), which ms2vllm reserves"},
     [](const Paths& p) {
       fs::create_directory(p.in / "nul");
       testing::WriteText(p.in / "nul/config.json", R"({"model_type": "qwen2", "y": "a\"\u0000Infinity"})");
     }},
    {"flag_force_without_out_dir", Flags({"--force"}), 2, {"--force requires --out-dir"}},
    {"flag_save_path_and_out_dir", Flags({"--save_path", "{out}/res.safetensors", "--out-dir", "{out}/dir"}), 2,
     {"--out-dir", "excludes", "--save_path"}},
    {"flag_out_dir_empty", Flags({"--out-dir", ""}), 2, {"--out-dir: is empty"}},
    {"flag_base_model_empty", Flags({"--out-dir", "{out}/dir", "--base-model", ""}), 2, {"--base-model: is empty"}},
    {"flag_gptq_format_for_awq", Flags({"--gptq-format", "v2"}), 2, {"--gptq-format applies to --target_tool gptq"}},
    {"flag_max_shard_size_without_out_dir", Flags({"--max-shard-size", "1GB"}), 2, {"--max-shard-size requires --out-dir"}},
    {"flag_model_missing", {"--json", "{in}/base/description.json", "--save_path", "{out}/res.safetensors"}, 2, {"--model"}},
    {"flag_model_without_value", {"--model"}, 2, {"--model"}},
  };
  return cases;
}
// clang-format on

std::string Substitute(std::string text, const Paths& paths) {
  const std::pair<std::string, std::string> substitutions[] = {{"{in}", paths.in.string()}, {"{out}", paths.out.string()}};
  for (const auto& [key, value] : substitutions) {
    for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + value.size())) {
      text.replace(at, key.size(), value);
    }
  }
  return text;
}

bool HasStageName(const Snapshot& snapshot) {
  return std::any_of(snapshot.begin(), snapshot.end(),
                     [](const auto& entry) { return entry.first.find(".ms2vllm-") != std::string::npos; });
}

// Checks the one error line: prefix, newline, and every expected substring.
void ExpectOneErrorLine(const ChildOutcome& outcome, const std::vector<std::string>& expect) {
  EXPECT_TRUE(outcome.out.empty()) << "stdout: " << outcome.out;
  const std::string& err = outcome.err;
  EXPECT_TRUE(err.starts_with("ms2vllm: error: ")) << "stderr: " << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << "stderr is not one line: " << err;
  EXPECT_TRUE(err.ends_with("\n")) << "stderr: " << err;
  // Nothing that could drive a terminal: no control character but the final newline.
  EXPECT_TRUE(std::none_of(err.begin(), err.end() - (err.empty() ? 0 : 1),
                           [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
      << "control character in: " << err;
  for (const auto& part : expect) EXPECT_NE(err.find(part), std::string::npos) << "missing '" << part << "' in: " << err;
  // The user never sees the temp file: messages name the target.
  EXPECT_EQ(err.find(".ms2vllm-"), std::string::npos) << err;
}

class HostileInputTest : public ::testing::TestWithParam<std::tuple<Case, bool>> {};

TEST_P(HostileInputTest, FailsCleanlyWithOneMessage) {
  const auto& [c, pre_existing] = GetParam();
  testing::TempDir root;
  const Paths paths{root / "in", root / "out"};
  fs::copy(CorpusDir(), paths.in, fs::copy_options::recursive);
  fs::create_directory(paths.out);
  // A child without permission overrides must still reach the corpus copy and the output.
  fs::permissions(root.path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                   fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(paths.out, fs::perms::all);
  if (pre_existing) testing::WriteText(paths.out / "res.safetensors", "a file the user had before");
  if (c.setup) c.setup(paths);
  if (HasFatalFailure()) return;

  std::vector<std::string> args;
  for (const auto& arg : c.args) args.push_back(Substitute(arg, paths));
  std::vector<std::string> expect;
  for (const auto& part : c.expect) expect.push_back(Substitute(part, paths));

  const Snapshot before = Take(root.path());
  const Privilege privilege = c.privilege;
  const rlim_t limit = c.file_size_limit;
  const ChildOutcome outcome = RunBinary(args, [privilege, limit] {
    if (privilege == Privilege::kNoOverride) DropFileOverride();
    if (limit != RLIM_INFINITY) {
      const rlimit fsize{limit, limit};
      if (::setrlimit(RLIMIT_FSIZE, &fsize) != 0) _exit(126);
    }
  });
  const Snapshot after = Take(root.path());

  ASSERT_FALSE(outcome.timed_out) << "hung";
  ASSERT_TRUE(outcome.exited) << "killed by signal " << outcome.signal << "; stderr: " << outcome.err;
  EXPECT_EQ(outcome.exit_code, c.exit_code) << "stderr: " << outcome.err;
  ExpectOneErrorLine(outcome, expect);
  EXPECT_TRUE(before == after) << "the run changed files:\n" << Describe(before, after);
  EXPECT_FALSE(HasStageName(after));
  if (!pre_existing) {
    EXPECT_FALSE(fs::exists(paths.out / "res.safetensors"));
  }
}

// The disk fills while a run replaces an earlier output: the error says that output is untouched,
// and it is. A run with nothing to replace says nothing of it.
TEST(HostileOutput, AWriteThatFailsWhileReplacingSaysTheEarlierOutputIsKept) {
  for (const bool pre_existing : {true, false}) {
    SCOPED_TRACE(pre_existing ? "over an earlier output" : "no earlier output");
    testing::TempDir root;
    const Paths paths{root / "in", root / "out"};
    fs::copy(CorpusDir(), paths.in, fs::copy_options::recursive);
    fs::create_directory(paths.out);
    const std::string earlier = "a file the user had before";
    if (pre_existing) testing::WriteText(paths.out / "res.safetensors", earlier);
    std::vector<std::string> args;
    for (const auto& arg : Flags({})) args.push_back(Substitute(arg, paths));
    const ChildOutcome outcome = RunBinary(args, [] {
      const rlimit fsize{100, 100};
      if (::setrlimit(RLIMIT_FSIZE, &fsize) != 0) _exit(126);
    });
    ASSERT_TRUE(outcome.exited) << outcome.err;
    EXPECT_EQ(outcome.exit_code, 5) << outcome.err;
    ExpectOneErrorLine(outcome, {"file size limit"});
    const std::string kept = (paths.out / "res.safetensors").string() + " is left as it was";
    EXPECT_EQ(outcome.err.find(kept) != std::string::npos, pre_existing) << outcome.err;
    if (pre_existing) {
      EXPECT_EQ(testing::ReadText(paths.out / "res.safetensors"), earlier);
    }
  }
}

std::vector<std::tuple<Case, bool>> AllRuns() {
  std::vector<std::tuple<Case, bool>> runs;
  for (const auto& c : Cases()) {
    runs.emplace_back(c, false);
    runs.emplace_back(c, true);
  }
  return runs;
}

INSTANTIATE_TEST_SUITE_P(Corpus, HostileInputTest, ::testing::ValuesIn(AllRuns()), [](const auto& info) {
  return std::get<0>(info.param).name + (std::get<1>(info.param) ? "_over_existing_target" : "_no_target");
});

// Every file of the corpus is used by some case, so none is dead weight (or a forgotten case).
TEST(HostileInputCorpus, EveryCorpusFileHasACase) {
  std::string all_args;
  for (const auto& c : Cases()) {
    for (const auto& arg : c.args) all_args += arg + "\n";
  }
  for (const auto& entry : fs::recursive_directory_iterator(CorpusDir())) {
    if (!entry.is_regular_file()) continue;
    const std::string relative = fs::relative(entry.path(), CorpusDir()).string();
    if (relative.starts_with("base/") || relative == "make_corpus.py" || relative == "README.md") continue;
    if (relative.starts_with("sharded/")) {
      // A sharded case is named by its index; its shards come along.
      const std::string index = fs::relative(entry.path().parent_path(), CorpusDir()).string() + "/model.safetensors.index.json";
      EXPECT_NE(all_args.find("{in}/" + index), std::string::npos) << relative << " has no case";
      continue;
    }
    EXPECT_NE(all_args.find("{in}/" + relative + "\n"), std::string::npos) << relative << " has no case";
  }
}

// The control: the corpus's valid model converts, so every failure above is the broken part's.
TEST(HostileInputCorpus, ValidInputsConvert) {
  const std::pair<std::string, std::string> inputs[] = {
      {"base/model.safetensors", "base/description.json"},
      {"sharded/valid/model.safetensors.index.json", "base/description.json"},
      {"base/model.safetensors", "base/deep-metadata-description.json"}};
  for (const auto& [weights, description] : inputs) {
    testing::TempDir out;
    const ChildOutcome outcome = RunBinary({"--model", (CorpusDir() / weights).string(), "--json",
                                            (CorpusDir() / description).string(), "--save_path",
                                            (out / "res.safetensors").string(), "-q"});
    ASSERT_TRUE(outcome.exited);
    EXPECT_EQ(outcome.exit_code, 0) << outcome.err;
    const auto tensors = testing::LoadTensors(out / "res.safetensors");
    EXPECT_EQ(tensors.size(), 4u);  // qweight, scales, qzeros, norm
    EXPECT_TRUE(tensors.contains("model.layers.0.mlp.down_proj.qweight"));
  }
}

// ---------------------------------------------------------------------------------------------
// A small file system of our own: a full disk (ENOSPC) and a read-only one (EROFS, which root
// cannot override). The child enters a private mount namespace (as root, or else as root of a
// new user namespace), mounts a tmpfs there, runs the command, and reports what it saw, so the
// test never leaves a mount behind.

struct SmallFsReport {
  std::string setup_error;  // why the file system could not be made
  ChildOutcome outcome;
  std::map<std::string, std::string> files;  // name -> content, after the run
};

// File contents travel through the JSON report as hex: they need not be UTF-8.
std::string Hex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned char c : bytes) hex += {kDigits[c >> 4], kDigits[c & 15]};
  return hex;
}
std::string Unhex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return bytes;
}

std::string ErrnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string EnterMountNamespace() {
  if (::unshare(CLONE_NEWNS) != 0) {
    const uid_t uid = ::geteuid();
    const gid_t gid = ::getegid();
    if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return ErrnoText("unshare(CLONE_NEWNS) and a user namespace");
    std::ofstream("/proc/self/setgroups") << "deny";
    std::ofstream("/proc/self/uid_map") << "0 " << uid << " 1";
    std::ofstream("/proc/self/gid_map") << "0 " << gid << " 1";
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return ErrnoText("make / private");
  return "";
}

// In a mount namespace of its own: mounts at `directory` by `mount` (which returns what went
// wrong, or ""), writes `target` there with `content` (none when `target` is empty), optionally
// remounts it read-only, runs the command with `args` and records the outcome and the files.
SmallFsReport RunOnMount(const fs::path& directory, const std::function<std::string()>& mount, bool read_only,
                         const std::string& target, const std::string& content, const std::vector<std::string>& args) {
  const fs::path report_path = directory.parent_path() / "small-fs-report.json";
  const pid_t pid = ::fork();
  if (pid == 0) {
    nlohmann::json report;
    auto finish = [&](int code) {
      std::ofstream(report_path) << report.dump();
      _exit(code);
    };
    std::string error = EnterMountNamespace();
    if (error.empty()) error = mount();
    if (error.empty() && !target.empty()) {
      std::ofstream(directory / target, std::ios::binary) << content;
      if (fs::file_size(directory / target) != content.size()) error = "could not write " + target;
    }
    if (error.empty() && read_only &&
        ::mount(nullptr, directory.c_str(), nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
      error = ErrnoText("remount read-only");
    }
    if (!error.empty()) {
      report["setup_error"] = error;
      finish(1);
    }
    const ChildOutcome outcome = RunBinary(args);
    report["exited"] = outcome.exited;
    report["exit_code"] = outcome.exit_code;
    report["signal"] = outcome.signal;
    report["out"] = outcome.out;
    report["err"] = outcome.err;
    std::error_code ec;  // a file mounted over has no files to list
    for (const auto& entry : fs::directory_iterator(directory, ec)) {
      std::ifstream in(entry.path(), std::ios::binary);
      report["files"][entry.path().filename().string()] = Hex(std::string(std::istreambuf_iterator<char>(in), {}));
    }
    finish(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  SmallFsReport result;
  std::ifstream in(report_path);
  if (!in) {
    result.setup_error = "the namespace child wrote no report";
    return result;
  }
  const auto report = nlohmann::json::parse(in);
  if (report.contains("setup_error")) {
    result.setup_error = report["setup_error"];
    return result;
  }
  result.outcome.exited = report["exited"];
  result.outcome.exit_code = report["exit_code"];
  result.outcome.signal = report["signal"];
  result.outcome.out = report["out"];
  result.outcome.err = report["err"];
  if (report.contains("files")) {
    for (const auto& [name, hex] : report["files"].items()) result.files[name] = Unhex(hex);
  }
  return result;
}

// Mounts a tmpfs of `bytes` at `directory`, then as RunOnMount.
SmallFsReport RunOnSmallFs(const fs::path& directory, uint64_t bytes, bool read_only, const std::string& target,
                           const std::string& content, const std::vector<std::string>& args) {
  const auto mount_tmpfs = [&directory, bytes] {
    const std::string options = "size=" + std::to_string(bytes) + ",mode=0755";
    return ::mount("tmpfs", directory.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0 ? ""
                                                                                                      : ErrnoText("mount tmpfs");
  };
  return RunOnMount(directory, mount_tmpfs, read_only, target, content, args);
}

// Binds `source` (a directory or a file) over `mount_point`, of the same file system, then as RunOnMount.
SmallFsReport RunOnBindMount(const fs::path& source, const fs::path& mount_point, const std::vector<std::string>& args) {
  const auto bind = [&source, &mount_point] {
    return ::mount(source.c_str(), mount_point.c_str(), nullptr, MS_BIND, nullptr) == 0 ? "" : ErrnoText("bind mount");
  };
  return RunOnMount(mount_point, bind, /*read_only=*/false, "", "", args);
}

std::vector<std::string> ConvertInto(const fs::path& target) {
  return {"--model", (CorpusDir() / "base/model.safetensors").string(), "--json",
          (CorpusDir() / "base/description.json").string(), "--save_path", target.string()};
}

TEST(HostileOutput, FullDiskFailsAtPreallocationAndKeepsTheOldTarget) {
  testing::TempDir root;
  const fs::path small = root / "small";
  fs::create_directory(small);
  // The old target fills the 64 KiB file system: reserving even one page of output fails.
  const std::string old(64 * 1024, 'o');
  const auto report = RunOnSmallFs(small, old.size(), /*read_only=*/false, "res.safetensors", old,
                                   ConvertInto(small / "res.safetensors"));
  ASSERT_EQ(report.setup_error, "") << "cannot make a small file system to fill";
  ASSERT_TRUE(report.outcome.exited) << report.outcome.err;
  EXPECT_EQ(report.outcome.exit_code, 5) << report.outcome.err;
  ExpectOneErrorLine(report.outcome, {(small / "res.safetensors").string(), "no space left on the device"});
  ASSERT_EQ(report.files.size(), 1u) << "a temp file was left";
  EXPECT_TRUE(report.files.at("res.safetensors") == old);
}

// The finished directory replaces an existing one by a rename, which a mount point cannot take:
// refused before the work, not after converting into a stage beside it.
TEST(HostileOutput, AMountPointAsTheOutputDirectoryIsRefusedUpFront) {
  testing::TempDir root;
  const fs::path small = root / "small";
  fs::create_directory(small);
  fs::create_directory(root / "base");
  testing::WriteText(root / "base/config.json", R"({"model_type": "qwen2"})");
  std::vector<std::string> args = ConvertInto(small);
  args.at(4) = "--out-dir";
  for (const char* more : {"--base-model", "--force"}) args.push_back(more);
  args.insert(args.end() - 1, (root / "base").string());
  const auto report = RunOnSmallFs(small, 1 << 20, /*read_only=*/false, "config.json", R"({"quantization_config":
                                   {"quant_method": "awq"}})", args);
  ASSERT_EQ(report.setup_error, "") << "cannot mount a file system";
  ASSERT_TRUE(report.outcome.exited) << report.outcome.err;
  EXPECT_EQ(report.outcome.exit_code, 5) << report.outcome.err;
  ExpectOneErrorLine(report.outcome, {small.string() + ": is a mount point"});
  EXPECT_EQ(report.files.size(), 1u);
  EXPECT_FALSE(HasStageName(Take(root.path())));
}

// A bind mount of a directory of the same file system keeps the device number the check above
// compares: it is known as a mount point by statx, and refused as early.
TEST(HostileOutput, ABindMountAsTheOutputDirectoryIsRefusedUpFront) {
  testing::TempDir root;
  fs::create_directory(root / "source");
  fs::create_directory(root / "bound");
  std::vector<std::string> args = ConvertInto(root / "bound");
  args.at(4) = "--out-dir";
  fs::create_directory(root / "base");
  testing::WriteText(root / "base/config.json", R"({"model_type": "qwen2"})");
  args.insert(args.end(), {"--base-model", (root / "base").string()});
  for (const bool dry_run : {false, true}) {
    SCOPED_TRACE(dry_run ? "--dry-run" : "a run");
    if (dry_run) args.push_back("--dry-run");
    const auto report = RunOnBindMount(root / "source", root / "bound", args);
    ASSERT_EQ(report.setup_error, "") << "cannot bind mount";
    ASSERT_TRUE(report.outcome.exited) << report.outcome.err;
    EXPECT_EQ(report.outcome.exit_code, 5) << report.outcome.err;
    ExpectOneErrorLine(report.outcome, {(root / "bound").string() + ": is a mount point, which the finished directory "
                                                                   "cannot be renamed onto: give a new directory inside it"});
    EXPECT_TRUE(fs::is_empty(root / "source"));
    EXPECT_FALSE(HasStageName(Take(root.path())));
  }
}

// The same for a file bound over the target: the rename onto it fails (EBUSY).
TEST(HostileOutput, ABindMountedFileAsTheTargetIsRefusedUpFront) {
  testing::TempDir root;
  testing::WriteText(root / "source.safetensors", "the bound file");
  testing::WriteText(root / "res.safetensors", "under the mount");
  const auto report = RunOnBindMount(root / "source.safetensors", root / "res.safetensors",
                                     ConvertInto(root / "res.safetensors"));
  ASSERT_EQ(report.setup_error, "") << "cannot bind mount";
  ASSERT_TRUE(report.outcome.exited) << report.outcome.err;
  EXPECT_EQ(report.outcome.exit_code, 5) << report.outcome.err;
  ExpectOneErrorLine(report.outcome, {(root / "res.safetensors").string() + ": is a mount point (a file bound over it), "
                                                                           "which the finished file cannot be renamed onto"});
  EXPECT_EQ(testing::ReadText(root / "source.safetensors"), "the bound file");
  EXPECT_EQ(testing::ReadText(root / "res.safetensors"), "under the mount");
  EXPECT_FALSE(HasStageName(Take(root.path())));
}

// /dev/stdout with stdout appending to a file: followed, the finished output would be renamed
// over that file (a log the user redirected to). Refused, and the file stays as it was.
TEST(HostileOutput, DevStdoutIsRefusedAndTheFileStdoutWritesToIsKept) {
  testing::TempDir root;
  const fs::path log = root / "log.txt";
  testing::WriteText(log, "old\n");
  for (const char* target : {"/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"}) {
    SCOPED_TRACE(target);
    std::vector<std::string> args = ConvertInto(target);
    args.push_back("-q");
    const ChildOutcome outcome = RunBinary(args, [&log] {
      const int fd = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
      if (fd < 0 || ::dup2(fd, STDOUT_FILENO) < 0) _exit(126);
    });
    ASSERT_TRUE(outcome.exited) << outcome.err;
    EXPECT_EQ(outcome.exit_code, 5) << outcome.err;
    ExpectOneErrorLine(outcome, {std::string(target) + ": leads into /proc (a file descriptor, such as standard output), "
                                                       "not to a file: ms2vllm writes a file it renames into place and "
                                                       "needs a file path"});
    EXPECT_EQ(testing::ReadText(log), "old\n");
    EXPECT_EQ(Take(root.path()).size(), 1u);  // no stage beside it
  }
}

TEST(HostileOutput, ReadOnlyFileSystemIsRefusedEvenForRoot) {
  testing::TempDir root;
  const fs::path small = root / "small";
  fs::create_directory(small);
  const std::string old = "a file the user had before";
  const auto report = RunOnSmallFs(small, 1 << 20, /*read_only=*/true, "res.safetensors", old,
                                   ConvertInto(small / "res.safetensors"));
  ASSERT_EQ(report.setup_error, "") << "cannot make a read-only file system";
  ASSERT_TRUE(report.outcome.exited) << report.outcome.err;
  EXPECT_EQ(report.outcome.exit_code, 5) << report.outcome.err;
  ExpectOneErrorLine(report.outcome, {(small / "res.safetensors").string(), "is not writable (Read-only file system)"});
  ASSERT_EQ(report.files.size(), 1u);
  EXPECT_EQ(report.files.at("res.safetensors"), old);
}

// The small file system itself works: the same conversion fits in 1 MiB.
TEST(HostileOutput, SmallFileSystemHoldsAConversion) {
  testing::TempDir root;
  const fs::path small = root / "small";
  fs::create_directory(small);
  const auto report = RunOnSmallFs(small, 1 << 20, /*read_only=*/false, "res.safetensors", "old",
                                   ConvertInto(small / "res.safetensors"));
  ASSERT_EQ(report.setup_error, "");
  EXPECT_EQ(report.outcome.exit_code, 0) << report.outcome.err;
  ASSERT_EQ(report.files.size(), 1u);
  EXPECT_GT(report.files.at("res.safetensors").size(), 100u);  // replaced by the conversion
}

// ---------------------------------------------------------------------------------------------
// Few open files: every shard stays open for the run.

// Sets the limit of open files in the child: `soft` under `hard`, or both.
std::function<void()> OpenFileLimit(rlim_t soft, rlim_t hard) {
  return [soft, hard] {
    const rlimit files{soft, hard};
    if (::setrlimit(RLIMIT_NOFILE, &files) != 0) _exit(126);
  };
}

TEST(HostileEnvironment, TheSoftLimitOfOpenFilesIsLiftedAndTooLowAHardOneIsAResourceError) {
  testing::TempDir root;
  const fs::path in = root / "in";
  ASSERT_EQ(RunBinary({"synth", "--preset", "tiny", "--out", in.string(), "--max-shard-size", "4KB", "-q"}).exit_code, 0);
  size_t shards = 0;
  for (const auto& entry : fs::directory_iterator(in)) shards += entry.path().extension() == ".safetensors";
  ASSERT_GT(shards, 16u);
  rlimit current{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &current), 0);
  ASSERT_GT(current.rlim_max, 64u);
  const std::vector<std::string> args = {"--model", in.string(), "--save_path", (root / "res.safetensors").string()};

  const ChildOutcome lifted = RunBinary(args, OpenFileLimit(16, current.rlim_max));
  EXPECT_EQ(lifted.exit_code, 0) << lifted.err;
  EXPECT_TRUE(fs::exists(root / "res.safetensors"));
  fs::remove(root / "res.safetensors");

  const ChildOutcome short_of_files = RunBinary(args, OpenFileLimit(16, 16));
  EXPECT_EQ(short_of_files.exit_code, 5) << short_of_files.err;
  ExpectOneErrorLine(short_of_files, {"Too many open files"});
  EXPECT_FALSE(HasStageName(Take(root.path())));
  EXPECT_FALSE(fs::exists(root / "res.safetensors"));
}

// ---------------------------------------------------------------------------------------------
// Out of memory: an address-space limit (ulimit -v) at every step from the least the binary
// starts in to past what a small conversion needs, so the allocation, mapping or thread creation
// that fails moves through the whole run. CMakePresets.json leaves AddressSpaceLimit out of the
// sanitizer build (its shadow memory reserves terabytes) and of qemu (which reserves the guest's
// address space); the release build runs it.

std::function<void()> AddressSpaceLimit(rlim_t bytes) {
  return [bytes] {
    const rlimit limit{bytes, bytes};
    if (::setrlimit(RLIMIT_AS, &limit) != 0) _exit(126);
  };
}

// The least limit the binary starts in: below it the loader or static initialisation fails,
// before any of ms2vllm's code runs.
constexpr rlim_t kLimitStep = 64 << 10;
constexpr rlim_t kMostLimit = rlim_t{512} << 20;
rlim_t LeastLimitToStart() {
  rlim_t limit = 4 << 20;
  while (limit < kMostLimit && RunBinary({"--version"}, AddressSpaceLimit(limit)).exit_code != 0) limit += kLimitStep;
  return limit;
}

// Runs the command `run_at` gives for each limit from `start` up, until 32 runs in a row succeed.
// A run that fails must exit 5 with one error line, leave no stage under `root` and not create
// `out`. Returns how many failed.
int SweepAddressSpace(rlim_t start, const fs::path& root,
                      const std::function<std::pair<std::vector<std::string>, fs::path>(rlim_t)>& run_at) {
  int failed = 0, succeeded_in_a_row = 0;
  for (rlim_t limit = start + kLimitStep; limit < kMostLimit && succeeded_in_a_row < 32; limit += kLimitStep) {
    const auto [args, out] = run_at(limit);
    SCOPED_TRACE("ulimit -v " + std::to_string(limit >> 10) + ": ms2vllm " + args.front() + " ... " + args.back());
    const ChildOutcome o = RunBinary(args, AddressSpaceLimit(limit));
    EXPECT_TRUE(o.exited) << "killed by signal " << o.signal << "; stderr: " << o.err;
    if (o.exited && o.exit_code == 0) {
      ++succeeded_in_a_row;
      if (!out.empty()) fs::remove_all(out);
      continue;
    }
    ++failed;
    succeeded_in_a_row = 0;
    EXPECT_EQ(o.exit_code, 5) << o.err;
    ChildOutcome error = o;
    if (args.front() == "inspect") error.out.clear();  // its report, with the problem, is on stdout
    ExpectOneErrorLine(error, {});
    if (!out.empty()) {
      EXPECT_FALSE(fs::exists(out));
    }
    EXPECT_FALSE(HasStageName(Take(root)));
    if (::testing::Test::HasFailure()) break;  // one failing limit says it; the next ones would repeat it
  }
  EXPECT_EQ(succeeded_in_a_row, 32) << "the sweep never reached a limit the command runs in";
  return failed;
}

TEST(AddressSpaceLimit, WhateverFailsToBeAllocatedTheRunEndsWithOneErrorLineAndNothingLeft) {
  testing::TempDir root;
  const fs::path in = root / "in";
  fs::create_directories(in);
  for (const auto& entry : fs::directory_iterator(testing::GoldenDir() / "w4a16-g64-awq")) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("quant_model_")) fs::copy_file(entry.path(), in / name);
  }
  testing::WriteText(in / "config.json", R"({"model_type": "qwen2"})");
  const rlim_t start = LeastLimitToStart();
  ASSERT_LT(start, kMostLimit);

  // Both kinds of output, in turn.
  EXPECT_GT(SweepAddressSpace(start, root.path(), [&](rlim_t limit) {
              const bool directory = (limit / kLimitStep) % 2 == 1;
              const fs::path out = root / (directory ? "out" : "out.safetensors");
              return std::pair{std::vector<std::string>{"--model", in.string(), "--target_tool", "gptq", "-q",
                                                        directory ? "--out-dir" : "--save_path", out.string()},
                               out};
            }),
            0);
  // verify's verdict is about the files: a machine out of memory is exit 5, never a failed check (6).
  const fs::path converted = root / "converted";
  ASSERT_EQ(RunBinary({"--model", in.string(), "--out-dir", converted.string(), "-q"}).exit_code, 0);
  EXPECT_GT(SweepAddressSpace(start, root.path(), [&](rlim_t) {
              return std::pair{std::vector<std::string>{"verify", "--model", in.string(), "--converted",
                                                        converted.string(), "-q"},
                               fs::path()};
            }),
            0);
  EXPECT_GT(SweepAddressSpace(start, root.path(), [&](rlim_t) {
              return std::pair{std::vector<std::string>{"inspect", in.string()}, fs::path()};
            }),
            0);
}

}  // namespace
}  // namespace ms2vllm
