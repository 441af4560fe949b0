#include "io/checkpoint.h"

#include "io/safetensors_header.h"
#include "io/shard_index.h"

namespace ms2vllm {

bool IsShardIndexPath(const std::filesystem::path& path) {
  const std::string name = path.filename().string();
  return name.size() > 11 && name.ends_with(".index.json");
}

Status Checkpoint::AddShard(Checkpoint& checkpoint, const std::filesystem::path& path) {
  MS2VLLM_ASSIGN_OR_RETURN(MappedFile file, MappedFile::Open(path));
  const auto shard = static_cast<uint32_t>(checkpoint.shards_.size());
  MS2VLLM_ASSIGN_OR_RETURN(SafetensorsHeader header, ParseSafetensorsHeader(path.string(), file.bytes(), shard));
  file.Release(0, header.data_start);  // tens of MB on a 100k-tensor file, and read only once
  checkpoint.shards_.push_back(std::move(file));
  for (auto& tensor : header.tensors) {
    if (!checkpoint.table_->Add(std::move(tensor))) {
      return MakeError(ErrorCode::kInvalidInput, path.string() + ": tensor '" + tensor.name + "' is also in another shard");
    }
  }
  return Ok{};
}

Result<Checkpoint> Checkpoint::Open(const std::filesystem::path& weights) {
  Checkpoint checkpoint;
  if (!IsShardIndexPath(weights)) {
    MS2VLLM_TRY(AddShard(checkpoint, weights));
    return checkpoint;
  }
  checkpoint.index_path_ = weights;
  MS2VLLM_ASSIGN_OR_RETURN(const ShardIndex index, ReadShardIndex(weights, weights.string()));
  const auto directory = weights.parent_path();
  for (const auto& name : index.shard_files) MS2VLLM_TRY(AddShard(checkpoint, directory / name));
  for (const auto& entry : index.weight_map) {
    const TensorInfo* tensor = checkpoint.table_->Find(entry.tensor);
    const auto& shard_path = checkpoint.shards_[entry.shard].path();
    if (tensor == nullptr || tensor->shard != entry.shard) {
      return MakeError(ErrorCode::kInvalidInput, weights.string() + ": tensor '" + entry.tensor + "' is mapped to " +
                                                     shard_path.filename().string() + " but that shard does not hold it");
    }
  }
  return checkpoint;
}

std::vector<std::filesystem::path> Checkpoint::Files() const {
  std::vector<std::filesystem::path> files;
  if (!index_path_.empty()) files.push_back(index_path_);
  for (const auto& shard : shards_) files.push_back(shard.path());
  return files;
}

uint64_t Checkpoint::TotalFileBytes() const {
  uint64_t total = 0;
  for (const auto& shard : shards_) total += shard.size();
  return total;
}

Status Checkpoint::CheckUnchanged() const {
  for (const auto& shard : shards_) MS2VLLM_TRY(shard.CheckUnchanged());
  return Ok{};
}

}  // namespace ms2vllm
