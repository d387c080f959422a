// Locks on Redlock quorums of independent masters, against real servers,
// and the cluster hash-slot function.
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_server.h"
#include "lock/lock.h"
#include "lock/redis/topology.h"
#include "lock/testing/locker_from_json.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using ::testing::HasSubstr;

TEST(KeySlot, MatchesRedisCluster) {
  // Reference values from CLUSTER KEYSLOT.
  EXPECT_EQ(redis::KeySlot("foo"), 12182);
  EXPECT_EQ(redis::KeySlot("123456789"), 12739);
  EXPECT_EQ(redis::KeySlot("{user1000}.following"), redis::KeySlot("user1000"));
  EXPECT_EQ(redis::KeySlot("{}empty-tag"), redis::KeySlot("{}empty-tag"));
  EXPECT_NE(redis::KeySlot("{}empty-tag"), redis::KeySlot(""));
  EXPECT_EQ(redis::KeySlot("{order:close:42}"), redis::KeySlot("{order:close:42}:fence"));
}

class RedlockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) {
      auto s = harness::RedisServer::Start({.name = absl::StrCat("master-", i)});
      ASSERT_THAT(s, IsOk());
      masters_.push_back(*std::move(s));
    }
    std::vector<std::string> addrs;
    for (auto& m : masters_) addrs.push_back(absl::StrCat("\"", m->addr(), "\""));
    const std::string config = absl::StrCat(R"({
      "redis": { "quorum": { "mode": "redlock", "addrs": [)",
      absl::StrJoin(addrs, ","), R"(], "drift_factor": 0.01 } },
      "policies": {
        "rl": { "redis": "quorum", "key_prefix": "rl:", "ttl": "2s",
                "script_timeout": "200ms", "on_busy": "fail" },
        "rl-renew": { "redis": "quorum", "key_prefix": "rl:", "ttl": "400ms",
                      "script_timeout": "100ms", "renewal": { "threshold": 0.5 } }
      } })");
    auto locker = LockerFromJson(config, "redlock.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }
  void TearDown() override {
    if (!HasFailure()) return;
    for (auto& m : masters_) std::cerr << "[" << m->addr() << "]\n" << m->Log();
  }

  int Holding(const std::string& key) {
    int n = 0;
    for (auto& m : masters_) {
      if (m->pid() > 0 && m->Exec({"EXISTS", key}).value_or("0") == "1") ++n;
    }
    return n;
  }

  std::vector<std::unique_ptr<harness::RedisServer>> masters_;
  std::unique_ptr<Locker> locker_;
};

TEST_F(RedlockTest, HoldsOnEveryMasterAndReleasesEverywhere) {
  ASSERT_THAT(locker_->With("rl", "a", [&](Held& held) {
    EXPECT_EQ(Holding("{rl:a}"), 3);
    EXPECT_EQ(held.fencing_token(), 0);  // not issued in Redlock mode
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(Holding("{rl:a}"), 0);
}

TEST_F(RedlockTest, SecondOwnerIsBusy) {
  auto holder = locker_->NewLock("rl", "b");
  ASSERT_THAT(holder, IsOk());
  ASSERT_THAT((*holder)->Acquire(), IsOk());
  EXPECT_TRUE(IsBusy(locker_->With("rl", "b", [] { return absl::OkStatus(); })));
  EXPECT_EQ(Holding("{rl:b}"), 3);  // the loser left nothing behind
  EXPECT_THAT((*holder)->Release(), IsOk());
}

TEST_F(RedlockTest, WorksWithOneOfThreeMastersDown) {
  ASSERT_THAT(masters_[1]->Kill(), IsOk());
  EXPECT_THAT(locker_->With("rl", "c", [&] {
    EXPECT_EQ(Holding("{rl:c}"), 2);
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(Holding("{rl:c}"), 0);
}

TEST_F(RedlockTest, TwoOfThreeDownIsUnavailableAndLeavesNothingLocked) {
  ASSERT_THAT(masters_[0]->Kill(), IsOk());
  ASSERT_THAT(masters_[2]->Kill(), IsOk());
  bool ran = false;
  absl::Status s = locker_->With("rl", "d", [&] {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("1 of 3")));
  EXPECT_FALSE(ran);
  EXPECT_EQ(Holding("{rl:d}"), 0);  // the one grant was cancelled
}

TEST_F(RedlockTest, PausedMasterDoesNotBlockTheQuorum) {
  ASSERT_THAT(masters_[2]->Pause(), IsOk());
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(locker_->With("rl", "p", [] { return absl::OkStatus(); }), IsOk());
  // Masters are asked in parallel: one script_timeout (200ms) at most, not
  // one per master.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  ASSERT_THAT(masters_[2]->Resume(), IsOk());
}

TEST_F(RedlockTest, RenewalKeepsTheQuorumAcrossTtls) {
  ASSERT_THAT(locker_->With("rl-renew", "long", [&](Held& held) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // 3 × ttl
    EXPECT_FALSE(held.lost());
    EXPECT_EQ(Holding("{rl:long}"), 3);
    return absl::OkStatus();
  }), IsOk());
}

TEST_F(RedlockTest, LosingTheQuorumIsSignalled) {
  absl::Status s = locker_->With("rl-renew", "gone", [&](Held& held) {
    for (int i = 0; i < 2; ++i) (void)masters_[i]->Exec({"DEL", "{rl:gone}"});
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!held.stop_token().stop_requested() && std::chrono::steady_clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_TRUE(held.lost());
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
}

TEST_F(RedlockTest, FencedSetRefusesToPretend) {
  EXPECT_THAT(locker_->FencedSet("rl", "stock", "1", 5),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("Redlock")));
}

}  // namespace
}  // namespace lock
