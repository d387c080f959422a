// Locker::WithAll (issue 15): a set of keys of one mutex policy, all or
// none, against real redis-servers: every key held while fn runs and freed
// after, a partial failure leaving nothing held, overlapping sets taken in
// opposite orders without deadlock, per-key fencing tokens, loss of one key,
// bad input refused before Redis, exceptions, self-deadlock across With and
// WithAll, one wait.timeout for the whole set, and Redlock and Cluster
// targets.
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_test.h"
#include "lock/lock.h"
#include "lock/testing/locker_from_json.h"
#include "nlohmann/json.hpp"
#include "util/status_matchers.h"

namespace lock {
namespace {

using harness::Eventually;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::util::testing::IsOk;
using ::util::testing::IsOkAndHolds;
using ::util::testing::StatusIs;
using Clock = std::chrono::steady_clock;

constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"] } },
  "defaults": { "script_timeout": "300ms",
                "retry": { "initial_delay": "1ms", "max_delay": "5ms" } },
  "policies": {
    "wait": { "key_prefix": "w:", "wait": { "timeout": "10s" },
              "retry": { "max_attempts": 1000000 } },
    "fail": { "key_prefix": "w:", "on_busy": "fail" },
    "skip": { "key_prefix": "w:", "on_busy": "skip" },
    "short": { "key_prefix": "w:", "wait": { "timeout": "1s" },
               "retry": { "max_attempts": 1000000 } },
    "renew": { "key_prefix": "w:", "ttl": "300ms", "script_timeout": "100ms",
               "renewal": { "threshold": 0.5 } },
    "sem": { "kind": "semaphore", "permits": 2, "key_prefix": "s:" }
  }
})json";

class WithAllTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    locker_ = NewLocker();
  }

  std::unique_ptr<Locker> NewLocker() {
    auto locker =
        LockerFromJson(absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}}), "all.json");
    EXPECT_THAT(locker, IsOk());
    return locker.ok() ? *std::move(locker) : nullptr;
  }

  // Whether `key` (prefix "w:") is held in Redis by anyone.
  bool InRedis(const std::string& key) {
    return RedisInt({"EXISTS", absl::StrCat("{w:", key, "}")}) == 1;
  }

  // Whether another owner would find `key` busy now.
  bool BusyForOthers(const std::string& key) {
    auto other = locker_->NewLock("fail", key);
    EXPECT_THAT(other, IsOk());
    absl::StatusOr<bool> took = (*other)->TryAcquire();
    EXPECT_THAT(took, IsOk());
    if (took.value_or(false)) {
      EXPECT_THAT((*other)->Release(), IsOk());
    }
    return !took.value_or(true);
  }

  // Holds `key` with another instance for the test body.
  std::unique_ptr<RedisLock> HoldElsewhere(const std::string& key) {
    auto other = locker_->NewLock("wait", key);
    EXPECT_THAT(other, IsOk());
    EXPECT_THAT((*other)->Acquire(), IsOk());
    return *std::move(other);
  }

  std::unique_ptr<Locker> locker_;
};

TEST_F(WithAllTest, EveryKeyIsHeldWhileFnRunsAndFreedAfter) {
  const std::vector<std::string> keys = {"c", "a", "b"};
  bool ran = false;
  ASSERT_THAT(locker_->WithAll("wait", keys, [&](lock::Held& held) {
    ran = true;
    for (const std::string& k : keys) {
      EXPECT_TRUE(InRedis(k)) << k;
      EXPECT_TRUE(BusyForOthers(k)) << k;
    }
    EXPECT_FALSE(held.lost());
    return absl::OkStatus();
  }), IsOk());
  EXPECT_TRUE(ran);
  for (const std::string& k : keys) EXPECT_FALSE(InRedis(k)) << k;
}

TEST_F(WithAllTest, FnErrorIsReturnedAndEveryKeyFreed) {
  EXPECT_THAT(locker_->WithAll("wait", {"e1", "e2"}, [] {
    return absl::InternalError("boom");
  }), StatusIs(absl::StatusCode::kInternal, "boom"));
  EXPECT_FALSE(InRedis("e1"));
  EXPECT_FALSE(InRedis("e2"));
}

// One key of the set busy: the keys taken before it are given back, the
// ones after it never taken, fn never run; the other owner keeps its key.
TEST_F(WithAllTest, OneBusyKeyLeavesNoKeyOfTheSetHeld) {
  std::unique_ptr<RedisLock> other = HoldElsewhere("b");
  bool ran = false;
  absl::Status busy = locker_->WithAll("fail", {"c", "b", "a"}, [&] {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsBusy(busy)) << busy;
  EXPECT_THAT(busy.message(), AllOf(HasSubstr("key #1 \"b\""),
                                    HasSubstr("2 of 3 in lock order"),
                                    HasSubstr("the 1 keys taken before it were released")));
  absl::Status skipped = locker_->WithAll("skip", {"c", "b", "a"}, [&] {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_TRUE(lock::IsSkipped(skipped)) << skipped;
  EXPECT_FALSE(ran);
  EXPECT_FALSE(InRedis("a"));
  EXPECT_FALSE(InRedis("c"));
  EXPECT_EQ(Redis({"HGET", "{w:b}", "owner"}), other->owner_token());
}

// {a,b} and {b,a} in two Lockers (two processes, as far as Redis can tell):
// taken in the caller's order they would soon each hold one key and wait
// for the other until wait.timeout (10s) and report IsBusy.
TEST_F(WithAllTest, OverlappingSetsInOppositeOrdersNeverDeadlock) {
  std::unique_ptr<Locker> second = NewLocker();
  ASSERT_NE(second, nullptr);
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  auto loop = [&](Locker& locker, std::vector<std::string> keys) {
    for (int i = 0; i < 200; ++i) {
      absl::Status s = locker.WithAll("wait", keys, [&] {
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        std::this_thread::yield();
        inside.fetch_sub(1);
        return absl::OkStatus();
      });
      ASSERT_THAT(s, IsOk()) << "iteration " << i;
    }
  };
  const Clock::time_point start = Clock::now();
  std::thread one([&] { loop(*locker_, {"a", "b"}); });
  std::thread two([&] { loop(*second, {"b", "a"}); });
  one.join();
  two.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(10));
  EXPECT_FALSE(InRedis("a"));
  EXPECT_FALSE(InRedis("b"));
}

TEST_F(WithAllTest, EachKeyHasItsOwnFencingTokenAndDuplicatesAreTakenOnce) {
  ASSERT_THAT(locker_->WithAll("wait", {"y", "x", "y"}, [&](lock::Held& held) {
    EXPECT_THAT(held.keys(), ElementsAre("y", "x"));
    EXPECT_EQ(held.key(), "y");
    EXPECT_GT(held.fencing_token("x"), 0);
    EXPECT_GT(held.fencing_token("y"), 0);
    EXPECT_NE(held.fencing_token("x"), held.fencing_token("y"));
    EXPECT_EQ(held.fencing_token(), held.fencing_token("y"));
    EXPECT_EQ(held.fencing_token("z"), 0);
    EXPECT_EQ(Redis({"HGET", "{w:y}", "owner"}), held.owner_token());
    EXPECT_EQ(Redis({"HGET", "{w:y}", "count"}), "1");  // not re-entered
    EXPECT_EQ(Redis({"HGET", "{w:x}", "count"}), "1");
    return absl::OkStatus();
  }), IsOk());
  // With's Held answers the same questions for its one key.
  ASSERT_THAT(locker_->With("wait", "x", [&](lock::Held& held) {
    EXPECT_THAT(held.keys(), ElementsAre("x"));
    EXPECT_EQ(held.fencing_token("x"), held.fencing_token());
    EXPECT_EQ(held.fencing_token("y"), 0);
    return absl::OkStatus();
  }), IsOk());
}

TEST_F(WithAllTest, OneLostKeyRequestsTheStopTokenAndIsReportedByName) {
  absl::Status s = locker_->WithAll("renew", {"l1", "l2"}, [&](lock::Held& held) {
    Redis({"DEL", "{w:l2}"});
    // Renewal (every ~150ms) finds l2 gone.
    EXPECT_TRUE(Eventually([&] { return held.stop_token().stop_requested(); }));
    EXPECT_TRUE(held.lost());
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
  EXPECT_THAT(s.message(), AllOf(HasSubstr("lock \"l2\""), HasSubstr("one of the 2 keys")));
  EXPECT_FALSE(InRedis("l1"));
}

TEST_F(WithAllTest, ExtendExtendsEveryKeyAndReportsALostOne) {
  absl::Status s = locker_->WithAll("wait", {"x1", "x2"}, [&](lock::Held& held) {
    Redis({"DEL", "{w:x1}"});
    EXPECT_TRUE(IsNotHeld(held.Extend(absl::Seconds(5))));
    EXPECT_TRUE(held.lost());
    EXPECT_TRUE(held.stop_token().stop_requested());
    // x2 came after the failing key and was extended still (ttl 30s -> 5s).
    const int64_t pttl = RedisInt({"PTTL", "{w:x2}"});
    EXPECT_GT(pttl, 4000);
    EXPECT_LE(pttl, 5000);
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("lock \"x1\""));
}

TEST_F(WithAllTest, BadInputIsRefusedBeforeAnyKeyIsTaken) {
  bool ran = false;
  auto fn = [&] {
    ran = true;
    return absl::OkStatus();
  };
  // "a" sorts before the bad key: had it been taken first, it would show.
  EXPECT_THAT(locker_->WithAll("wait", {"a", "b{", "c"}, fn),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("key #1 \"b{\""), HasSubstr("'{'"))));
  EXPECT_THAT(locker_->WithAll("wait", {"a", std::string("n\x01")}, fn),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key #1 \"n\\x01\"")));
  EXPECT_THAT(locker_->WithAll("sem", {"a"}, fn),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("policy \"sem\""), HasSubstr("\"semaphore\""))));
  EXPECT_THAT(locker_->WithAll("wait", {}, fn),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(locker_->WithAll("nope", {"a"}, fn),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("\"nope\"")));
  EXPECT_FALSE(ran);
  EXPECT_EQ(Redis({"DBSIZE"}), "0");
}

TEST_F(WithAllTest, ExceptionIsRethrownAfterEveryKeyIsReleased) {
  EXPECT_THROW(locker_->WithAll("wait", {"t1", "t2", "t3"}, []() -> absl::Status {
    throw std::runtime_error("boom");
  }), std::runtime_error);
  for (const char* k : {"t1", "t2", "t3"}) EXPECT_FALSE(InRedis(k)) << k;
}

TEST_F(WithAllTest, SelfDeadlockIsCaughtBetweenWithAndWithAll) {
  absl::Status nested_with, nested_all, other_key;
  ASSERT_THAT(locker_->WithAll("wait", {"s1", "s2"}, [&] {
    nested_with = locker_->With("fail", "s2", [] { return absl::OkStatus(); });
    other_key = locker_->With("fail", "s3", [] { return absl::OkStatus(); });
    return absl::OkStatus();
  }), IsOk());
  EXPECT_TRUE(IsSelfDeadlock(nested_with)) << nested_with;
  EXPECT_THAT(nested_with.message(), HasSubstr("already holds lock \"s2\""));
  EXPECT_THAT(other_key, IsOk());

  ASSERT_THAT(locker_->With("wait", "s2", [&] {
    nested_all = locker_->WithAll("wait", {"s1", "s2"}, [] { return absl::OkStatus(); });
    EXPECT_FALSE(InRedis("s1"));  // refused before anything was taken
    return absl::OkStatus();
  }), IsOk());
  EXPECT_TRUE(IsSelfDeadlock(nested_all)) << nested_all;
  // Once the WithAll is over, its keys are no longer seen as held here.
  EXPECT_THAT(locker_->With("fail", "s1", [] { return absl::OkStatus(); }), IsOk());
}

// "short" waits 1s. "a" comes free after 600ms, "b" never: with the timeout
// per key the set would give up after 600ms + 1s; it bounds the whole set.
TEST_F(WithAllTest, WaitTimeoutBoundsTheWholeSet) {
  std::unique_ptr<RedisLock> a = HoldElsewhere("a");
  std::unique_ptr<RedisLock> b = HoldElsewhere("b");
  std::thread free_a([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    EXPECT_THAT(a->Release(), IsOk());
  });
  const Clock::time_point start = Clock::now();
  absl::Status s = locker_->WithAll("short", {"b", "a"}, [] { return absl::OkStatus(); });
  const Clock::duration took = Clock::now() - start;
  free_a.join();
  EXPECT_TRUE(IsWaitTimedOut(s)) << s;
  EXPECT_THAT(s.message(), AllOf(HasSubstr("key #0 \"b\""), HasSubstr("bounds the whole set")));
  EXPECT_GE(took, std::chrono::milliseconds(900));
  EXPECT_LT(took, std::chrono::milliseconds(1400));
  EXPECT_FALSE(InRedis("a"));  // taken after 600ms, given back
}

TEST_F(WithAllTest, ProcessWideWithAll) {
  InitWith(NewLocker());
  bool ran = false;
  EXPECT_THAT(lock::WithAll("wait", {"g1", "g2"}, [&](lock::Held& held) {
    ran = held.keys().size() == 2;
    return absl::OkStatus();
  }), IsOk());
  EXPECT_THAT(lock::WithAll("wait", {"g1"}, [] { return absl::OkStatus(); }), IsOk());
  EXPECT_TRUE(ran);
  Shutdown();
}

// Each key is its own quorum lock on every master.
TEST(WithAllRedlockTest, EveryKeyIsHeldOnEveryMaster) {
  std::vector<std::unique_ptr<harness::RedisServer>> masters;
  std::vector<std::string> addrs;
  for (int i = 0; i < 3; ++i) {
    auto s = harness::RedisServer::Start({.name = absl::StrCat("master-", i)});
    ASSERT_THAT(s, IsOk());
    addrs.push_back(absl::StrCat("\"", (*s)->addr(), "\""));
    masters.push_back(*std::move(s));
  }
  auto locker = LockerFromJson(
      absl::StrCat(R"({ "redis": { "quorum": { "mode": "redlock", "addrs": [)",
                   absl::StrJoin(addrs, ","), R"(] } },
        "policies": { "rl": { "redis": "quorum", "key_prefix": "rl:", "on_busy": "fail" } } })"),
      "redlock.json");
  ASSERT_THAT(locker, IsOk());
  auto holding = [&](const std::string& key) {
    int n = 0;
    for (auto& m : masters) n += m->Exec({"EXISTS", key}).value_or("0") == "1";
    return n;
  };
  ASSERT_THAT((*locker)->WithAll("rl", {"q2", "q1"}, [&](lock::Held& held) {
    EXPECT_EQ(holding("{rl:q1}"), 3);
    EXPECT_EQ(holding("{rl:q2}"), 3);
    EXPECT_EQ(held.fencing_token("q1"), 0);  // none in Redlock mode
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(holding("{rl:q1}"), 0);
  EXPECT_EQ(holding("{rl:q2}"), 0);
}

// Keys in different slots, on different masters: each is its own lock.
class WithAllClusterTest : public harness::RedisFleetTest {};

TEST_F(WithAllClusterTest, KeysOnDifferentMastersAreTakenAndFreed) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Cluster(3, 0));
  ASSERT_NE(fleet, nullptr);
  nlohmann::json target = nlohmann::json::parse(fleet->PolicyTargetJson());
  nlohmann::json config = {
      {"redis", {{"default", target}}},
      {"policies", {{"fail", {{"key_prefix", "w:"}, {"on_busy", "fail"}}}}}};
  auto locker = LockerFromJson(config.dump(), "cluster.json");
  ASSERT_THAT(locker, IsOk());
  std::vector<std::string> keys;
  for (int i = 0; i < 12; ++i) keys.push_back(absl::StrCat("k", i));
  ASSERT_THAT((*locker)->WithAll("fail", keys, [&] {
    for (const std::string& k : keys) {
      auto other = (*locker)->NewLock("fail", k);
      EXPECT_THAT((*other)->TryAcquire(), IsOkAndHolds(false)) << k;
    }
    return absl::OkStatus();
  }), IsOk());
  for (const std::string& k : keys) {
    auto other = (*locker)->NewLock("fail", k);
    EXPECT_THAT((*other)->TryAcquire(), IsOkAndHolds(true)) << k;
    EXPECT_THAT((*other)->Release(), IsOk());
  }
}

}  // namespace
}  // namespace lock
