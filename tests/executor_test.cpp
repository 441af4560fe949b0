// The executor reports a write that fails: a conversion whose output has holes must not end as
// done. Space is reserved before any work, so a full disk fails early; what is left to fail
// during the run is the write itself (an I/O error of the disk, a network file system). A file
// size limit set after the reservation stands in for it: the header is written, and every write
// of tensor data, beyond the limit, fails with EFBIG.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <vector>

#include "engine/executor.h"
#include "engine/layout.h"
#include "engine/plan.h"
#include "io/checkpoint.h"
#include "io/description.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {
namespace fs = std::filesystem;

// Lowers the soft file size limit for its lifetime, with SIGXFSZ ignored so a write past it
// fails instead of ending the process.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(uint64_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    rlimit lowered = saved_;
    lowered.rlim_cur = bytes;
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &lowered), 0);
    previous_ = ::signal(SIGXFSZ, SIG_IGN);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, previous_);
  }

 private:
  rlimit saved_{};
  decltype(SIG_DFL) previous_ = SIG_DFL;
};

// Converts the golden checkpoint's tensors of one kind into an output file that takes its header
// and refuses its tensors: the run must end with that error.
void ExpectTheRefusedWritesToFailTheRun(bool copies) {
  const fs::path golden = testing::GoldenDir() / "w4a16-g64-gptq";
  auto checkpoint = Checkpoint::Open(golden / "quant_model_weight_w4a16.safetensors");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.error().message;
  auto description = LoadDescription((golden / "quant_model_description_w4a16.json").string());
  ASSERT_TRUE(description.ok()) << description.error().message;
  PlanOptions options;
  options.target = TargetTool::kGptq;
  auto plan = BuildPlan(checkpoint->table(), *description, options);
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  std::erase_if(plan->tensors, [&](const OutputTensor& t) { return (t.kind == TransformKind::kCopy) != copies; });
  ASSERT_FALSE(plan->tensors.empty());
  auto layout = ComputeLayout(*plan, "out.safetensors", 0);
  ASSERT_TRUE(layout.ok()) << layout.error().message;

  testing::TempDir dir;
  auto created = OutputFile::Create(dir / "out.safetensors", layout->files[0].size);
  ASSERT_TRUE(created.ok()) << created.error().message;
  std::vector<OutputFile> outputs;
  outputs.push_back(std::move(*created));
  ExecutionSettings settings;
  settings.chunk_bytes = 4096;  // several tiles per tensor
  settings.band_bytes = 4096;
  const FileSizeLimit limit(layout->files[0].data_start);
  auto executed = Execute(*plan, *layout, &*checkpoint, outputs, settings);
  ASSERT_FALSE(executed.ok());
  EXPECT_EQ(executed.error().code, ErrorCode::kOutput);
  EXPECT_CONTAINS(executed.error().message, "out.safetensors: cannot write");
}

TEST(Executor, AFailedWriteOfAConvertedBandIsAnError) { ExpectTheRefusedWritesToFailTheRun(/*copies=*/false); }

TEST(Executor, AFailedCopyOfAnUnchangedTensorIsAnError) { ExpectTheRefusedWritesToFailTheRun(/*copies=*/true); }

}  // namespace
}  // namespace ms2vllm
