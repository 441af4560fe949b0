// <prefix>.safetensors.index.json: which shard file holds each tensor.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "io/object_members.h"
#include "io/status.h"

namespace ms2vllm {

struct ShardIndex {
  std::vector<std::string> shard_files;  // distinct file names, in first-mention order
  struct Entry {
    std::string tensor;
    size_t shard;  // index into shard_files
  };
  std::vector<Entry> weight_map;
  std::optional<uint64_t> total_size;
};

// `label` names the file in messages. Shard names must be plain file names (no '/' or "..").
// The weight_map is read in runs of about `run_bytes` (io/object_members.h); tests pass small ones.
Result<ShardIndex> ParseShardIndex(const std::string& label, std::string_view json, size_t run_bytes = kMemberRunBytes);
// Reads the index at `path` (through MappedFile, so its errors name the file) and parses it.
Result<ShardIndex> ReadShardIndex(const std::filesystem::path& path, const std::string& label);

}  // namespace ms2vllm
