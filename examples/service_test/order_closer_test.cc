// A user's integration test of their own service's locking, written only
// against the public harness (integration/harness/testing.h) and the lock
// library (lock/lock.h), on a real redis-server per test. docs/TESTING.md
// walks through it; integration/consumers builds this same file from another
// Bazel workspace and from a CMake project.
//
// The service: OrderCloser closes an order in steps under the lock
// "orders/<id>" and stops writing as soon as the lock is lost. The tests take
// Redis away under a held lock three ways (SIGKILL, SIGSTOP past the lease, a
// network partition) and check what the service must guarantee: it is told
// (lock::IsLost), it stops early, and it works again once Redis is back.
#include <atomic>
#include <future>
#include <string>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/status/status.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "integration/harness/testing.h"
#include "lock/lock.h"

// ---- The service (in a real project, its own library) ----------------------

class OrderCloser {
 public:
  // Runs `steps` steps of `step_time` each while holding "orders/<id>",
  // checking before each one that the lock is still held. Returns lock::With's
  // outcome: OK, or lock::IsLost when the lock was lost meanwhile.
  absl::Status Close(const std::string& id, int steps, absl::Duration step_time) {
    return lock::With("orders", id, [&](lock::Held& held) {
      for (int i = 0; i < steps; ++i) {
        if (held.stop_token().stop_requested()) break;  // lost: stop writing
        absl::SleepFor(step_time);                      // "write" a step
        ++steps_done_;
      }
      return absl::OkStatus();
    });
  }
  int steps_done() const { return steps_done_; }

 private:
  std::atomic<int> steps_done_{0};
};

// ---- Its tests ---------------------------------------------------------------

namespace {

using lock::harness::Eventually;

// A 1s lease, renewed in the background while the section runs.
constexpr char kPolicies[] = R"({"orders": {"ttl": "1s", "key_prefix": "orders/"}})";
constexpr int kSteps = 100;  // 10 s unless the lock is lost
constexpr absl::Duration kStep = absl::Milliseconds(100);

class OrderCloserTest : public lock::harness::RedisLockTest {
 protected:
  void SetUp() override {
    lock::harness::RedisLockTest::SetUp();
    ASSERT_TRUE(lock::InitFromJson(PolicyJson(kPolicies)).ok());
  }

  // Starts closing order `id` on another thread; returns once it is inside
  // its critical section (two steps done).
  std::future<absl::Status> StartClosing(const std::string& id) {
    auto done = std::async(std::launch::async,
                           [this, id] { return closer_.Close(id, kSteps, kStep); });
    EXPECT_TRUE(Eventually([&] { return closer_.steps_done() >= 2; }));
    return done;
  }

  OrderCloser closer_;
};

TEST_F(OrderCloserTest, KilledRedisUnderTheLockIsALossAndTheServiceStops) {
  std::future<absl::Status> closing = StartClosing("1");
  ASSERT_TRUE(server().Kill().ok());  // SIGKILL: no shutdown, no save
  const absl::Status outcome = closing.get();
  EXPECT_TRUE(lock::IsLost(outcome)) << outcome;
  EXPECT_LT(closer_.steps_done(), kSteps);  // it stopped writing
  // Back, empty: the service takes its lock again.
  ASSERT_TRUE(server().Restart(/*keep_data=*/false).ok());
  EXPECT_TRUE(closer_.Close("1", 1, absl::ZeroDuration()).ok());
}

TEST_F(OrderCloserTest, RedisFrozenPastTheLeaseIsALossAndTheServiceStops) {
  std::future<absl::Status> closing = StartClosing("2");
  ASSERT_TRUE(server().Pause().ok());  // SIGSTOP: connections open, no answer
  absl::SleepFor(absl::Seconds(2));    // twice the lease
  ASSERT_TRUE(server().Resume().ok());
  const absl::Status outcome = closing.get();
  EXPECT_TRUE(lock::IsLost(outcome)) << outcome;
  EXPECT_LT(closer_.steps_done(), kSteps);
}

// Redis keeps running on the far side of a partition: the lease runs out
// there while the service cannot renew it. Needs root for the network
// namespaces; skipped with the reason elsewhere.
TEST(OrderCloserPartitionTest, PartitionedFromRedisIsALossAndHealingRecovers) {
  ASSIGN_PARTITION_OR_SKIP(partition);
  // This thread and the ones it starts (the library's) are the client side.
  ASSERT_TRUE(partition->EnterClientSide().ok());
  auto fleet = lock::harness::RedisFleet::Standalone(partition->ServerOptions());
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  ASSERT_TRUE(lock::InitFromJson(lock::harness::PolicyJson(
                                     (*fleet)->PolicyTargetJson(), kPolicies))
                  .ok());
  // Before the server goes (the fleet is destroyed after it runs).
  absl::Cleanup shutdown = [] { lock::Shutdown(); };
  OrderCloser closer;
  absl::Status outcome;
  {
    std::future<absl::Status> closing = std::async(
        std::launch::async, [&] { return closer.Close("3", kSteps, kStep); });
    ASSERT_TRUE(Eventually([&] { return closer.steps_done() >= 2; }));
    lock::harness::Partition::ScopedCut cut = partition->CutUntilScopeExit();
    ASSERT_TRUE(cut.status().ok()) << cut.status();
    outcome = closing.get();
  }  // healed
  EXPECT_TRUE(lock::IsLost(outcome)) << outcome;
  EXPECT_LT(closer.steps_done(), kSteps);
  EXPECT_TRUE(closer.Close("3", 1, absl::ZeroDuration()).ok());
}

}  // namespace
