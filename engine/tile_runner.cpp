#include "engine/tile_runner.h"

#include <cstring>

#include "engine/element_values.h"
#include "engine/synthetic_data.h"
#include "kernels/float_convert.h"
#include "kernels/unpack_int4.h"

namespace ms2vllm {
namespace {

using Packing = LinearGeometry::Packing;

uint32_t ConstantZeroWord(const Plan& plan) {
  // Every field holds u = 2^(b-1) (offset 0); GPTQ v1 stores u - 1.
  const bool v1 = plan.target == TargetTool::kGptq && plan.gptq_format == GptqFormat::kV1;
  return plan.bits == 4 ? (v1 ? 0x77777777u : 0x88888888u) : (v1 ? 0x7f7f7f7fu : 0x80808080u);
}

uint32_t ZeroWordBias(const Plan& plan) {
  if (plan.target != TargetTool::kGptq || plan.gptq_format != GptqFormat::kV1) return 0;
  return plan.bits == 4 ? 0x11111111u : 0x01010101u;
}

uint64_t RunQWeight(const Plan& plan, const OutputTensor& tensor, const Tile& tile, const InputWindow& source,
                    const OutputWindow& output, const kernels::KernelTable& k, AlignedBuffer& scratch) {
  const LinearGeometry& g = tensor.geometry;
  const uint64_t rows = tile.row_end - tile.row_begin, cols = tile.col_end - tile.col_begin;
  const uint8_t* src = nullptr;
  size_t src_stride = 0;
  switch (g.packing) {
    case Packing::kNone:
      src = source.At(tile.row_begin * g.in + tile.col_begin);
      src_stride = source.RowStride(g.in);
      break;
    case Packing::kPairsAlongOut:
      src = scratch.Reserve(rows * cols);
      kernels::UnpackPairsAlongRows(source.At(tile.row_begin / 2 * g.in + tile.col_begin), g.in, rows, cols,
                                    scratch.data(), cols);
      src_stride = cols;
      break;
    case Packing::kPairsAlongIn:
      src = scratch.Reserve(rows * cols);
      kernels::UnpackPairsAlongCols(source.At(tile.row_begin * (g.in / 2) + tile.col_begin / 2), g.in / 2, rows, cols,
                                    scratch.data(), cols);
      src_stride = cols;
      break;
  }
  const uint64_t row_bytes = QWeightRowBytes(plan, tensor);
  if (plan.target == TargetTool::kAwq) {
    uint8_t* dst = output.At(tile.col_begin * row_bytes + tile.row_begin / 8 * 4);
    return k.pack_rows_4(src, src_stride, rows, cols, kernels::PackOrder::kAwq, 0, dst, output.RowStride(row_bytes));
  }
  const uint64_t per_word = 32 / plan.bits;
  uint8_t* dst = output.At(tile.col_begin / per_word * row_bytes + tile.row_begin * 4);
  auto pack = plan.bits == 4 ? k.pack_cols_4 : k.pack_cols_8;
  return pack(src, src_stride, rows, cols, dst, output.RowStride(row_bytes));
}

uint64_t RunQZeros(const Plan& plan, const OutputTensor& tensor, const Tile& tile, const InputWindow& source,
                   const OutputWindow& output, const kernels::KernelTable& k, AlignedBuffer& scratch) {
  const LinearGeometry& g = tensor.geometry;
  const uint64_t rows = tile.row_end - tile.row_begin;
  const DType dtype = tensor.source->dtype;
  const uint32_t size = DTypeSize(dtype);
  uint8_t* values = scratch.Reserve(rows * g.groups);
  uint64_t clamped = 0;  // already reported by the offset scan
  const uint8_t* first = source.At(tile.row_begin * g.groups * size);
  for (uint64_t i = 0; i < rows * g.groups; ++i) {
    const int64_t value = ReadIntegral(dtype, first + i * size).value_or(0);  // validated by the offset scan
    values[i] = static_cast<uint8_t>(ClampToBits(value, plan.bits, clamped));
  }
  const uint64_t per_word = 32 / plan.bits, stride = g.out / per_word * 4;
  uint8_t* dst = output.At(tile.row_begin / per_word * 4);
  const auto order = plan.target == TargetTool::kAwq ? kernels::PackOrder::kAwq : kernels::PackOrder::kSequential;
  auto pack = plan.bits == 4 ? k.pack_rows_4 : k.pack_rows_8;
  pack(values, g.groups, rows, g.groups, order, ZeroWordBias(plan), dst, stride);
  return 0;
}

// Casts `count` scale elements for --scales-dtype.
void CastScales(DType from, DType to, const uint8_t* src, uint64_t count, uint8_t* dst) {
  for (uint64_t i = 0; i < count; ++i) {
    float value = 0;
    uint16_t half = 0;
    if (from == DType::kF32) {
      std::memcpy(&value, src + 4 * i, 4);
    } else {
      std::memcpy(&half, src + 2 * i, 2);
      value = from == DType::kF16 ? kernels::HalfToFloat(half) : kernels::BFloat16ToFloat(half);
    }
    half = to == DType::kF16 ? kernels::FloatToHalf(value) : kernels::FloatToBFloat16(value);
    std::memcpy(dst + 2 * i, &half, 2);
  }
}

// Scales that are NaN or infinite (every exponent bit set): a broken calibration, which the
// converted model would carry into every output of its linear.
uint64_t NonFiniteScales(DType dtype, const uint8_t* src, uint64_t count) {
  uint64_t found = 0;
  if (dtype == DType::kF32) {
    for (uint64_t i = 0; i < count; ++i) {
      uint32_t bits = 0;
      std::memcpy(&bits, src + 4 * i, 4);
      found += (bits & 0x7F800000u) == 0x7F800000u;
    }
    return found;
  }
  const uint16_t exponent = dtype == DType::kF16 ? 0x7C00 : 0x7F80;
  for (uint64_t i = 0; i < count; ++i) {
    uint16_t bits = 0;
    std::memcpy(&bits, src + 2 * i, 2);
    found += (bits & exponent) == exponent;
  }
  return found;
}

// Returns the tile's scales that are NaN or infinite, where no cast takes them (ScanScaleCasts
// counts those before the run).
uint64_t RunScales(const OutputTensor& tensor, const Tile& tile, const InputWindow& source, const OutputWindow& output,
                   const kernels::KernelTable& k, AlignedBuffer& scratch) {
  const LinearGeometry& g = tensor.geometry;
  const uint64_t rows = tile.row_end - tile.row_begin;
  const DType from = tensor.source->dtype;
  const uint32_t in_size = DTypeSize(from), out_size = DTypeSize(tensor.dtype);
  const uint8_t* src = source.At(tile.row_begin * g.groups * in_size);
  uint64_t non_finite = 0;
  if (from != tensor.dtype) {
    uint8_t* cast = scratch.Reserve(rows * g.groups * out_size);
    CastScales(from, tensor.dtype, src, rows * g.groups, cast);
    src = cast;
  } else {
    non_finite = NonFiniteScales(from, src, rows * g.groups);
  }
  auto transpose = out_size == 2 ? k.transpose_16 : k.transpose_32;
  transpose(src, g.groups * out_size, rows, g.groups, output.At(tile.row_begin * out_size), g.out * out_size);
  return non_finite;
}

}  // namespace

uint64_t QWeightRowBytes(const Plan& plan, const OutputTensor& tensor) {
  return plan.target == TargetTool::kAwq ? tensor.geometry.out / 8 * 4 : tensor.geometry.out * 4;
}

ByteSpan SourceSpan(const OutputTensor& tensor, const Tile& tile) {
  if (tensor.source == nullptr) return {};
  if (tensor.kind == TransformKind::kCopy) return {tile.row_begin, tile.row_end - tile.row_begin};
  const LinearGeometry& g = tensor.geometry;
  uint64_t row_begin = tile.row_begin, row_end = tile.row_end, col_begin = tile.col_begin, col_end = tile.col_end;
  uint64_t row_bytes = g.in;
  if (tensor.kind != TransformKind::kQWeight) {
    row_bytes = g.groups * DTypeSize(tensor.source->dtype);
    col_begin = 0;
    col_end = row_bytes;
  } else if (g.packing == Packing::kPairsAlongOut) {
    row_begin /= 2;
    row_end = (row_end + 1) / 2;
  } else if (g.packing == Packing::kPairsAlongIn) {
    row_bytes = g.in / 2;
    col_begin /= 2;
    col_end = (col_end + 1) / 2;
  }
  const uint64_t first = row_begin * row_bytes + col_begin;
  return {first, (row_end - 1) * row_bytes + col_end - first};
}

uint64_t RunTile(const Plan& plan, const OutputTensor& tensor, const Tile& tile, const InputWindow& source,
                 const OutputWindow& output, const kernels::KernelTable& kernels, AlignedBuffer& scratch) {
  switch (tensor.kind) {
    case TransformKind::kCopy:  // never a kernel's: the executor moves it file to file (OutputFile::CopyFrom)
      return 0;
    case TransformKind::kQZerosConstant: {
      const uint32_t word = ConstantZeroWord(plan);
      for (uint64_t at = tile.row_begin; at < tile.row_end; at += 4) std::memcpy(output.At(at), &word, 4);
      return 0;
    }
    case TransformKind::kGenerate:
      GenerateBytes(tensor, tile.row_begin, tile.row_end, output.At(tile.row_begin));
      return 0;
    case TransformKind::kQWeight: return RunQWeight(plan, tensor, tile, source, output, kernels, scratch);
    case TransformKind::kQZeros: return RunQZeros(plan, tensor, tile, source, output, kernels, scratch);
    case TransformKind::kScales: return RunScales(tensor, tile, source, output, kernels, scratch);
  }
  return 0;
}

}  // namespace ms2vllm
