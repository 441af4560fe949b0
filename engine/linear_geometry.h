// How one quantized linear's int8 values are stored and grouped, read from the shapes of its
// weight, scale and offset (SPEC 1), and whether the target layout can hold it (SPEC 4).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "engine/options.h"
#include "engine/warnings.h"
#include "io/description.h"
#include "io/status.h"
#include "io/tensor_table.h"

namespace ms2vllm {

// The names of a quantized linear X's input tensors are X plus these.
inline constexpr std::string_view kWeightSuffix = ".weight";
inline constexpr std::string_view kScaleSuffix = ".weight_scale";
inline constexpr std::string_view kOffsetSuffix = ".weight_offset";

struct LinearGeometry {
  uint64_t out = 0;
  uint64_t in = 0;
  uint64_t groups = 1;  // G: scale columns; in / G is the group size
  enum class Packing { kNone, kPairsAlongOut, kPairsAlongIn } packing = Packing::kNone;
};

// How the checkpoint's own per-group W4A16 weights are stored, which their shapes show: [out/2, in]
// packed, [out, in] not. A weight beside a one-column scale shows nothing ([out, in/2] packed looks
// like an unpacked [out, in]), and one checkpoint is saved one way, so the others decide for it.
struct PackedEvidence {
  std::optional<std::string> packed;    // the first per-group weight of half height
  std::optional<std::string> unpacked;  // the first of full height
};

// Reads the evidence from the linears the description labels W4A16.
PackedEvidence FindPackedEvidence(const TensorTable& table, const Description& description);

// What decides a linear's geometry besides its tensors.
struct GeometryRules {
  bool ascend_v1 = false;  // a `version` key and 4 bits: W4A16 weights may be packed
  // The description starts with `version`, as the ascendV1 saver writes it (a newer layout of
  // unpacked saves has it after the tensors): one-column weights are packed when no per-group
  // weight says otherwise.
  bool version_first = false;
  PackedMode packed = PackedMode::kAuto;
  PackedEvidence evidence;  // decides one-column scales' weights under kAuto
};

// Reads `linear`'s geometry from `linear`.weight, .weight_scale and .weight_offset. Warns of
// legacy scale shapes and of packed weights; refuses tensors whose dtypes or shapes do not fit.
Result<LinearGeometry> ReadLinearGeometry(const TensorTable& table, const std::string& linear,
                                          const GeometryRules& rules, Warnings& warnings);

// Shapes the target layout cannot hold are refused, never reshaped by guess.
Status CheckTargetLayout(const std::string& linear, const LinearGeometry& g, TargetTool target, int bits);

}  // namespace ms2vllm
