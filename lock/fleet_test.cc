// The lock contract on Sentinel and Cluster deployments started by the
// harness: real redis-server processes, real failovers, real slot moves.
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_test.h"
#include "lock/lock.h"
#include "lock/redis/topology.h"
#include "lock/testing/locker_from_json.h"
#include "lock/testing/observe_recorder.h"
#include "nlohmann/json.hpp"
#include "util/status_matchers.h"

namespace lock {
namespace {

using ::util::testing::IsOk;
using ::util::testing::IsOkAndHolds;
using ::util::testing::StatusIs;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

class FleetLockTest : public harness::RedisFleetTest {
 protected:
  // A Locker whose target "default" is `fleet`, plus `extra` target fields.
  std::unique_ptr<Locker> LockerFor(harness::RedisFleet& fleet,
                                    const nlohmann::json& extra = nlohmann::json::object()) {
    nlohmann::json target = nlohmann::json::parse(fleet.PolicyTargetJson());
    target["connect_timeout"] = "300ms";
    for (auto& [k, v] : extra.items()) target[k] = v;
    nlohmann::json config = {
        {"redis", {{"default", target}}},
        {"defaults", {{"script_timeout", "300ms"},
                      {"retry", {{"initial_delay", "1ms"}, {"max_delay", "10ms"}}}}},
        {"policies",
         {{"wait", {{"key_prefix", "w:"}, {"wait", {{"timeout", "20s"}}},
                    {"retry", {{"max_attempts", 1000000}}}}},
          {"fail", {{"key_prefix", "w:"}, {"on_busy", "fail"}}},
          {"skip", {{"key_prefix", "w:"}, {"on_busy", "skip"}}},
          {"renew", {{"key_prefix", "r:"}, {"ttl", "1500ms"},
                     {"renewal", {{"threshold", 0.5}}}}},
          {"renew-fail", {{"key_prefix", "r:"}, {"on_busy", "fail"}}},
          {"notify", {{"key_prefix", "n:"}, {"wait", {{"timeout", "20s"}, {"notify", true}}},
                      {"retry", {{"initial_delay", "10s"}, {"max_delay", "10s"},
                                 {"jitter", 0}}}}},
          // The other kinds (issue 15); one hash tag per primitive keeps
          // each one's scripts in one slot.
          {"sem", {{"kind", "semaphore"}, {"permits", 2}, {"on_busy", "fail"}}},
          {"rw", {{"kind", "read_write"}, {"on_busy", "fail"}}},
          {"fair", {{"kind", "fair"}, {"on_busy", "fail"}}},
          {"fair-wait", {{"kind", "fair"}, {"wait", {{"timeout", "20s"}, {"notify", true}}},
                         {"retry", {{"initial_delay", "10s"}, {"max_delay", "10s"},
                                    {"jitter", 0}}}}}}}};
    auto locker = LockerFromJson(config.dump(), "fleet.json");
    EXPECT_THAT(locker, IsOk());
    return locker.ok() ? *std::move(locker) : nullptr;
  }

  // The With contract: acquire, busy, skip, re-entry, extend, release.
  void ExpectContract(Locker& locker) {
    auto holder = *locker.NewLock("wait", "c");
    ASSERT_THAT(holder->Acquire(), IsOk());
    ASSERT_THAT(holder->Acquire(), IsOk());  // re-entry
    EXPECT_EQ(holder->hold_count(), 2);
    EXPECT_GT(holder->fencing_token(), 0);
    EXPECT_TRUE(IsBusy(locker.With("fail", "c", [] { return absl::OkStatus(); })));
    EXPECT_TRUE(lock::IsSkipped(locker.With("skip", "c", [] { return absl::OkStatus(); })));
    EXPECT_THAT(holder->Renew(absl::Seconds(20)), IsOk());
    EXPECT_THAT(holder->Release(), IsOk());
    EXPECT_THAT(holder->Release(), IsOk());
    int64_t fence = 0;
    EXPECT_THAT(locker.With("wait", "c", [&](Held& h) {
      fence = h.fencing_token();
      return absl::OkStatus();
    }), IsOk());
    EXPECT_GT(fence, 0);
  }

  // Each kind's contract on `key`: a semaphore's permits bound its holders,
  // readers share and a writer excludes them, a fair release wakes the
  // waiter in line (its backoff is 10s: only the notification explains a
  // quick turn).
  void ExpectKinds(Locker& locker, const std::string& key) {
    auto p1 = *locker.NewLock("sem", key);
    auto p2 = *locker.NewLock("sem", key);
    ASSERT_THAT(p1->Acquire(), IsOk());
    ASSERT_THAT(p2->Acquire(), IsOk());
    EXPECT_TRUE(IsBusy(locker.With("sem", key, [] { return absl::OkStatus(); }))) << key;
    EXPECT_THAT(p1->Release(), IsOk());
    EXPECT_THAT(locker.With("sem", key, [] { return absl::OkStatus(); }), IsOk()) << key;
    EXPECT_THAT(p2->Release(), IsOk());

    auto r1 = *locker.NewReadLock("rw", key);
    auto r2 = *locker.NewReadLock("rw", key);
    ASSERT_THAT(r1->Acquire(), IsOk());
    ASSERT_THAT(r2->Acquire(), IsOk());
    EXPECT_TRUE(IsBusy(locker.WithWrite("rw", key, [] { return absl::OkStatus(); }))) << key;
    EXPECT_THAT(r1->Release(), IsOk());
    EXPECT_THAT(r2->Release(), IsOk());
    int64_t write_token = 0;
    EXPECT_THAT(locker.WithWrite("rw", key, [&](Held& h) {
      write_token = h.fencing_token();
      std::thread reader([&] {  // another thread: this one would self-deadlock
        EXPECT_TRUE(IsBusy(locker.WithRead("rw", key, [] { return absl::OkStatus(); })));
      });
      reader.join();
      return absl::OkStatus();
    }), IsOk()) << key;
    EXPECT_GT(write_token, 0);

    auto holder = *locker.NewLock("fair", key);
    ASSERT_THAT(holder->Acquire(), IsOk());
    const Clock::time_point start = Clock::now();
    std::thread release([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      EXPECT_THAT(holder->Release(), IsOk());
    });
    int64_t fair_token = 0;
    EXPECT_THAT(locker.With("fair-wait", key, [&](Held& h) {
      fair_token = h.fencing_token();
      return absl::OkStatus();
    }), IsOk()) << key;
    release.join();
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5)) << key;
    EXPECT_GT(fair_token, 0);
  }

  // T threads × N increments of one counter under one lock, non-atomically
  // (GET then SET through FencedSet's resource hash would hide races, so the
  // counter lives in the lock's own process: overlaps are counted directly).
  void ExpectMutualExclusion(Locker& locker, int threads, int per_thread) {
    std::atomic<int> inside{0}, overlaps{0}, done{0};
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&] {
        for (int i = 0; i < per_thread; ++i) {
          absl::Status s = locker.With("wait", "mutex", [&] {
            if (inside.fetch_add(1) != 0) overlaps++;
            std::this_thread::sleep_for(std::chrono::microseconds(200));
            inside.fetch_sub(1);
            return absl::OkStatus();
          });
          EXPECT_THAT(s, IsOk());
          if (s.ok()) done++;
        }
      });
    }
    for (auto& t : pool) t.join();
    EXPECT_EQ(overlaps.load(), 0);
    EXPECT_EQ(done.load(), threads * per_thread);
  }
};

TEST_F(FleetLockTest, SentinelContractAndMutualExclusion) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Sentinel(1, 3));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet);
  ExpectContract(*locker);
  ExpectMutualExclusion(*locker, 4, 50);
}

TEST_F(FleetLockTest, SentinelRunsEveryKind) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Sentinel(1, 3));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet);
  ExpectKinds(*locker, "k");
}

TEST_F(FleetLockTest, SentinelFailoverDuringAHeldLockNeverMakesTwoHolders) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Sentinel(1, 3));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet, {{"min_replicas_ack", 1}, {"replica_ack_timeout", "500ms"}});
  absl::Status s = locker->With("renew", "f", [&](Held& held) {
    EXPECT_THAT(fleet->Failover(), IsOk());
    // Give renewal a couple of periods to follow the new master.
    std::this_thread::sleep_for(std::chrono::milliseconds(2000));
    if (!held.lost()) {
      // Still believed held: then the new master must have it, for us.
      auto master = fleet->MasterIndex();
      EXPECT_THAT(master, IsOk());
      if (master.ok()) {
        EXPECT_EQ(fleet->node(*master).Exec({"HGET", "{r:f}", "owner"}).value_or(""),
                  held.owner_token())
            << "held, but not on the new master: two holders are possible";
      }
      EXPECT_TRUE(IsBusy(locker->With("renew-fail", "f", [] { return absl::OkStatus(); })));
    }
    return absl::OkStatus();
  });
  // Either the renewal followed the new master (OK), or the loss was
  // signalled (IsLost); never a silent second holder.
  EXPECT_TRUE(s.ok() || IsLost(s)) << s;
  // The library keeps working on the new master, once the demoted master
  // has rejoined as the replica that min_replicas_ack asks for.
  const auto end = Clock::now() + std::chrono::seconds(20);
  absl::Status after;
  do {
    after = locker->With("wait", "after", [] { return absl::OkStatus(); });
  } while (!after.ok() && Clock::now() < end);
  EXPECT_THAT(after, IsOk());
}


// Regression: when the master died (killed, not gracefully failed over), a
// connect failure at the pool never made the Sentinel topology ask for the
// new master -- only a failure on an already open connection did -- so
// every later call got "connection refused" from the dead node for good.
TEST_F(FleetLockTest, SentinelKilledMasterIsRediscoveredAfterFailover) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Sentinel(1, 3));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet);
  ASSERT_THAT(locker->With("wait", "km", [] { return absl::OkStatus(); }), IsOk());
  absl::StatusOr<int> old_master = fleet->MasterIndex();
  ASSERT_THAT(old_master, IsOk());
  ASSERT_THAT(fleet->node(*old_master).Kill(), IsOk());
  ASSERT_THAT(fleet->Failover(), IsOk());
  // One call may still meet the dead master; the next must find the new one.
  absl::Status first = locker->With("wait", "km", [] { return absl::OkStatus(); });
  if (!first.ok()) {
    EXPECT_THAT(first, StatusIs(absl::StatusCode::kUnavailable));
  }
  EXPECT_THAT(locker->With("wait", "km", [] { return absl::OkStatus(); }), IsOk());
}

// Issue 17: the log sink hears of a failover once calls meet the new master.
TEST_F(FleetLockTest, SentinelFailoverIsLogged) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Sentinel(1, 3));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet);
  auto recorder = testing::Recorder::Make();
  ASSERT_THAT(locker->With("wait", "fo", [] { return absl::OkStatus(); }), IsOk());
  EXPECT_TRUE(recorder->Events("sentinel_failover").empty());
  absl::StatusOr<int> old_master = fleet->MasterIndex();
  ASSERT_THAT(old_master, IsOk());
  ASSERT_THAT(fleet->Failover(), IsOk());
  absl::StatusOr<int> master = fleet->MasterIndex();
  ASSERT_THAT(master, IsOk());
  const std::string new_master = fleet->node(*master).addr();
  // Once the old master is a replica it refuses the next write (READONLY);
  // the call asks the sentinels again and goes on at the new one. (Until
  // then it still takes writes: the window min_replicas_ack closes.)
  ASSERT_TRUE(harness::Eventually([&] {
    return absl::StartsWith(fleet->node(*old_master).Exec({"ROLE"}).value_or(""), "slave");
  }, std::chrono::seconds(20)));
  ASSERT_THAT(locker->With("wait", "fo", [] { return absl::OkStatus(); }), IsOk());
  const std::vector<testing::RecordedEvent> events = recorder->Events("sentinel_failover");
  testing::Recorder::Uninstall();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].severity, LogSeverity::kWarning);
  EXPECT_THAT(events[0].message, HasSubstr(absl::StrCat(" to ", new_master)));
  EXPECT_THAT(events[0].redis, HasSubstr("sentinel master"));
}

// Issue 11: tokens keep increasing across a Sentinel failover even when the
// new master missed the last write to the fence record (asynchronous
// replication loses the tail; here the record is deleted on the new master
// to make that loss certain). The old INCR counter restarted at 1.
TEST_F(FleetLockTest, SentinelFailoverKeepsFencingTokensIncreasing) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Sentinel(1, 3));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet);
  const auto token = [&] {
    int64_t fence = 0;
    EXPECT_THAT(locker->With("wait", "ff", [&](Held& h) {
      fence = h.fencing_token();
      return absl::OkStatus();
    }), IsOk());
    return fence;
  };
  int64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    const int64_t t = token();
    EXPECT_GT(t, last);
    last = t;
  }
  // The old master is killed first: left running it would keep taking
  // writes until Sentinel demotes it, and the lock would stay there.
  absl::StatusOr<int> old_master = fleet->MasterIndex();
  ASSERT_THAT(old_master, IsOk());
  ASSERT_THAT(fleet->node(*old_master).Kill(), IsOk());
  ASSERT_THAT(fleet->Failover(), IsOk());
  absl::StatusOr<int> master = fleet->MasterIndex();
  ASSERT_THAT(master, IsOk());
  ASSERT_NE(*master, *old_master);
  ASSERT_THAT(fleet->node(*master).Exec({"DEL", "{w:ff}:fence"}), IsOk());
  // The first call after the kill may still go to the dead master (and so
  // trigger rediscovery): kUnavailable, retried as an application would.
  int64_t after = 0;
  absl::Status s;
  for (const auto deadline = Clock::now() + std::chrono::seconds(10);
       Clock::now() < deadline;) {
    s = locker->With("wait", "ff", [&](Held& h) {
      after = h.fencing_token();
      return absl::OkStatus();
    });
    if (s.code() != absl::StatusCode::kUnavailable) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_THAT(s, IsOk());
  EXPECT_GT(after, last);
  // Issued by the new master.
  EXPECT_THAT(fleet->node(*master).Exec({"GET", "{w:ff}:fence"}),
              IsOkAndHolds(absl::StrCat(after)));
}

TEST_F(FleetLockTest, SentinelReplicaAckNotReachedReleasesAndSaysWhy) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Sentinel(1, 3));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet, {{"min_replicas_ack", 1}, {"replica_ack_timeout", "100ms"}});
  auto master = fleet->MasterIndex();
  ASSERT_THAT(master, IsOk());
  const int replica = *master == 0 ? 1 : 0;
  ASSERT_THAT(fleet->node(replica).Pause(), IsOk());
  absl::Status s = locker->With("fail", "ack", [] { return absl::OkStatus(); });
  ASSERT_THAT(fleet->node(replica).Resume(), IsOk());
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("replicas acknowledged")));
  EXPECT_EQ(fleet->node(*master).Exec({"EXISTS", "{w:ack}"}).value_or("?"), "0");
}

TEST_F(FleetLockTest, ClusterContractAcrossMastersAndMutualExclusion) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Cluster(3, 0));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet);
  ExpectContract(*locker);
  // Keys spread over every master.
  for (int i = 0; i < 60; ++i) {
    ASSERT_THAT(locker->With("wait", absl::StrCat("spread", i), [] {
      return absl::OkStatus();
    }), IsOk()) << i;
  }
  ExpectMutualExclusion(*locker, 4, 50);
}

// Issue 17: reading the slot map is logged, with how much of it is served.
TEST_F(FleetLockTest, ClusterSlotMapRefreshIsLogged) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Cluster(3, 0));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet);
  auto recorder = testing::Recorder::Make();
  ASSERT_THAT(locker->With("wait", "slots", [] { return absl::OkStatus(); }), IsOk());
  const std::vector<testing::RecordedEvent> events =
      recorder->Events("cluster_slots_refreshed");
  testing::Recorder::Uninstall();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0].severity, LogSeverity::kInfo);
  EXPECT_THAT(events[0].message, HasSubstr("3 masters serve 16384 of 16384 slots"));
  EXPECT_THAT(events[0].redis, HasSubstr("cluster via"));
}

TEST_F(FleetLockTest, ClusterRunsEveryKindOnEveryMaster) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Cluster(3, 0));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet);
  // Keys whose slots are on different masters (as in the test above).
  for (const char* key : {"a", "b", "c", "d"}) ExpectKinds(*locker, key);
}

TEST_F(FleetLockTest, ClusterReleaseWakesWaitersOnAnyNode) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Cluster(3, 0));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet);
  // Keys on different masters: the subscriber sits on one node, and a
  // release published on any master must reach it.
  for (const char* key : {"a", "b", "c", "d"}) {
    auto holder = *locker->NewLock("notify", key);
    ASSERT_THAT(holder->Acquire(), IsOk());
    const Clock::time_point start = Clock::now();
    std::thread release([&] {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      EXPECT_THAT(holder->Release(), IsOk());
    });
    EXPECT_THAT(locker->With("notify", key, [] { return absl::OkStatus(); }), IsOk());
    release.join();
    // The backoff is 10s: only the notification explains a quick wake-up.
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(5)) << key;
  }
  EXPECT_GE(GetStats().per_policy["notify"].waits_woken_by_notify, 4);
}

TEST_F(FleetLockTest, ClusterSlotMigrationDuringAWorkloadIsInvisibleToUsers) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Cluster(3, 0));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet);
  const int slot = harness::RedisFleet::KeySlot("{w:hot}");
  auto from = fleet->NodeIndexForSlot(slot);
  ASSERT_THAT(from, IsOk());
  const int to = (*from + 1) % 3;
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, failed{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 3; ++t) {
    workers.emplace_back([&] {
      while (!stop) {
        absl::Status s = locker->With("wait", "hot", [] { return absl::OkStatus(); });
        if (s.ok()) {
          ok++;
        } else {
          failed++;
          ADD_FAILURE() << s;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // Step by step, so clients meet ASK while the slot is half moved, then MOVED.
  ASSERT_THAT(fleet->BeginMoveSlot(slot, to), IsOk());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_THAT(fleet->MigrateSlotKeys(slot, 1000), IsOk());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_THAT(fleet->FinishMoveSlot(slot), IsOk());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  stop = true;
  for (auto& w : workers) w.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(ok.load(), 50);
  auto now = fleet->NodeIndexForSlot(slot);
  ASSERT_THAT(now, IsOk());
  EXPECT_EQ(*now, to);
}

}  // namespace
}  // namespace lock
