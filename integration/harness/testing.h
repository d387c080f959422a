// The test harness for your own integration suites: real redis-server
// processes (or containers), topologies, faults, and GoogleTest fixtures.
// Bazel: testonly target @redis_lock//integration/harness:testing; CMake:
// redis_lock::testing. docs/TESTING.md is the guide; in short:
//
//   #include "integration/harness/testing.h"
//   #include "lock/lock.h"
//
//   class OrdersTest : public lock::harness::RedisLockTest {};
//
//   TEST_F(OrdersTest, PausedRedisPastTheLeaseIsALoss) {
//     ASSERT_TRUE(lock::InitFromJson(PolicyJson(R"({"orders": {"ttl": "1s"}})")).ok());
//     absl::Status s = lock::With("orders", "42", [&](lock::Held& held) {
//       EXPECT_TRUE(server().Pause().ok());              // SIGSTOP
//       EXPECT_TRUE(lock::harness::Eventually([&] { return held.lost(); }));
//       return server().Resume();
//     });
//     EXPECT_TRUE(lock::IsLost(s)) << s;
//   }                                                   // lock::Shutdown()
//
// What is here, each documented in its own header:
//   RedisServer         one server: Start(options), addr(), Kill(), Pause(),
//                       Resume(), Restart(keep_data), Exec(argv), Query()
//                       (redis_server.h)
//   RedisFleet          Standalone / Masters (Redlock) / Sentinel / Cluster,
//                       Failover(), MoveSlot(), PolicyTargetJson()
//                       (redis_fleet.h)
//   Partition           a network partition between Redis and the test,
//                       healed on scope exit (partition.h);
//                       ASSIGN_PARTITION_OR_SKIP below
//   RedisTest           fixture: a fresh server per test (redis_test.h)
//   RedisFleetTest      fixture: fleets whose logs print when a test fails
//   RedisLockTest       fixture: a server per test, PolicyJson() for
//                       lock::InitFromJson, lock::Shutdown() at teardown
//   Eventually          polls a condition against a deadline
//
// Backends: every server is a child process, or with LOCK_TEST_BACKEND=
// container a podman (or docker) container of the same redis-server.
#ifndef INTEGRATION_HARNESS_TESTING_H_
#define INTEGRATION_HARNESS_TESTING_H_

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "integration/harness/partition.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_server.h"
#include "integration/harness/redis_test.h"
#include "lock/lock.h"

namespace lock::harness {

// A complete policy configuration for lock::InitFromJson: one Redis target,
// "default" (`target_json`, e.g. RedisFleet::PolicyTargetJson()), and
// `policies_json`, the "policies" object (docs/POLICIES.md), e.g.
// R"({"orders": {"ttl": "1s"}})".
inline std::string PolicyJson(absl::string_view target_json,
                              absl::string_view policies_json) {
  return absl::StrCat(R"({"redis": {"default": )", target_json,
                      R"(}, "policies": )", policies_json, "}");
}

// A fresh standalone redis-server for every test (ServerOptions() says how;
// a password is read by the library from $REDIS_PASSWORD), a configuration
// naming it (PolicyJson), and lock::Shutdown() after each test, so that no
// lock, renewal or connection of the process-wide library outlives the test
// that made it. When a test fails, the server's log is printed.
class RedisLockTest : public RedisFleetTest {
 protected:
  // Called once per test, from SetUp().
  virtual RedisServerOptions ServerOptions() { return {}; }

  // Subclasses that override these must call them.
  void SetUp() override {
    fleet_ = Start(RedisFleet::Standalone(ServerOptions()));
    ASSERT_NE(fleet_, nullptr);
  }
  void TearDown() override {
    lock::Shutdown();
    RedisFleetTest::TearDown();
  }

  RedisServer& server() { return fleet_->node(0); }
  RedisFleet& fleet() { return *fleet_; }

  // The configuration for lock::InitFromJson with this test's server as the
  // "default" target and `policies_json` as the policies.
  std::string PolicyJson(absl::string_view policies_json) const {
    return harness::PolicyJson(fleet_->PolicyTargetJson(), policies_json);
  }

 private:
  RedisFleet* fleet_ = nullptr;
};

}  // namespace lock::harness

// In a TEST body: declares `std::unique_ptr<lock::harness::Partition> var`,
// or skips the test (GTEST_SKIP) with the reason where this machine cannot
// make network namespaces (not root, no iproute2, no veth).
#define ASSIGN_PARTITION_OR_SKIP(var)                                         \
  ASSIGN_PARTITION_OR_SKIP_IMPL_(var, var##_or_skip_)
#define ASSIGN_PARTITION_OR_SKIP_IMPL_(var, status_or)                        \
  absl::StatusOr<std::unique_ptr<::lock::harness::Partition>> status_or =     \
      ::lock::harness::Partition::Create();                                   \
  if (!status_or.ok()) {                                                      \
    GTEST_SKIP() << "no network partition here: " << status_or.status();      \
  }                                                                           \
  std::unique_ptr<::lock::harness::Partition> var = *std::move(status_or)

#endif  // INTEGRATION_HARNESS_TESTING_H_
