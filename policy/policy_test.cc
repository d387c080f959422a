#include "policy/policy.h"

#include "gtest/gtest.h"

namespace policy {
namespace {

TEST(PolicyTest, EnumNamesRoundTrip) {
  for (OnBusy v : kAllOnBusy) EXPECT_EQ(OnBusyFromName(OnBusyName(v)), v);
  for (OnRenewalFailure v : kAllOnRenewalFailure) {
    EXPECT_EQ(OnRenewalFailureFromName(OnRenewalFailureName(v)), v);
  }
  for (RedisMode v : kAllRedisModes) {
    EXPECT_EQ(RedisModeFromName(RedisModeName(v)), v);
  }
  for (LockKind v : kAllLockKinds) {
    EXPECT_EQ(LockKindFromName(LockKindName(v)), v);
  }
}

TEST(PolicyTest, NamesAreTheConfigSpellings) {
  EXPECT_EQ(OnBusyName(OnBusy::kSkip), "skip");
  EXPECT_EQ(OnRenewalFailureName(OnRenewalFailure::kSignal), "signal");
  EXPECT_EQ(RedisModeName(RedisMode::kRedlock), "redlock");
  EXPECT_EQ(OnBusyFromName("Wait"), std::nullopt);  // Case-sensitive.
  EXPECT_EQ(RedisModeFromName(""), std::nullopt);
  EXPECT_EQ(LockKindName(LockKind::kReadWrite), "read_write");
  EXPECT_EQ(LockKindFromName("read-write"), std::nullopt);
}

TEST(PolicyTest, DefaultsMatchTheDesign) {
  const Policy p;
  EXPECT_EQ(p.redis, "default");
  EXPECT_EQ(p.key_prefix, "");
  EXPECT_EQ(p.kind, LockKind::kMutex);
  EXPECT_EQ(p.permits, 0);
  EXPECT_EQ(p.ttl, absl::Seconds(30));
  EXPECT_EQ(p.on_busy, OnBusy::kWait);
  EXPECT_EQ(p.wait.timeout, absl::Seconds(10));
  EXPECT_TRUE(p.wait.notify);
  EXPECT_EQ(p.retry.max_attempts, 1000);
  EXPECT_EQ(p.retry.initial_delay, absl::Milliseconds(50));
  EXPECT_EQ(p.retry.max_delay, absl::Seconds(1));
  EXPECT_EQ(p.retry.multiplier, 2.0);
  EXPECT_EQ(p.retry.jitter, 0.5);
  EXPECT_TRUE(p.renewal.enabled);
  EXPECT_EQ(p.renewal.threshold, 0.3);
  EXPECT_EQ(p.renewal.on_failure, OnRenewalFailure::kSignal);
  EXPECT_EQ(p.script_timeout, absl::Milliseconds(600));
  EXPECT_TRUE(p.fencing);
  EXPECT_EQ(p.fencing_retention, absl::Hours(24));
  EXPECT_TRUE(p.reentrant);
  EXPECT_EQ(p.hold_at_least, absl::ZeroDuration());
}

TEST(PolicyTest, RedlockQuorumIsMajority) {
  RedisTarget t;
  t.addrs = {"a:1", "b:1"};
  EXPECT_EQ(RedlockQuorum(t), 2);
  t.addrs = {"a:1", "b:1", "c:1"};
  EXPECT_EQ(RedlockQuorum(t), 2);
  t.addrs = {"a:1", "b:1", "c:1", "d:1", "e:1"};
  EXPECT_EQ(RedlockQuorum(t), 3);
}

}  // namespace
}  // namespace policy
