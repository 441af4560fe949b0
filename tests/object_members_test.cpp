// ForEachMember reads a large object in runs of whole members (io/object_members.h). Whatever
// the run size, it must visit the same members in the same order as one parse of the whole,
// and refuse exactly the texts one parse refuses; the header and description readers built on
// it must give the same result in runs of a few bytes as in one.
#include <gtest/gtest.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "io/description.h"
#include "io/object_members.h"
#include "io/safetensors_header.h"

namespace ms2vllm {
namespace {

constexpr size_t kOneRun = SIZE_MAX;

struct Visit {
  bool ok = false;
  std::vector<std::pair<std::string, std::string>> members;  // key, raw value text
};

Visit Read(std::string_view text, size_t run_bytes) {
  Visit visit;
  const Status status = ForEachMember(
      text, "f.json", "document",
      [&](std::string_view key, simdjson::ondemand::value value) -> Status {
        std::string_view raw;
        if (simdjson::to_json_string(value).get(raw) != simdjson::SUCCESS) return MakeError(ErrorCode::kInvalidInput, "f.json: raw");
        visit.members.emplace_back(std::string(key), std::string(raw));
        return Ok{};
      },
      run_bytes);
  visit.ok = status.ok();
  if (!visit.ok) {
    EXPECT_TRUE(status.error().message.starts_with("f.json: ")) << status.error().message;
  }
  return visit;
}

void ExpectSameAtEveryRunSize(const std::string& text) {
  const Visit whole = Read(text, kOneRun);
  for (size_t run_bytes = 0; run_bytes <= text.size() + 1; ++run_bytes) {
    const Visit runs = Read(text, run_bytes);
    ASSERT_EQ(runs.ok, whole.ok) << text << " in runs of " << run_bytes;
    if (whole.ok) {
      ASSERT_EQ(runs.members, whole.members) << text << " in runs of " << run_bytes;
    }
  }
}

TEST(ObjectMembersTest, ValidObjectsGiveTheSameMembersAtEveryRunSize) {
  for (const std::string text : {
           R"({})",
           R"(  { }  )",
           R"({"a":1})",
           R"({"a":1,"b":"two","c":[1,2,{"d":[]}],"e":{"f":{"g":null}}})",
           R"({"a,b":"c,d}","e]":"[f{","g\"h":"i\\","j":"\\\"k,"})",
           R"({"a\",":1,"b\"}":[2],"c":"\\"})",
           "{\n  \"x.weight\": \"W4A16\",\n  \"x.bias\" : \"FLOAT\" ,\n  \"version\": \"1.0.0\"\n}\n",
           R"({"a":{"b":1,"c":2},"a":{"b":3}})",  // a repeated key is the visitor's business
       }) {
    const Visit whole = Read(text, kOneRun);
    ASSERT_TRUE(whole.ok) << text;
    ExpectSameAtEveryRunSize(text);
  }
}

TEST(ObjectMembersTest, InvalidTextsAreRefusedAtEveryRunSize) {
  for (const std::string text : {
           R"({"a":1,})",
           R"({"a":1, })",
           R"({,"a":1})",
           R"({"a":1,,"b":2})",
           R"({"a":1 "b":2})",
           R"({"a":[1},"b":2]})",
           R"({"a":"x\"})",
           R"({"a":1}x)",
           R"({"a":1}{})",
           R"({"a":1)",
           R"({"a":1,"b":)",
           R"([1,2])",
           R"("text")",
           "",
           R"({"a":1,"b":2]})",
       }) {
    ASSERT_FALSE(Read(text, kOneRun).ok) << text;
    ExpectSameAtEveryRunSize(text);
  }
}

std::vector<uint8_t> SafetensorsFile(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> file(8 + header.size() + data_bytes, 0);
  const uint64_t size = header.size();
  std::memcpy(file.data(), &size, 8);
  std::memcpy(file.data() + 8, header.data(), header.size());
  return file;
}

TEST(ObjectMembersTest, HeaderReadInRunsEqualsOneRead) {
  std::string header = R"({"__metadata__":{"format":"pt"})";
  uint64_t offset = 0;
  for (int i = 0; i < 40; ++i) {
    const uint64_t bytes = 2 * (i + 1);
    header += ",\"t" + std::to_string(i) + ".w\":{\"dtype\":\"BF16\",\"shape\":[" + std::to_string(i + 1) +
              "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + bytes) + "]}";
    offset += bytes;
  }
  header += "}";
  const auto file = SafetensorsFile(header, offset);
  const auto whole = ParseSafetensorsHeader("m.safetensors", file, 0, kOneRun);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  ASSERT_EQ(whole->tensors.size(), 40u);
  for (size_t run_bytes : {0, 1, 50, 100, 333, 1000}) {
    const auto runs = ParseSafetensorsHeader("m.safetensors", file, 0, run_bytes);
    ASSERT_TRUE(runs.ok()) << runs.error().message;
    ASSERT_EQ(runs->tensors.size(), whole->tensors.size());
    for (size_t i = 0; i < whole->tensors.size(); ++i) {
      EXPECT_EQ(runs->tensors[i].name, whole->tensors[i].name);
      EXPECT_EQ(runs->tensors[i].shape, whole->tensors[i].shape);
      EXPECT_EQ(runs->tensors[i].file_offset, whole->tensors[i].file_offset);
    }
  }
}

// The element count first, then its bytes, as the safetensors loader multiplies: an empty F32
// tensor of [2^31, 2^31, 0] is valid (2^62 elements before the 0), [2^32, 2^32, 0] overflows.
TEST(ObjectMembersTest, HeaderShapesMultiplyAsTheSafetensorsLoaderDoes) {
  const std::string empty = R"({"e":{"dtype":"F32","shape":[2147483648,2147483648,0],"data_offsets":[0,0]},)"
                            R"("a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  const auto parsed = ParseSafetensorsHeader("m.safetensors", SafetensorsFile(empty, 1), 0, kOneRun);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->tensors.front().byte_size, 0u);
  const std::string wraps = R"({"e":{"dtype":"U8","shape":[4294967296,4294967296,0],"data_offsets":[0,0]}})";
  const auto refused = ParseSafetensorsHeader("m.safetensors", SafetensorsFile(wraps, 0), 0, kOneRun);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "m.safetensors: tensor 'e' shape is too large (overflow)");
}

// As the safetensors loader reads it: an optional map, so null is none; any other non-object is refused.
TEST(ObjectMembersTest, HeaderMetadataMayBeNull) {
  const std::string entry = R"("a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  const auto null = ParseSafetensorsHeader("m.safetensors", SafetensorsFile(R"({"__metadata__":null,)" + entry, 1), 0, kOneRun);
  ASSERT_TRUE(null.ok()) << null.error().message;
  EXPECT_EQ(null->tensors.size(), 1u);
  const auto zero = ParseSafetensorsHeader("m.safetensors", SafetensorsFile(R"({"__metadata__":0,)" + entry, 1), 0, kOneRun);
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(zero.error().message, "m.safetensors: __metadata__ is not an object");
  // A bad escape is a fault of the text, not a value of another type.
  const auto escape = ParseSafetensorsHeader("m.safetensors", SafetensorsFile(R"({"__metadata__":{"a":"\x"},)" + entry, 1), 0, kOneRun);
  ASSERT_FALSE(escape.ok());
  EXPECT_TRUE(escape.error().message.starts_with("m.safetensors: __metadata__ is not valid JSON (")) << escape.error().message;
  const auto number = ParseSafetensorsHeader("m.safetensors", SafetensorsFile(R"({"__metadata__":{"a":1},)" + entry, 1), 0, kOneRun);
  ASSERT_FALSE(number.ok());
  EXPECT_EQ(number.error().message, "m.safetensors: __metadata__ values must be strings");
}

// The safetensors library's newer whole-byte dtypes: MX block scales and complex64.
TEST(ObjectMembersTest, HeaderReadsTheNewerByteDTypes) {
  const std::string header = R"({"s":{"dtype":"F8_E8M0","shape":[3],"data_offsets":[0,3]},)"
                             R"("c":{"dtype":"C64","shape":[2],"data_offsets":[3,19]}})";
  const auto parsed = ParseSafetensorsHeader("m.safetensors", SafetensorsFile(header, 19), 0, kOneRun);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_EQ(parsed->tensors.size(), 2u);
  EXPECT_EQ(parsed->tensors[0].dtype, DType::kF8E8M0);
  EXPECT_EQ(parsed->tensors[1].byte_size, 16u);
  EXPECT_TRUE(IsIntegerOrFp8DType(DType::kF8E8M0));
  EXPECT_FALSE(IsIntegerOrFp8DType(DType::kC64));
}

TEST(ObjectMembersTest, HeaderDuplicatesAreFoundAcrossRuns) {
  const std::string header =
      R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
      R"("b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},)"
      R"("a":{"dtype":"U8","shape":[1],"data_offsets":[2,3]}})";
  const auto file = SafetensorsFile(header, 3);
  for (size_t run_bytes : {size_t{0}, size_t{10}, kOneRun}) {
    const auto parsed = ParseSafetensorsHeader("m.safetensors", file, 0, run_bytes);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().message, "m.safetensors: duplicate key 'a' in the header");
  }
}

TEST(ObjectMembersTest, DescriptionReadInRunsEqualsOneRead) {
  const std::string json = R"({"model_quant_type":"W4A16","version":"1.0.0","group_size":"64",)"
                           R"("l.weight":"W4A16","l.weight_scale":"W4A16","n.weight":"FLOAT",)"
                           R"("l.weight":"W8A16","meta":{"nested":[1,2]},"z.bias":"FLOAT"})";
  const auto whole = ParseDescription("d.json", json, kOneRun);
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  for (size_t run_bytes = 0; run_bytes <= json.size(); run_bytes += 7) {
    const auto runs = ParseDescription("d.json", json, run_bytes);
    ASSERT_TRUE(runs.ok()) << runs.error().message;
    EXPECT_EQ(runs->model_quant_type, whole->model_quant_type);
    EXPECT_EQ(runs->group_size, whole->group_size);
    EXPECT_EQ(runs->has_version, whole->has_version);
    EXPECT_EQ(runs->version_first, whole->version_first);
    EXPECT_EQ(runs->non_string_keys, whole->non_string_keys);
    ASSERT_EQ(runs->entries.size(), whole->entries.size());
    for (size_t i = 0; i < whole->entries.size(); ++i) {
      EXPECT_EQ(runs->entries[i].name, whole->entries[i].name);
      EXPECT_EQ(runs->entries[i].label, whole->entries[i].label);
    }
  }
  EXPECT_EQ(whole->entries[2].name, "l.weight");
  EXPECT_EQ(whole->entries[2].label, "W8A16");  // first position, last value
  EXPECT_EQ(whole->non_string_keys, std::vector<std::string>{"meta"});  // group_size is read as a number
  EXPECT_TRUE(whole->has_version);
  EXPECT_FALSE(whole->version_first);
}

// group_size is a number or a string holding only a number: "64x" is no group size, not 64
// (a described size that is wrong is warned of; one that is unreadable is not compared).
TEST(ObjectMembersTest, DescriptionGroupSizeIsAWholeNumberOrNothing) {
  const std::pair<const char*, std::optional<int64_t>> cases[] = {{R"({"group_size":64})", 64},
                                                                  {R"({"group_size":"64"})", 64},
                                                                  {R"({"group_size":"64x"})", std::nullopt},
                                                                  {R"({"group_size":"x64"})", std::nullopt},
                                                                  {R"({"group_size":""})", std::nullopt}};
  for (const auto& [json, group_size] : cases) {
    const auto parsed = ParseDescription("d.json", json, kOneRun);
    ASSERT_TRUE(parsed.ok()) << parsed.error().message;
    EXPECT_EQ(parsed->group_size, group_size) << json;
  }
}

// The ascendV1 saver writes `version` as the first key; msModelSlim's newer layout of unpacked
// saves writes it after the tensors.
TEST(ObjectMembersTest, DescriptionTellsWhetherVersionIsItsFirstKey) {
  const std::pair<const char*, bool> cases[] = {{R"({"version":"1.0.0","l.weight":"W4A16"})", true},
                                                {R"({"l.weight":"W4A16","version":"1.0.0"})", false},
                                                {R"({"l.weight":"W4A16"})", false}};
  for (const auto& [json, first] : cases) {
    for (size_t run_bytes : {size_t{0}, size_t{5}, kOneRun}) {
      const auto parsed = ParseDescription("d.json", json, run_bytes);
      ASSERT_TRUE(parsed.ok()) << parsed.error().message;
      EXPECT_EQ(parsed->version_first, first) << json << " in runs of " << run_bytes;
    }
  }
}

// A description saved with a UTF-8 byte order mark (some Windows editors) reads as without one;
// the mark anywhere else is no JSON.
TEST(ObjectMembersTest, DescriptionMayStartWithAByteOrderMark) {
  const auto parsed = ParseDescription("d.json", "\xEF\xBB\xBF{\"model_quant_type\":\"W4A16\",\"l.weight\":\"W4A16\"}", kOneRun);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->model_quant_type, "W4A16");
  ASSERT_EQ(parsed->entries.size(), 2u);
  EXPECT_EQ(parsed->entries[1].name, "l.weight");
  EXPECT_FALSE(ParseDescription("d.json", " \xEF\xBB\xBF{}", kOneRun).ok());
}

}  // namespace
}  // namespace ms2vllm
