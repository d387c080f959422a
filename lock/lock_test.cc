#include "lock/compat.h"
#include "lock/lock.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/testing/locker_from_json.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using ::util::testing::IsOk;
using ::util::testing::IsOkAndHolds;
using ::util::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"] } },
  "defaults": { "script_timeout": "300ms",
                "retry": { "initial_delay": "1ms", "max_delay": "5ms" } },
  "policies": {
    "base": { "key_prefix": "base:", "ttl": "7s" },
    "wait": { "key_prefix": "o:", "ttl": "20s", "wait": { "timeout": "2s" } },
    "wait3": { "key_prefix": "o:", "retry": { "max_attempts": 3 } },
    "short": { "key_prefix": "o:", "wait": { "timeout": "50ms" } },
    "fail": { "key_prefix": "o:", "on_busy": "fail" },
    "skip": { "key_prefix": "o:", "on_busy": "skip" },
    "child": { "extends": "base", "on_busy": "fail" }
  }
})json";

class WithTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    config_ = absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}});
    auto locker = LockerFromJson(config_, "test.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }

  void TearDown() override {
    Shutdown();
    harness::RedisTest::TearDown();
  }

  // Holds `key` under policy "wait" with another instance for the test body.
  std::unique_ptr<RedisLock> HoldElsewhere(absl::string_view key) {
    auto other = locker_->NewLock("wait", std::string(key));
    EXPECT_THAT(other, IsOk());
    EXPECT_THAT((*other)->Acquire(), IsOk());
    return *std::move(other);
  }

  std::string config_;
  std::unique_ptr<Locker> locker_;
};

TEST_F(WithTest, RunsFnUnderTheLockWithPrefixTtlAndFence) {
  bool ran = false;
  ASSERT_THAT(locker_->With("wait", "42", [&](Held& held) {
    ran = true;
    EXPECT_EQ(held.key(), "42");
    EXPECT_GT(held.fencing_token(), 0);
    EXPECT_FALSE(held.lost());
    EXPECT_EQ(Redis({"HGET", "{o:42}", "owner"}), held.owner_token());
    const int64_t pttl = RedisInt({"PTTL", "{o:42}"});
    EXPECT_GT(pttl, 19000);  // the policy's 20s ttl
    EXPECT_LE(pttl, 20000);
    return absl::OkStatus();
  }), IsOk());
  EXPECT_TRUE(ran);
  EXPECT_EQ(RedisInt({"EXISTS", "{o:42}"}), 0);
}

TEST_F(WithTest, ExtendsInheritsPrefixAndTtl) {
  ASSERT_THAT(locker_->With("child", "k", [&](Held&) {
    EXPECT_EQ(RedisInt({"EXISTS", "{base:k}"}), 1);
    EXPECT_GT(RedisInt({"PTTL", "{base:k}"}), 6000);
    return absl::OkStatus();
  }), IsOk());
}

TEST_F(WithTest, FnErrorIsReturnedAndTheLockReleased) {
  absl::Status s = locker_->With("wait", "e", [] {
    return absl::InternalError("payment provider said no");
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInternal, HasSubstr("provider")));
  EXPECT_EQ(RedisInt({"EXISTS", "{o:e}"}), 0);
}

TEST_F(WithTest, ExceptionIsRethrownAfterRelease) {
  EXPECT_THROW(
      (void)locker_->With("wait", "x", []() -> absl::Status {
        throw std::runtime_error("boom");
      }),
      std::runtime_error);
  EXPECT_EQ(RedisInt({"EXISTS", "{o:x}"}), 0);
}

TEST_F(WithTest, OnBusyFailSkipAndWait) {
  auto holder = HoldElsewhere("b");
  bool ran = false;
  auto fn = [&] { ran = true; return absl::OkStatus(); };
  EXPECT_TRUE(IsBusy(locker_->With("fail", "b", fn)));
  EXPECT_TRUE(lock::IsSkipped(locker_->With("skip", "b", fn)));
  absl::Status s = locker_->With("wait3", "b", fn);
  EXPECT_TRUE(IsBusy(s));
  EXPECT_THAT(s.message(), HasSubstr("after 3 attempts"));
  EXPECT_FALSE(ran);
  EXPECT_EQ(GetStats().per_policy["wait3"].waiting, 0);  // its waits are over
  // Released once the waiter is seen waiting (PolicyStats::waiting).
  std::thread release([&] {
    EXPECT_TRUE(harness::Eventually([&] { return GetStats().per_policy["wait"].waiting == 1; }));
    EXPECT_THAT(holder->Release(), IsOk());
  });
  EXPECT_THAT(locker_->With("wait", "b", fn), IsOk());  // waits it out
  release.join();
  EXPECT_TRUE(ran);
  EXPECT_EQ(GetStats().per_policy["wait"].waiting, 0);
}

TEST_F(WithTest, LockDeletedBehindTheHolderIsReportedLost) {
  absl::Status s = locker_->With("wait", "l", [&](Held& held) {
    Redis({"DEL", "{o:l}"});
    absl::Status e = held.Extend(absl::Seconds(5));
    EXPECT_TRUE(IsNotHeld(e)) << e;
    EXPECT_TRUE(held.lost());
    EXPECT_TRUE(held.stop_token().stop_requested());
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
}

TEST_F(WithTest, LostIsReportedEvenWhenFnSucceeded) {
  absl::Status s = locker_->With("wait", "l2", [&] {
    Redis({"HSET", "{o:l2}", "owner", "someone-else"});  // taken over
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
  EXPECT_EQ(Redis({"HGET", "{o:l2}", "owner"}), "someone-else");  // untouched
}

TEST_F(WithTest, UnknownPolicyListsTheKnownOnes) {
  EXPECT_THAT(locker_->With("nope", "k", [] { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("\"nope\""), HasSubstr("wait3"))));
}

TEST_F(WithTest, BadKeyIsInvalidArgument) {
  EXPECT_THAT(locker_->With("wait", "a{b", [] { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'{'")));
}

TEST_F(WithTest, HeldLockKeepsItsPolicyAcrossReload) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/reload.json");
  std::ofstream(path) << config_;
  auto registry = std::shared_ptr<policy::Registry>(*policy::Registry::Load(path));
  auto locker = *Locker::Create(registry);
  auto held = *locker->NewLock("wait", "r");
  ASSERT_THAT(held->Acquire(), IsOk());
  std::ofstream(path) << absl::StrReplaceAll(config_, {{"\"20s\"", "\"9s\""}});
  ASSERT_THAT(registry->Reload(), IsOk());
  EXPECT_EQ(held->policy().ttl, absl::Seconds(20));
  EXPECT_EQ((*locker->NewLock("wait", "r2"))->policy().ttl, absl::Seconds(9));
  EXPECT_THAT(held->Release(), IsOk());
}

TEST_F(WithTest, GlobalsInitFromJsonAndGoParityHelpers) {
  ASSERT_THAT(InitFromJson(config_), IsOk());
  EXPECT_THAT(lock::With("wait", "g", [] { return absl::OkStatus(); }), IsOk());
  int64_t token = 0;
  EXPECT_THAT(LockWithToken("tok", absl::Seconds(5), [&](int64_t t) {
    token = t;
    return absl::OkStatus();
  }), IsOk());
  EXPECT_GT(token, 0);
  EXPECT_THAT(Lock("plain", absl::Seconds(5), [&] {
    EXPECT_EQ(RedisInt({"EXISTS", "{plain}"}), 1);  // options have no prefix
    return absl::OkStatus();
  }), IsOk());

  auto holder = NewLock("held", LockOptions{});
  ASSERT_THAT(holder, IsOk());
  ASSERT_THAT((*holder)->Acquire(), IsOk());
  absl::Status busy = LockWithRetry("held", absl::Seconds(5),
                                    [] { return absl::OkStatus(); },
                                    RetryStrategy{.max_attempts = 2,
                                                  .delay = absl::Milliseconds(1)});
  EXPECT_TRUE(IsBusy(busy)) << busy;
  EXPECT_TRUE(IsNotHeld(UnlockByValue("held", "not-the-owner")));
  EXPECT_EQ(RedisInt({"EXISTS", "{held}"}), 1);
  EXPECT_THAT(UnlockByValue("held", (*holder)->owner_token()), IsOk());
  EXPECT_EQ(RedisInt({"EXISTS", "{held}"}), 0);
}

TEST_F(WithTest, InvalidOptionsNameTheField) {
  ASSERT_THAT(InitFromJson(config_), IsOk());
  LockOptions bad;
  bad.ttl = absl::ZeroDuration();
  EXPECT_THAT(LockWithOptions("k", bad, [] { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ttl")));
}

TEST_F(WithTest, LazyInitFromLockConfig) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/env.json");
  std::ofstream(path) << config_;
  setenv("LOCK_CONFIG", path.c_str(), 1);
  EXPECT_THAT(lock::With("wait", "env", [] { return absl::OkStatus(); }), IsOk());
  Shutdown();
  setenv("LOCK_CONFIG", "/nonexistent/locks.json", 1);
  EXPECT_THAT(lock::With("wait", "env", [] { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("LOCK_CONFIG=/nonexistent/locks.json")));
  unsetenv("LOCK_CONFIG");
  EXPECT_THAT(lock::With("wait", "env", [] { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("lock::Init")));
}

// Regression (issue 11, item 3): a "fencing": false policy's Held returns
// token 0, and FencedSet used to accept it on a fresh resource (0 >= no
// fence yet), so a stale holder's write always won. Refused before Redis is
// touched: 0 means "no token", negative tokens are never issued.
TEST_F(WithTest, FencedSetRefusesTokenZeroAndNegativesWithoutTouchingRedis) {
  EXPECT_THAT(locker_->FencedSet("wait", "stock:zero", "1", 0),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("\"wait\""), HasSubstr("token 0"),
                             HasSubstr("fencing"))));
  EXPECT_THAT(locker_->FencedSet("wait", "stock:zero", "1", -7),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-7")));
  EXPECT_EQ(RedisInt({"EXISTS", "stock:zero"}), 0);
}

TEST_F(WithTest, FencedSetRefusesAStaleHoldersWrite) {
  // A holder that stalled past its lease comes back after a newer holder
  // wrote: its write must be refused and the newer value kept.
  int64_t stale = 0;
  ASSERT_THAT(locker_->With("wait", "stock", [&](Held& held) {
    stale = held.fencing_token();
    return absl::OkStatus();
  }), IsOk());
  ASSERT_THAT(locker_->With("wait", "stock", [&](Held& held) {
    EXPECT_GT(held.fencing_token(), stale);
    return locker_->FencedSet("wait", "stock:sku-1", "7", held.fencing_token());
  }), IsOk());
  absl::Status s = locker_->FencedSet("wait", "stock:sku-1", "8", stale);
  EXPECT_TRUE(IsStaleFence(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("refused"));
  EXPECT_EQ(Redis({"HGET", "stock:sku-1", "value"}), "7");
}

// Issue 11, fencing: an equal token is accepted -- one hold writes as often
// as it needs under its one token, and two holds never share a token (each
// is above the last and the server clock) -- while the next hold's token
// shuts the earlier one out.
TEST_F(WithTest, FencedSetAcceptsTheSameHoldsTokenAgainButNotAnEarlierOne) {
  int64_t first = 0;
  ASSERT_THAT(locker_->With("wait", "ledger", [&](Held& held) {
    first = held.fencing_token();
    EXPECT_THAT(locker_->FencedSet("wait", "ledger:1", "a", first), IsOk());
    return locker_->FencedSet("wait", "ledger:1", "b", first);  // same hold, same token
  }), IsOk());
  EXPECT_EQ(Redis({"HGET", "ledger:1", "value"}), "b");
  EXPECT_EQ(Redis({"HGET", "ledger:1", "fence"}), std::to_string(first));
  ASSERT_THAT(locker_->With("wait", "ledger", [&](Held& held) {
    EXPECT_GT(held.fencing_token(), first);
    return locker_->FencedSet("wait", "ledger:1", "c", held.fencing_token());
  }), IsOk());
  EXPECT_TRUE(IsStaleFence(locker_->FencedSet("wait", "ledger:1", "d", first)));
  EXPECT_EQ(Redis({"HGET", "ledger:1", "value"}), "c");
}

// Issue 12(a): lynx-redis-lock accepts a 1s lease with default options.
TEST_F(WithTest, OneSecondLeaseWithDefaultOptionsIsAcceptedAndRenewed) {
  ASSERT_THAT(InitFromJson(config_), IsOk());
  EXPECT_THAT(Lock("short-lease", absl::Seconds(1), [&] {
    // Longer than the lease: only renewal keeps it.
    std::this_thread::sleep_for(std::chrono::milliseconds(1600));
    EXPECT_EQ(RedisInt({"EXISTS", "{short-lease}"}), 1);
    return absl::OkStatus();
  }), IsOk());
  // A script_timeout set in code that contradicts the lease stays an error.
  LockOptions explicit_timeout;
  explicit_timeout.ttl = absl::Seconds(1);
  explicit_timeout.script_timeout = absl::Milliseconds(700);
  EXPECT_THAT(LockWithOptions("k", explicit_timeout, [] { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("script_timeout 700ms"), HasSubstr("ttl 1s"))));
}

// Issue 10(e): a lease under 1ms would be sent as PEXPIRE 0 or 1.
TEST_F(WithTest, ExtendBelowOneMillisecondIsInvalidArgument) {
  ASSERT_THAT(locker_->With("wait", "sub-ms", [&](Held& held) {
    EXPECT_THAT(held.Extend(absl::Microseconds(500)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("1ms"), HasSubstr("500us"))));
    EXPECT_GT(RedisInt({"PTTL", "{o:sub-ms}"}), 19000);  // untouched
    EXPECT_FALSE(held.lost());
    return absl::OkStatus();
  }), IsOk());
}

// Issue 12(d): "gave up after max attempts" and "wait timed out" are both
// IsBusy (kAborted) but tell apart by their own predicates.
TEST_F(WithTest, AttemptsExhaustedAndWaitTimedOutAreDistinctBusyOutcomes) {
  auto holder = HoldElsewhere("d");
  auto fn = [] { return absl::OkStatus(); };
  absl::Status attempts = locker_->With("wait3", "d", fn);
  EXPECT_THAT(attempts, StatusIs(absl::StatusCode::kAborted, HasSubstr("after 3 attempts")));
  EXPECT_TRUE(IsBusy(attempts));
  EXPECT_TRUE(IsAttemptsExhausted(attempts));
  EXPECT_FALSE(IsWaitTimedOut(attempts));

  absl::Status timed_out = locker_->With("short", "d", fn);  // 50ms wait
  EXPECT_THAT(timed_out, StatusIs(absl::StatusCode::kAborted, HasSubstr("50ms")));
  EXPECT_TRUE(IsBusy(timed_out));
  EXPECT_TRUE(IsWaitTimedOut(timed_out));
  EXPECT_FALSE(IsAttemptsExhausted(timed_out));

  // on_busy "fail" neither waited nor retried.
  absl::Status failed = locker_->With("fail", "d", fn);
  EXPECT_TRUE(IsBusy(failed));
  EXPECT_FALSE(IsAttemptsExhausted(failed));
  EXPECT_FALSE(IsWaitTimedOut(failed));
  // A kAborted of the caller's own is none of them.
  EXPECT_FALSE(IsAttemptsExhausted(absl::AbortedError("x")));
  EXPECT_FALSE(IsWaitTimedOut(absl::AbortedError("x")));
}

// Issue 12(b): like the Go namesake, N attempts are N-1 delays; the attempt
// right after subscribing to the release channel used to skip its delay.
TEST_F(WithTest, LockWithRetryMakesNAttemptsWithNMinusOneDelays) {
  ASSERT_THAT(InitFromJson(config_), IsOk());
  auto holder = NewLock("retried", LockOptions{});
  ASSERT_THAT(holder, IsOk());
  ASSERT_THAT((*holder)->Acquire(), IsOk());
  const PolicyStats before = GetStats().per_policy["(options)"];
  const absl::Time start = absl::Now();
  absl::Status s = LockWithRetry("retried", absl::Seconds(5),
                                 [] { return absl::OkStatus(); },
                                 RetryStrategy{.max_attempts = 3,
                                               .delay = absl::Milliseconds(200)});
  const absl::Duration took = absl::Now() - start;
  const PolicyStats after = GetStats().per_policy["(options)"];
  EXPECT_TRUE(IsAttemptsExhausted(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("after 3 attempts"));
  EXPECT_EQ(after.script_call.count - before.script_call.count, 3);  // attempts
  EXPECT_EQ(after.waits_woken_by_timer + after.waits_woken_by_notify -
                before.waits_woken_by_timer - before.waits_woken_by_notify,
            2);                                  // delays
  EXPECT_GE(took, absl::Milliseconds(200));      // 2 × 200ms × (1 ± 0.5)
  EXPECT_LT(took, absl::Seconds(3));
}

// Issue 11: a nested With on the key the same thread already holds waited
// for itself until wait.timeout and then reported IsBusy.
TEST_F(WithTest, NestedWithOnTheSameKeyFailsAtOnceInsteadOfWaitingForItself) {
  absl::Status inner, via_other_policy, via_options;
  absl::Duration inner_took;
  ASSERT_THAT(locker_->With("wait", "self", [&](Held& outer) {
    const absl::Time start = absl::Now();
    inner = locker_->With("wait", "self", [] { return absl::OkStatus(); });
    inner_took = absl::Now() - start;
    // "wait3" has the same target and key_prefix: the very same Redis key.
    via_other_policy = locker_->With("wait3", "self", [] { return absl::OkStatus(); });
    EXPECT_FALSE(outer.lost());
    EXPECT_EQ(Redis({"HGET", "{o:self}", "owner"}), outer.owner_token());
    EXPECT_EQ(Redis({"HGET", "{o:self}", "count"}), "1");
    return absl::OkStatus();
  }), IsOk());
  EXPECT_THAT(inner, StatusIs(absl::StatusCode::kFailedPrecondition,
                              AllOf(HasSubstr("already holds lock \"self\""),
                                    HasSubstr("policy \"wait\""),
                                    HasSubstr("wait for itself"),
                                    HasSubstr("RedisLock"))));
  EXPECT_TRUE(IsSelfDeadlock(inner));
  EXPECT_FALSE(IsNotHeld(inner));
  EXPECT_FALSE(IsSelfDeadlock(absl::FailedPreconditionError("x")));
  EXPECT_LT(inner_took, absl::Milliseconds(500));  // "wait" waits up to 2s
  EXPECT_THAT(via_other_policy, StatusIs(absl::StatusCode::kFailedPrecondition,
                                         HasSubstr("policy \"wait\"")));
  EXPECT_EQ(RedisInt({"EXISTS", "{o:self}"}), 0);  // the outer hold was released

  ASSERT_THAT(locker_->WithOptions("opt", LockOptions{}, [&](Held&) {
    via_options = locker_->WithOptions("opt", LockOptions{}, [](Held&) {
      return absl::OkStatus();
    });
    return absl::OkStatus();
  }), IsOk());
  EXPECT_THAT(via_options, StatusIs(absl::StatusCode::kFailedPrecondition,
                                    HasSubstr("already holds lock \"opt\"")));
}

TEST_F(WithTest, NestedWithOnOtherKeysAndOtherThreadsBehaveAsBefore) {
  ASSERT_THAT(locker_->With("wait", "n1", [&] {
    // Another key nests fine; another thread on the same key is a real
    // contender and gets the policy's busy outcome.
    EXPECT_THAT(locker_->With("wait", "n2", [] { return absl::OkStatus(); }), IsOk());
    absl::Status elsewhere;
    std::thread([&] {
      elsewhere = locker_->With("fail", "n1", [] { return absl::OkStatus(); });
    }).join();
    EXPECT_TRUE(IsBusy(elsewhere)) << elsewhere;
    return absl::OkStatus();
  }), IsOk());
  // Sequential use of the same key on the same thread is no nesting.
  EXPECT_THAT(locker_->With("wait", "n1", [] { return absl::OkStatus(); }), IsOk());
}

// Issue 12(c): UnlockByValue releases one re-entry level, like its Go
// namesake (lockctl release --force still releases every level).
TEST_F(WithTest, UnlockByValueReleasesOneReentryLevel) {
  ASSERT_THAT(InitFromJson(config_), IsOk());
  auto holder = NewLock("deep", LockOptions{});
  ASSERT_THAT(holder, IsOk());
  ASSERT_THAT((*holder)->Acquire(), IsOk());
  ASSERT_THAT((*holder)->Acquire(), IsOk());
  const std::string token = (*holder)->owner_token();
  ASSERT_EQ(Redis({"HGET", "{deep}", "count"}), "2");
  EXPECT_THAT(UnlockByValue("deep", token), IsOk());
  EXPECT_EQ(Redis({"HGET", "{deep}", "owner"}), token);
  EXPECT_EQ(Redis({"HGET", "{deep}", "count"}), "1");
  EXPECT_THAT(UnlockByValue("deep", token), IsOk());
  EXPECT_EQ(RedisInt({"EXISTS", "{deep}"}), 0);
  EXPECT_TRUE(IsNotHeld(UnlockByValue("deep", token)));
}


// lock::Shutdown is the process-wide layer's: a Locker built and kept
// elsewhere (dependency injection) keeps its locks and their renewal.
TEST_F(WithTest, ShutdownLeavesALockerBuiltElsewhereAlone) {
  auto mine = locker_->NewLock("wait", "injected");
  ASSERT_THAT(mine, IsOk());
  ASSERT_THAT((*mine)->Acquire(), IsOk());
  ASSERT_THAT((*mine)->EnableAutoRenew(), IsOk());
  ASSERT_THAT(InitFromJson(config_), IsOk());
  auto global = NewLock("global", [] {
    LockOptions o;
    o.key_prefix = "o:";
    return o;
  }());
  ASSERT_THAT(global, IsOk());
  ASSERT_THAT((*global)->Acquire(), IsOk());

  Shutdown();
  EXPECT_EQ(Redis({"EXISTS", "{o:global}"}), "0");  // released
  EXPECT_TRUE(IsNotHeld((*global)->Release()));
  EXPECT_EQ(Redis({"HGET", "{o:injected}", "owner"}), (*mine)->owner_token());
  EXPECT_THAT((*mine)->IsLocked(), IsOkAndHolds(true));
  EXPECT_THAT((*mine)->Release(), IsOk());
}

// Hot reload (issue 12): lock::Init watches its file; a valid edit is used by
// the next lock, a broken one keeps the working policies and is reported.
class HotReloadTest : public harness::RedisTest {
 protected:
  void TearDown() override {
    Shutdown();
    harness::RedisTest::TearDown();
  }

  // A configuration with the named policies, each on this test's server.
  std::string Config(std::initializer_list<const char*> policies) {
    std::string body;
    for (const char* name : policies) {
      absl::StrAppend(&body, body.empty() ? "" : ", ", "\"", name,
                      "\": { \"key_prefix\": \"hot:\" }");
    }
    return absl::StrCat(R"({ "redis": { "default": { "addrs": [")", server().addr(),
                        R"("] } }, "policies": { )", body, " } }");
  }

  // Replaces the file's content at once (rename), as editors and config
  // management do.
  void Write(const std::string& text) {
    const std::string tmp = path_ + ".tmp";
    std::ofstream(tmp) << text;
    ASSERT_EQ(std::rename(tmp.c_str(), path_.c_str()), 0);
  }

  // Whether policy `name` of the process-wide Locker takes a lock now.
  static absl::Status Try(const char* name) {
    return With(name, "k", [] { return absl::OkStatus(); });
  }

  const std::string path_ = absl::StrCat(::testing::TempDir(), "/hot-", getpid(), ".json");
};

TEST_F(HotReloadTest, ValidEditIsUsedAndBrokenEditKeepsTheWorkingPolicies) {
  Write(Config({"a"}));
  std::mutex mu;
  std::vector<absl::Status> reports;
  const Stats before = GetStats();
  ASSERT_THAT(Init(path_, {.watch_interval = absl::Milliseconds(10),
                           .on_reload =
                               [&](const absl::Status& s) {
                                 std::lock_guard<std::mutex> lock(mu);
                                 reports.push_back(s);
                               }}),
              IsOk());
  EXPECT_THAT(Try("a"), IsOk());
  EXPECT_THAT(Try("b"), StatusIs(absl::StatusCode::kNotFound));

  Write(Config({"a", "b"}));
  ASSERT_TRUE(harness::Eventually([] { return Try("b").ok(); }, std::chrono::seconds(5)));
  // Counted by the reload's report, which comes after the swap.
  EXPECT_TRUE(harness::Eventually(
      [&] { return GetStats().config_reloads == before.config_reloads + 1; }))
      << GetStats().config_reloads;

  Write("{ \"policies\": { \"a\": { \"ttl\": \"-1s\" } ");  // broken JSON
  ASSERT_TRUE(harness::Eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return reports.size() == 2;
  }, std::chrono::seconds(5)));
  {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_THAT(reports[0], IsOk());
    EXPECT_THAT(reports[1], StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(path_)));
  }
  EXPECT_EQ(GetStats().config_reload_errors, before.config_reload_errors + 1);
  EXPECT_THAT(Try("a"), IsOk());
  EXPECT_THAT(Try("b"), IsOk());  // the working configuration stayed
  EXPECT_THAT(StatsPrometheusText(), HasSubstr("lock_config_reload_errors_total "));
}

TEST_F(HotReloadTest, WatchCanBeTurnedOff) {
  Write(Config({"a"}));
  // A 10ms interval: were `watch` ignored, the edit below would be picked
  // up long before the check (the default 2s interval would hide that).
  ASSERT_THAT(Init(path_, {.watch = false, .watch_interval = absl::Milliseconds(10)}),
              IsOk());
  Write(Config({"a", "b"}));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_THAT(Try("b"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace lock
