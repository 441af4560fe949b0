// msModelSlim's quant_model_description*.json: tensor name -> label, plus non-tensor keys.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/object_members.h"
#include "io/status.h"

namespace ms2vllm {

struct DescriptionEntry {
  std::string name;
  std::string label;  // "W4A16", "W8A16", "FLOAT", "W8A8", ...
};

struct Description {
  std::string path;  // the file, as messages name it
  // Every key whose value is a string, in file order. A repeated key keeps its first
  // position and its last value, as Python's json.load does.
  std::vector<DescriptionEntry> entries;
  std::optional<std::string> model_quant_type;
  std::optional<int64_t> group_size;  // given as an integer or as a string such as "128"
  bool has_version = false;           // the `ascendV1` saver writes "version"
  bool version_first = false;         // ... as the first key; a newer layout of unpacked saves, after the tensors
  // Keys whose value is not a string (metadata, or a tensor labelled 4 or null by mistake).
  std::vector<std::string> non_string_keys;

  // Once planned only the path is needed; the entries are tens of MB on a 200k-tensor MoE.
  void DropEntries() { std::vector<DescriptionEntry>().swap(entries); }
};

// `label` names the file in messages. `run_bytes`: see ForEachMember (io/object_members.h).
Result<Description> ParseDescription(const std::string& label, std::string_view json,
                                     size_t run_bytes = kMemberRunBytes);

inline constexpr uint64_t kMaxDescriptionBytes = 256'000'000;

// Reads and parses a description file; a larger one than kMaxDescriptionBytes is invalid input.
Result<Description> LoadDescription(const std::string& path);

}  // namespace ms2vllm
