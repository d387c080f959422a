#include "lock/internal/lock_core.h"
#include "lock/redis_lock.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/errors.h"
#include "lock/redis/pool.h"
#include "lock/scripts/embedded.h"
#include "util/status_matchers.h"
#include "util/strings.h"

namespace lock {
namespace {

using ::util::testing::IsOk;
using ::util::testing::IsOkAndHolds;
using ::util::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

class RedisLockTest : public harness::RedisTest {
 protected:
  std::shared_ptr<redis::ConnectionPool> Pool(std::string password = "",
                                              int max_size = 8) {
    return std::make_shared<redis::ConnectionPool>(redis::PoolOptions{
        .connection = {.addr = server().addr(), .password = password},
        .max_size = max_size});
  }

  // A lock on `key` under a test policy that `tweak` may adjust; its waits
  // listen through `notifier` when there is one, else they poll.
  std::unique_ptr<RedisLock> Lock(
      absl::string_view key,
      const std::function<void(policy::Policy&)>& tweak = nullptr,
      std::shared_ptr<internal::ReleaseNotifier> notifier = nullptr) {
    if (pool_ == nullptr) pool_ = Pool();
    return LockOn(pool_, key, tweak, std::move(notifier));
  }

  std::unique_ptr<RedisLock> LockOn(
      std::shared_ptr<redis::ConnectionPool> pool, absl::string_view key,
      const std::function<void(policy::Policy&)>& tweak = nullptr,
      std::shared_ptr<internal::ReleaseNotifier> notifier = nullptr) {
    auto p = std::make_shared<policy::Policy>();
    p->name = "test";
    p->key_prefix = "t:";
    p->retry.initial_delay = absl::Milliseconds(1);
    p->retry.max_delay = absl::Milliseconds(5);
    p->wait.timeout = absl::Seconds(5);
    if (tweak) tweak(*p);
    auto lk = internal::NewRedisLock(std::move(pool), std::move(p), util::ToStd(key),
                                     std::move(notifier));
    EXPECT_THAT(lk, IsOk());
    return *std::move(lk);
  }

  // Blocks the server in DEBUG SLEEP on another thread and returns once it
  // has stopped answering, so the next command is sure to wait.
  std::thread SleepServer(double seconds) {
    std::thread t([this, seconds] {
      (void)server().Exec({"DEBUG", "SLEEP", absl::StrCat(seconds)});
    });
    auto probe = Pool();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      auto conn = probe->Borrow(absl::Seconds(1));
      if (!conn.ok()) continue;
      if (!(*conn)->Command({"PING"}, absl::Milliseconds(20)).ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return t;
  }

  std::shared_ptr<redis::ConnectionPool> pool_;
};

TEST_F(RedisLockTest, AcquireAndRelease) {
  auto lk = Lock("a");
  ASSERT_THAT(lk->Acquire(), IsOk());
  EXPECT_GT(lk->fencing_token(), 0);
  EXPECT_GT(lk->remaining(), absl::Seconds(29));
  EXPECT_THAT(lk->IsLocked(), IsOkAndHolds(true));
  EXPECT_EQ(RedisInt({"EXISTS", "{t:a}"}), 1);
  ASSERT_THAT(lk->Release(), IsOk());
  EXPECT_EQ(RedisInt({"EXISTS", "{t:a}"}), 0);
  EXPECT_THAT(lk->IsLocked(), IsOkAndHolds(false));
  EXPECT_EQ(lk->remaining(), absl::ZeroDuration());
  EXPECT_TRUE(IsNotHeld(lk->Release()));
}

TEST_F(RedisLockTest, TwoInstancesOnOneKeyExcludeEachOther) {
  auto a = Lock("k");
  auto b = Lock("k", [](policy::Policy& p) { p.on_busy = policy::OnBusy::kFail; });
  ASSERT_THAT(a->Acquire(), IsOk());
  EXPECT_THAT(b->TryAcquire(), IsOkAndHolds(false));
  absl::Status busy = b->Acquire();
  EXPECT_TRUE(IsBusy(busy)) << busy;
  EXPECT_THAT(busy, StatusIs(absl::StatusCode::kAborted,
                             HasSubstr("held by another owner")));
  EXPECT_TRUE(IsNotHeld(b->Release()));  // never frees a's lock
  EXPECT_EQ(RedisInt({"EXISTS", "{t:k}"}), 1);
  ASSERT_THAT(a->Release(), IsOk());
  EXPECT_THAT(b->Acquire(), IsOk());
}

TEST_F(RedisLockTest, SkipPolicyReportsSkipped) {
  auto a = Lock("job");
  auto b = Lock("job", [](policy::Policy& p) { p.on_busy = policy::OnBusy::kSkip; });
  ASSERT_THAT(a->Acquire(), IsOk());
  absl::Status s = b->Acquire();
  EXPECT_TRUE(lock::IsSkipped(s)) << s;
  EXPECT_FALSE(IsBusy(s));
}

TEST_F(RedisLockTest, WaitingAcquiresAfterTheHolderReleases) {
  auto a = Lock("w");
  auto b = Lock("w");
  ASSERT_THAT(a->Acquire(), IsOk());
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_THAT(a->Release(), IsOk());
  });
  EXPECT_THAT(b->Acquire(), IsOk());
  releaser.join();
}

TEST_F(RedisLockTest, WaitGivesUpAtMaxAttempts) {
  auto a = Lock("m");
  auto b = Lock("m", [](policy::Policy& p) { p.retry.max_attempts = 3; });
  ASSERT_THAT(a->Acquire(), IsOk());
  absl::Status s = b->Acquire();
  EXPECT_TRUE(IsBusy(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("after 3 attempts"));
}

TEST_F(RedisLockTest, ReentrantPerInstance) {
  auto a = Lock("r");
  auto other = Lock("r", [](policy::Policy& p) { p.on_busy = policy::OnBusy::kFail; });
  ASSERT_THAT(a->Acquire(), IsOk());
  const int64_t fence = a->fencing_token();
  ASSERT_THAT(a->Acquire(), IsOk());
  EXPECT_EQ(a->hold_count(), 2);
  EXPECT_EQ(a->fencing_token(), fence);  // re-entry is the same hold
  EXPECT_EQ(Redis({"HGET", "{t:r}", "count"}), "2");
  ASSERT_THAT(a->Release(), IsOk());
  EXPECT_TRUE(IsBusy(other->Acquire()));  // still held once
  ASSERT_THAT(a->Release(), IsOk());
  EXPECT_THAT(other->Acquire(), IsOk());
}

TEST_F(RedisLockTest, ReenteringAnExpiredHoldReportsLost) {
  auto a = Lock("re", [](policy::Policy& p) { p.ttl = absl::Milliseconds(50); });
  ASSERT_THAT(a->Acquire(), IsOk());
  while (RedisInt({"EXISTS", "{t:re}"}) == 1) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  absl::Status s = a->Acquire();
  EXPECT_TRUE(IsLost(s)) << s;
  EXPECT_EQ(a->hold_count(), 0);
  EXPECT_EQ(RedisInt({"EXISTS", "{t:re}"}), 0);  // no new hold was started
  EXPECT_THAT(a->Acquire(), IsOk());             // a fresh acquire works
}

TEST_F(RedisLockTest, NonReentrantPolicyRefusesSecondAcquire) {
  auto a = Lock("nr", [](policy::Policy& p) { p.reentrant = false; });
  ASSERT_THAT(a->Acquire(), IsOk());
  EXPECT_THAT(a->Acquire(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                     HasSubstr("not reentrant")));
  EXPECT_EQ(a->hold_count(), 1);
}

TEST_F(RedisLockTest, ExpiredLockPassesToAnotherOwnerAndOldReleaseIsANoOp) {
  auto a = Lock("e", [](policy::Policy& p) { p.ttl = absl::Milliseconds(100); });
  auto b = Lock("e");
  ASSERT_THAT(a->Acquire(), IsOk());
  const int64_t first = a->fencing_token();
  ASSERT_THAT(b->Acquire(), IsOk());  // waits out a's 100 ms lease
  EXPECT_GT(b->fencing_token(), first);
  EXPECT_TRUE(IsNotHeld(a->Release()));
  EXPECT_TRUE(IsNotHeld(a->Renew(absl::Seconds(10))));
  EXPECT_THAT(b->IsLocked(), IsOkAndHolds(true));  // untouched
}

TEST_F(RedisLockTest, RenewExtendsTheLease) {
  auto a = Lock("x", [](policy::Policy& p) { p.ttl = absl::Milliseconds(300); });
  ASSERT_THAT(a->Acquire(), IsOk());
  ASSERT_THAT(a->Renew(absl::Seconds(20)), IsOk());
  EXPECT_GT(RedisInt({"PTTL", "{t:x}"}), 10000);
  EXPECT_GT(a->remaining(), absl::Seconds(19));
  EXPECT_THAT(a->Renew(absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

// Issue 10(e): Redis gets whole milliseconds (PEXPIRE), so the local
// validity must not count the sub-millisecond remainder Redis never got, and
// a ttl under 1ms (PEXPIRE 0 deletes the key) is refused.
TEST_F(RedisLockTest, RenewKeepsLocalValidityInTheMillisecondsRedisGot) {
  auto a = Lock("ms");
  ASSERT_THAT(a->Acquire(), IsOk());
  ASSERT_THAT(a->Renew(absl::Seconds(10) + absl::Microseconds(999)), IsOk());
  EXPECT_LE(a->remaining(), absl::Seconds(10));
  EXPECT_THAT(a->Renew(absl::Microseconds(999)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("at least 1ms")));
  EXPECT_GT(RedisInt({"PTTL", "{t:ms}"}), 9000);  // untouched
  EXPECT_THAT(a->IsLocked(), IsOkAndHolds(true));
}

// Issue 10(f): the subscription to the release channel waited for Redis'
// confirmation up to script_timeout, however little of wait.timeout was left.
TEST_F(RedisLockTest, SubscribeWaitIsBoundedByTheWaitTimeout) {
  auto holder = Lock("sub");
  ASSERT_THAT(holder->Acquire(), IsOk());
  // A subscriber connection that is accepted but never answered.
  auto silent = harness::RedisServer::Start({.name = "silent-subscriber"});
  ASSERT_THAT(silent, IsOk());
  ASSERT_THAT((*silent)->Pause(), IsOk());
  auto notifier = std::make_shared<internal::ReleaseNotifier>(redis::ConnectionOptions{
      .addr = (*silent)->addr(), .connect_timeout = absl::Seconds(10)});
  auto waiter = internal::NewRedisLock(Pool(), std::make_shared<policy::Policy>([] {
    policy::Policy p;
    p.name = "test";
    p.key_prefix = "t:";
    p.script_timeout = absl::Seconds(3);
    p.wait.timeout = absl::Milliseconds(100);
    return p;
  }()), "sub", notifier);
  ASSERT_THAT(waiter, IsOk());
  const absl::Time start = absl::Now();
  absl::Status s = (*waiter)->Acquire();
  const absl::Duration took = absl::Now() - start;
  EXPECT_TRUE(IsWaitTimedOut(s)) << s;
  EXPECT_LT(took, absl::Seconds(1));  // not the 3s script_timeout
  waiter->reset();
  ASSERT_THAT((*silent)->Resume(), IsOk());
  notifier.reset();
}

// A policy whose waiters' timers cannot explain a wake-up within a second.
void SlowBackoff(policy::Policy& p, const std::string& name) {
  p.name = name;
  p.retry.initial_delay = absl::Seconds(3);
  p.retry.max_delay = absl::Seconds(3);
  p.wait.timeout = absl::Seconds(20);
}

// Waits until `policy` counts `n` acquires between attempts, then a little
// longer so that each is inside its wait, not about to begin it.
bool WaitersWaiting(const std::string& policy, int64_t n) {
  if (!harness::Eventually([&] { return GetStats().per_policy[policy].waiting == n; })) {
    return false;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return true;
}

// Issue 18: a thread blocked waiting reads the release channel itself, so
// the release that frees the lock wakes the very thread that reads it: one
// thread wake-up before its next acquire, not the subscriber thread's and
// then the waiter's.
TEST_F(RedisLockTest, ABlockedWaiterReadsTheReleaseThatWakesIt) {
  auto notifier = std::make_shared<internal::ReleaseNotifier>(
      redis::ConnectionOptions{.addr = server().addr()});
  const auto policy = [](policy::Policy& p) { SlowBackoff(p, "own-read"); };
  auto holder = Lock("own", policy);
  auto waiter = Lock("own", policy, notifier);
  const PolicyStats before = GetStats().per_policy["own-read"];
  constexpr int kRounds = 4;
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_THAT(holder->Acquire(), IsOk());
    absl::Status got = absl::UnknownError("not run");
    std::thread t([&] { got = waiter->Acquire(); });
    ASSERT_TRUE(WaitersWaiting("own-read", 1)) << "round " << i;
    const absl::Time released = absl::Now();
    ASSERT_THAT(holder->Release(), IsOk());
    t.join();
    ASSERT_THAT(got, IsOk()) << "round " << i;
    EXPECT_LT(absl::Now() - released, absl::Seconds(1)) << "round " << i;  // not its timer
    ASSERT_THAT(waiter->Release(), IsOk());
  }
  const PolicyStats after = GetStats().per_policy["own-read"];
  EXPECT_EQ(after.waits_woken_by_notify - before.waits_woken_by_notify, kRounds);
  EXPECT_EQ(after.waits_woken_by_timer - before.waits_woken_by_timer, 0);
  EXPECT_EQ(notifier->woken_by_own_read(), kRounds);
  waiter.reset();
}

// A wait cut short by the subscriber connection dropping was not ended by a
// release: it counts with the waits the timer ended (the waiter falls back
// to its backoff), never as woken by a notification. Counted as a
// notification, a fleet test that kills the master the waiters listen on
// saw one whenever the drop reached a waiter already asleep.
TEST_F(RedisLockTest, AWaitEndedByTheSubscriberConnectionDroppingIsNotANotification) {
  auto notifier = std::make_shared<internal::ReleaseNotifier>(
      redis::ConnectionOptions{.addr = server().addr()});
  const auto policy = [](policy::Policy& p) { SlowBackoff(p, "dropped"); };
  auto holder = Lock("drop", policy);
  auto waiter = Lock("drop", policy, notifier);
  ASSERT_THAT(holder->Acquire(), IsOk());
  const PolicyStats before = GetStats().per_policy["dropped"];
  absl::Status got = absl::UnknownError("not run");
  std::thread t([&] { got = waiter->Acquire(); });
  ASSERT_TRUE(WaitersWaiting("dropped", 1));
  Redis({"CLIENT", "KILL", "TYPE", "pubsub"});
  // The drop ends the wait at once (its backoff is 3 s): one wait ended.
  const auto ended = [&] {
    const PolicyStats now = GetStats().per_policy["dropped"];
    return now.waits_woken_by_notify + now.waits_woken_by_timer -
           before.waits_woken_by_notify - before.waits_woken_by_timer;
  };
  EXPECT_TRUE(harness::Eventually([&] { return ended() >= 1; }))
      << "the drop did not end the wait";
  const PolicyStats after_drop = GetStats().per_policy["dropped"];
  EXPECT_EQ(after_drop.waits_woken_by_notify - before.waits_woken_by_notify, 0);
  EXPECT_GE(after_drop.waits_woken_by_timer - before.waits_woken_by_timer, 1);
  ASSERT_THAT(holder->Release(), IsOk());
  t.join();
  EXPECT_THAT(got, IsOk());
  ASSERT_THAT(waiter->Release(), IsOk());
  waiter.reset();
}

// While one waiter reads the subscriber connection, another thread's new
// subscription still gets confirmed (the subscriber thread takes the
// connection back to send SUBSCRIBE), both are woken by their releases,
// and the one waiting on the second channel is woken through the first
// waiter's reads.
TEST_F(RedisLockTest, ANewSubscriptionIsServedWhileAWaiterReads) {
  auto notifier = std::make_shared<internal::ReleaseNotifier>(
      redis::ConnectionOptions{.addr = server().addr()});
  const auto policy = [](policy::Policy& p) { SlowBackoff(p, "two-channels"); };
  auto holder_a = Lock("chan-a", policy);
  auto holder_b = Lock("chan-b", policy);
  ASSERT_THAT(holder_a->Acquire(), IsOk());
  ASSERT_THAT(holder_b->Acquire(), IsOk());
  auto waiter_a = Lock("chan-a", policy, notifier);
  auto waiter_b = Lock("chan-b", policy, notifier);
  const PolicyStats before = GetStats().per_policy["two-channels"];
  absl::Status got_a = absl::UnknownError("not run"), got_b = got_a;
  std::thread ta([&] { got_a = waiter_a->Acquire(); });
  ASSERT_TRUE(WaitersWaiting("two-channels", 1));
  std::thread tb([&] { got_b = waiter_b->Acquire(); });
  ASSERT_TRUE(WaitersWaiting("two-channels", 2));
  ASSERT_EQ(Redis({"PUBSUB", "NUMSUB", "{t:chan-b}:released"}), "{t:chan-b}:released\n1");
  // b first: a (the older waiter) reads the connection, b is woken by it.
  absl::Time released = absl::Now();
  ASSERT_THAT(holder_b->Release(), IsOk());
  tb.join();
  ASSERT_THAT(got_b, IsOk());
  EXPECT_LT(absl::Now() - released, absl::Seconds(1));
  released = absl::Now();
  ASSERT_THAT(holder_a->Release(), IsOk());
  ta.join();
  ASSERT_THAT(got_a, IsOk());
  EXPECT_LT(absl::Now() - released, absl::Seconds(1));
  const PolicyStats after = GetStats().per_policy["two-channels"];
  EXPECT_EQ(after.waits_woken_by_notify - before.waits_woken_by_notify, 2);
  EXPECT_EQ(after.waits_woken_by_timer - before.waits_woken_by_timer, 0);
  EXPECT_EQ(notifier->woken_by_own_read(), 1);  // a's; b was woken by a's read
  ASSERT_THAT(waiter_a->Release(), IsOk());
  ASSERT_THAT(waiter_b->Release(), IsOk());
  waiter_a.reset();
  waiter_b.reset();
}

TEST_F(RedisLockTest, FencesStrictlyIncreaseAcrossReleaseAndExpiry) {
  auto a = Lock("f", [](policy::Policy& p) { p.ttl = absl::Milliseconds(30); });
  int64_t last = 0;
  for (int i = 0; i < 20; ++i) {
    ASSERT_THAT(a->Acquire(), IsOk());
    EXPECT_GT(a->fencing_token(), last);
    last = a->fencing_token();
    if (i % 2 == 0) {
      (void)a->Release();  // even rounds release; odd ones let it expire
    } else {
      while (RedisInt({"EXISTS", "{t:f}"}) == 1) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      EXPECT_TRUE(IsNotHeld(a->Release()));
    }
  }
  // The fence record expires: fencing_retention (24h by default) after the
  // last fresh acquisition.
  EXPECT_GT(RedisInt({"PTTL", "{t:f}:fence"}), 23 * 3600 * 1000);
  EXPECT_LE(RedisInt({"PTTL", "{t:f}:fence"}), 24 * 3600 * 1000);
}

TEST_F(RedisLockTest, FencingOffIssuesNoToken) {
  auto a = Lock("nf", [](policy::Policy& p) { p.fencing = false; });
  ASSERT_THAT(a->Acquire(), IsOk());
  EXPECT_EQ(a->fencing_token(), 0);
  EXPECT_EQ(RedisInt({"EXISTS", "{t:nf}:fence"}), 0);
  EXPECT_EQ(RedisInt({"DBSIZE"}), 1);  // only the owner hash, with its lease
  EXPECT_GT(RedisInt({"PTTL", "{t:nf}"}), 0);
}

// Issue 11: the fence counter used to be INCR'd and kept forever, one key per
// resource ever locked. Now every key a lock writes expires: the owner hash
// with its lease, the fence record fencing_retention after the last fresh
// acquisition. Released and expired holds alike leave an empty database.
TEST_F(RedisLockTest, LockedKeysLeaveNothingBehindAfterTheRetention) {
  constexpr int kKeys = 200;
  // The held owners must outlive the loop that takes all 200 (a loaded CI
  // machine took longer than a 200 ms ttl: 298 keys were counted).
  const auto tweak = [](policy::Policy& p) {
    p.ttl = absl::Seconds(3);
    p.script_timeout = absl::Milliseconds(500);
    p.renewal.enabled = false;
    p.fencing_retention = absl::Seconds(4);
  };
  // Kept alive: a RedisLock releases what it holds when destroyed.
  std::vector<std::unique_ptr<RedisLock>> locks;
  for (int i = 0; i < kKeys; ++i) {
    locks.push_back(Lock(absl::StrCat("gc-", i), tweak));
    ASSERT_THAT(locks.back()->Acquire(), IsOk());
    if (i % 2 == 0) {
      ASSERT_THAT(locks.back()->Release(), IsOk());  // odd ones expire
    }
  }
  EXPECT_EQ(RedisInt({"DBSIZE"}), kKeys + kKeys / 2);  // fences + held owners
  const int64_t fence_ttl = RedisInt({"TTL", "{t:gc-0}:fence"});
  EXPECT_GT(fence_ttl, 0);
  EXPECT_LE(fence_ttl, 4);
  // Redis reclaims expired keys in the background; DBSIZE counts them until
  // then, so poll rather than sleep exactly the retention.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (RedisInt({"DBSIZE"}) > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(RedisInt({"DBSIZE"}), 0) << Redis({"KEYS", "*"});
}

// Tokens are max(last + 1, server clock in us): they keep increasing when
// everything Redis knew about the key is gone -- the fence record expired
// after its retention, or the server restarted without persistence (this
// used to reset the counter to 1).
TEST_F(RedisLockTest, FencesStrictlyIncreaseAcrossRetentionExpiryAndRestart) {
  auto a = Lock("mono", [](policy::Policy& p) {
    p.ttl = absl::Milliseconds(150);
    p.script_timeout = absl::Milliseconds(100);
    p.renewal.enabled = false;
    p.fencing_retention = absl::Milliseconds(300);
  });
  const auto wait_gone = [&](const std::string& key) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (RedisInt({"EXISTS", key}) == 1) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << key << " did not expire";
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  };
  std::vector<int64_t> tokens;
  const auto acquire = [&](absl::string_view after) {
    SCOPED_TRACE(after);
    ASSERT_THAT(a->Acquire(), IsOk());
    const int64_t token = a->fencing_token();
    if (!tokens.empty()) {
      EXPECT_GT(token, tokens.back()) << after;
    }
    tokens.push_back(token);
    // The reply's integer is the stored decimal text: no rounding on the way.
    EXPECT_EQ(Redis({"GET", "{t:mono}:fence"}), absl::StrCat(token));
    EXPECT_EQ(Redis({"HGET", "{t:mono}", "fence"}), absl::StrCat(token));
  };
  acquire("first");
  ASSERT_THAT(a->Release(), IsOk());
  acquire("release");  // fence record still there
  wait_gone("{t:mono}");
  EXPECT_TRUE(IsNotHeld(a->Release()));
  acquire("lease expiry");
  ASSERT_THAT(a->Release(), IsOk());
  wait_gone("{t:mono}:fence");
  acquire("fence record expiry");
  ASSERT_THAT(a->Release(), IsOk());
  ASSERT_THAT(server().Restart(/*keep_data=*/false), IsOk());
  ASSERT_EQ(RedisInt({"DBSIZE"}), 0);
  acquire("restart without persistence");
  ASSERT_THAT(a->Release(), IsOk());
  // Several acquisitions in a row, faster than the clock might tick on a
  // coarse host: "last + 1" keeps them apart.
  for (int i = 0; i < 50; ++i) {
    acquire("quick succession");
    ASSERT_THAT(a->Release(), IsOk());
  }
  // Microseconds since the epoch, as Redis TIME reads them.
  EXPECT_GT(tokens.front(), int64_t{1'600'000'000} * 1'000'000);
}

// Fence records of older versions were small INCR counters without a TTL:
// the next acquisition overtakes them by the clock and gives them one.
TEST_F(RedisLockTest, LegacyFenceCounterIsOvertakenAndGetsARetention) {
  Redis({"SET", "{t:old}:fence", "41"});
  auto a = Lock("old");
  ASSERT_THAT(a->Acquire(), IsOk());
  EXPECT_GT(a->fencing_token(), 41);
  EXPECT_GT(RedisInt({"PTTL", "{t:old}:fence"}), 0);
}

TEST_F(RedisLockTest, InspectReportsTheLastTokenWhileTheRecordLives) {
  auto a = Lock("ins");
  ASSERT_THAT(a->Acquire(), IsOk());
  const int64_t token = a->fencing_token();
  ASSERT_THAT(a->Release(), IsOk());
  absl::StatusOr<LockState> st = a->Inspect();
  ASSERT_THAT(st, IsOk());
  EXPECT_FALSE(st->held);
  EXPECT_EQ(st->last_fencing_token, token);
  // A hold renewed past the retention outlives its record: the hold's own
  // token still counts as the last one issued.
  ASSERT_THAT(a->Acquire(), IsOk());
  Redis({"DEL", "{t:ins}:fence"});
  st = a->Inspect();
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->fencing_token, a->fencing_token());
  EXPECT_EQ(st->last_fencing_token, a->fencing_token());
}

// Regression (issue 11, item 10): acquire.lua wrote the owner hash (and
// INCR'd the fence) before its PEXPIRE, so a bad ttl argument left a key
// that never expires. Every argument is now checked before the first write.
TEST_F(RedisLockTest, AcquireScriptWithBadArgumentsWritesNothing) {
  const std::string body(scripts::k_acquire.body);
  struct Case {
    std::string ttl, count, fencing, retention, what;
  };
  const Case cases[] = {
      {"abc", "1", "1", "60000", "ttl"},   {"1.5", "1", "1", "60000", "ttl"},
      {"0", "1", "1", "60000", "ttl"},     {"-5", "1", "1", "60000", "ttl"},
      {"", "1", "1", "60000", "ttl"},      {"1000", "x", "1", "60000", "count"},
      {"1000", "0", "1", "60000", "count"}, {"1000", "1", "yes", "60000", "fencing"},
      {"1000", "1", "1", "soon", "retention"}, {"1000", "1", "1", "0", "retention"},
      {"1000", "1", "1", "", "retention"},
      {"99999999999999999999", "1", "1", "60000", "ttl"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(absl::StrCat("ttl=", c.ttl, " count=", c.count, " fencing=",
                              c.fencing, " retention=", c.retention));
    EXPECT_THAT(server().Exec({"EVAL", body, "3", "{t:bad}", "{t:bad}:fence",
                               "{t:bad}:cancel:tok", "tok", c.ttl, c.count,
                               c.fencing, c.retention}),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr(c.what)));
    EXPECT_EQ(RedisInt({"DBSIZE"}), 0) << Redis({"KEYS", "*"});
    Redis({"FLUSHALL"});  // keep one case's leftovers out of the next
  }
}

// Item 3, defensively in the script too: a fenced write with a token below 1
// (or not a number) is an error and writes nothing.
TEST_F(RedisLockTest, FencedSetScriptRefusesTokensBelowOne) {
  const std::string body(scripts::k_fenced_set.body);
  for (const char* token : {"0", "-1", "abc", "0.5"}) {
    SCOPED_TRACE(token);
    EXPECT_THAT(server().Exec({"EVAL", body, "1", "res", "v", token}),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("token")));
    EXPECT_EQ(RedisInt({"EXISTS", "res"}), 0);
  }
}

TEST_F(RedisLockTest, InvalidKeyIsRejected) {
  auto p = std::make_shared<policy::Policy>();
  EXPECT_THAT(internal::NewRedisLock(Pool(), p, "a{b}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("brace")));
  EXPECT_THAT(internal::NewRedisLock(Pool(), p, ""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
}

TEST_F(RedisLockTest, HoldAtLeastKeepsTheKeyAfterRelease) {
  auto a = Lock("h", [](policy::Policy& p) { p.hold_at_least = absl::Seconds(5); });
  auto b = Lock("h", [](policy::Policy& p) { p.on_busy = policy::OnBusy::kSkip; });
  ASSERT_THAT(a->Acquire(), IsOk());
  ASSERT_THAT(a->Release(), IsOk());
  EXPECT_GT(RedisInt({"PTTL", "{t:h}"}), 3000);
  EXPECT_TRUE(lock::IsSkipped(b->Acquire()));
}

TEST_F(RedisLockTest, MutualExclusionUnderThreads) {
  constexpr int kThreads = 8;
  constexpr int kIncrements = 2000;
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  auto pool = Pool("", kThreads * 2);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto lk = LockOn(pool, "counter", [](policy::Policy& p) {
        p.retry.initial_delay = absl::Microseconds(100);
        p.retry.max_delay = absl::Milliseconds(2);
        p.retry.max_attempts = 1 << 30;
        p.wait.timeout = absl::Seconds(60);
      });
      for (int i = 0; i < kIncrements; ++i) {
        ASSERT_THAT(lk->Acquire(), IsOk());
        if (inside.fetch_add(1) != 0) overlaps++;
        // Deliberately non-atomic read-modify-write: only the lock keeps it
        // exact.
        auto conn = pool->Borrow(absl::Seconds(1));
        ASSERT_THAT(conn, IsOk());
        auto v = (*conn)->Command({"GET", "counter"}, absl::Seconds(1));
        ASSERT_THAT(v, IsOk());
        int64_t n = 0;
        if ((*v)->type == REDIS_REPLY_STRING) {
          ASSERT_TRUE(absl::SimpleAtoi(redis::ReplyText(**v), &n));
        }
        std::string next = absl::StrCat(n + 1);
        ASSERT_THAT((*conn)->Command({"SET", "counter", next}, absl::Seconds(1)),
                    IsOk());
        inside.fetch_sub(1);
        ASSERT_THAT(lk->Release(), IsOk());
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(RedisInt({"GET", "counter"}), kThreads * kIncrements);
}

TEST_F(RedisLockTest, ScriptFlushIsRecoveredTransparently) {
  auto a = Lock("s");
  ASSERT_THAT(a->Acquire(), IsOk());
  ASSERT_THAT(a->Release(), IsOk());
  Redis({"SCRIPT", "FLUSH"});
  ASSERT_THAT(a->Acquire(), IsOk());
  ASSERT_THAT(a->Release(), IsOk());
  // Re-cached by the fallback, so later calls are EVALSHA again.
  EXPECT_EQ(Redis({"SCRIPT", "EXISTS", std::string(scripts::k_acquire.sha1),
                   std::string(scripts::k_release.sha1)}),
            "1\n1");
}

TEST_F(RedisLockTest, RedisRestartIsRecoveredTransparently) {
  auto a = Lock("rs");
  ASSERT_THAT(a->Acquire(), IsOk());
  ASSERT_THAT(a->Release(), IsOk());
  ASSERT_THAT(server().Restart(/*keep_data=*/false), IsOk());
  // The pooled connection died with the old server and the new one has no
  // scripts cached: both are handled without an error reaching the caller.
  ASSERT_THAT(a->Acquire(), IsOk());
  EXPECT_THAT(a->Release(), IsOk());
}

TEST_F(RedisLockTest, RedisDownIsUnavailableWithinTheTimeout) {
  auto a = Lock("d", [](policy::Policy& p) { p.script_timeout = absl::Milliseconds(300); });
  ASSERT_THAT(server().Kill(), IsOk());
  auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(a->Acquire(), StatusIs(absl::StatusCode::kUnavailable,
                                     HasSubstr(server().addr())));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

class PasswordLockTest : public RedisLockTest {
 protected:
  harness::RedisServerOptions ServerOptions() override {
    return {.name = "redis-auth", .password = "right-secret"};
  }
};

TEST_F(PasswordLockTest, WrongPasswordIsAClearAuthErrorWithoutTheSecret) {
  auto a = LockOn(Pool("wrong-secret"), "p");
  absl::Status s = a->Acquire();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("AUTH")));
  EXPECT_THAT(std::string(s.message()), Not(HasSubstr("wrong-secret")));
  auto ok = LockOn(Pool("right-secret"), "p");
  EXPECT_THAT(ok->Acquire(), IsOk());
}

TEST_F(RedisLockTest, SlowServerTimesOutReplacesTheConnectionAndCancels) {
  auto pool = Pool();
  auto a = LockOn(pool, "slow", [](policy::Policy& p) {
    p.script_timeout = absl::Milliseconds(100);
    p.on_busy = policy::OnBusy::kFail;
  });
  ASSERT_THAT(a->Acquire(), IsOk());  // warm the pool
  ASSERT_THAT(a->Release(), IsOk());
  const int64_t opened = pool->connections_opened();

  std::thread sleeper = SleepServer(0.5);
  absl::Status s = a->Acquire();
  sleeper.join();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("timed out")));
  EXPECT_EQ(a->hold_count(), 0);
  // Both the acquire and its cancel were queued behind the sleep; whichever
  // ran first, the lock must not be left taken.
  Redis({"PING"});
  EXPECT_EQ(RedisInt({"EXISTS", "{t:slow}"}), 0);

  ASSERT_THAT(a->Acquire(), IsOk());  // the broken connection was replaced
  EXPECT_GT(pool->connections_opened(), opened);
  EXPECT_THAT(a->Release(), IsOk());
}

TEST_F(RedisLockTest, DestructorReleases) {
  {
    auto a = Lock("dtor");
    ASSERT_THAT(a->Acquire(), IsOk());
    ASSERT_THAT(a->Acquire(), IsOk());
  }
  EXPECT_EQ(RedisInt({"EXISTS", "{t:dtor}"}), 0);
}

}  // namespace
}  // namespace lock
