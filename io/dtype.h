// safetensors element types.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ms2vllm {

// In kDTypes' order (io/dtype.cpp). The safetensors library's sub-byte F4 and F6 types are not
// read: no tensor size here is less than a byte per element.
enum class DType : uint8_t {
  kBool, kU8, kI8, kF8E5M2, kF8E4M3, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kF64, kI64, kU64, kF8E8M0, kC64
};

std::optional<DType> ParseDType(std::string_view name);
std::string_view DTypeName(DType dtype);
uint32_t DTypeSize(DType dtype);
bool IsIntegerOrFp8DType(DType dtype);  // BOOL, I8..I64, U8..U64, F8_*: what no float weight holds

}  // namespace ms2vllm
