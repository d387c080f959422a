// The public fixture RedisLockTest and PolicyJson (testing.h), the way a
// user's suite uses them: through lock::InitFromJson and lock::With only.
#include <string>

#include "gtest/gtest.h"
#include "integration/harness/testing.h"
#include "lock/lock.h"
#include "util/status_matchers.h"

namespace lock::harness {
namespace {

using ::util::testing::IsOk;

constexpr char kPolicies[] = R"({"orders": {"ttl": "1s", "key_prefix": "orders:"}})";

TEST(PolicyJsonTest, IsTheTargetAndThePolicies) {
  EXPECT_EQ(PolicyJson(R"({"addrs": ["h:1"]})", R"({"p": {}})"),
            R"({"redis": {"default": {"addrs": ["h:1"]}}, "policies": {"p": {}}})");
}

class RedisLockFixtureTest : public RedisLockTest {};

TEST_F(RedisLockFixtureTest, PolicyJsonLocksOnThisTestsServer) {
  ASSERT_THAT(lock::InitFromJson(PolicyJson(kPolicies)), IsOk());
  std::string owner_on_server;
  ASSERT_THAT(lock::With("orders", "42", [&](lock::Held& held) {
    absl::StatusOr<std::string> owner = server().Exec({"HGET", "{orders:42}", "owner"});
    EXPECT_THAT(owner, IsOk());
    EXPECT_EQ(owner.value_or(""), held.owner_token());
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(server().Exec({"EXISTS", "{orders:42}"}).value_or("?"), "0");
}

TEST_F(RedisLockFixtureTest, PausePastTheLeaseIsSignalledAsALoss) {
  ASSERT_THAT(lock::InitFromJson(PolicyJson(kPolicies)), IsOk());
  absl::Status s = lock::With("orders", "43", [&](lock::Held& held) {
    EXPECT_THAT(server().Pause(), IsOk());
    EXPECT_TRUE(Eventually([&] { return held.lost(); }));
    return server().Resume();
  });
  EXPECT_TRUE(lock::IsLost(s)) << s;
}

// Each test gets its own server: what the other test wrote is not here.
// The two write different keys, so that whichever runs second would count
// 2 on a shared server.
TEST_F(RedisLockFixtureTest, EveryTestHasAFreshServer) {
  ASSERT_THAT(server().Exec({"SET", "left-over-1", "1"}), IsOk());
  EXPECT_EQ(server().Exec({"DBSIZE"}).value_or("?"), "1");
}

TEST_F(RedisLockFixtureTest, EveryTestHasAFreshServerToo) {
  ASSERT_THAT(server().Exec({"SET", "left-over-2", "1"}), IsOk());
  EXPECT_EQ(server().Exec({"DBSIZE"}).value_or("?"), "1");
}

}  // namespace
}  // namespace lock::harness
