// Edge paths of the engine on one real redis-server: leases the holder
// changes, a final release that fails, Shutdown of run-once jobs, and
// callbacks that call back into the library. Each test is named after the
// hole it pins; each failed before its fix.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <iostream>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/internal/lock_core.h"
#include "lock/lock.h"
#include "lock/testing/locker_from_json.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using harness::Eventually;
using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"], "connect_timeout": "200ms" } },
  "policies": {
    "long": { "key_prefix": "l:", "ttl": "4s", "script_timeout": "200ms",
              "renewal": { "threshold": 0.5 } },
    "short": { "key_prefix": "s:", "ttl": "300ms", "script_timeout": "100ms",
               "renewal": { "threshold": 0.5 } },
    "slow": { "key_prefix": "w:", "ttl": "2s", "script_timeout": "200ms",
              "renewal": { "threshold": 0.5 } },
    "once": { "key_prefix": "o:", "ttl": "2s", "hold_at_least": "10s", "script_timeout": "200ms",
              "on_busy": "fail" }
  }
})json";

class EdgeTest : public harness::RedisTest {
 protected:
  harness::RedisServerOptions ServerOptions() override {
    harness::RedisServerOptions o;
    o.appendonly = true;  // the failed-release test restarts with its data
    return o;
  }
  void SetUp() override {
    harness::RedisTest::SetUp();
    auto locker =
        LockerFromJson(absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}}), "edge.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }
  void TearDown() override {
    SetCallback(nullptr);
    harness::RedisTest::TearDown();
  }
  int64_t Pttl(const std::string& key) { return RedisInt({"PTTL", key}); }

  // Runs `body` on its own thread; a body that does not return within
  // `limit` is a deadlock, which no assertion can unwind: report and exit.
  static void WithoutDeadlock(const std::function<void()>& body,
                              std::chrono::seconds limit = std::chrono::seconds(10)) {
    std::packaged_task<void()> task(body);
    std::future<void> done = task.get_future();
    std::thread t(std::move(task));
    if (done.wait_for(limit) != std::future_status::ready) {
      std::cerr << "DEADLOCK: the test body did not return within " << limit.count()
                << "s\n";
      std::_Exit(1);
    }
    t.join();
  }

  std::shared_ptr<Locker> locker_;
};

// Item 1: Extend(500ms) under a 4s policy left renewal on the policy's
// schedule (due at 2s): the key expired at 0.5s and lost() stayed false.
TEST_F(EdgeTest, ExtendShorterThanThePolicyIsRenewedOnTheNewLease) {
  ASSERT_THAT(locker_->With("long", "shorter", [&](Held& held) {
    EXPECT_THAT(held.Extend(absl::Milliseconds(500)), IsOk());
    EXPECT_LE(Pttl("{l:shorter}"), 500);
    const auto end = Clock::now() + milliseconds(1500);  // 3 of the new leases
    while (Clock::now() < end) {
      const std::string owner = Redis({"HGET", "{l:shorter}", "owner"});
      EXPECT_EQ(owner, held.owner_token());
      if (owner != held.owner_token()) break;
      std::this_thread::sleep_for(milliseconds(25));
    }
    EXPECT_FALSE(held.lost());
    return absl::OkStatus();
  }), IsOk());
}

// Item 1: a renewal on the policy's ttl (300ms) undid Extend(10s).
TEST_F(EdgeTest, RenewalDoesNotUndoALongerExtend) {
  ASSERT_THAT(locker_->With("short", "longer", [&](Held& held) {
    EXPECT_THAT(held.Extend(absl::Seconds(10)), IsOk());
    std::this_thread::sleep_for(milliseconds(900));  // 3 policy ttls
    EXPECT_GT(Pttl("{s:longer}"), 8000);
    EXPECT_FALSE(held.lost());
    return absl::OkStatus();
  }), IsOk());
}

// Item 1: remaining() follows the lease the holder set, never the policy's.
TEST_F(EdgeTest, RemainingFollowsAShorterExtend) {
  auto l = *locker_->NewLock("long", "remaining");
  ASSERT_THAT(l->Acquire(), IsOk());
  ASSERT_THAT(l->EnableAutoRenew(), IsOk());
  ASSERT_THAT(l->Renew(absl::Milliseconds(600)), IsOk());
  for (int i = 0; i < 20; ++i) {
    EXPECT_LE(l->remaining(), absl::Milliseconds(600));
    EXPECT_LE(absl::ToInt64Milliseconds(l->remaining()), Pttl("{l:remaining}") + 5);
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_THAT(l->Release(), IsOk());
}

// Item 1: a renewal sent before an Extend and answered after it stored its
// own, longer validity over the Extend's: remaining() said ~4s while Redis
// held 500ms. The renewal of hold "b" is held back deterministically: it
// shares a pipeline with hold "a", whose OnRenewed callback (run before
// "b"'s reply is read) waits until the test has extended "b".
TEST_F(EdgeTest, RenewalAnsweredAfterAnExtendDoesNotOverstateRemaining) {
  struct Gate : LockCallback {
    std::promise<void> entered;
    std::shared_future<void> release;
    std::atomic<bool> once{false};
    void OnRenewed(std::string_view, std::string_view key, absl::Duration) override {
      if (key != "a" || once.exchange(true)) return;
      entered.set_value();
      release.wait();
    }
  };
  auto gate = std::make_shared<Gate>();
  std::promise<void> open;
  gate->release = open.get_future().share();
  std::future<void> entered = gate->entered.get_future();
  SetCallback(gate);
  auto a = *locker_->NewLock("long", "a");
  auto b = *locker_->NewLock("long", "b");
  ASSERT_THAT(a->Acquire(), IsOk());
  ASSERT_THAT(b->Acquire(), IsOk());  // due a few ms after "a": same pipeline
  ASSERT_THAT(a->EnableAutoRenew(), IsOk());
  ASSERT_THAT(b->EnableAutoRenew(), IsOk());
  ASSERT_EQ(entered.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  // "b"'s renewal ran in Redis; its reply waits behind "a"'s callback.
  ASSERT_THAT(b->Renew(absl::Milliseconds(500)), IsOk());
  open.set_value();
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_LE(b->remaining(), absl::Milliseconds(500));
  EXPECT_LE(absl::ToInt64Milliseconds(b->remaining()), Pttl("{l:b}") + 5);
  SetCallback(nullptr);
  EXPECT_THAT(a->Release(), IsOk());
  EXPECT_THAT(b->Release(), IsOk());
}

// Item 8: Shutdown sent keep=0 and freed a run-once job's key early.
TEST_F(EdgeTest, ShutdownHonoursHoldAtLeast) {
  InitWith(locker_);  // lock::Shutdown releases the process-wide Locker's locks
  auto l = *locker_->NewLock("once", "job");
  ASSERT_THAT(l->Acquire(), IsOk());
  Shutdown(absl::Seconds(2));
  EXPECT_EQ(RedisInt({"EXISTS", "{o:job}"}), 1);
  EXPECT_GT(Pttl("{o:job}"), 8000);
  // Nobody can run the job again in the same period.
  EXPECT_TRUE(IsBusy(locker_->With("once", "job", [] { return absl::OkStatus(); })));
}

// Item 9: a final release that failed set released=true for good: the hold
// was never renewed again and expired silently, and a later release said
// "not held".
TEST_F(EdgeTest, FailedFinalReleaseKeepsTheHoldRenewed) {
  auto l = *locker_->NewLock("slow", "rel");
  ASSERT_THAT(l->Acquire(), IsOk());
  ASSERT_THAT(l->EnableAutoRenew(), IsOk());
  const std::string token = l->owner_token();
  ASSERT_THAT(server().Kill(), IsOk());
  EXPECT_THAT(l->Release(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(l->hold_count(), 1);
  ASSERT_THAT(server().Restart(/*keep_data=*/true), IsOk());
  std::this_thread::sleep_for(milliseconds(3000));  // 1.5 ttl
  EXPECT_EQ(Redis({"HGET", "{w:rel}", "owner"}), token);
  ASSERT_NE(lock::internal::LockAccess::Core(*l).hold(), nullptr);
  EXPECT_FALSE(lock::internal::LockAccess::Core(*l).hold()->lost.load());
  EXPECT_THAT(l->Release(), IsOk());
  EXPECT_EQ(RedisInt({"EXISTS", "{w:rel}"}), 0);
}

// Item 9, the other side: a lock destroyed after its release failed has no
// owner left to retry; it must not be renewed forever, only expire.
TEST_F(EdgeTest, DestroyedLockWhoseReleaseFailedExpires) {
  {
    auto l = *locker_->NewLock("slow", "gone");
    ASSERT_THAT(l->Acquire(), IsOk());
    ASSERT_THAT(l->EnableAutoRenew(), IsOk());
    ASSERT_THAT(server().Kill(), IsOk());
  }  // the destructor's release fails
  ASSERT_THAT(server().Restart(/*keep_data=*/true), IsOk());
  EXPECT_TRUE(Eventually([&] { return RedisInt({"EXISTS", "{w:gone}"}) == 0; },
                         std::chrono::seconds(6)))
      << "still renewed: PTTL " << Pttl("{w:gone}");
}

// Item 10: a stop_callback that calls back into the lock ran under the
// lock's operation mutex and deadlocked.
TEST_F(EdgeTest, StopCallbackMayCallBackIntoTheLock) {
  WithoutDeadlock([&] {
    absl::Status s = locker_->With("long", "cb", [&](Held& held) {
      std::atomic<int> called{0};
      absl::Status inner;
      std::stop_callback on_stop(held.stop_token(), [&] {
        inner = held.Extend(absl::Seconds(1));  // re-enters the same lock
        ++called;
      });
      Redis({"DEL", "{l:cb}"});
      EXPECT_TRUE(IsNotHeld(held.Extend(absl::Seconds(5))));
      EXPECT_EQ(called.load(), 1);
      EXPECT_TRUE(IsNotHeld(inner)) << inner;
      return absl::OkStatus();
    });
    EXPECT_TRUE(IsLost(s)) << s;
  });
}

// Item 10: lock::Shutdown from OnLost, which runs on a renewal thread,
// joined that very thread: std::terminate.
TEST_F(EdgeTest, ShutdownFromOnLostDoesNotTerminate) {
  InitWith(locker_);  // so that Shutdown stops the renewal thread it runs on
  struct ShutdownOnLost : LockCallback {
    std::atomic<int> lost{0};
    void OnLost(std::string_view, std::string_view, const absl::Status&) override {
      ++lost;
      Shutdown(absl::Seconds(1));
    }
  };
  auto cb = std::make_shared<ShutdownOnLost>();
  SetCallback(cb);
  WithoutDeadlock([&] {
    absl::Status s = locker_->With("short", "shut", [&](Held& held) {
      Redis({"DEL", "{s:shut}"});
      EXPECT_TRUE(Eventually([&] { return held.stop_token().stop_requested(); }));
      return absl::OkStatus();
    });
    EXPECT_TRUE(IsLost(s)) << s;
  });
  EXPECT_EQ(cb->lost.load(), 1);
  SetCallback(nullptr);
  // Renewal starts again for the next lock.
  ASSERT_THAT(locker_->With("short", "after", [&](Held& held) {
    std::this_thread::sleep_for(milliseconds(700));
    EXPECT_FALSE(held.lost());
    return absl::OkStatus();
  }), IsOk());
}

// Item 10: every callback about a lock runs with no lock of the engine
// held, whatever thread it runs on (the caller's for OnAcquired and
// OnReleased, a renewal worker's for OnRenewed and OnLost), so each may
// call into the very lock it reports on.
TEST_F(EdgeTest, EveryCallbackMayCallIntoTheLockItReportsOn) {
  auto made = locker_->NewLock("short", "cbs");
  ASSERT_THAT(made, IsOk());
  RedisLock* rl = made->get();
  // Each callback acts on its first call only, and says so after its inner
  // call returned (so that the test reads what that call got).
  struct IntoTheLock : LockCallback {
    RedisLock* rl = nullptr;
    std::atomic<int> acquired{0};
    std::atomic<bool> claimed[4] = {false, false, false, false};
    std::atomic<bool> done[4] = {false, false, false, false};
    absl::Status got[4];  // what the inner calls returned
    enum { kAcquired, kRenewed, kReleased, kLost };
    bool First(std::string_view key, int which) {
      return key == "cbs" && !claimed[which].exchange(true);
    }
    // Every hold of the test is renewed from here: a lock made by NewLock
    // is renewed only once asked to.
    void OnAcquired(std::string_view, std::string_view key, absl::Duration) override {
      if (key != "cbs") return;
      ++acquired;
      absl::Status s = rl->Renew(absl::Milliseconds(300));
      if (s.ok()) s = rl->EnableAutoRenew();
      if (!First(key, kAcquired)) return;
      got[kAcquired] = s;
      done[kAcquired] = true;
    }
    void OnRenewed(std::string_view, std::string_view key, absl::Duration) override {
      if (!First(key, kRenewed)) return;
      got[kRenewed] = rl->Inspect().status();
      done[kRenewed] = true;
    }
    void OnReleased(std::string_view, std::string_view key, absl::Duration) override {
      if (!First(key, kReleased)) return;
      got[kReleased] = rl->IsLocked().status();
      done[kReleased] = true;
    }
    void OnLost(std::string_view, std::string_view key, const absl::Status&) override {
      if (!First(key, kLost)) return;
      got[kLost] = rl->Release();
      done[kLost] = true;
    }
  };
  auto cb = std::make_shared<IntoTheLock>();
  cb->rl = rl;
  SetCallback(cb);
  WithoutDeadlock([&] {
    ASSERT_THAT(rl->Acquire(), IsOk());
    EXPECT_TRUE(Eventually([&] { return cb->done[IntoTheLock::kRenewed].load(); }));
    ASSERT_THAT(rl->Release(), IsOk());
    ASSERT_THAT(rl->Acquire(), IsOk());
    Redis({"DEL", "{s:cbs}"});
    EXPECT_TRUE(Eventually([&] { return cb->done[IntoTheLock::kLost].load(); }));
  });
  SetCallback(nullptr);
  EXPECT_EQ(cb->acquired.load(), 2);
  ASSERT_TRUE(cb->done[IntoTheLock::kAcquired] && cb->done[IntoTheLock::kReleased]);
  EXPECT_THAT(cb->got[IntoTheLock::kAcquired], IsOk());
  EXPECT_THAT(cb->got[IntoTheLock::kRenewed], IsOk());
  EXPECT_THAT(cb->got[IntoTheLock::kReleased], IsOk());
  // The lost lock's release, from OnLost, returns and says it was not held.
  EXPECT_FALSE(cb->got[IntoTheLock::kLost].ok());
}

}  // namespace
}  // namespace lock
