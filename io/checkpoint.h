// An input checkpoint: one safetensors file or a sharded index with its shards, mapped
// read-only, with one validated table of every tensor across the shards.
#pragma once

#include <filesystem>
#include <memory>
#include <span>
#include <vector>

#include "io/mapped_file.h"
#include "io/status.h"
#include "io/tensor_table.h"

namespace ms2vllm {

class Checkpoint {
 public:
  // `weights` is a .safetensors file or a <prefix>.safetensors.index.json.
  static Result<Checkpoint> Open(const std::filesystem::path& weights);

  const TensorTable& table() const { return *table_; }
  // The table, for what must outlive the checkpoint (a report whose plan points into it).
  std::shared_ptr<const TensorTable> shared_table() const { return table_; }
  const MappedFile& shard(uint32_t index) const { return shards_[index]; }
  size_t shard_count() const { return shards_.size(); }
  bool sharded() const { return !index_path_.empty(); }
  // What was opened: the index, or the one file.
  const std::filesystem::path& path() const { return sharded() ? index_path_ : shards_.front().path(); }

  std::span<const uint8_t> Bytes(const TensorInfo& tensor) const {
    return shards_[tensor.shard].bytes().subspan(tensor.file_offset, tensor.byte_size);
  }
  // Copies a tensor's bytes into `into` with pread. For scans of small tensors spread over the
  // whole file: a read through the mapping also maps up to 64 KB of neighbouring cached pages
  // (the kernel's fault-around), which stay resident after the tensor's own pages are released.
  Status ReadTensor(const TensorInfo& tensor, std::vector<uint8_t>& into) const {
    into.resize(tensor.byte_size);
    return shards_[tensor.shard].Read(tensor.file_offset, into);
  }
  // Every file read: the shards, and the index when there is one.
  std::vector<std::filesystem::path> Files() const;
  uint64_t TotalFileBytes() const;
  // The first shard cut short or resized since it was opened (MappedFile::CheckUnchanged).
  Status CheckUnchanged() const;

 private:
  static Status AddShard(Checkpoint& checkpoint, const std::filesystem::path& path);

  std::filesystem::path index_path_;
  std::vector<MappedFile> shards_;
  std::shared_ptr<TensorTable> table_ = std::make_shared<TensorTable>();
};

bool IsShardIndexPath(const std::filesystem::path& path);  // ends in .index.json

}  // namespace ms2vllm
