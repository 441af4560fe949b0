// The value checks of copied tensors, scales and zero points; qweights are in verify_qweight.cpp.
#include "engine/verify_tensor.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cmath>
#include <cstring>

#include "engine/cancel.h"
#include "engine/element_values.h"
#include "kernels/float_convert.h"

namespace ms2vllm {
namespace {


std::string Hex(const uint8_t* bytes, uint32_t size) {
  std::string text = "0x";
  char digits[3];
  for (uint32_t b = size; b-- > 0;) {  // little-endian: most significant byte last
    std::snprintf(digits, sizeof digits, "%02x", bytes[b]);
    text += digits;
  }
  return text;
}

// Element `index` of a row-major tensor as its multi-index.
std::string ElementIndex(const std::vector<uint64_t>& shape, uint64_t index) {
  std::vector<uint64_t> at(shape.size(), 0);
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 0) break;
    at[d] = index % shape[d];
    index /= shape[d];
  }
  std::string text = "[";
  for (size_t d = 0; d < at.size(); ++d) text += (d ? ", " : "") + std::to_string(at[d]);
  return text + "]";
}

// The input scale as the converted dtype holds it: the same bytes, or the --scales-dtype cast.
void ExpectedScale(DType from, DType to, const uint8_t* src, uint8_t* dst) {
  if (from == to) {
    std::memcpy(dst, src, DTypeSize(to));
    return;
  }
  const auto value = static_cast<float>(FloatOf(from, src));  // exact: the scale is F32, F16 or BF16
  const uint16_t half = to == DType::kF16 ? kernels::FloatToHalf(value) : kernels::FloatToBFloat16(value);
  std::memcpy(dst, &half, 2);
}

// Releases the tensor's bytes widened to the largest folio the page cache maps at once (a PMD).
void ReleaseAround(const MappedFile& file, const TensorInfo& tensor) {
  constexpr uint64_t kFolio = 2ull << 20;
  const uint64_t begin = tensor.file_offset / kFolio * kFolio;
  const uint64_t end = std::min(file.size(), (tensor.file_offset + tensor.byte_size + kFolio - 1) / kFolio * kFolio);
  if (end > begin) file.Release(begin, end - begin);
}

// A read that fails (the file cut short) falls back to the mapping: its reads give zeros there,
// and the run then reports the file changed.
CheckedBytes BytesToCheck(const TensorCheckContext& c, const OutputTensor& t, const TensorInfo& actual,
                          std::vector<uint8_t>& input_copy, std::vector<uint8_t>& output_copy) {
  const uint64_t limit = c.settings.copy_below_bytes;
  const bool small = actual.byte_size < limit && (t.source == nullptr || t.source->byte_size < limit);
  if (small && c.output.ReadTensor(actual, output_copy).ok() &&
      (t.source == nullptr || c.input.ReadTensor(*t.source, input_copy).ok())) {
    return {t.source ? input_copy.data() : nullptr, output_copy.data(), false};
  }
  return {t.source ? c.input.Bytes(*t.source).data() : nullptr, c.output.Bytes(actual).data(), true};
}

TensorVerdict CheckCopy(const TensorCheckContext& c, const OutputTensor& t, const TensorInfo& actual, const CheckedBytes& bytes) {
  TensorVerdict verdict;
  Differences differences(c.settings.examples);
  const uint8_t* want = bytes.input;
  const uint8_t* read = bytes.output;
  const MappedFile& in_file = c.input.shard(t.source->shard);
  const MappedFile& out_file = c.output.shard(actual.shard);
  const uint32_t element = DTypeSize(actual.dtype);
  // Whole elements per chunk, so that each differing element is listed once.
  const uint64_t size = t.source->byte_size, chunk = std::max<uint64_t>(c.settings.chunk_bytes, 4096) / element * element;
  for (uint64_t at = 0; at < size; at += chunk) {
    if (Cancelled(c.settings.cancel)) {
      verdict.cancelled = true;
      return verdict;
    }
    const uint64_t n = std::min(chunk, size - at);
    if (bytes.mapped) {
      in_file.Prefault(t.source->file_offset + at, n);
      out_file.Prefault(actual.file_offset + at, n);
    }
    if (std::memcmp(want + at, read + at, n) != 0) {
      for (uint64_t b = at; b < at + n; b += element) {
        if (std::memcmp(want + b, read + b, element) == 0) continue;
        differences.Add([&] {
          return "element " + ElementIndex(t.shape, b / element) + " at byte " + std::to_string(b) + ": reads " +
                 Hex(read + b, element) + ", expected " + Hex(want + b, element);
        });
      }
    }
    if (bytes.mapped) {
      in_file.Release(t.source->file_offset + at, n);
      out_file.Release(actual.file_offset + at, n);
    }
    if (c.settings.progress) c.settings.progress->fetch_add(n, std::memory_order_relaxed);
  }
  verdict.copied_bytes = size;
  verdict.most_elements_differ = differences.count() * 2 > size / element;
  verdict.problem = differences.Problem(t.name, size / element, "elements differ from " + t.source->name);
  return verdict;
}

// scales [G, out] must be the input's [out, G] transposed (SPEC 2 rule 3), element for element.
TensorVerdict CheckScales(const TensorCheckContext& c, const OutputTensor& t, const TensorInfo& actual, const CheckedBytes& bytes) {
  TensorVerdict verdict;
  Differences differences(c.settings.examples);
  const LinearGeometry& g = t.geometry;
  const DType from = t.source->dtype, to = actual.dtype;
  const uint32_t in_size = DTypeSize(from), out_size = DTypeSize(to);
  const uint8_t* source = bytes.input;
  const uint8_t* read = bytes.output;
  uint8_t want[8];  // scales are F32/F16/BF16, but GCC sees FloatOf's F64 case (-Warray-bounds on 4)
  for (uint64_t o = 0; o < g.out; ++o) {
    for (uint64_t group = 0; group < g.groups; ++group) {
      const uint8_t* input = source + (o * g.groups + group) * in_size;
      ExpectedScale(from, to, input, want);
      if (from != to) verdict.scales_lost += LostInCast(FloatOf(from, input), FloatOf(to, want));
      const uint8_t* got = read + (group * g.out + o) * out_size;
      if (std::memcmp(got, want, out_size) == 0) continue;
      differences.Add([&] {
        return "g=" + std::to_string(group) + ", o=" + std::to_string(o) + ": reads " + std::to_string(FloatOf(to, got)) + " (" + Hex(got, out_size) +
               "), expected " + std::to_string(FloatOf(to, want)) + " (" + Hex(want, out_size) + ")";
      });
    }
  }
  if (bytes.mapped) {
    c.input.shard(t.source->shard).Release(t.source->file_offset, t.source->byte_size);
    c.output.shard(actual.shard).Release(actual.file_offset, actual.byte_size);
  }
  if (c.settings.progress) c.settings.progress->fetch_add(t.source->byte_size, std::memory_order_relaxed);
  verdict.values = g.out * g.groups;
  if (from != to) verdict.scales_cast = verdict.values;
  verdict.problem = differences.Problem(t.name, verdict.values, "scales differ from " + t.source->name);
  return verdict;
}

// qzeros [G, out/p]: the zero point of (g, o), as the consumer reads it (GPTQ v1 adds 1 to the
// stored field), must be clamp(offset[o][g]) + 2^(b-1), or 2^(b-1) when there is no offset.
TensorVerdict CheckQZeros(const TensorCheckContext& c, const OutputTensor& t, const TensorInfo& actual, const CheckedBytes& bytes) {
  TensorVerdict verdict;
  Differences differences(c.settings.examples), not_integral(c.settings.examples);
  const LinearGeometry& g = t.geometry;
  const int bits = c.plan.bits, half = 1 << (bits - 1);
  const uint32_t mask = (1u << bits) - 1;
  const uint64_t per_word = 32 / bits, words_per_row = g.out / per_word;
  const bool awq = c.plan.target == TargetTool::kAwq;
  const int added = c.plan.target == TargetTool::kGptq && c.plan.gptq_format == GptqFormat::kV1 ? 1 : 0;
  const uint8_t* offsets = bytes.input;
  const uint32_t offset_size = t.source ? DTypeSize(t.source->dtype) : 0;
  const uint8_t* words = bytes.output;
  int64_t common_delta = 0;  // read - expected, when every zero point is off by the same amount
  uint64_t clamped = 0;
  for (uint64_t group = 0; group < g.groups; ++group) {
    for (uint64_t word = 0; word < words_per_row; ++word) {
      uint32_t stored;
      std::memcpy(&stored, words + (group * words_per_row + word) * 4, 4);
      for (uint64_t k = 0; k < per_word; ++k) {
        const uint64_t o = awq ? 8 * word + kAwqOrder[k] : word * per_word + k;
        int64_t offset = 0;
        if (offsets) {
          const uint8_t* element = offsets + (o * g.groups + group) * offset_size;
          const auto value = ReadIntegral(t.source->dtype, element);
          if (!value) {
            not_integral.Add([&] {
              return "o=" + std::to_string(o) + ", g=" + std::to_string(group) + ": offset is " +
                     std::to_string(FloatOf(t.source->dtype, element));
            });
            continue;
          }
          offset = *value;
          verdict.offsets_all_zero &= offset == 0;
        }
        const int64_t expected = ClampToBits(offset, bits, clamped) + half;
        const int64_t read = static_cast<int64_t>((stored >> (bits * k)) & mask) + added;
        if (read == expected) continue;
        common_delta = differences.count() == 0 || common_delta == read - expected ? read - expected : 0;
        differences.Add([&] {
          return "g=" + std::to_string(group) + ", o=" + std::to_string(o) + " (word " + IndexString({group, word}) +
                 " field " + std::to_string(k) + "): zero point reads " + std::to_string(read) + ", expected " +
                 std::to_string(expected) + " (offset " + std::to_string(offset) + ")";
        });
      }
    }
  }
  if (t.source) {
    if (bytes.mapped) c.input.shard(t.source->shard).Release(t.source->file_offset, t.source->byte_size);
    if (c.settings.progress) c.settings.progress->fetch_add(t.source->byte_size, std::memory_order_relaxed);
  }
  if (bytes.mapped) c.output.shard(actual.shard).Release(actual.file_offset, actual.byte_size);
  verdict.values = g.out * g.groups;
  if (not_integral.count()) {  // no layout holds these exactly; the converter refuses them
    verdict.problem = not_integral.Problem(t.name, verdict.values,
                                           "offsets of " + t.source->name + " are not finite integers (no exact conversion exists)");
    return verdict;
  }
  std::string what = awq ? "zero points differ as AutoAWQ reads them"
                          : added ? "zero points differ as AutoGPTQ v1 reads them (stored + 1)"
                                  : "zero points differ as GPTQ v2 reads them (stored as is)";
  // Every zero point off by one is the other GPTQ format, not damage: say so.
  if (!awq && differences.count() == verdict.values && (common_delta == 1 || common_delta == -1)) {
    what += common_delta == 1 ? "; every one is 1 too high: the file looks like GPTQ v2 (try --gptq-format v2)"
                              : "; every one is 1 too low: the file looks like GPTQ v1 (try --gptq-format v1)";
  }
  verdict.problem = differences.Problem(t.name, verdict.values, what);
  return verdict;
}

}  // namespace

std::string IndexString(std::initializer_list<uint64_t> index) {
  std::string text = "[";
  bool first = true;
  for (uint64_t i : index) {
    text += (first ? "" : ", ") + std::to_string(i);
    first = false;
  }
  return text + "]";
}

std::optional<VerifyProblem> Differences::Problem(const std::string& tensor, uint64_t total, const std::string& what) const {
  if (count_ == 0) return std::nullopt;
  return VerifyProblem{tensor, std::to_string(count_) + " of " + std::to_string(total) + " " + what, examples_};
}

TensorVerdict CheckTensorValues(const TensorCheckContext& context, const OutputTensor& expected, const TensorInfo& actual) {
  // Per call, not thread_local: glibc aborts the process when it cannot register a thread_local
  // destructor for want of memory. The copies are of small tensors only.
  std::vector<uint8_t> input_copy, output_copy;
  const CheckedBytes bytes = BytesToCheck(context, expected, actual, input_copy, output_copy);
  TensorVerdict verdict;
  switch (expected.kind) {
    case TransformKind::kCopy: verdict = CheckCopy(context, expected, actual, bytes); break;
    case TransformKind::kQWeight: verdict = CheckQWeight(context, expected, actual, bytes); break;
    case TransformKind::kScales: verdict = CheckScales(context, expected, actual, bytes); break;
    case TransformKind::kQZeros:
    case TransformKind::kQZerosConstant: verdict = CheckQZeros(context, expected, actual, bytes); break;
    case TransformKind::kGenerate: break;  // synthetic data has no input to compare with
  }
  if (!bytes.mapped) return verdict;
  // The kernel maps page-cache folios whole, so reading a tensor also maps the ends of its
  // neighbours; tensors are checked by size, not file order, so no later release would drop
  // those. Dropping the folios around the tensor keeps resident memory flat over the run (a
  // neighbour being read by another thread just faults its pages back in).
  if (expected.source) ReleaseAround(context.input.shard(expected.source->shard), *expected.source);
  ReleaseAround(context.output.shard(actual.shard), actual);
  return verdict;
}

}  // namespace ms2vllm
