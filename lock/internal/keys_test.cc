#include "lock/internal/keys.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/key_slot.h"
#include "util/status_matchers.h"

namespace lock::internal {
namespace {

using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ValidateKey, AcceptsPrintableAscii) {
  EXPECT_THAT(ValidateKey("order:42"), IsOk());
  EXPECT_THAT(ValidateKey(std::string(255, 'k')), IsOk());
  EXPECT_THAT(ValidateKey(" ~!@#$%^&*()"), IsOk());
}

TEST(ValidateKey, RejectsBadKeysNamingTheProblem) {
  const struct {
    std::string key;
    const char* fragment;
  } cases[] = {
      {"", "is empty"},
      {std::string(256, 'k'), "256 bytes long; the limit is 255"},
      {"a{b", "contains '{' at offset 1"},
      {"ab}", "contains '}' at offset 2"},
      {std::string("a\0b", 3), "non-printable byte 0x00 at offset 1"},
      {"tab\there", "non-printable byte 0x09 at offset 3"},
      {"caf\xc3\xa9", "non-printable byte 0xc3 at offset 3"},
  };
  for (const auto& c : cases) {
    EXPECT_THAT(ValidateKey(c.key),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.fragment)))
        << "key: " << c.key;
  }
}

TEST(LockKeys, AllKeysShareOneHashTag) {
  LockKeys k("order:close:", "42");
  EXPECT_EQ(k.owner(), "{order:close:42}");
  EXPECT_EQ(k.fence(), "{order:close:42}:fence");
  EXPECT_EQ(k.channel(), "{order:close:42}:released");
  EXPECT_EQ(k.CancelMarker("tok"), "{order:close:42}:cancel:tok");
}

TEST(PrimitiveKeys, EachKindHasItsOwnKeysUnderTheSameHashTag) {
  const ReadWriteKeys rw("p:", "k");
  EXPECT_EQ(rw.writer(), "{p:k}:rw:writer");
  EXPECT_EQ(rw.readers(), "{p:k}:rw:readers");
  EXPECT_EQ(rw.writers_waiting(), "{p:k}:rw:writers_waiting");
  EXPECT_EQ(rw.fence(), "{p:k}:fence");
  EXPECT_EQ(rw.channel(), "{p:k}:rw:released");
  EXPECT_EQ(rw.CancelMarker("t"), "{p:k}:cancel:t");
  const SemaphoreKeys sem("p:", "k");
  EXPECT_EQ(sem.holders(), "{p:k}:sem:holders");
  EXPECT_EQ(sem.channel(), "{p:k}:sem:released");
  EXPECT_EQ(sem.CancelMarker("t"), "{p:k}:cancel:t");
  const FairKeys fair("p:", "k");
  EXPECT_EQ(fair.owner(), "{p:k}:fair:owner");
  EXPECT_EQ(fair.queue(), "{p:k}:fair:queue");
  EXPECT_EQ(fair.timeouts(), "{p:k}:fair:timeouts");
  EXPECT_EQ(fair.fence(), "{p:k}:fence");
  EXPECT_EQ(fair.channel(), "{p:k}:fair:released");
  // The fence record is the resource's, whichever kind holds it exclusively.
  EXPECT_EQ(fair.fence(), LockKeys("p:", "k").fence());
}

// Redis Cluster runs a script only when all its keys are in one slot.
TEST(PrimitiveKeys, EveryKeyOfAPrimitiveIsInOneClusterSlot) {
  const ReadWriteKeys rw("orders:", "42");
  const SemaphoreKeys sem("orders:", "42");
  const FairKeys fair("orders:", "42");
  const int slot = util::KeySlot(LockKeys("orders:", "42").owner());
  for (const std::string& key :
       {rw.writer(), rw.readers(), rw.writers_waiting(), rw.fence(), rw.channel(),
        rw.CancelMarker("t"), sem.holders(), sem.channel(), sem.CancelMarker("t"),
        fair.owner(), fair.queue(), fair.timeouts(), fair.fence(), fair.channel(),
        fair.CancelMarker("t")}) {
    EXPECT_EQ(util::KeySlot(key), slot) << key;
  }
}

}  // namespace
}  // namespace lock::internal
