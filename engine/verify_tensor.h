// The value checks of `verify`, one output tensor at a time; copies and qweights in blocks of
// rows, so that memory stays bounded whatever the tensor's size. Each check reads the converted tensor the way its
// consumer does and compares with what msModelSlim's input says, written independently of the
// converter's kernels so that a bug there cannot hide itself.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/plan.h"
#include "engine/verify.h"
#include "io/checkpoint.h"

namespace ms2vllm {

// AutoAWQ's GEMM layout: nibble k of a word holds output channel 8c + kAwqOrder[k]. Verify's own
// copy, not the kernels': a wrong order there must not hide itself here.
inline constexpr uint64_t kAwqOrder[8] = {0, 2, 4, 6, 1, 3, 5, 7};

struct TensorCheckContext {
  const Plan& plan;
  const Checkpoint& input;
  const Checkpoint& output;
  const VerifySettings& settings;
};

// The two tensors a check reads: through the mappings, each range released once read, or for
// small tensors copies read with pread. Every mapped tensor costs a few madvise calls, each
// release a TLB shootdown across the threads: 100k tiny tensors took 44 s for 607 MB that way.
struct CheckedBytes {
  const uint8_t* input = nullptr;  // null when the tensor has no source
  const uint8_t* output = nullptr;
  bool mapped = true;
};

struct TensorVerdict {
  uint64_t values = 0;            // quantized values compared
  uint64_t copied_bytes = 0;      // bytes of a copied tensor compared
  bool offsets_all_zero = true;   // qzeros: every input offset is 0 (symmetric)
  bool most_elements_differ = false;  // a copied tensor: more than half its elements differ
  uint64_t scales_cast = 0;       // scales held as their --scales-dtype cast, not the input's bytes
  uint64_t scales_lost = 0;       // of those, finite nonzero scales the cast made 0 or infinite
  bool cancelled = false;
  std::optional<VerifyProblem> problem;
};

// `expected` is a plan entry; `actual` the converted tensor of the same name, whose dtype and
// shape the caller has checked (a scales tensor may hold a cast of the input's dtype).
TensorVerdict CheckTensorValues(const TensorCheckContext& context, const OutputTensor& expected, const TensorInfo& actual);

// Counts differences and keeps the first few descriptions; formats only what it keeps.
class Differences {
 public:
  explicit Differences(size_t keep) : keep_(keep) {}
  template <typename Describe>
  void Add(Describe&& describe) {
    if (examples_.size() < keep_) examples_.push_back(describe());
    ++count_;
  }
  uint64_t count() const { return count_; }
  // A problem for `tensor` when there were differences: "<count> of <total> <what>".
  std::optional<VerifyProblem> Problem(const std::string& tensor, uint64_t total, const std::string& what) const;

 private:
  size_t keep_;
  uint64_t count_ = 0;
  std::vector<std::string> examples_;
};

// "[3, 17]"
std::string IndexString(std::initializer_list<uint64_t> index);

// The qweight check (verify_qweight.cpp): every value, read through the target's layout, must be
// clamp(q) + 2^(b-1) of the (unpacked) input weight.
TensorVerdict CheckQWeight(const TensorCheckContext& context, const OutputTensor& expected, const TensorInfo& actual,
                           const CheckedBytes& bytes);

}  // namespace ms2vllm
