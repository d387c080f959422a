// Waiting, auto-renewal, loss and statistics against a real redis-server.
#include <atomic>
#include <chrono>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
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
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"] } },
  "policies": {
    "notify": { "key_prefix": "n:", "wait": { "timeout": "10s", "notify": true },
                "retry": { "initial_delay": "5s", "max_delay": "5s", "jitter": 0 } },
    "poll": { "key_prefix": "p:", "wait": { "timeout": "300ms", "notify": false },
              "retry": { "initial_delay": "20ms", "max_delay": "50ms" } },
    "fallback": { "key_prefix": "f:", "wait": { "timeout": "10s", "notify": true },
                  "retry": { "initial_delay": "50ms", "max_delay": "100ms" } },
    "renew": { "key_prefix": "r:", "ttl": "300ms", "script_timeout": "100ms",
               "renewal": { "threshold": 0.5 } },
    "renew-ignore": { "key_prefix": "ri:", "ttl": "300ms", "script_timeout": "100ms",
                      "renewal": { "threshold": 0.5, "on_failure": "ignore" } },
    "stats": { "key_prefix": "s:", "on_busy": "fail" },
    "stats-skip": { "key_prefix": "s:", "on_busy": "skip" }
  }
})json";

class RenewalTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    auto locker =
        LockerFromJson(absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}}), "test.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }
  void TearDown() override {
    SetCallback(nullptr);
    harness::RedisTest::TearDown();
  }

  std::unique_ptr<RedisLock> Holder(const std::string& policy, const std::string& key) {
    auto l = locker_->NewLock(policy, key);
    EXPECT_THAT(l, IsOk());
    EXPECT_THAT((*l)->Acquire(), IsOk());
    return *std::move(l);
  }

  std::shared_ptr<Locker> locker_;
};

TEST_F(RenewalTest, ReleaseWakesTheWaiterLongBeforeItsBackoff) {
  auto holder = Holder("notify", "h");
  const PolicyStats before = GetStats().per_policy["notify"];
  std::atomic<bool> acquired{false};
  Clock::time_point acquired_at;
  std::thread waiter([&] {
    EXPECT_THAT(locker_->With("notify", "h", [&] {
      acquired_at = Clock::now();
      acquired = true;
      return absl::OkStatus();
    }), IsOk());
  });
  // The waiter has subscribed once Redis counts a subscriber on the channel.
  ASSERT_TRUE(Eventually([&] {
    return Redis({"PUBSUB", "NUMSUB", "{n:h}:released"}) == "{n:h}:released\n1";
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let it wait
  const Clock::time_point released_at = Clock::now();
  ASSERT_THAT(holder->Release(), IsOk());
  waiter.join();
  ASSERT_TRUE(acquired);
  // Its backoff was 5s: only the notification explains an early wake-up.
  EXPECT_LT(acquired_at - released_at, std::chrono::seconds(2));
  const PolicyStats after = GetStats().per_policy["notify"];
  EXPECT_GE(after.waits_woken_by_notify - before.waits_woken_by_notify, 1);
  EXPECT_EQ(after.waits_woken_by_timer - before.waits_woken_by_timer, 0);
}

TEST_F(RenewalTest, WaitWithoutNotifyRespectsItsDeadline) {
  auto holder = Holder("poll", "d");
  const Clock::time_point start = Clock::now();
  absl::Status s = locker_->With("poll", "d", [] { return absl::OkStatus(); });
  const auto waited = Clock::now() - start;
  EXPECT_TRUE(IsBusy(s)) << s;
  EXPECT_GE(waited, std::chrono::milliseconds(300));
  EXPECT_LT(waited, std::chrono::milliseconds(300 + 1500));  // generous slack
  EXPECT_EQ(Redis({"PUBSUB", "NUMSUB", "{p:d}:released"}), "{p:d}:released\n0");
}

TEST_F(RenewalTest, KilledSubscriberFallsBackToPolling) {
  auto holder = Holder("fallback", "k");
  std::thread waiter([&] {
    EXPECT_THAT(locker_->With("fallback", "k", [] { return absl::OkStatus(); }), IsOk());
  });
  ASSERT_TRUE(Eventually([&] {
    return Redis({"PUBSUB", "NUMSUB", "{f:k}:released"}) == "{f:k}:released\n1";
  }));
  Redis({"CLIENT", "KILL", "TYPE", "pubsub"});
  // Freed without any publish: only polling can notice.
  Redis({"DEL", "{f:k}"});
  waiter.join();
}

TEST_F(RenewalTest, RenewalKeepsTheLockAcrossFiveTtls) {
  const PolicyStats before = GetStats().per_policy["renew"];
  ASSERT_THAT(locker_->With("renew", "long", [&](Held& held) {
    const auto end = Clock::now() + std::chrono::milliseconds(1500);  // 5 × ttl
    while (Clock::now() < end) {
      EXPECT_EQ(Redis({"HGET", "{r:long}", "owner"}), held.owner_token());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_FALSE(held.lost());
    return absl::OkStatus();
  }), IsOk());
  EXPECT_GE(GetStats().per_policy["renew"].renewals - before.renewals, 5);
}

TEST_F(RenewalTest, PausedRedisPastTheTtlMarksTheHolderLost) {
  absl::Status s = locker_->With("renew", "pause", [&](Held& held) {
    EXPECT_THAT(server().Pause(), IsOk());
    const bool signalled =
        Eventually([&] { return held.stop_token().stop_requested(); });
    EXPECT_THAT(server().Resume(), IsOk());
    EXPECT_TRUE(signalled);
    EXPECT_TRUE(held.lost());
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
}

TEST_F(RenewalTest, LockDeletedBehindTheHolderIsSignalled) {
  std::atomic<int> lost_events{0};
  struct Counter : LockCallback {
    std::atomic<int>* n;
    void OnLost(std::string_view, std::string_view key, const absl::Status&) override {
      if (key == "gone") ++*n;
    }
  };
  auto cb = std::make_shared<Counter>();
  cb->n = &lost_events;
  SetCallback(cb);
  absl::Status s = locker_->With("renew", "gone", [&](Held& held) {
    Redis({"DEL", "{r:gone}"});
    EXPECT_TRUE(Eventually([&] { return held.stop_token().stop_requested(); }));
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
  EXPECT_EQ(lost_events.load(), 1);
}

TEST_F(RenewalTest, IgnorePolicyReportsLossWithoutStopping) {
  absl::Status s = locker_->With("renew-ignore", "gone", [&](Held& held) {
    Redis({"DEL", "{ri:gone}"});
    EXPECT_TRUE(Eventually([&] { return held.lost(); }));
    EXPECT_FALSE(held.stop_token().stop_requested());
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
}

TEST_F(RenewalTest, NoRenewalAfterRelease) {
  ASSERT_THAT(locker_->With("renew", "done", [] { return absl::OkStatus(); }), IsOk());
  const Stats before = GetStats();
  Redis({"CONFIG", "RESETSTAT"});
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // 2 × ttl
  const Stats after = GetStats();
  EXPECT_EQ(after.per_policy.at("renew").renewals, before.per_policy.at("renew").renewals);
  EXPECT_EQ(after.round_trips, before.round_trips);
  // Redis saw no script call at all since the release.
  EXPECT_THAT(Redis({"INFO", "commandstats"}), ::testing::Not(HasSubstr("evalsha")));
  EXPECT_EQ(RedisInt({"EXISTS", "{r:done}"}), 0);
}

TEST_F(RenewalTest, ManyHoldsAreRenewedInFewRoundTrips) {
  std::vector<std::unique_ptr<RedisLock>> locks;
  for (int i = 0; i < 200; ++i) {
    locks.push_back(Holder("renew", absl::StrCat("many", i)));
    ASSERT_THAT(locks.back()->EnableAutoRenew(), IsOk());
  }
  const Stats before = GetStats();
  std::this_thread::sleep_for(std::chrono::milliseconds(900));  // ~6 periods
  const Stats after = GetStats();
  const int64_t renewals = after.per_policy.at("renew").renewals -
                           before.per_policy.at("renew").renewals;
  const int64_t trips = after.round_trips - before.round_trips;
  EXPECT_GE(renewals, 200 * 4);
  EXPECT_LT(trips * 10, renewals) << trips << " round trips for " << renewals;
  for (auto& l : locks) EXPECT_THAT(l->Release(), IsOk());
}

TEST_F(RenewalTest, StatsMatchAScriptedSequence) {
  const PolicyStats b1 = GetStats().per_policy["stats"];
  const PolicyStats b2 = GetStats().per_policy["stats-skip"];
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(locker_->With("stats", absl::StrCat("k", i), [] { return absl::OkStatus(); }),
                IsOk());
  }
  auto holder = Holder("stats", "busy");  // acquired: 4
  EXPECT_TRUE(IsBusy(locker_->With("stats", "busy", [] { return absl::OkStatus(); })));
  EXPECT_TRUE(IsBusy(locker_->With("stats", "busy", [] { return absl::OkStatus(); })));
  EXPECT_TRUE(lock::IsSkipped(
      locker_->With("stats-skip", "busy", [] { return absl::OkStatus(); })));
  const PolicyStats a1 = GetStats().per_policy["stats"];
  const PolicyStats a2 = GetStats().per_policy["stats-skip"];
  EXPECT_EQ(a1.acquired - b1.acquired, 4);
  EXPECT_EQ(a1.busy - b1.busy, 2);
  EXPECT_EQ(a1.released - b1.released, 3);
  EXPECT_EQ(a1.active - b1.active, 1);
  EXPECT_EQ(a1.errors - b1.errors, 0);
  EXPECT_EQ(a1.hold_time.count - b1.hold_time.count, 3);
  EXPECT_EQ(a1.acquire_wait.count - b1.acquire_wait.count, 4);
  EXPECT_EQ(a2.skipped - b2.skipped, 1);
  EXPECT_EQ(a2.acquired - b2.acquired, 0);
  ASSERT_THAT(holder->Release(), IsOk());
  EXPECT_EQ(GetStats().per_policy["stats"].active, b1.active);
}

TEST_F(RenewalTest, PrometheusTextIsWellFormed) {
  ASSERT_THAT(locker_->With("stats", "prom", [] { return absl::OkStatus(); }), IsOk());
  const std::string text = StatsPrometheusText();
  const std::regex sample(
      R"(^([a-z_]+)(\{policy="[^"]*"(,le="[^"]+"|,kind="[a-z_]+")?\})? (-?[0-9.eE+-]+)$)");
  std::string typed;  // metric family of the last # TYPE line
  int samples = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::string l(line);
    if (l.rfind("# HELP ", 0) == 0) continue;
    if (l.rfind("# TYPE ", 0) == 0) {
      std::vector<std::string> parts = absl::StrSplit(l, ' ');
      ASSERT_EQ(parts.size(), 4u) << l;
      typed = parts[2];
      continue;
    }
    std::smatch m;
    ASSERT_TRUE(std::regex_match(l, m, sample)) << "bad line: " << l;
    EXPECT_EQ(m[1].str().rfind(typed, 0), 0u) << l << " outside its family " << typed;
    ++samples;
  }
  EXPECT_GT(samples, 20);
  EXPECT_THAT(text, HasSubstr("lock_acquired_total{policy=\"stats\"}"));
  EXPECT_THAT(text, HasSubstr("lock_hold_seconds_bucket{policy=\"stats\",le=\"+Inf\"}"));
  EXPECT_THAT(StatsJson(), HasSubstr("\"total_locks\""));
}

TEST_F(RenewalTest, ShutdownReleasesWhatIsHeldAndSignalsIt) {
  InitWith(locker_);  // lock::Shutdown releases the process-wide Locker's locks
  auto l = Holder("renew", "shut");
  ASSERT_THAT(l->EnableAutoRenew(), IsOk());
  std::shared_ptr<internal::HoldState> hold = lock::internal::LockAccess::Core(*l).hold();
  Shutdown(absl::Seconds(2));
  EXPECT_EQ(RedisInt({"EXISTS", "{r:shut}"}), 0);
  EXPECT_TRUE(hold->lost.load());
  EXPECT_TRUE(hold->stop.stop_requested());
  EXPECT_TRUE(IsNotHeld(l->Release()));
  // The library keeps working afterwards.
  EXPECT_THAT(locker_->With("renew", "after", [] { return absl::OkStatus(); }), IsOk());
}

}  // namespace
}  // namespace lock
