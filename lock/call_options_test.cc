// Per-call control of the blocking API (issue 16): CallOptions' deadline
// and stop request on With, against a real redis-server. A deadline ends a
// wait, and a Redis call the server is too slow to answer; a stop request
// ends a wait at once, and gives back a lock granted while it came; neither
// leaves anything held.
#include <atomic>
#include <chrono>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/internal/keys.h"
#include "lock/lock.h"
#include "lock/testing/locker_from_json.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using harness::Eventually;
using ::testing::HasSubstr;
using ::util::testing::IsOk;
using Clock = std::chrono::steady_clock;

// "slow-backoff" waits with a 5 s backoff: anything that ends its wait
// sooner was woken, not timed out by its own schedule.
constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"] } },
  "policies": {
    "slow-backoff": { "key_prefix": "c:", "ttl": "30s", "script_timeout": "3s",
                      "wait": { "timeout": "20s", "notify": true },
                      "retry": { "initial_delay": "5s", "max_delay": "5s", "jitter": 0 } },
    "no-notify": { "key_prefix": "c:", "ttl": "30s",
                   "wait": { "timeout": "20s", "notify": false },
                   "retry": { "initial_delay": "5s", "max_delay": "5s", "jitter": 0 } },
    "short-wait": { "key_prefix": "c:", "wait": { "timeout": "100ms" },
                    "retry": { "initial_delay": "10ms", "max_delay": "10ms" } },
    "fair": { "kind": "fair", "key_prefix": "f:", "ttl": "30s",
              "wait": { "timeout": "20s", "notify": true },
              "retry": { "initial_delay": "5s", "max_delay": "5s", "jitter": 0 } },
    "rw": { "kind": "read_write", "key_prefix": "w:", "ttl": "30s",
            "wait": { "timeout": "20s", "notify": true },
            "retry": { "initial_delay": "5s", "max_delay": "5s", "jitter": 0 } }
  }
})json";

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

class CallOptionsTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    auto locker =
        LockerFromJson(absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}}), "call.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }

  // Holds `key` under `policy` from another instance (another owner).
  std::unique_ptr<RedisLock> Hold(const std::string& policy, const std::string& key) {
    auto lock = locker_->NewLock(policy, key);
    EXPECT_THAT(lock, IsOk());
    EXPECT_THAT((*lock)->Acquire(), IsOk());
    return *std::move(lock);
  }

  // "" when nobody holds it.
  std::string Owner(const std::string& key) {
    const std::string owner =
        Redis({"HGET", std::string(internal::LockKeys("c:", key).owner()), "owner"});
    return owner == "(nil)" ? "" : owner;
  }

  std::unique_ptr<Locker> locker_;
};

TEST_F(CallOptionsTest, DeadlineEndsAWaitBeforeThePolicysTimeout) {
  auto holder = Hold("slow-backoff", "k");
  bool ran = false;
  const auto start = Clock::now();
  absl::Status s = locker_->With("slow-backoff", "k",
                                 CallOptions{.deadline = absl::Now() + absl::Milliseconds(300)},
                                 [&] {
                                   ran = true;
                                   return absl::OkStatus();
                                 });
  const int64_t took = MsSince(start);
  EXPECT_TRUE(lock::IsDeadlineExceeded(s)) << s;
  EXPECT_FALSE(IsBusy(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("deadline passed"));
  EXPECT_THAT(s.message(), HasSubstr("nothing is held"));
  EXPECT_FALSE(ran);
  EXPECT_GE(took, 290);
  EXPECT_LT(took, 3000);  // not the 5 s backoff, nor the 20 s wait.timeout
  EXPECT_EQ(Owner("k"), holder->owner_token());
}

TEST_F(CallOptionsTest, PolicyTimeoutFirstStaysABusyOutcome) {
  auto holder = Hold("short-wait", "k");
  absl::Status s = locker_->With("short-wait", "k",
                                 CallOptions{.deadline = absl::Now() + absl::Seconds(30)},
                                 [] { return absl::OkStatus(); });
  EXPECT_TRUE(IsWaitTimedOut(s)) << s;
  EXPECT_FALSE(lock::IsDeadlineExceeded(s)) << s;
}

TEST_F(CallOptionsTest, DeadlineAlreadyPassedTouchesNoRedis) {
  const int64_t calls = ScriptCalls();
  absl::Status s = locker_->With("slow-backoff", "k",
                                 CallOptions{.deadline = absl::Now() - absl::Seconds(1)},
                                 [] { return absl::OkStatus(); });
  EXPECT_TRUE(lock::IsDeadlineExceeded(s)) << s;
  EXPECT_EQ(ScriptCalls(), calls);
}

TEST_F(CallOptionsTest, StopAlreadyRequestedTouchesNoRedis) {
  std::stop_source stop;
  stop.request_stop();
  const int64_t calls = ScriptCalls();
  absl::Status s = locker_->With("slow-backoff", "k", CallOptions{.stop = stop.get_token()},
                                 [] { return absl::OkStatus(); });
  EXPECT_TRUE(lock::IsCancelled(s)) << s;
  EXPECT_EQ(ScriptCalls(), calls);
}

// DEBUG SLEEP keeps the server from answering: the deadline ends the call
// (not the 3 s script_timeout), and the acquire it may have applied is
// cancelled once the server answers again.
TEST_F(CallOptionsTest, DeadlineEndsACallTheServerIsTooSlowFor) {
  std::thread sleeper([&] { (void)server().Exec({"DEBUG", "SLEEP", "1.5"}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the sleep has begun
  bool ran = false;
  const auto start = Clock::now();
  absl::Status s = locker_->With("slow-backoff", "slow",
                                 CallOptions{.deadline = absl::Now() + absl::Milliseconds(300)},
                                 [&] {
                                   ran = true;
                                   return absl::OkStatus();
                                 });
  const int64_t took = MsSince(start);
  sleeper.join();
  EXPECT_TRUE(lock::IsDeadlineExceeded(s)) << s;
  EXPECT_FALSE(ran);
  EXPECT_LT(took, 1200) << s;  // before the server woke up
  // Whatever the unanswered acquire did is undone.
  EXPECT_TRUE(Eventually([&] { return Owner("slow").empty(); }));
  // And the key is free for the next owner.
  EXPECT_THAT(locker_->With("slow-backoff", "slow", [] { return absl::OkStatus(); }), IsOk());
}

// The waiter is woken by the stop request itself, long before its 5 s
// backoff, with and without a release subscription.
TEST_F(CallOptionsTest, StopEndsAWaitAtOnce) {
  for (const std::string policy : {"slow-backoff", "no-notify", "fair", "rw"}) {
    SCOPED_TRACE(policy);
    auto holder = Hold(policy, "k");
    std::stop_source stop;
    Clock::time_point requested;
    std::thread stopper([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      requested = Clock::now();
      stop.request_stop();
    });
    bool ran = false;
    absl::Status s = locker_->With(policy, "k", CallOptions{.stop = stop.get_token()}, [&] {
      ran = true;
      return absl::OkStatus();
    });
    const auto returned = Clock::now();
    stopper.join();
    EXPECT_TRUE(lock::IsCancelled(s)) << s;
    EXPECT_THAT(s.message(), HasSubstr("stop request"));
    EXPECT_FALSE(ran);
    EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(returned - requested).count(),
              1000);
    ASSERT_THAT(holder->Release(), IsOk());
    // Nothing of the cancelled waiter stays in the way (a fair place, a
    // writer's claim): the next acquire is granted at once.
    EXPECT_THAT(locker_->With(policy, "k",
                              CallOptions{.deadline = absl::Now() + absl::Seconds(2)},
                              [] { return absl::OkStatus(); }),
                IsOk());
  }
}

// A stop requested while the granting call is in flight: the lock it got is
// given back before With returns, and fn does not run.
TEST_F(CallOptionsTest, StopWhileTheGrantIsInFlightLeavesNothingHeld) {
  std::thread sleeper([&] { (void)server().Exec({"DEBUG", "SLEEP", "0.6"}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::stop_source stop;
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    stop.request_stop();
  });
  bool ran = false;
  absl::Status s = locker_->With("slow-backoff", "inflight", CallOptions{.stop = stop.get_token()},
                                 [&] {
                                   ran = true;
                                   return absl::OkStatus();
                                 });
  stopper.join();
  sleeper.join();
  EXPECT_TRUE(lock::IsCancelled(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("released again"));
  EXPECT_FALSE(ran);
  EXPECT_EQ(Owner("inflight"), "");
}

// WithAll: one deadline bounds the whole set, and the keys taken before it
// passed are released.
TEST_F(CallOptionsTest, DeadlineBoundsAWithAllSet) {
  auto holder = Hold("slow-backoff", "b");
  absl::Status s = locker_->WithAll("slow-backoff", {"a", "b"},
                                    CallOptions{.deadline = absl::Now() + absl::Milliseconds(200)},
                                    [] { return absl::OkStatus(); });
  EXPECT_TRUE(lock::IsDeadlineExceeded(s)) << s;
  EXPECT_EQ(Owner("a"), "");
  EXPECT_EQ(Owner("b"), holder->owner_token());
}

}  // namespace
}  // namespace lock
