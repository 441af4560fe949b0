#include "io/dtype.h"

#include <array>

namespace ms2vllm {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  uint32_t size;
};

constexpr std::array<DTypeInfo, 17> kDTypes{{
    {DType::kBool, "BOOL", 1}, {DType::kU8, "U8", 1},     {DType::kI8, "I8", 1},
    {DType::kF8E5M2, "F8_E5M2", 1}, {DType::kF8E4M3, "F8_E4M3", 1}, {DType::kI16, "I16", 2},
    {DType::kU16, "U16", 2},   {DType::kF16, "F16", 2},   {DType::kBF16, "BF16", 2},
    {DType::kI32, "I32", 4},   {DType::kU32, "U32", 4},   {DType::kF32, "F32", 4},
    {DType::kF64, "F64", 8},   {DType::kI64, "I64", 8},   {DType::kU64, "U64", 8},
    {DType::kF8E8M0, "F8_E8M0", 1},  // MX block scales: copied like any FP8 tensor
    {DType::kC64, "C64", 8},         // complex64 (rotary tables of some models): copied
}};

}  // namespace

std::optional<DType> ParseDType(std::string_view name) {
  for (const auto& info : kDTypes) {
    if (info.name == name) return info.dtype;
  }
  return std::nullopt;
}

std::string_view DTypeName(DType dtype) { return kDTypes[static_cast<size_t>(dtype)].name; }
uint32_t DTypeSize(DType dtype) { return kDTypes[static_cast<size_t>(dtype)].size; }

bool IsIntegerOrFp8DType(DType dtype) {
  const std::string_view name = DTypeName(dtype);
  return name == "BOOL" || name.starts_with('I') || name.starts_with('U') || name.starts_with("F8");
}

}  // namespace ms2vllm
