// A mapped input cut short by another process: reads past its new end give zeros instead of
// SIGBUS, and CheckUnchanged names the file, so the run fails with a message instead of dying.
// The offset scan reads with pread instead, and a read cut short fails naming the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <filesystem>
#include <string>

#include "engine/offset_scan.h"
#include "engine/plan.h"
#include "io/checkpoint.h"
#include "io/description.h"
#include "io/mapped_file.h"
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

}  // namespace
}  // namespace ms2vllm
