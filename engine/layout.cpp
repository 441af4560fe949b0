#include "engine/layout.h"

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "engine/cancel.h"
#include "io/durable_file.h"
#include "io/json_append.h"

namespace ms2vllm {
namespace {

std::string ShardName(const std::string& prefix, size_t index, size_t count) {
  char suffix[64];
  std::snprintf(suffix, sizeof(suffix), "-%05zu-of-%05zu.safetensors", index + 1, count);
  return prefix + suffix;
}

Status FinishFile(const Plan& plan, OutputFileLayout& file, std::vector<TensorPlacement>& placements, uint32_t file_index,
                  const std::atomic<bool>* cancel) {
  std::stable_sort(file.tensors.begin(), file.tensors.end(), [&](size_t a, size_t b) {
    return DTypeSize(plan.tensors[a].dtype) > DTypeSize(plan.tensors[b].dtype);
  });
  // Reserved generously rather than grown by doubling: pages of the reserve that are never
  // written take no memory, while a doubling copies a 100k-tensor header (15 MB) each time.
  size_t reserve = 64;
  for (size_t index : file.tensors) reserve += plan.tensors[index].name.size() + 160;
  file.header.reserve(reserve);
  file.header = "{";  // plan names are unique: members are appended, never looked up
  AppendMemberText(file.header, "__metadata__", {{"format", "pt"}});
  uint64_t offset = 0;
  for (size_t index : file.tensors) {
    if (Cancelled(cancel)) return Interrupted();
    const OutputTensor& tensor = plan.tensors[index];
    AppendMemberText(file.header, tensor.name,
                     {{"dtype", DTypeName(tensor.dtype)}, {"shape", tensor.shape},
                      {"data_offsets", {offset, offset + tensor.byte_size()}}});
    placements[index] = {file_index, offset};
    offset += tensor.byte_size();
  }
  file.header += '}';
  file.header.append((8 - file.header.size() % 8) % 8, ' ');
  file.data_start = 8 + file.header.size();
  file.size = file.data_start + offset;
  for (size_t index : file.tensors) placements[index].offset += file.data_start;
  return Ok{};
}

}  // namespace

Result<Layout> ComputeLayout(const Plan& plan, const std::string& single_name, uint64_t max_file_bytes,
                             const std::string& shard_prefix, const std::atomic<bool>* cancel) {
  Layout layout;
  layout.placements.resize(plan.tensors.size());
  layout.files.emplace_back();
  uint64_t in_file = 0;
  for (size_t i = 0; i < plan.tensors.size(); ++i) {
    const uint64_t bytes = plan.tensors[i].byte_size();
    if (max_file_bytes != 0 && in_file > 0 && in_file + bytes > max_file_bytes) {
      layout.files.emplace_back();
      in_file = 0;
    }
    layout.files.back().tensors.push_back(i);
    in_file += bytes;
    layout.tensor_bytes += bytes;
  }
  for (size_t f = 0; f < layout.files.size(); ++f) {
    layout.files[f].name = layout.files.size() == 1 ? single_name : ShardName(shard_prefix, f, layout.files.size());
    MS2VLLM_TRY(FinishFile(plan, layout.files[f], layout.placements, static_cast<uint32_t>(f), cancel));
  }
  return layout;
}

Status ShardIndexPieces(const Plan& plan, const Layout& layout, const std::function<Status(std::string_view)>& write,
                        size_t piece_bytes) {
  struct Entry {
    std::string_view tensor;
    uint32_t file;
  };
  std::vector<Entry> entries;
  entries.reserve(plan.tensors.size());
  for (uint32_t f = 0; f < layout.files.size(); ++f) {
    for (size_t index : layout.files[f].tensors) entries.push_back({plan.tensors[index].name, f});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.tensor < b.tensor; });
  std::vector<std::string> quoted_files;
  for (const auto& file : layout.files) quoted_files.push_back(JsonQuoted(file.name));

  std::string piece = "{\n  \"metadata\": {\n    \"total_size\": " + std::to_string(layout.tensor_bytes) +
                      "\n  },\n  \"weight_map\": ";
  if (entries.empty()) piece += "{}";
  for (size_t i = 0; i < entries.size(); ++i) {
    piece += i == 0 ? "{\n    " : ",\n    ";
    piece += JsonQuoted(entries[i].tensor);
    piece += ": ";
    piece += quoted_files[entries[i].file];
    if (piece.size() >= piece_bytes) {
      MS2VLLM_TRY(write(piece));
      piece.clear();
    }
  }
  if (!entries.empty()) piece += "\n  }";
  piece += "\n}\n";
  return write(piece);
}

Status WriteShardIndex(const std::filesystem::path& path, const Plan& plan, const Layout& layout) {
  MS2VLLM_ASSIGN_OR_RETURN(DurableFileWriter file, DurableFileWriter::Create(path));
  MS2VLLM_TRY(ShardIndexPieces(plan, layout, [&file](std::string_view piece) { return file.Append(piece); }));
  return file.Finish();
}

}  // namespace ms2vllm
