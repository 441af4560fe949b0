// The shard index reader (io/shard_index.h) reads the weight_map in runs of whole entries, the
// rest member by member, and the whole text at once only when it is not an object as far as
// brackets show. However it splits the text, it must accept and refuse the same indexes with the
// same entries and messages.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/shard_index.h"

namespace ms2vllm {
namespace {

constexpr size_t kOneRun = SIZE_MAX;
const std::string kLabel = "m.index.json";

// The outcome as one comparable text: the message, or every entry with its shard file.
std::string Outcome(const std::string& text, size_t run_bytes) {
  const auto index = ParseShardIndex(kLabel, text, run_bytes);
  if (!index.ok()) return "error: " + index.error().message;
  std::string out = "total " + (index->total_size ? std::to_string(*index->total_size) : std::string("none"));
  for (const auto& entry : index->weight_map) out += "; " + entry.tensor + " -> " + index->shard_files[entry.shard];
  return out;
}

std::string SameAtEveryRunSize(const std::string& text) {
  const std::string whole = Outcome(text, kOneRun);
  for (size_t run_bytes = 0; run_bytes <= text.size() + 1; ++run_bytes) {
    EXPECT_EQ(Outcome(text, run_bytes), whole) << text << " in runs of " << run_bytes;
  }
  return whole;
}

TEST(ShardIndexTest, ReadsEntriesInFileOrderAtEveryRunSize) {
  const std::string text = R"({ "metadata" : {"total_size": 96, "format": "pt"},
    "weight_map": {"b.weight": "s-1.safetensors", "a,\"{x}": "s-2.safetensors", "c": "s-1.safetensors"} }
)";
  EXPECT_EQ(SameAtEveryRunSize(text),
            R"(total 96; b.weight -> s-1.safetensors; a,"{x} -> s-2.safetensors; c -> s-1.safetensors)");
  const auto index = ParseShardIndex(kLabel, text, 0);
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(index->shard_files, (std::vector<std::string>{"s-1.safetensors", "s-2.safetensors"}));
}

// As the description: a byte order mark some editors save is skipped.
TEST(ShardIndexTest, AByteOrderMarkIsSkipped) {
  EXPECT_EQ(SameAtEveryRunSize("\xEF\xBB\xBF{\"weight_map\": {\"a\": \"s\"}}"), "total none; a -> s");
}

TEST(ShardIndexTest, AnEscapedKeyIsTheSameKey) {
  // Not recognised as written, so read through the general path: still the weight_map.
  EXPECT_EQ(SameAtEveryRunSize(R"({"weight\u005fmap": {"a": "s.safetensors"}})"), "total none; a -> s.safetensors");
  EXPECT_EQ(SameAtEveryRunSize(R"({"weight_map": {"a": "s.safetensors"}, "weight\u005fmap": {}})"),
            "error: m.index.json: index has \"weight_map\" twice");
}

TEST(ShardIndexTest, RefusesBadIndexesWithTheirMessageAtEveryRunSize) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({})", "index has no \"weight_map\""},
      {R"({"metadata": {"total_size": 1}})", "index has no \"weight_map\""},
      {R"({"metadata": {}, "weight_map": {}})", "\"weight_map\" is empty: the index names no tensor"},
      {R"({"weight_map": ["a"]})", "\"weight_map\" is not an object"},
      {R"({"weight_map": {"a": 1}})", "weight_map entry 'a' is not a file name"},
      {R"({"weight_map": {"a": "../s.safetensors"}})", "weight_map entry 'a' names '../s.safetensors', not a file beside the index"},
      {R"({"weight_map": {"a": "s", "b": "s", "a": "t"}})", "tensor 'a' is listed twice"},
      {R"({"weight_map": {}, "weight_map": {}})", "index has \"weight_map\" twice"},
      {R"({"metadata": {}, "weight_map": {}, "metadata": {}})", "index has \"metadata\" twice"},
      {R"({"weight_map": {"a": }})", "weight_map entry 'a' is not a file name"},
      {R"({"weight_map": {"a": "s"}} trailing)", "index is not valid JSON"},
      {R"({"weight_map": {"a": "s"})", "index is not valid JSON"},
      {R"({"weight_map" {"a": "s"}})", "index is not valid JSON"},
      {R"({"weight_map": {"a": "s",}})", "index is not valid JSON"},
      {R"({"metadata": {"total_size": 1,}, "weight_map": {"a": "s"}})", "index is not valid JSON"},
      {R"({"metadata": {"total_size" 1}, "weight_map": {"a": "s"}})", "index is not valid JSON"},
      {R"(["weight_map"])", "index is not a JSON object"},
  };
  for (const auto& [text, message] : cases) {
    const std::string outcome = SameAtEveryRunSize(text);
    EXPECT_TRUE(outcome.starts_with("error: m.index.json: ")) << text << ": " << outcome;
    EXPECT_NE(outcome.find(message), std::string::npos) << text << ": " << outcome;
  }
}

// A weight_map far larger than a run: entries cross many runs and keep their order.
TEST(ShardIndexTest, LargeWeightMapCrossesRuns) {
  std::string text = R"({"metadata": {"total_size": 7}, "weight_map": {)";
  constexpr int kEntries = 20'000;
  for (int i = 0; i < kEntries; ++i) {
    text += (i ? ", \"" : "\"") + std::string("t.") + std::to_string(i) + "\": \"s-" + std::to_string(i % 3) + "\"";
  }
  text += "}}";
  for (size_t run_bytes : {size_t{100}, size_t{4096}, kMemberRunBytes}) {
    const auto index = ParseShardIndex(kLabel, text, run_bytes);
    ASSERT_TRUE(index.ok()) << index.error().message;
    ASSERT_EQ(index->weight_map.size(), size_t{kEntries});
    EXPECT_EQ(index->shard_files, (std::vector<std::string>{"s-0", "s-1", "s-2"}));
    for (int i = 0; i < kEntries; ++i) {
      ASSERT_EQ(index->weight_map[i].tensor, "t." + std::to_string(i));
      ASSERT_EQ(index->shard_files[index->weight_map[i].shard], "s-" + std::to_string(i % 3));
    }
  }
  text.insert(text.size() - 2, R"(, "t.17": "s-0")");
  EXPECT_EQ(Outcome(text, 4096), "error: m.index.json: tensor 't.17' is listed twice");
}

// Metadata far larger than a run (a 384 MB one held 1.5 GB in one parse) is read in runs too:
// total_size is found wherever it is, and a fault in a late field is still refused.
TEST(ShardIndexTest, LargeMetadataCrossesRuns) {
  std::string metadata = R"({"metadata": {)";
  for (int i = 0; i < 5'000; ++i) metadata += "\"k" + std::to_string(i) + "\": \"" + std::string(40, 'x') + "\", ";
  const std::string text = metadata + R"("total_size": 7}, "weight_map": {"a": "s"}})";
  for (size_t run_bytes : {size_t{100}, size_t{4096}, kMemberRunBytes, kOneRun}) {
    EXPECT_EQ(Outcome(text, run_bytes), "total 7; a -> s") << run_bytes;
    const std::string broken = Outcome(metadata + R"("total_size": 7,}, "weight_map": {"a": "s"}})", run_bytes);
    EXPECT_NE(broken.find("index is not valid JSON"), std::string::npos) << run_bytes << ": " << broken;
  }
}

TEST(ShardIndexTest, SplitMembersGivesKeysAndValuesAsWritten) {
  const auto members = SplitMembers(R"( { "a\"b" : [1, {"c": 2}] ,"d":"e" , "f":{} } )");
  ASSERT_TRUE(members.has_value());
  ASSERT_EQ(members->size(), 3u);
  EXPECT_EQ((*members)[0].raw_key, R"(a\"b)");
  EXPECT_EQ((*members)[0].value, R"([1, {"c": 2}])");
  EXPECT_EQ((*members)[0].text, R"("a\"b" : [1, {"c": 2}])");
  EXPECT_EQ((*members)[1].raw_key, "d");
  EXPECT_EQ((*members)[1].value, R"("e")");
  EXPECT_EQ((*members)[2].value, "{}");
  EXPECT_TRUE(SplitMembers(" {} ")->empty());
  for (const char* text : {R"({"a" 1})", R"({1: 2})", R"({"a": 1,})", R"({"a": 1} x)", R"([1])", R"({"a)"}) {
    EXPECT_FALSE(SplitMembers(text).has_value()) << text;
  }
}

}  // namespace
}  // namespace ms2vllm
