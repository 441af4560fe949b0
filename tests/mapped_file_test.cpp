// A mapped input cut short by another process: reads past its new end give zeros instead of
// SIGBUS, and CheckUnchanged names the file, so the run fails with a message instead of dying.
// The offset scan reads with pread instead, and a read cut short fails naming the file. A
// conversion whose input is cut short while it copies says so, whatever the copy's own error.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "engine/convert.h"
#include "engine/offset_scan.h"
#include "engine/plan.h"
#include "io/checkpoint.h"
#include "io/description.h"
#include "io/mapped_file.h"
#include "io/mapping_guard.h"
#include "kernels/kernels.h"
#include "tests/test_support.h"

namespace ms2vllm {
namespace {

namespace fs = std::filesystem;

// Reads every byte through the mapping (volatile: the reads must happen).
uint64_t SumOfBytes(const MappedFile& file) {
  uint64_t sum = 0;
  for (const volatile uint8_t& byte : file.bytes()) sum += byte;
  return sum;
}

// `dd conv=notrunc` of another checkpoint over the input keeps its size; its mtime says it.
TEST(MappedFile, AFileRewrittenInPlaceIsReportedChanged) {
  testing::TempDir dir;
  const fs::path path = dir / "shard.safetensors";
  testing::WriteText(path, std::string(4096, '\x01'));
  auto file = MappedFile::Open(path);
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE(file->CheckUnchanged().ok());
  {
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    std::fputs("\x02\x02", f);
    std::fclose(f);
  }
  // The write's own timestamp may fall in the same clock tick as the open; this one does not.
  fs::last_write_time(path, fs::last_write_time(path) + std::chrono::seconds(10));
  const Status status = file->CheckUnchanged();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(status.error().message, path.string() + ": changed while being read (modified since it was opened)");
}

TEST(MappedFile, AFileCutShortWhileMappedReadsAsZerosAndIsReportedChanged) {
  testing::TempDir dir;
  const fs::path path = dir / "shard.safetensors";
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  testing::WriteText(path, std::string(3 * page, '\x01'));
  auto file = MappedFile::Open(path);
  ASSERT_TRUE(file.ok());
  EXPECT_TRUE(file->CheckUnchanged().ok());

  fs::resize_file(path, page);
  EXPECT_EQ(SumOfBytes(*file), page);  // the first page is still there; the rest faulted to zeros
  const Status status = file->CheckUnchanged();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::kInvalidInput);
  EXPECT_EQ(status.error().message,
            path.string() + ": changed while being read (" + std::to_string(3 * page) + " bytes when opened, " +
                std::to_string(page) + " now)");
}

// verify maps every shard of the input and of the output for the whole run: a file mapped after
// 10,000 others (a checkpoint of 5,000 shards and its conversion) is still guarded.
TEST(MappedFile, AFileMappedAfterThousandsOfOthersIsStillGuarded) {
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  constexpr size_t kOthers = 10000;
  void* reserved = ::mmap(nullptr, kOthers * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(reserved, MAP_FAILED);
  const auto* others = static_cast<const uint8_t*>(reserved);
  for (size_t i = 0; i < kOthers; ++i) mapping_guard::Register(others + i * page, page);
  // Released however the test ends, so that no later test finds the guard's slots taken.
  struct Release {
    const uint8_t* others;
    size_t page;
    ~Release() {
      for (size_t i = 0; i < kOthers; ++i) mapping_guard::Unregister(others + i * page);
      ::munmap(const_cast<uint8_t*>(others), kOthers * page);
    }
  } release{others, page};
  testing::TempDir dir;
  const fs::path path = dir / "shard.safetensors";
  testing::WriteText(path, std::string(2 * page, '\x01'));
  auto file = MappedFile::Open(path);
  ASSERT_TRUE(file.ok());
  fs::resize_file(path, page);
  EXPECT_EQ(SumOfBytes(*file), page);  // unguarded, the read past the end would end the process by SIGBUS
  EXPECT_FALSE(file->CheckUnchanged().ok());
}

TEST(MappedFile, AFileCutShortThenGrownBackIsReportedChangedAndOthersAreNot) {
  testing::TempDir dir;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  testing::WriteText(dir / "cut.safetensors", std::string(2 * page, '\x01'));
  testing::WriteText(dir / "kept.safetensors", std::string(2 * page, '\x01'));
  auto cut = MappedFile::Open(dir / "cut.safetensors");
  auto kept = MappedFile::Open(dir / "kept.safetensors");
  ASSERT_TRUE(cut.ok() && kept.ok());

  fs::resize_file(dir / "cut.safetensors", page);
  EXPECT_EQ(SumOfBytes(*cut), page);
  fs::resize_file(dir / "cut.safetensors", 2 * page);  // the size matches again; the bytes read did not
  const Status status = cut->CheckUnchanged();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message.find("cut.safetensors: changed while being read"), std::string::npos)
      << status.error().message;
  EXPECT_EQ(SumOfBytes(*kept), 2 * page);
  EXPECT_TRUE(kept->CheckUnchanged().ok());
}

// A page that faults while size and time stay as they were is an I/O error (NFS, a failing disk),
// or a change within one tick of a coarse clock, or one whose time was set back, which is how this
// test makes one: "(N bytes when opened, N now)" would contradict itself.
TEST(MappedFile, AFaultWithSizeAndTimeUnchangedIsReportedAsAFailedRead) {
  testing::TempDir dir;
  const fs::path path = dir / "shard.safetensors";
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  testing::WriteText(path, std::string(2 * page, '\x01'));
  const fs::file_time_type written = fs::last_write_time(path);
  auto file = MappedFile::Open(path);
  ASSERT_TRUE(file.ok());

  fs::resize_file(path, page);
  EXPECT_EQ(SumOfBytes(*file), page);
  fs::resize_file(path, 2 * page);
  fs::last_write_time(path, written);
  const Status status = file->CheckUnchanged();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().message,
            path.string() + ": changed while being read, or a read of it failed (a page could not be read, though its "
                            "size and time are as when it was opened: an I/O error?)");
}

TEST(MappedFile, AnOffsetScanOfACheckpointCutShortFailsNamingTheFile) {
  testing::TempDir dir;
  const fs::path golden = testing::GoldenDir() / "w4a16-g64-awq";
  const fs::path weights = dir / "quant_model_weight_w4a16.safetensors";
  fs::copy_file(golden / "quant_model_weight_w4a16.safetensors", weights);
  auto description = LoadDescription((golden / "quant_model_description_w4a16.json").string());
  auto checkpoint = Checkpoint::Open(weights);
  ASSERT_TRUE(description.ok() && checkpoint.ok());
  auto plan = BuildPlan(checkpoint->table(), *description, PlanOptions{});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  Warnings warnings;
  ASSERT_TRUE(ScanOffsets(*plan, *checkpoint, warnings).ok());

  uint64_t data_start = UINT64_MAX;
  for (const auto& tensor : checkpoint->table().tensors()) data_start = std::min(data_start, tensor.file_offset);
  fs::resize_file(weights, data_start);  // every tensor's bytes gone
  const auto scan = ScanOffsets(*plan, *checkpoint, warnings);
  ASSERT_FALSE(scan.ok());
  EXPECT_EQ(scan.error().message, weights.string() + ": cannot read: the file is shorter than when it was opened");
  EXPECT_FALSE(checkpoint->CheckUnchanged().ok());
}

// The first kernel call of a conversion waits here until the test lets it go: a moment of the
// conversion fixed by its own work (the linear's tiles run before the float tensor's copy), not by
// the clock.
struct KernelGate {
  std::mutex mutex;
  std::condition_variable changed;
  bool entered = false, released = false, returned = false;

  void Pass() {
    std::unique_lock lock(mutex);
    if (entered) return;
    entered = true;
    changed.notify_all();
    changed.wait(lock, [&] { return released; });
  }
};
KernelGate* gate = nullptr;  // the running test's

uint64_t GatedPackRows4(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, kernels::PackOrder order,
                        uint32_t word_bias, uint8_t* dst, size_t dst_stride) {
  gate->Pass();
  return kernels::ScalarKernels().pack_rows_4(src, src_stride, rows, cols, order, word_bias, dst, dst_stride);
}
void GatedTranspose32(const uint8_t* src, size_t src_stride, size_t rows, size_t cols, uint8_t* dst,
                      size_t dst_stride) {
  gate->Pass();
  kernels::ScalarKernels().transpose_32(src, src_stride, rows, cols, dst, dst_stride);
}

// The input is cut short while the conversion waits in its first kernel (one thread: nothing runs
// ahead), before the float tensor after the linear is copied: copy_file_range finds nothing, and the
// write from the mapping fails with EFAULT. That is the input changing, not the output failing.
TEST(MappedFile, AConversionWhoseInputIsCutShortDuringACopyReportsTheInputChanged) {
  testing::TempDir dir;
  testing::MsCheckpoint checkpoint;
  checkpoint.Describe("model_quant_type", "W4A16");
  checkpoint.AddLinear("model.layers.0.mlp.down_proj", testing::MakeMsLinear({}), "W4A16");
  const std::vector<double> values(256 * 1024, 0.5);
  checkpoint.Add("lm_head.weight", testing::MakeTensor(DType::kF32, {256, 1024}, values), "FLOAT");  // last in the file
  const fs::path weights = checkpoint.WriteInto(dir.path());

  KernelGate passage;
  gate = &passage;
  kernels::KernelTable gated = kernels::ScalarKernels();
  gated.pack_rows_4 = &GatedPackRows4;
  gated.transpose_32 = &GatedTranspose32;
  ConvertRequest request;
  request.model = weights;
  request.save_path = dir / "out.safetensors";
  request.execution.threads = 1;
  request.execution.chunk_bytes = 64 << 10;
  request.execution.kernels = &gated;

  std::optional<Result<ConvertReport>> converted;
  std::thread converting([&] {
    converted.emplace(Convert(request));
    std::lock_guard lock(passage.mutex);
    passage.returned = true;
    passage.changed.notify_all();
  });
  {
    std::unique_lock lock(passage.mutex);
    passage.changed.wait(lock, [&] { return passage.entered || passage.returned; });
  }
  const bool cut = passage.entered;
  if (cut) fs::resize_file(weights, fs::file_size(weights) - values.size() * 4);  // the float tensor's bytes gone
  {
    std::lock_guard lock(passage.mutex);
    passage.released = true;
    passage.changed.notify_all();
  }
  converting.join();
  gate = nullptr;
  ASSERT_TRUE(cut) << "the conversion ended before its first kernel";
  ASSERT_FALSE(converted->ok());
  EXPECT_EQ(converted->error().code, ErrorCode::kInvalidInput) << converted->error().message;
  EXPECT_EQ(converted->error().message.find(weights.string() + ": changed while being read"), 0u)
      << converted->error().message;
  EXPECT_FALSE(fs::exists(dir / "out.safetensors"));
}

}  // namespace
}  // namespace ms2vllm
