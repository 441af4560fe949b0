#include "engine/linear_geometry.h"

namespace ms2vllm {
namespace {

Error PackedShapeError(const std::string& weight_name, const TensorInfo& weight, const TensorInfo& scale) {
  return Unsupported(weight_name + ": packed W4A16 weight " + ShapeString(weight.shape) + " does not fit its scale " +
                     ShapeString(scale.shape) + " (expected [out/2, in] per-group or [out, in/2] per-channel)");
}

// A scale that does not fit its weight, told with the two shapes a scale may have.
Error ScaleMisfit(const std::string& scale_name, const TensorInfo& scale, const TensorInfo& weight) {
  const std::string rows = std::to_string(weight.shape[0]);
  return Unsupported(scale_name + ": shape " + ShapeString(scale.shape) + " does not fit weight " +
                     ShapeString(weight.shape) + " (expected [" + rows + ", G], or [" + rows + "] per channel)");
}

// Shapes that differ only by trailing 1s hold the same values in the same order: an [out] offset
// beside an [out, 1] scale is the same per-channel data.
bool SameValuesInOrder(std::vector<uint64_t> a, std::vector<uint64_t> b) {
  while (!a.empty() && a.back() == 1) a.pop_back();
  while (!b.empty() && b.back() == 1) b.pop_back();
  return a == b;
}

// SPEC 1: an ascendV1 save pairs a one-column scale's weight along `in`. Its shape cannot tell
// packed from unpacked (under --packed auto), so the checkpoint's per-group weights decide, or,
// when there are none (a per-channel checkpoint), whether the description starts as the
// ascendV1 saver's does.
Result<bool> OneColumnWeightIsPacked(const std::string& weight_name, const GeometryRules& rules) {
  if (!rules.ascend_v1) return false;
  const PackedEvidence& evidence = rules.evidence;
  if (evidence.packed && evidence.unpacked) {
    return InvalidInput(weight_name + ": cannot tell whether it holds two 4-bit values per byte: the checkpoint "
                        "mixes packed weights (" + *evidence.packed + ") and unpacked ones (" + *evidence.unpacked +
                        "), which no msModelSlim save does");
  }
  if (evidence.packed || evidence.unpacked) return evidence.packed.has_value();
  return rules.version_first;
}

}  // namespace

PackedEvidence FindPackedEvidence(const TensorTable& table, const Description& description) {
  PackedEvidence evidence;
  for (const auto& entry : description.entries) {
    if (entry.label != "W4A16" || !entry.name.ends_with(kScaleSuffix)) continue;
    const TensorInfo* scale = table.Find(entry.name);
    const std::string weight_name =
        entry.name.substr(0, entry.name.size() - kScaleSuffix.size()) + std::string(kWeightSuffix);
    const TensorInfo* weight = table.Find(weight_name);
    if (scale == nullptr || weight == nullptr || scale->rank() != 2 || scale->shape[1] < 2 || weight->rank() != 2 ||
        weight->numel() == 0) {
      continue;  // no evidence, or a tensor the geometry refuses with its own message
    }
    if (!evidence.packed && weight->shape[0] * 2 == scale->shape[0]) evidence.packed = weight_name;
    if (!evidence.unpacked && weight->shape[0] == scale->shape[0]) evidence.unpacked = weight_name;
    if (evidence.packed && evidence.unpacked) break;
  }
  return evidence;
}

Result<LinearGeometry> ReadLinearGeometry(const TensorTable& table, const std::string& linear,
                                          const GeometryRules& rules, Warnings& warnings) {
  const std::string weight_name = linear + std::string(kWeightSuffix);
  const std::string scale_name = linear + std::string(kScaleSuffix);
  const TensorInfo* weight = table.Find(weight_name);
  const TensorInfo* scale = table.Find(scale_name);
  if (weight == nullptr) return InvalidInput(linear + ": has a weight_scale or weight_offset but no " + weight_name);
  if (weight->dtype != DType::kI8) {
    return InvalidInput(weight_name + ": a quantized weight must be I8, it is " +
                        std::string(DTypeName(weight->dtype)));
  }
  if (weight->rank() != 2 || weight->numel() == 0) {
    return InvalidInput(weight_name + ": a quantized weight must be a non-empty 2-D [out, in] tensor, it is " +
                        ShapeString(weight->shape));
  }
  if (scale == nullptr) {
    return InvalidInput(weight_name + ": its scale " + scale_name + " is missing from the checkpoint");
  }
  if (scale->dtype != DType::kF32 && scale->dtype != DType::kF16 && scale->dtype != DType::kBF16) {
    return InvalidInput(scale_name + ": a scale must be F32, F16 or BF16, it is " +
                        std::string(DTypeName(scale->dtype)));
  }
  const uint64_t rows = weight->shape[0], cols = weight->shape[1];
  const auto may_be_packed = [&](bool shape_fits) {
    return rules.packed == PackedMode::kYes || (rules.packed == PackedMode::kAuto && rules.ascend_v1 && shape_fits);
  };
  LinearGeometry g;
  if (scale->rank() == 2 && scale->shape[1] > 1) {  // per-group [out, G]
    g.out = scale->shape[0];
    g.groups = scale->shape[1];
    g.in = cols;
    if (may_be_packed(rows * 2 == g.out && rows != g.out)) {
      if (rows * 2 != g.out) return PackedShapeError(weight_name, *weight, *scale);
      g.packing = LinearGeometry::Packing::kPairsAlongOut;
    } else if (rows != g.out) {
      return ScaleMisfit(scale_name, *scale, *weight);
    }
  } else if (scale->rank() == 1 || scale->rank() == 2) {  // per-channel [out, 1] or legacy [out*G, 1] / [out]
    const uint64_t count = scale->numel();
    if (scale->rank() == 1 && count != rows) {  // [out] per channel is the only 1-D scale msModelSlim writes
      return ScaleMisfit(scale_name, *scale, *weight);
    }
    bool packed = rules.packed == PackedMode::kYes;
    if (rules.packed == PackedMode::kAuto && count == rows) {
      MS2VLLM_ASSIGN_OR_RETURN(packed, OneColumnWeightIsPacked(weight_name, rules));
    }
    if (packed) {
      if (count != rows) return PackedShapeError(weight_name, *weight, *scale);
      g.out = rows;
      g.in = cols * 2;
      g.packing = LinearGeometry::Packing::kPairsAlongIn;
    } else {
      if (count == 0 || count % rows != 0) return ScaleMisfit(scale_name, *scale, *weight);
      g.out = rows;
      g.in = cols;
      g.groups = count / rows;
      if (scale->rank() == 1 || g.groups > 1) warnings.Add(WarningKind::kLegacyScaleShape, scale_name);
    }
  } else {
    return Unsupported(scale_name + ": shape " + ShapeString(scale->shape) + " is not [out, G]");
  }
  if (g.packing != LinearGeometry::Packing::kNone) warnings.Add(WarningKind::kPackedInput, weight_name);
  if (g.in % g.groups != 0) {
    return Unsupported(scale_name + ": " + std::to_string(g.groups) + " groups do not divide the " +
                       std::to_string(g.in) + " input columns of " + weight_name);
  }
  if (const TensorInfo* offset = table.Find(linear + std::string(kOffsetSuffix))) {
    if (!SameValuesInOrder(offset->shape, scale->shape) || offset->dtype == DType::kBool) {
      return Unsupported(offset->name + ": " + std::string(DTypeName(offset->dtype)) + " " +
                         ShapeString(offset->shape) + " does not fit its scale " + ShapeString(scale->shape));
    }
  }
  return g;
}

Status CheckTargetLayout(const std::string& linear, const LinearGeometry& g, TargetTool target, int bits) {
  const std::string weight_name = linear + std::string(kWeightSuffix);
  if (target == TargetTool::kAwq) {
    if (g.out % 8 != 0) {
      return Unsupported(weight_name + ": AWQ packs 8 output channels per word, but out = " + std::to_string(g.out));
    }
    return Ok{};
  }
  const uint64_t per_word = 32 / bits;
  if (g.in % per_word != 0 || g.out % per_word != 0) {
    return Unsupported(weight_name + ": GPTQ " + std::to_string(bits) + "-bit packs " + std::to_string(per_word) +
                       " values per word, but the weight is [" + std::to_string(g.out) + ", " + std::to_string(g.in) + "]");
  }
  return Ok{};
}

}  // namespace ms2vllm
