#include "util/key_slot.h"

#include "gtest/gtest.h"

namespace util {
namespace {

// Expected values are CLUSTER KEYSLOT's answers.
TEST(KeySlot, MatchesRedisCluster) {
  EXPECT_EQ(KeySlot("123456789"), 0x31C3);
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot(""), 0);
}

TEST(KeySlot, HashesOnlyTheFirstNonEmptyTag) {
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  EXPECT_EQ(KeySlot("{order:close:42}:fence"), KeySlot("order:close:42"));
  // An empty first tag means no tag: the whole key is hashed.
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));
  EXPECT_EQ(KeySlot("{}empty-tag"), KeySlot("{}empty-tag"));
  // The tag ends at the first '}' after the first '{'.
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  // No closing brace: the whole key.
  EXPECT_NE(KeySlot("{open"), KeySlot("open"));
}

TEST(KeySlot, StaysInRange) {
  for (const char* key : {"a", "b", "zzzzzzzz", "\xff\xfe", "{x}"}) {
    EXPECT_GE(KeySlot(key), 0);
    EXPECT_LT(KeySlot(key), kClusterSlots);
  }
}

}  // namespace
}  // namespace util
