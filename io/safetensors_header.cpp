#include "io/safetensors_header.h"

#include <simdjson.h>

#include "io/json_scan.h"
#include "io/object_members.h"

#include <algorithm>
#include <cstring>
#include <unordered_set>

namespace ms2vllm {
namespace {

namespace od = simdjson::ondemand;


bool MulOverflows(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

// A non-negative JSON integer, with a message naming `what` otherwise.
Result<uint64_t> ReadCount(od::value value, const std::string& label, const std::string& what) {
  int64_t signed_value = 0;
  if (value.get_int64().get(signed_value) == simdjson::SUCCESS) {
    if (signed_value < 0) return InvalidInput(label, what + " is negative");
    return static_cast<uint64_t>(signed_value);
  }
  uint64_t unsigned_value = 0;
  if (value.get_uint64().get(unsigned_value) == simdjson::SUCCESS) return unsigned_value;
  return InvalidInput(label, what + " is not a non-negative integer");
}

Result<std::vector<uint64_t>> ReadCounts(od::value value, const std::string& label, const std::string& what) {
  od::array array;
  if (value.get_array().get(array) != simdjson::SUCCESS) return InvalidInput(label, what + " is not an array");
  std::vector<uint64_t> counts;
  for (auto element : array) {
    od::value item;
    if (element.get(item) != simdjson::SUCCESS) return InvalidInput(label, what + " is not valid JSON");
    MS2VLLM_ASSIGN_OR_RETURN(uint64_t count, ReadCount(item, label, what + " entry"));
    counts.push_back(count);
  }
  return counts;
}

Result<TensorInfo> ReadEntry(std::string name, od::value value, const std::string& label) {
  const std::string where = "tensor '" + Printable(name) + "'";
  od::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) return InvalidInput(label, where + " is not an object");
  TensorInfo info;
  info.name = std::move(name);
  bool has_dtype = false, has_shape = false, has_offsets = false;
  std::vector<uint64_t> offsets;
  for (auto field : object) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return InvalidInput(label, where + " has a bad key");
    od::value field_value;
    if (field.value().get(field_value) != simdjson::SUCCESS) return InvalidInput(label, where + " is not valid JSON");
    // As the safetensors loader (serde) does: a field given twice is an error, not "the last wins".
    const bool repeated = (key == "dtype" && has_dtype) || (key == "shape" && has_shape) ||
                          (key == "data_offsets" && has_offsets);
    if (repeated) return InvalidInput(label, where + " has \"" + std::string(key) + "\" twice");
    if (key == "dtype") {
      std::string_view dtype;
      if (field_value.get_string().get(dtype) != simdjson::SUCCESS) {
        return InvalidInput(label, where + " dtype is not a string");
      }
      auto parsed = ParseDType(dtype);
      if (!parsed) return InvalidInput(label, where + " has unknown dtype '" + Printable(dtype) + "'");
      info.dtype = *parsed;
      has_dtype = true;
    } else if (key == "shape") {
      MS2VLLM_ASSIGN_OR_RETURN(info.shape, ReadCounts(field_value, label, where + " shape"));
      has_shape = true;
    } else if (key == "data_offsets") {
      MS2VLLM_ASSIGN_OR_RETURN(offsets, ReadCounts(field_value, label, where + " data_offsets"));
      has_offsets = true;
    }
  }
  if (!has_dtype) return InvalidInput(label, where + " has no dtype");
  if (!has_shape) return InvalidInput(label, where + " has no shape");
  if (!has_offsets) return InvalidInput(label, where + " has no data_offsets");
  if (offsets.size() != 2) return InvalidInput(label, where + " data_offsets must hold 2 numbers");
  if (offsets[0] > offsets[1]) return InvalidInput(label, where + " data_offsets are reversed");

  // In the safetensors loader's order: the element count, then its bytes. An empty tensor whose
  // other dimensions multiply past 2^64 only with the element size is valid there too.
  uint64_t elements = 1, bytes = 0;
  for (uint64_t dim : info.shape) {
    if (MulOverflows(elements, dim, &elements)) return InvalidInput(label, where + " shape is too large (overflow)");
  }
  if (MulOverflows(elements, DTypeSize(info.dtype), &bytes)) {
    return InvalidInput(label, where + " shape is too large (overflow)");
  }
  if (bytes != offsets[1] - offsets[0]) {
    return InvalidInput(label, where + " holds " + std::to_string(offsets[1] - offsets[0]) + " bytes but " +
                              std::string(DTypeName(info.dtype)) + " " + ShapeString(info.shape) +
                              " needs " + std::to_string(bytes));
  }
  info.file_offset = offsets[0];  // relative until the caller adds data_start
  info.byte_size = bytes;
  return info;
}

// The safetensors loader reads __metadata__ as an optional map: null is no metadata.
Status CheckMetadata(od::value value, const std::string& label) {
  bool null = false;
  if (value.is_null().get(null) == simdjson::SUCCESS && null) return Ok{};
  od::object object;
  if (value.get_object().get(object) != simdjson::SUCCESS) return InvalidInput(label, "__metadata__ is not an object");
  for (auto field : object) {
    od::value field_value;
    std::string_view key, text;
    simdjson::error_code error = field.unescaped_key().get(key);
    if (!error) error = field.value().get(field_value);
    if (!error) error = field_value.get_string().get(text);
    if (error == simdjson::INCORRECT_TYPE) return InvalidInput(label, "__metadata__ values must be strings");
    if (error) return InvalidInput(label, "__metadata__ is not valid JSON (" + std::string(simdjson::error_message(error)) + ")");
  }
  return Ok{};
}

// Checked once every entry is read, so the names are viewed where they will stay.
Status CheckNoDuplicates(const std::vector<TensorInfo>& tensors, const std::string& label) {
  std::unordered_set<std::string_view> seen;
  seen.reserve(tensors.size());
  for (const auto& tensor : tensors) {
    if (!seen.insert(tensor.name).second) {
      return InvalidInput(label, "duplicate key '" + Printable(tensor.name) + "' in the header");
    }
  }
  return Ok{};
}

// Ranges must tile [0, data_size) exactly, as the safetensors loader demands.
Status CheckCoverage(std::vector<TensorInfo>& tensors, uint64_t data_size, const std::string& label) {
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(tensors.size());
  for (const auto& t : tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->file_offset != b->file_offset ? a->file_offset < b->file_offset : a->byte_size < b->byte_size;
  });
  uint64_t expected = 0;
  for (const TensorInfo* t : by_offset) {
    if (t->file_offset > expected) {
      return InvalidInput(label, "hole in the data before tensor '" + Printable(t->name) + "' (bytes " + std::to_string(expected) +
                                ".." + std::to_string(t->file_offset) + " belong to no tensor)");
    }
    if (t->file_offset < expected) return InvalidInput(label, "tensor '" + Printable(t->name) + "' overlaps the previous tensor");
    expected = t->file_offset + t->byte_size;
    if (expected > data_size) {
      return InvalidInput(label, "tensor '" + Printable(t->name) + "' ends at byte " + std::to_string(expected) +
                                " past the end of the data (" + std::to_string(data_size) + " bytes)");
    }
  }
  if (expected != data_size) {
    return InvalidInput(label, std::to_string(data_size - expected) + " trailing bytes after the last tensor");
  }
  return Ok{};
}

}  // namespace

Result<SafetensorsHeader> ParseSafetensorsHeader(const std::string& label, std::span<const uint8_t> file,
                                                 uint32_t shard, size_t run_bytes) {
  if (file.size() < 8) {
    return InvalidInput(label, "file is " + std::to_string(file.size()) + " bytes, shorter than the 8-byte header length");
  }
  uint64_t header_size = 0;
  std::memcpy(&header_size, file.data(), 8);  // little-endian, as every supported host
  // A JSON file given as weights (the description, a config.json) reads as a huge length: say what
  // it is, and where a description goes.
  std::string is_json;
  if (file[0] == '{' || file[0] == '[') {
    const bool description = label.find("quant_model_description") != std::string::npos;
    is_json = std::string(" (the file is JSON, not safetensors") + (description ? ": a description goes to --json)" : ")");
  }
  if (header_size > kMaxHeaderBytes) {
    return InvalidInput(label, "header length " + std::to_string(header_size) + " is over the 100 MB limit" + is_json);
  }
  if (header_size > file.size() - 8) {
    return InvalidInput(label, "header length " + std::to_string(header_size) + " runs past the end of the file (" +
                              std::to_string(file.size()) + " bytes)" + is_json);
  }
  const char* header = reinterpret_cast<const char*>(file.data() + 8);
  if (!simdjson::validate_utf8(header, header_size)) return InvalidInput(label, "header is not valid UTF-8");
  if (header_size == 0 || header[0] != '{') return InvalidInput(label, "header is not a JSON object");

  SafetensorsHeader result;
  result.data_start = 8 + header_size;
  bool has_metadata = false;
  MS2VLLM_TRY(ForEachMember(
      std::string_view(header, header_size), label, "header",
      [&](std::string_view key, od::value value) -> Status {
        if (key != "__metadata__") {
          MS2VLLM_ASSIGN_OR_RETURN(TensorInfo info, ReadEntry(std::string(key), value, label));
          info.shard = shard;
          result.tensors.push_back(std::move(info));
          return Ok{};
        }
        if (has_metadata) return InvalidInput(label, "duplicate key '__metadata__' in the header");
        has_metadata = true;
        return CheckMetadata(value, label);
      },
      run_bytes));
  MS2VLLM_TRY(CheckNoDuplicates(result.tensors, label));

  MS2VLLM_TRY(CheckCoverage(result.tensors, file.size() - result.data_start, label));
  for (auto& t : result.tensors) t.file_offset += result.data_start;
  return result;
}

}  // namespace ms2vllm
