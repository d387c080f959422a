// lockctl on the harness's fleets: a Sentinel deployment, a Cluster and
// Redlock masters, each holding locks taken through the library. One fleet
// per suite (starting one takes seconds); each test uses keys of its own.
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_test.h"
#include "lock/lock.h"
#include "nlohmann/json.hpp"
#include "policy/registry.h"
#include "tools/lockctl/lockctl_run.h"
#include "util/status_matchers.h"

namespace lockctl {
namespace {

using lock::harness::RedisFleet;
using ::testing::HasSubstr;
using ::testing::Not;
using ::util::testing::IsOk;
using ::util::testing::IsOkAndHolds;

class FleetTest : public ::testing::Test {
 protected:
  // Starts the suite's fleet and writes a configuration whose target
  // "default" is it. `kinds`: also a semaphore policy (not on Redlock, where
  // the library serves only mutexes).
  static void StartFleet(absl::StatusOr<std::unique_ptr<RedisFleet>> fleet, bool kinds) {
    if (!fleet.ok()) {
      start_error_ = absl::StrCat("starting the fleet: ", fleet.status().ToString());
      return;
    }
    fleet_ = *std::move(fleet);
    nlohmann::json target = nlohmann::json::parse(fleet_->PolicyTargetJson());
    target["connect_timeout"] = "500ms";
    nlohmann::json config = {
        {"redis", {{"default", target}}},
        {"defaults", {{"script_timeout", "1s"}}},
        {"policies",
         {{"orders", {{"key_prefix", "order:"}, {"ttl", "1h"}, {"on_busy", "fail"}}},
          {"orders-wait", {{"key_prefix", "order:"}, {"ttl", "1h"},
                           {"wait", {{"timeout", "60s"}, {"notify", true}}},
                           {"retry", {{"max_attempts", 1000000}, {"max_delay", "1s"}}}}},
          {"bench", {{"key_prefix", "bench:"}, {"ttl", "10s"},
                     {"wait", {{"timeout", "10s"}, {"notify", true}}}}}}}};
    if (kinds) {
      config["policies"]["pool"] = {
          {"key_prefix", "pool:"}, {"kind", "semaphore"}, {"permits", 2}, {"ttl", "1h"}};
    }
    config_ = absl::StrCat(TmpDir(), "/fleet-policies.json");
    std::ofstream(config_) << config.dump(2);
    absl::StatusOr<std::unique_ptr<policy::Registry>> registry = policy::Registry::Load(config_);
    if (!registry.ok()) {
      start_error_ = registry.status().ToString();
      return;
    }
    absl::StatusOr<std::unique_ptr<lock::Locker>> locker =
        lock::Locker::Create(std::shared_ptr<policy::Registry>(*std::move(registry)));
    if (!locker.ok()) {
      start_error_ = locker.status().ToString();
      return;
    }
    locker_ = *std::move(locker);
  }

  static void TearDownTestSuite() {
    locker_.reset();
    fleet_.reset();
  }

  void SetUp() override { ASSERT_NE(locker_, nullptr) << start_error_; }
  void TearDown() override {
    if (HasFailure() && fleet_ != nullptr) std::cerr << fleet_->Logs();
  }

  // A lock held through the library, as an application would hold it.
  std::unique_ptr<lock::RedisLock> Hold(const std::string& policy, const std::string& key) {
    auto lk = locker_->NewLock(policy, key);
    EXPECT_THAT(lk, IsOk());
    if (!lk.ok()) return nullptr;
    EXPECT_THAT((*lk)->Acquire(), IsOk());
    return *std::move(lk);
  }

  bool HeldNow(const std::string& policy, const std::string& key) {
    auto lk = locker_->NewLock(policy, key);
    EXPECT_THAT(lk, IsOk());
    if (!lk.ok()) return false;
    absl::StatusOr<lock::LockState> st = (*lk)->Inspect();
    EXPECT_THAT(st, IsOk());
    return st.ok() && st->held;
  }

  static CliRun Run(std::vector<std::string> args) {
    args.push_back("--config");
    args.push_back(config_);
    return Lockctl(args);
  }

  static std::unique_ptr<RedisFleet> fleet_;
  static std::unique_ptr<lock::Locker> locker_;
  static std::string config_;
  static std::string start_error_;
};

std::unique_ptr<RedisFleet> FleetTest::fleet_;
std::unique_ptr<lock::Locker> FleetTest::locker_;
std::string FleetTest::config_;
std::string FleetTest::start_error_;

// --- Sentinel ----------------------------------------------------------------

class LockctlSentinelTest : public FleetTest {
 protected:
  static void SetUpTestSuite() {
    StartFleet(RedisFleet::Sentinel(/*replicas=*/1, /*sentinels=*/1), /*kinds=*/true);
  }
};

TEST_F(LockctlSentinelTest, StatusListAndForceReleaseNameTheResolvedMaster) {
  absl::StatusOr<std::string> master = fleet_->MasterAddr();
  ASSERT_THAT(master, IsOk());
  const std::string on = absl::StrCat("on master ", *master, " via sentinel ",
                                      fleet_->master_name(), " db 0");
  auto lk = Hold("orders", "s-1");
  ASSERT_NE(lk, nullptr);

  CliRun r = Run({"status", "orders", "s-1"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("{order:s-1} ", on)));
  EXPECT_THAT(r.out, HasSubstr(lk->owner_token()));

  r = Run({"status", "orders", "s-1", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["master"], *master);
  EXPECT_EQ(j["owner"], lk->owner_token());

  r = Run({"list", "orders"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr(lk->owner_token()));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("1 lock under policy orders (prefix \"order:\", "
                                            "match \"*\") ",
                                            on)));

  r = Run({"release", "orders", "s-1", "--force", "--yes"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("force-released orders / s-1 ({order:s-1} ", on,
                                            "): removed owner ", lk->owner_token())));
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(" redis=", *master, " db=0 ")));
  EXPECT_FALSE(HeldNow("orders", "s-1"));
}

TEST_F(LockctlSentinelTest, WatchFollowsTheResolvedMaster) {
  absl::StatusOr<std::string> master = fleet_->MasterAddr();
  ASSERT_THAT(master, IsOk());
  auto lk = Hold("orders", "s-watch");
  ASSERT_NE(lk, nullptr);
  CliRun r = Run({"watch", "orders", "s-watch", "--count", "1"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("on master ", *master, " via sentinel")));
  EXPECT_THAT(r.out, HasSubstr(lk->owner_token()));
  EXPECT_THAT(r.out, HasSubstr("1 lock "));
}

TEST_F(LockctlSentinelTest, SemaphoreStatusAndReleaseOnTheResolvedMaster) {
  absl::StatusOr<std::string> master = fleet_->MasterAddr();
  ASSERT_THAT(master, IsOk());
  auto permit = Hold("pool", "p-1");
  ASSERT_NE(permit, nullptr);
  CliRun r = Run({"status", "pool", "p-1"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("{pool:p-1} on master ", *master, " via sentinel")));
  EXPECT_THAT(r.out, HasSubstr("1/2 in use"));
  r = Run({"release", "pool", "p-1", "--owner", permit->owner_token()});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_FALSE(HeldNow("pool", "p-1"));
}

// --- Cluster -----------------------------------------------------------------

class LockctlClusterTest : public FleetTest {
 protected:
  static void SetUpTestSuite() {
    StartFleet(RedisFleet::Cluster(/*masters=*/3, /*replicas_per_master=*/0), /*kinds=*/true);
  }

  // One key under `prefix` per master, each in a slot that master serves:
  // {key, index of the node serving it}.
  std::vector<std::pair<std::string, int>> KeysOnEveryMaster(const std::string& prefix,
                                                             const std::string& stem) {
    std::vector<std::pair<std::string, int>> out;
    std::vector<bool> taken(fleet_->size(), false);
    for (int i = 0; out.size() < 3 && i < 1000; ++i) {
      const std::string key = absl::StrCat(stem, i);
      absl::StatusOr<int> node =
          fleet_->NodeIndexForSlot(RedisFleet::KeySlot(absl::StrCat("{", prefix, key, "}")));
      EXPECT_THAT(node, IsOk());
      if (!node.ok() || taken[*node]) continue;
      taken[*node] = true;
      out.push_back({key, *node});
    }
    EXPECT_EQ(out.size(), 3u);
    return out;
  }

  // Each of `keys` held under `policy` (Hold records any failure).
  std::vector<std::unique_ptr<lock::RedisLock>> HoldEach(
      const std::string& policy, const std::vector<std::pair<std::string, int>>& keys) {
    std::vector<std::unique_ptr<lock::RedisLock>> held;
    for (const auto& [key, node] : keys) held.push_back(Hold(policy, key));
    return held;
  }
};

TEST_F(LockctlClusterTest, ListScansEveryMasterAndStatusRoutesEachKeyToItsSlot) {
  const auto keys = KeysOnEveryMaster("order:", "c-");
  const auto held = HoldEach("orders", keys);
  ASSERT_FALSE(HasFailure());

  CliRun r = Run({"list", "orders"});
  ASSERT_EQ(r.code, 0) << r;
  for (const auto& lk : held) EXPECT_THAT(r.out, HasSubstr(lk->owner_token()));
  EXPECT_THAT(r.out, HasSubstr("3 locks under policy orders"));
  EXPECT_THAT(r.out, HasSubstr("on cluster masters "));

  for (size_t i = 0; i < keys.size(); ++i) {
    const auto& [key, node] = keys[i];
    const std::string tag = absl::StrCat("{order:", key, "}");
    r = Run({"status", "orders", key});
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat(tag, " on ", fleet_->node(node).addr(),
                                              " (cluster master of slot ",
                                              RedisFleet::KeySlot(tag), ")")));
    EXPECT_THAT(r.out, HasSubstr(held[i]->owner_token()));
    r = Run({"release", "orders", key, "--owner", held[i]->owner_token()});
    ASSERT_EQ(r.code, 0) << r;
    EXPECT_FALSE(HeldNow("orders", key));
  }
  r = Run({"list", "orders"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("no locks held under policy orders"));
}

// The waiter subscribes on whichever node the library picked, not
// necessarily the key's master: watch counts subscribers on every master.
TEST_F(LockctlClusterTest, WatchShowsEveryMastersLocksAndCountsWaitersOnAnyNode) {
  const auto keys = KeysOnEveryMaster("order:", "w-");
  const auto held = HoldEach("orders", keys);
  ASSERT_FALSE(HasFailure());
  const std::string contended = keys.back().first;
  auto waiter = locker_->NewLock("orders-wait", contended);
  ASSERT_THAT(waiter, IsOk());
  std::thread waiting([&] { EXPECT_THAT((*waiter)->Acquire(), IsOk()); });

  nlohmann::json frame;
  auto waiters_of = [&](const std::string& key) -> int64_t {
    for (const auto& l : frame["locks"]) {
      if (l["key"] == key) return l["waiters"].get<int64_t>();
    }
    return -1;
  };
  const bool seen = lock::harness::Eventually(
      [&] {
        CliRun r = Run({"watch", "orders", "w-*", "--count", "1", "--json"});
        if (r.code != 0) return false;
        frame = nlohmann::json::parse(r.out);
        return waiters_of(contended) == 1;
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(seen) << frame.dump(2);
  EXPECT_EQ(frame["locks"].size(), 3u) << frame.dump(2);
  for (size_t i = 0; i + 1 < keys.size(); ++i) EXPECT_EQ(waiters_of(keys[i].first), 0);
  for (const auto& l : frame["locks"]) {
    EXPECT_EQ(l["age_from"], "fencing_token") << l.dump();
    EXPECT_GE(l["age_ms"].get<int64_t>(), 0);
    EXPECT_EQ(l["owner_pid"].get<int64_t>(), getpid());
  }

  ASSERT_THAT(held.back()->Release(), IsOk());
  waiting.join();
  EXPECT_THAT((*waiter)->Release(), IsOk());
}

TEST_F(LockctlClusterTest, SemaphoresOnEveryMasterAreListed) {
  const auto keys = KeysOnEveryMaster("pool:", "p-");
  const auto held = HoldEach("pool", keys);
  ASSERT_FALSE(HasFailure());
  CliRun r = Run({"list", "pool"});
  ASSERT_EQ(r.code, 0) << r;
  for (const auto& [key, node] : keys) EXPECT_THAT(r.out, HasSubstr(key + "  semaphore  1/2"));
  EXPECT_THAT(r.out, HasSubstr("3 locks under policy pool"));
}

TEST_F(LockctlClusterTest, BenchRunsAndRemovesItsFenceRecordsOnEveryMaster) {
  CliRun r = Run({"bench", "--policy", "bench", "--seconds", "0.3", "--threads", "3"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("handoff"));
  EXPECT_THAT(r.out, HasSubstr("on cluster masters "));
  for (int i = 0; i < fleet_->size(); ++i) {
    EXPECT_THAT(fleet_->node(i).Exec({"KEYS", "*lockctl-bench*"}), IsOkAndHolds(""))
        << fleet_->node(i).addr();
  }
}

// --- Redlock -----------------------------------------------------------------

class LockctlRedlockTest : public FleetTest {
 protected:
  static void SetUpTestSuite() { StartFleet(RedisFleet::Masters(3), /*kinds=*/false); }
};

TEST_F(LockctlRedlockTest, StatusShowsEachMasterAndWhetherAQuorumHoldsIt) {
  auto lk = Hold("orders", "r-1");
  ASSERT_NE(lk, nullptr);
  const std::string owner = lk->owner_token();
  CliRun r = Run({"status", "orders", "r-1"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("held (3 of 3 masters, quorum 2)"));
  EXPECT_THAT(r.out, HasSubstr("none (Redlock targets issue no fencing tokens)"));
  for (int i = 0; i < 3; ++i) {
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("master ", fleet_->node(i).addr(),
                                              "  held by this owner")));
  }

  // The hold gone from one master: still a quorum; from two: none.
  ASSERT_THAT(fleet_->node(0).Exec({"DEL", "{order:r-1}"}), IsOk());
  r = Run({"status", "orders", "r-1"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("held (2 of 3 masters, quorum 2)"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("master ", fleet_->node(0).addr(), "  free")));

  ASSERT_THAT(fleet_->node(1).Exec({"DEL", "{order:r-1}"}), IsOk());
  r = Run({"status", "orders", "r-1", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["held"], false);
  EXPECT_EQ(j["quorum"], 2);
  EXPECT_EQ(j["masters_holding"], 1);
  EXPECT_EQ(j["owner"], owner);
  ASSERT_EQ(j["masters"].size(), 3u);
  EXPECT_EQ(j["masters"][0]["state"], "free");
  EXPECT_EQ(j["masters"][2]["state"], "held");

  r = Run({"list", "orders", "--match", "r-1"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("MASTERS"));
  EXPECT_THAT(r.out, HasSubstr("r-1  no quorum  1/3"));
  EXPECT_THAT(r.out, HasSubstr("(quorum 2)"));
}

TEST_F(LockctlRedlockTest, ReleaseActsWhereTheOwnerMatchesAndReportsEachMaster) {
  auto lk = Hold("orders", "r-2");
  ASSERT_NE(lk, nullptr);
  const std::string owner = lk->owner_token();
  // A minority left to another owner (say, its failed acquire).
  ASSERT_THAT(fleet_->node(2).Exec({"HSET", "{order:r-2}", "owner", "other:1:x"}), IsOk());

  CliRun r = Run({"release", "orders", "r-2", "--owner", owner});
  ASSERT_EQ(r.code, 0) << r;
  for (int i = 0; i < 2; ++i) {
    EXPECT_THAT(r.out, HasSubstr(absl::StrCat("redlock master ", fleet_->node(i).addr(),
                                              ": released owner ", owner)));
  }
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("redlock master ", fleet_->node(2).addr(),
                                            ": not held by ", owner, " there")));
  EXPECT_THAT(r.out, HasSubstr("released on 2 of 3 masters (quorum 2)"));
  EXPECT_THAT(fleet_->node(2).Exec({"HGET", "{order:r-2}", "owner"}),
              IsOkAndHolds("other:1:x"));

  r = Run({"release", "orders", "r-2", "--owner", owner});
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_THAT(r.out, HasSubstr("released on 0 of 3 masters"));

  // --force releases what each master holds, each by its own owner.
  r = Run({"release", "orders", "r-2", "--force", "--yes", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["masters_released"], 1);
  ASSERT_EQ(j["masters"].size(), 1u);
  EXPECT_EQ(j["masters"][0]["owner"], "other:1:x");
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(" redis=", fleet_->node(2).addr(), " ")));
  EXPECT_THAT(fleet_->node(2).Exec({"EXISTS", "{order:r-2}"}), IsOkAndHolds("0"));
}

TEST_F(LockctlRedlockTest, BenchRunsOnTheQuorum) {
  CliRun r = Run({"bench", "--policy", "bench", "--seconds", "0.3", "--threads", "2", "--json"});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("\"scenario\":\"handoff\""));
  EXPECT_THAT(r.out, Not(HasSubstr("\"pairs\":0,")));
}

}  // namespace
}  // namespace lockctl
