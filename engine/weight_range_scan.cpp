#include "engine/weight_range_scan.h"

#include <algorithm>
#include <vector>

namespace ms2vllm {

Status ScanWeightRange(const Plan& plan, const Checkpoint& checkpoint, Warnings& warnings, uint64_t chunk_bytes) {
  if (plan.bits != 4) return Ok{};
  std::vector<uint8_t> chunk;
  for (const auto& tensor : plan.tensors) {
    if (tensor.kind != TransformKind::kQWeight || tensor.geometry.packing != LinearGeometry::Packing::kNone) continue;
    const TensorInfo& source = *tensor.source;
    const MappedFile& file = checkpoint.shard(source.shard);
    uint64_t clamped = 0;
    for (uint64_t at = 0; at < source.byte_size; at += chunk.size()) {
      chunk.resize(std::min(chunk_bytes, source.byte_size - at));
      MS2VLLM_TRY(file.Read(source.file_offset + at, chunk));
      // ClampToBits(value, 4) moves an I8 value iff value + 8 is outside [0, 15]; the byte form
      // vectorizes.
      for (const uint8_t byte : chunk) clamped += static_cast<uint8_t>(byte + 8) > 15;
    }
    AddClampedWeights(warnings, source.name, clamped, source.numel());
  }
  return Ok{};
}

}  // namespace ms2vllm
