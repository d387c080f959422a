// The fair kind through the engine (issue 15): With / NewLock on a
// "kind": "fair" policy, a mutex granted in request order, against a real
// redis-server. Grants follow the queue; a release wakes only the head, so
// the script calls per handoff do not grow with the waiters; a waiter that
// died leaves the queue after its place's lease; one that gives up leaves
// at once; fencing tokens, renewal and loss as for a mutex.
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/internal/keys.h"
#include "lock/internal/primitive_calls.h"
#include "lock/lock.h"
#include "lock/testing/locker_from_json.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using harness::Eventually;
using internal::FairKeys;
using ::testing::HasSubstr;
using ::util::testing::IsOk;
using Clock = std::chrono::steady_clock;

constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"] } },
  "policies": {
    "fair-fail": { "kind": "fair", "key_prefix": "f:", "on_busy": "fail" },
    "fair-wait": { "kind": "fair", "key_prefix": "f:",
                   "wait": { "timeout": "20s", "notify": true },
                   "retry": { "initial_delay": "5s", "max_delay": "5s", "jitter": 0 } },
    "fair-short": { "kind": "fair", "key_prefix": "f:", "wait": { "timeout": "300ms" },
                    "retry": { "initial_delay": "20ms", "max_delay": "20ms" } },
    "fair-ttl": { "kind": "fair", "key_prefix": "f:", "ttl": "600ms",
                  "wait": { "timeout": "10s", "notify": true },
                  "retry": { "initial_delay": "5s", "max_delay": "5s", "jitter": 0 } },
    "fair-renew": { "kind": "fair", "key_prefix": "r:", "ttl": "300ms",
                    "script_timeout": "100ms", "renewal": { "threshold": 0.5 },
                    "wait": { "timeout": "10s", "notify": true },
                    "retry": { "initial_delay": "5s", "max_delay": "5s", "jitter": 0 } }
  }
})json";

class FairTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    auto locker =
        LockerFromJson(absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}}), "fair.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }

  int64_t Queued(const std::string& key) {
    return RedisInt({"ZCARD", FairKeys("f:", key).queue()});
  }

  std::unique_ptr<Locker> locker_;
};

// Waiters that joined the queue one after the other are granted the lock in
// that order, each woken by the release before it (their backoff is 5s).
TEST_F(FairTest, GrantsFollowRequestOrderAndEachReleaseWakesOnlyTheHead) {
  constexpr int kWaiters = 6;
  auto holder = locker_->NewLock("fair-fail", "line");
  ASSERT_THAT(holder, IsOk());
  ASSERT_THAT((*holder)->Acquire(), IsOk());
  std::mutex mu;
  std::vector<int> order;
  std::vector<std::thread> waiters;
  for (int i = 0; i < kWaiters; ++i) {
    waiters.emplace_back([&, i] {
      EXPECT_THAT(locker_->With("fair-wait", "line", [&] {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);
        return absl::OkStatus();
      }), IsOk());
    });
    // The next one joins only once this one has its place.
    ASSERT_TRUE(Eventually([&] { return Queued("line") == i + 1; }));
  }
  absl::StatusOr<LockState> st = (*holder)->Inspect();
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->waiting, kWaiters);
  // Every waiter is between attempts: the attempts that queued it and, once
  // subscribed, made sure of its place are behind it (counted below, they
  // would not be handoffs).
  ASSERT_TRUE(Eventually([&] { return GetStats().per_policy["fair-wait"].waiting == kWaiters; }))
      << GetStats().per_policy["fair-wait"].waiting;
  const int64_t calls_before = ScriptCalls();
  const auto start = Clock::now();
  ASSERT_THAT((*holder)->Release(), IsOk());
  for (auto& t : waiters) t.join();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));  // no backoff slept
  std::vector<int> want;
  for (int i = 0; i < kWaiters; ++i) want.push_back(i);
  EXPECT_EQ(order, want);
  // Each handoff is the release alone: it makes the head the owner in its
  // script and names it, the head starts without a call, and the others
  // are not woken (renewal is not due within the 30s default ttl): the
  // holder's release and each waiter's, kWaiters + 1 calls, where heads
  // that called to take the lock would make 2 × kWaiters + 1. (The issue's
  // bound is 4 per handoff.)
  const int64_t calls = ScriptCalls() - calls_before;
  EXPECT_LE(calls, kWaiters + 2) << calls << " script calls for " << kWaiters << " handoffs";
  EXPECT_EQ(Queued("line"), 0);
  // Statistics say what the policy's counters count.
  EXPECT_EQ(GetStats().per_policy["fair-wait"].kind, "fair");
  EXPECT_THAT(StatsPrometheusText(),
              HasSubstr("lock_policy_info{policy=\"fair-wait\",kind=\"fair\"} 1\n"));
}

// A waiter that died (here: a place taken by a bare script call that never
// calls again) leaves the queue when its place's lease (the policy's ttl)
// ends: the waiter behind it is not stalled for longer.
TEST_F(FairTest, ADeadWaiterLeavesTheQueueAfterItsLease) {
  auto holder = locker_->NewLock("fair-fail", "dead");
  ASSERT_THAT(holder, IsOk());
  ASSERT_THAT((*holder)->Acquire(), IsOk());
  // The dead waiter: first in line, with a 600ms place.
  const internal::PrimitiveCall call =
      internal::FairAcquire(FairKeys("f:", "dead"), "dead-waiter", 600, 1, 600);
  std::vector<std::string> argv = {"EVAL", std::string(call.script->body),
                                   absl::StrCat(call.keys.size())};
  argv.insert(argv.end(), call.keys.begin(), call.keys.end());
  argv.insert(argv.end(), call.args.begin(), call.args.end());
  ASSERT_THAT(Redis(argv), HasSubstr("0"));
  ASSERT_EQ(Queued("dead"), 1);
  std::atomic<bool> ran{false};
  Clock::duration waited{};
  std::thread live([&] {
    const auto start = Clock::now();
    EXPECT_THAT(locker_->With("fair-ttl", "dead", [&] {
      waited = Clock::now() - start;
      ran = true;
      return absl::OkStatus();
    }), IsOk());
  });
  ASSERT_TRUE(Eventually([&] { return Queued("dead") == 2; }));
  ASSERT_THAT((*holder)->Release(), IsOk());  // tells the dead head, not us
  live.join();
  EXPECT_TRUE(ran.load());
  // Not before the dead waiter's place ended, and not much after.
  EXPECT_GE(waited, std::chrono::milliseconds(300));
  EXPECT_LT(waited, std::chrono::seconds(3));
  EXPECT_EQ(Queued("dead"), 0);
}

// A waiter that gives up (wait.timeout, or a single try) leaves the queue
// at once instead of stalling the ones behind it for a ttl.
TEST_F(FairTest, AWaiterThatGivesUpLeavesTheQueue) {
  auto holder = locker_->NewLock("fair-fail", "k");
  ASSERT_THAT((*holder)->Acquire(), IsOk());
  absl::Status gave_up = locker_->With("fair-short", "k", [] { return absl::OkStatus(); });
  EXPECT_TRUE(IsBusy(gave_up)) << gave_up;
  EXPECT_THAT(gave_up.message(), HasSubstr("fair lock \"k\" (policy fair-short): place 1 in line"));
  EXPECT_EQ(Queued("k"), 0);
  auto other = locker_->NewLock("fair-fail", "k");
  EXPECT_THAT((*other)->TryAcquire(), ::util::testing::IsOkAndHolds(false));
  EXPECT_EQ(Queued("k"), 0);
  ASSERT_THAT((*holder)->Release(), IsOk());
  // Nobody is left in line: the next acquire gets it at once.
  EXPECT_THAT((*other)->TryAcquire(), ::util::testing::IsOkAndHolds(true));
  EXPECT_THAT((*other)->Release(), IsOk());
}

// Mutual exclusion and fencing under contention; every waiter gets its turn.
TEST_F(FairTest, OneHolderAtATimeWithIncreasingTokens) {
  constexpr int kThreads = 6;
  constexpr int kIterations = 25;
  std::atomic<int> inside{0};
  std::atomic<bool> broken{false};
  std::mutex mu;
  int64_t last_token = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        EXPECT_THAT(locker_->With("fair-wait", "hot", [&](Held& held) {
          if (++inside != 1) broken = true;
          {
            std::lock_guard<std::mutex> lock(mu);
            if (held.fencing_token() <= last_token) broken = true;
            last_token = held.fencing_token();
          }
          std::this_thread::sleep_for(std::chrono::microseconds(300));
          --inside;
          return absl::OkStatus();
        }), IsOk());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_FALSE(broken.load());
  EXPECT_GT(last_token, 0);
  EXPECT_EQ(Queued("hot"), 0);
}

// A hold handed over inside the release starts with what the waiter's
// place had left, and renewal makes it a full lease like any other.
TEST_F(FairTest, AHandedOverHoldIsRenewedPastItsPlace) {
  auto holder = locker_->NewLock("fair-renew", "handed");
  ASSERT_THAT((*holder)->Acquire(), IsOk());
  const PolicyStats before = GetStats().per_policy["fair-renew"];
  const int64_t calls_before = ScriptCalls();
  std::atomic<bool> lost{true};
  std::thread waiter([&] {
    EXPECT_THAT(locker_->With("fair-renew", "handed", [&](Held& held) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // > 3 × ttl
      lost = held.lost();
      EXPECT_EQ(Redis({"HGET", FairKeys("r:", "handed").owner(), "owner"}), held.owner_token());
      return absl::OkStatus();
    }), IsOk());
  });
  // Its two attempts: the first queued it, the second came once it was
  // subscribed (so the handoff's message reaches it); then it waits.
  ASSERT_TRUE(Eventually([&] { return GetStats().per_policy["fair-renew"].waiting == 1; }));
  EXPECT_GE(ScriptCalls() - calls_before, 2);
  ASSERT_EQ(RedisInt({"ZCARD", FairKeys("r:", "handed").queue()}), 1);
  ASSERT_THAT((*holder)->Release(), IsOk());
  waiter.join();
  EXPECT_FALSE(lost.load());
  EXPECT_GE(GetStats().per_policy["fair-renew"].waits_woken_by_notify -
                before.waits_woken_by_notify,
            1);
}

TEST_F(FairTest, HoldIsRenewedAndItsLossSignalled) {
  ASSERT_THAT(locker_->With("fair-renew", "long", [&](Held& held) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // > 3 × ttl
    EXPECT_FALSE(held.lost());
    EXPECT_EQ(Redis({"HGET", FairKeys("r:", "long").owner(), "owner"}), held.owner_token());
    return absl::OkStatus();
  }), IsOk());
  absl::Status s = locker_->With("fair-renew", "gone", [&](Held& held) {
    Redis({"DEL", FairKeys("r:", "gone").owner()});
    EXPECT_TRUE(Eventually([&] { return held.stop_token().stop_requested(); }));
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
}

}  // namespace
}  // namespace lock
