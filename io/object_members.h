// Reads the members of a large JSON object (a safetensors header, a description) in runs of
// whole members. simdjson's parser holds about 6 bytes of index per byte of text, so a single
// parse of a 200k-tensor header would take over 100 MB; runs of about 1 MB keep it to a few.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/status.h"

namespace ms2vllm {

inline constexpr size_t kMemberRunBytes = 1 << 20;

// Called once per member, in file order; `value` is valid only during the call.
using MemberVisitor = std::function<Status(std::string_view key, simdjson::ondemand::value value)>;

// `label` names the file and `what` the document ("header") in messages. `run_bytes` is the
// run size aimed at (a member is never split); tests pass small ones.
Status ForEachMember(std::string_view object_text, const std::string& label, const std::string& what,
                     const MemberVisitor& visit, size_t run_bytes = kMemberRunBytes);

// One top-level member of an object as text: its key as written between the quotes (escapes
// not decoded), its value, and the whole member.
struct MemberText {
  std::string_view raw_key;
  std::string_view value;
  std::string_view text;
};

// The top-level members of an object, so a caller can read one large member's value in runs of
// its own (a shard index's weight_map). Nullopt when the text is not `{...}` of `"key": value`
// members as far as strings and brackets show: the caller then parses the whole text, so
// simdjson names what is wrong.
std::optional<std::vector<MemberText>> SplitMembers(std::string_view object_text);

}  // namespace ms2vllm
