// Reads and validates the header of one safetensors file into tensor entries.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "io/object_members.h"
#include "io/status.h"
#include "io/tensor_table.h"

namespace ms2vllm {

inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the safetensors loaders' own limit

struct SafetensorsHeader {
  uint64_t data_start = 0;           // 8 + header length
  std::vector<TensorInfo> tensors;   // in header order; file_offset is absolute
};

// Validates everything the safetensors loader checks, and every size against overflow:
// the length prefix, UTF-8 JSON object, fields and their types, known dtypes, shapes,
// shape x dtype = byte range, ranges in bounds, no overlap, no hole, no trailing bytes,
// no duplicate names. `label` names the file in messages. `shard` is stored in each entry.
// `run_bytes`: see ForEachMember (io/object_members.h).
Result<SafetensorsHeader> ParseSafetensorsHeader(const std::string& label, std::span<const uint8_t> file,
                                                 uint32_t shard = 0, size_t run_bytes = kMemberRunBytes);

}  // namespace ms2vllm
