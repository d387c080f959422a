// The semaphore kind through the engine (issue 15): lock::With / Locker::With
// / NewLock on a "kind": "semaphore" policy take one permit of `permits`,
// against a real redis-server. Permits, busy outcomes, waiting woken by the
// release channel, auto-renewal and loss, a dead holder's permit returning
// at the end of its lease, re-entry, fencing token 0 and statistics.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/internal/keys.h"
#include "lock/internal/lock_core.h"
#include "lock/lock.h"
#include "lock/testing/locker_from_json.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using harness::Eventually;
using internal::SemaphoreKeys;
using ::testing::HasSubstr;
using ::util::testing::IsOk;
using ::util::testing::IsOkAndHolds;
using ::util::testing::StatusIs;
using Clock = std::chrono::steady_clock;

// Policies on one prefix share their semaphores ("sem-*" on "s:"): they
// differ only in what a busy acquire does.
constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"] } },
  "policies": {
    "sem-fail": { "kind": "semaphore", "permits": 3, "key_prefix": "s:", "on_busy": "fail" },
    "sem-skip": { "kind": "semaphore", "permits": 3, "key_prefix": "s:", "on_busy": "skip" },
    "sem-wait": { "kind": "semaphore", "permits": 3, "key_prefix": "s:",
                  "wait": { "timeout": "10s", "notify": true },
                  "retry": { "initial_delay": "5s", "max_delay": "5s", "jitter": 0 } },
    "sem-busy": { "kind": "semaphore", "permits": 3, "key_prefix": "b:",
                  "wait": { "timeout": "30s" },
                  "retry": { "initial_delay": "1ms", "max_delay": "5ms" } },
    "sem-renew": { "kind": "semaphore", "permits": 2, "key_prefix": "r:", "ttl": "300ms",
                   "script_timeout": "100ms", "renewal": { "threshold": 0.5 } },
    "sem-dead": { "kind": "semaphore", "permits": 1, "key_prefix": "d:", "ttl": "400ms",
                  "renewal": { "enabled": false }, "wait": { "timeout": "5s" },
                  "retry": { "initial_delay": "5s", "max_delay": "5s", "jitter": 0 } },
    "sem-once": { "kind": "semaphore", "permits": 2, "key_prefix": "o:", "reentrant": false },
    "mutex": { "key_prefix": "s:" },
    "mutex-renew": { "key_prefix": "r:", "ttl": "300ms", "script_timeout": "100ms",
                     "renewal": { "threshold": 0.5 } }
  }
})json";

class SemaphoreTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    auto locker =
        LockerFromJson(absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}}), "sem.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }

  // Permits in use, as Redis counts them (the holders ZSET).
  int64_t InUse(const std::string& prefix, const std::string& key) {
    return RedisInt({"ZCARD", SemaphoreKeys(prefix, key).holders()});
  }

  std::unique_ptr<Locker> locker_;
};

// N permits: N sections run at once; the next one is busy (fail), skipped
// (skip), or waits and is woken by the release channel (wait).
TEST_F(SemaphoreTest, NPermitsRunAtOnceAndTheNextIsBusyOrWaits) {
  const PolicyStats before = GetStats().per_policy["sem-wait"];
  std::latch inside(3);
  std::latch leave(1);
  std::vector<std::thread> holders;
  std::atomic<int> running{0};
  for (int i = 0; i < 3; ++i) {
    holders.emplace_back([&] {
      EXPECT_THAT(locker_->With("sem-fail", "k", [&](Held& held) {
        EXPECT_EQ(held.fencing_token(), 0);
        ++running;
        inside.count_down();
        leave.wait();
        --running;
        return absl::OkStatus();
      }), IsOk());
    });
  }
  inside.wait();
  EXPECT_EQ(running.load(), 3);
  EXPECT_EQ(InUse("s:", "k"), 3);

  bool ran = false;
  absl::Status busy = locker_->With("sem-fail", "k", [&] {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsBusy(busy)) << busy;
  EXPECT_THAT(busy.message(), HasSubstr("has all 3 permits taken (3 in use)"));
  EXPECT_TRUE(lock::IsSkipped(locker_->With("sem-skip", "k", [&] {
    ran = true;
    return absl::OkStatus();
  })));
  EXPECT_FALSE(ran);

  // A waiter (its backoff 5s) is woken by the first permit given back.
  std::atomic<bool> waiter_ran{false};
  Clock::duration waited{};
  std::thread waiter([&] {
    const auto start = Clock::now();
    EXPECT_THAT(locker_->With("sem-wait", "k", [&] {
      waited = Clock::now() - start;
      waiter_ran = true;
      return absl::OkStatus();
    }), IsOk());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(waiter_ran.load());
  leave.count_down();
  for (auto& t : holders) t.join();
  waiter.join();
  EXPECT_TRUE(waiter_ran.load());
  EXPECT_LT(waited, std::chrono::seconds(3));
  const PolicyStats after = GetStats().per_policy["sem-wait"];
  EXPECT_GE(after.waits_woken_by_notify - before.waits_woken_by_notify, 1);
  EXPECT_EQ(after.acquired - before.acquired, 1);
  EXPECT_EQ(InUse("s:", "k"), 0);
}

// Never more than N holders at once, under contention.
TEST_F(SemaphoreTest, NeverMoreThanNHolders) {
  constexpr int kThreads = 8;
  constexpr int kIterations = 40;
  const PolicyStats before = GetStats().per_policy["sem-busy"];
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        absl::Status s = locker_->With("sem-busy", "hot", [&] {
          const int now = ++inside;
          int seen = most.load();
          while (now > seen && !most.compare_exchange_weak(seen, now)) {
          }
          std::this_thread::sleep_for(std::chrono::microseconds(500));
          --inside;
          return absl::OkStatus();
        });
        EXPECT_THAT(s, IsOk());
        if (s.ok()) ++done;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(done.load(), kThreads * kIterations);
  EXPECT_LE(most.load(), 3);
  EXPECT_GE(most.load(), 2);  // permits are shared, not one at a time
  const PolicyStats after = GetStats().per_policy["sem-busy"];
  EXPECT_EQ(after.acquired - before.acquired, kThreads * kIterations);
  EXPECT_EQ(after.released - before.released, kThreads * kIterations);
  EXPECT_EQ(after.active, before.active);
  EXPECT_EQ(InUse("b:", "hot"), 0);
}

// Auto-renewal keeps a permit across five TTLs.
TEST_F(SemaphoreTest, RenewalKeepsThePermitPastSeveralTtls) {
  const PolicyStats before = GetStats().per_policy["sem-renew"];
  const std::string holders = SemaphoreKeys("r:", "long").holders();
  ASSERT_THAT(locker_->With("sem-renew", "long", [&](Held& held) {
    const auto end = Clock::now() + std::chrono::milliseconds(1500);  // 5 × ttl
    while (Clock::now() < end) {
      EXPECT_NE(Redis({"ZSCORE", holders, held.owner_token()}), "");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_FALSE(held.lost());
    return absl::OkStatus();
  }), IsOk());
  EXPECT_GE(GetStats().per_policy["sem-renew"].renewals - before.renewals, 5);
  EXPECT_EQ(InUse("r:", "long"), 0);
}

// A mutex and a permit held at once on one Redis are renewed by the same
// manager (in one pipeline when due together), each by its own script
// (extend.lua, lease_extend.lua).
TEST_F(SemaphoreTest, PermitAndMutexAreRenewedSideBySide) {
  ASSERT_THAT(locker_->With("sem-renew", "both", [&](Held& permit) {
    return locker_->With("mutex-renew", "both", [&](Held& mutex) {
      std::this_thread::sleep_for(std::chrono::milliseconds(900));  // 3 × ttl
      EXPECT_FALSE(permit.lost());
      EXPECT_FALSE(mutex.lost());
      EXPECT_EQ(Redis({"HGET", "{r:both}", "owner"}), mutex.owner_token());
      EXPECT_NE(Redis({"ZSCORE", SemaphoreKeys("r:", "both").holders(), permit.owner_token()}),
                "");
      return absl::OkStatus();
    });
  }), IsOk());
}

// lock::Shutdown gives back the permits of the process-wide Locker.
TEST_F(SemaphoreTest, ShutdownGivesThePermitBack) {
  auto shared = LockerFromJson(absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}}),
                               "shared.json");
  ASSERT_THAT(shared, IsOk());
  std::shared_ptr<Locker> global = *std::move(shared);
  InitWith(global);
  auto lk = global->NewLock("sem-renew", "shut");
  ASSERT_THAT(lk, IsOk());
  ASSERT_THAT((*lk)->Acquire(), IsOk());
  ASSERT_THAT((*lk)->EnableAutoRenew(), IsOk());
  EXPECT_EQ(InUse("r:", "shut"), 1);
  std::shared_ptr<internal::HoldState> hold = internal::LockAccess::Core(**lk).hold();
  Shutdown(absl::Seconds(2));
  EXPECT_TRUE(hold->lost.load());
  EXPECT_EQ(InUse("r:", "shut"), 0);
}

// A renewal that finds the permit gone marks the hold lost.
TEST_F(SemaphoreTest, PermitRemovedBehindTheHolderIsLost) {
  const PolicyStats before = GetStats().per_policy["sem-renew"];
  const std::string holders = SemaphoreKeys("r:", "gone").holders();
  absl::Status s = locker_->With("sem-renew", "gone", [&](Held& held) {
    EXPECT_EQ(RedisInt({"ZREM", holders, held.owner_token()}), 1);
    EXPECT_TRUE(Eventually([&] { return held.stop_token().stop_requested(); }));
    EXPECT_TRUE(held.lost());
    // Extend finds it gone too.
    EXPECT_TRUE(IsNotHeld(held.Extend(absl::Seconds(1))));
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
  EXPECT_EQ(GetStats().per_policy["sem-renew"].lost - before.lost, 1);
}

// A holder that dies (never releases, never renews) gives its permit back
// exactly when its lease ends, never earlier.
TEST_F(SemaphoreTest, DeadHoldersPermitReturnsAfterItsLease) {
  auto dead = locker_->NewLock("sem-dead", "job");
  ASSERT_THAT(dead, IsOk());
  const auto taken = Clock::now();
  ASSERT_THAT((*dead)->Acquire(), IsOk());
  EXPECT_EQ((*dead)->fencing_token(), 0);

  auto next = locker_->NewLock("sem-dead", "job");
  ASSERT_THAT(next, IsOk());
  EXPECT_THAT((*next)->TryAcquire(), IsOkAndHolds(false));
  // Its backoff is 5s, so only the end of the dead lease (the busy reply's
  // "first returns in") can end the wait this early.
  ASSERT_THAT((*next)->Acquire(), IsOk());
  const auto got = Clock::now() - taken;
  EXPECT_GE(got, std::chrono::milliseconds(400 - 5));
  EXPECT_LT(got, std::chrono::seconds(3));
  EXPECT_EQ(InUse("d:", "job"), 1);
  // The dead holder finds out when it finally tries to let go.
  EXPECT_TRUE(IsNotHeld((*dead)->Release()));
  EXPECT_THAT((*next)->Release(), IsOk());
  EXPECT_EQ(InUse("d:", "job"), 0);
}

// A Locker destroyed with a permit still held (its lock instance leaked, as
// by a crash) keeps nobody out past the lease.
TEST_F(SemaphoreTest, PermitOfAnAbandonedLockerReturns) {
  auto other = LockerFromJson(absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}}),
                              "other.json");
  ASSERT_THAT(other, IsOk());
  auto held = (*other)->NewLock("sem-dead", "abandoned");
  ASSERT_THAT(held, IsOk());
  ASSERT_THAT((*held)->Acquire(), IsOk());
  other->reset();
  // Its instance is left alone until the end, as a killed process leaves
  // its permit: nobody releases or renews it.
  const auto start = Clock::now();
  EXPECT_THAT(locker_->With("sem-dead", "abandoned", [] { return absl::OkStatus(); }), IsOk());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_TRUE(IsNotHeld((*held)->Release()));
}

// Re-entry: the same instance re-enters its one permit; levels are local.
TEST_F(SemaphoreTest, ReentryKeepsOnePermit) {
  auto lk = locker_->NewLock("sem-fail", "re");
  ASSERT_THAT(lk, IsOk());
  ASSERT_THAT((*lk)->Acquire(), IsOk());
  ASSERT_THAT((*lk)->Acquire(), IsOk());
  EXPECT_EQ((*lk)->hold_count(), 2);
  EXPECT_EQ(InUse("s:", "re"), 1);
  absl::StatusOr<LockState> st = (*lk)->Inspect();
  ASSERT_THAT(st, IsOk());
  EXPECT_TRUE(st->held);
  EXPECT_EQ(st->holders, 1);
  EXPECT_EQ(st->owner_token, (*lk)->owner_token());
  EXPECT_EQ(st->hold_count, 2);
  EXPECT_EQ(st->fencing_token, 0);
  EXPECT_THAT((*lk)->IsLocked(), IsOkAndHolds(true));
  // One level cannot be released from outside: Redis keeps no levels.
  EXPECT_THAT(locker_->UnlockByValue("sem-fail", "re", (*lk)->owner_token()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("a shared hold's levels are counted by the instance")));
  ASSERT_THAT((*lk)->Release(), IsOk());
  EXPECT_EQ((*lk)->hold_count(), 1);
  EXPECT_EQ(InUse("s:", "re"), 1);
  ASSERT_THAT((*lk)->Release(), IsOk());
  EXPECT_EQ(InUse("s:", "re"), 0);
  EXPECT_TRUE(IsNotHeld((*lk)->Release()));
}

TEST_F(SemaphoreTest, NonReentrantPolicyRefusesANestedAcquire) {
  auto lk = locker_->NewLock("sem-once", "k");
  ASSERT_THAT(lk, IsOk());
  ASSERT_THAT((*lk)->Acquire(), IsOk());
  EXPECT_THAT((*lk)->Acquire(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("is not reentrant")));
  EXPECT_EQ(InUse("o:", "k"), 1);
  EXPECT_THAT((*lk)->Release(), IsOk());
}

// A nested With on the same semaphore from the same thread is refused (it
// would be another permit of the same caller, or wait for itself); a mutex
// with the same prefix and key is a different Redis key.
TEST_F(SemaphoreTest, NestedWithOnTheSameSemaphoreIsASelfDeadlock) {
  EXPECT_THAT(locker_->With("sem-fail", "nest", [&] {
    EXPECT_TRUE(IsSelfDeadlock(locker_->With("sem-wait", "nest", [] {
      return absl::OkStatus();
    })));
    EXPECT_THAT(locker_->With("mutex", "nest", [] { return absl::OkStatus(); }), IsOk());
    return absl::OkStatus();
  }), IsOk());
}

// A semaphore hold has fencing token 0, and FencedSet says why it refuses it.
TEST_F(SemaphoreTest, FencedSetRefusesASemaphoresToken) {
  EXPECT_THAT(locker_->With("sem-fail", "fence", [&](Held& held) {
    EXPECT_EQ(held.fencing_token(), 0);
    EXPECT_THAT(locker_->FencedSet("sem-fail", "resource", "v", held.fencing_token()),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         HasSubstr("is what a semaphore hold carries: its permits are "
                                   "shared by up to 3 holders")));
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(RedisInt({"EXISTS", "resource"}), 0);
  EXPECT_EQ(RedisInt({"EXISTS", "{s:fence}:fence"}), 0);  // no token was issued
}

TEST_F(SemaphoreTest, StatsCountUnderThePolicy) {
  const PolicyStats before = GetStats().per_policy["sem-fail"];
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(locker_->With("sem-fail", "stats", [] { return absl::OkStatus(); }), IsOk());
  }
  auto a = locker_->NewLock("sem-fail", "one");
  auto b = locker_->NewLock("sem-fail", "one");
  auto c = locker_->NewLock("sem-fail", "one");
  auto d = locker_->NewLock("sem-fail", "one");
  for (auto* l : {&a, &b, &c}) ASSERT_THAT((**l)->Acquire(), IsOk());
  EXPECT_EQ(GetStats().per_policy["sem-fail"].active - before.active, 3);
  EXPECT_TRUE(IsBusy((*d)->Acquire()));
  for (auto* l : {&a, &b, &c}) ASSERT_THAT((**l)->Release(), IsOk());
  const PolicyStats after = GetStats().per_policy["sem-fail"];
  EXPECT_EQ(after.acquired - before.acquired, 6);
  EXPECT_EQ(after.released - before.released, 6);
  EXPECT_EQ(after.busy - before.busy, 1);
  EXPECT_EQ(after.active, before.active);
}

// Permits counted on independent masters could not bound the holders.
TEST_F(SemaphoreTest, SemaphoreOnARedlockTargetIsRefused) {
  const std::string config = absl::StrReplaceAll(R"json({
    "redis": { "default": { "addrs": ["ADDR"] },
               "quorum": { "mode": "redlock", "addrs": ["ADDR", "ADDR2", "ADDR3"] } },
    "policies": { "q": { "kind": "semaphore", "permits": 2, "redis": "quorum" } }
  })json", {{"ADDR2", "127.0.0.1:1"}, {"ADDR3", "127.0.0.1:2"}, {"ADDR", server().addr()}});
  auto locker = LockerFromJson(config, "redlock.json");
  ASSERT_THAT(locker, IsOk());
  EXPECT_THAT((*locker)->NewLock("q", "k"),
              StatusIs(absl::StatusCode::kUnimplemented,
                       HasSubstr("is of kind \"semaphore\" on redis target \"quorum\", a Redlock")));
}

}  // namespace
}  // namespace lock
