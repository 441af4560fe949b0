// The layout fixes every output byte's file and offset before any byte is written.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/plan.h"

namespace ms2vllm {

struct TensorPlacement {
  uint32_t file = 0;
  uint64_t offset = 0;  // absolute, in that file
};

struct OutputFileLayout {
  std::string name;             // file name only
  std::vector<size_t> tensors;  // plan indices, in file order
  std::string header;           // the JSON header, padded with spaces so the data starts 8-aligned
  uint64_t data_start = 0;      // 8 + header.size()
  uint64_t size = 0;
};

struct Layout {
  std::vector<OutputFileLayout> files;
  std::vector<TensorPlacement> placements;  // by plan index
  uint64_t tensor_bytes = 0;
};

// One file named `single_name` when `max_file_bytes` is 0 or everything fits; otherwise
// `<shard_prefix>-0000i-of-0000N.safetensors` shards of at most `max_file_bytes` tensor bytes each
// (a larger tensor gets a shard of its own; tensors are never split). Within a file,
// tensors go by element size, largest first, so every tensor is aligned to its element.
// `cancel` (the interrupt flag, may be null) is checked per tensor.
Result<Layout> ComputeLayout(const Plan& plan, const std::string& single_name, uint64_t max_file_bytes,
                             const std::string& shard_prefix = "model", const std::atomic<bool>* cancel = nullptr);

// A sharded layout's <prefix>.safetensors.index.json: metadata.total_size and a weight_map
// naming every tensor once, sorted by name as transformers writes it, indented by 2 with a final
// newline, byte for byte as ordered_json::dump(2) writes it. Built as text and handed to `write`
// in pieces of about `piece_bytes`: a DOM of a 200k-tensor index took 69 MB, its text 22 MB.
Status ShardIndexPieces(const Plan& plan, const Layout& layout, const std::function<Status(std::string_view)>& write,
                        size_t piece_bytes = 1 << 20);
// Writes that index as a new file at `path`, durably.
Status WriteShardIndex(const std::filesystem::path& path, const Plan& plan, const Layout& layout);

}  // namespace ms2vllm
