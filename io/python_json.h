// JSON as Python's json module reads and writes it: transformers reads config.json with it.
// Python takes NaN, Infinity and -Infinity (Mamba2's "time_step_limit": [0.0, Infinity]) and
// integers of any size, and json.dumps writes them back as they were; nlohmann's parser refuses
// the first and makes the others floats (1e+30). Python reads a float beyond a double (1e400) as
// inf, written Infinity, which nlohmann refuses, and json.dumps writes floats as repr does, which
// nlohmann's dump() does not always (1e+15 for 1000000000000000.0). So these cross nlohmann's DOM
// as placeholder strings: U+0000 then the text json.dumps writes, which no string of the file
// holds (refused if one does).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "io/status.h"

namespace ms2vllm {

// Python's json stops at its recursion limit (1000 calls, so under 1000 levels): no config
// transformers reads is deeper. nlohmann's DOM is copied and written recursively: 100k levels
// overflow the stack.
inline constexpr size_t kMaxJsonDepth = 1000;

// `text` with each NaN, Infinity, -Infinity, integer beyond 64 bits and float nlohmann refuses or
// writes otherwise than Python where a value goes replaced by its placeholder, for nlohmann's
// parser. Refuses nesting deeper than kMaxJsonDepth and placeholders a string of the file could
// pass for; messages start with `label`.
Result<std::string> WithPlaceholders(std::string_view text, const std::string& label);

// JSON text written by nlohmann's dump() with each placeholder back as the value it stands for.
std::string WithoutPlaceholders(std::string_view text);

}  // namespace ms2vllm
