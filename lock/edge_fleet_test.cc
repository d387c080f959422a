// Edge paths of the engine on real fleets: a master whose replica stopped
// acknowledging, sentinels that stopped answering, a Redlock master that
// swallows connections, a slot migration that lasts several leases. Each
// test is named after the hole it pins; each failed before its fix.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_test.h"
#include "lock/internal/lock_core.h"
#include "lock/lock.h"
#include "lock/redis/connection.h"
#include "lock/testing/locker_from_json.h"
#include "nlohmann/json.hpp"
#include "util/status_matchers.h"

namespace lock {
namespace {

using harness::Eventually;
using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// A loopback address that never completes a connection, like a host whose
// packets are dropped: a listening socket with a full accept queue drops
// every further SYN, so connect() waits until its own timeout.
class Blackhole {
 public:
  Blackhole() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(listener_, reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        listen(listener_, 0) != 0 ||
        getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      return;
    }
    port_ = ntohs(a.sin_port);
    for (int i = 0; i < 4; ++i) {  // fill the accept queue, never accept
      const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      (void)connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
      fillers_.push_back(fd);
    }
    std::this_thread::sleep_for(milliseconds(50));  // handshakes settle
  }
  ~Blackhole() {
    for (int fd : fillers_) close(fd);
    close(listener_);
  }
  bool ok() const { return port_ > 0; }
  std::string addr() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

class EdgeFleetTest : public harness::RedisFleetTest {
 protected:
  std::unique_ptr<Locker> LockerFor(const nlohmann::json& target,
                                    const nlohmann::json& policies) {
    nlohmann::json config = {{"redis", {{"default", target}}}, {"policies", policies}};
    auto locker = LockerFromJson(config.dump(), "edge.json");
    EXPECT_THAT(locker, IsOk());
    return locker.ok() ? *std::move(locker) : nullptr;
  }

  // Two masters, the second made a replica of the first, in sync.
  harness::RedisFleet* MasterWithReplica() {
    harness::RedisFleet* fleet = Start(harness::RedisFleet::Masters(2));
    if (fleet == nullptr) return nullptr;
    const std::string master = fleet->node(0).addr();
    const std::string host = master.substr(0, master.rfind(':'));
    const std::string port = master.substr(master.rfind(':') + 1);
    EXPECT_THAT(fleet->node(1).Exec({"REPLICAOF", host, port}), IsOk());
    EXPECT_THAT(harness::PollUntilOk(absl::Seconds(20), [&]() -> absl::Status {
      absl::StatusOr<std::string> info = fleet->node(0).Exec({"INFO", "replication"});
      if (!info.ok()) return info.status();
      if (!absl::StrContains(*info, "state=online")) {
        return absl::UnavailableError("replica not online yet");
      }
      // Online is not yet acknowledging: wait until a write is (WAIT
      // counts the writes of its own connection).
      auto conn = redis::Connection::Open({.addr = master});
      if (!conn.ok()) return conn.status();
      absl::StatusOr<redis::ReplyPtr> set =
          (*conn)->Command({"SET", "replica-probe", "1"}, absl::Seconds(1));
      if (!set.ok()) return set.status();
      absl::StatusOr<redis::ReplyPtr> acked =
          (*conn)->Command({"WAIT", "1", "200"}, absl::Seconds(1));
      if (!acked.ok()) return acked.status();
      if ((*acked)->type != REDIS_REPLY_INTEGER || (*acked)->integer < 1) {
        return absl::UnavailableError("replica does not acknowledge writes yet");
      }
      return absl::OkStatus();
    }), IsOk());
    return fleet;
  }
};

// Item 4(a), the outcome: with the replica stopped, no renewal answered
// NOSCRIPT (what a freshly promoted master says) may count. A guard: it
// passed on a69c33a too, whose pipelined WAIT already failed here after
// NOSCRIPT; NoscriptRenewalWaitsForReplicasAgain below pins the fix.
TEST_F(EdgeFleetTest, NoscriptRenewalWithoutReplicaAckDoesNotCount) {
  harness::RedisFleet* fleet = MasterWithReplica();
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(
      {{"addrs", {fleet->node(0).addr()}}, {"min_replicas_ack", 1},
       {"replica_ack_timeout", "300ms"}},
      {{"renew", {{"key_prefix", "r:"}, {"ttl", "800ms"}, {"script_timeout", "100ms"},
                  {"renewal", {{"threshold", 0.5}}}}}});
  ASSERT_NE(locker, nullptr);
  absl::Status s = locker->With("renew", "ns", [&](Held& held) {
    EXPECT_THAT(fleet->node(1).Pause(), IsOk());
    EXPECT_THAT(fleet->node(0).Exec({"SCRIPT", "FLUSH"}), IsOk());
    const int64_t before = GetStats().per_policy["renew"].renewals;
    EXPECT_TRUE(Eventually([&] { return held.lost(); }));
    EXPECT_EQ(GetStats().per_policy["renew"].renewals - before, 0)
        << "a renewal counted without the replica's acknowledgement";

    EXPECT_THAT(fleet->node(1).Resume(), IsOk());
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
}

// Item 4(a): the renewal re-run by EVAL after NOSCRIPT was never followed
// by a WAIT of its own: its write was counted whether or not a replica had
// it. Counted here by the server: one WAIT for the pipeline, one for the
// re-run.
TEST_F(EdgeFleetTest, NoscriptRenewalWaitsForReplicasAgain) {
  harness::RedisFleet* fleet = MasterWithReplica();
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(
      {{"addrs", {fleet->node(0).addr()}}, {"min_replicas_ack", 1},
       {"replica_ack_timeout", "300ms"}},
      {{"renew", {{"key_prefix", "r:"}, {"ttl", "1s"}, {"script_timeout", "100ms"},
                  {"renewal", {{"threshold", 0.5}}}}}});
  ASSERT_NE(locker, nullptr);
  auto waits = [&] {
    const std::string stats = *fleet->node(0).Exec({"INFO", "commandstats"});
    const size_t at = stats.find("cmdstat_wait:calls=");
    return at == std::string::npos ? 0 : std::stoll(stats.substr(at + 19));
  };
  absl::Status s = locker->With("renew", "ns2", [&](Held& held) {
    EXPECT_THAT(fleet->node(0).Exec({"SCRIPT", "FLUSH"}), IsOk());
    EXPECT_THAT(fleet->node(0).Exec({"CONFIG", "RESETSTAT"}), IsOk());
    const int64_t before = GetStats().per_policy["renew"].renewals;
    EXPECT_TRUE(Eventually([&] { return GetStats().per_policy["renew"].renewals > before; }));
    EXPECT_GE(waits(), 2) << "the NOSCRIPT re-run was not followed by WAIT";
    EXPECT_FALSE(held.lost());
    return absl::OkStatus();
  });
  EXPECT_THAT(s, IsOk());
}

// Item 4(b): a re-entry refreshed the lease without WAIT and raised the
// local validity anyway.
TEST_F(EdgeFleetTest, ReentryWithoutReplicaAckIsRefused) {
  harness::RedisFleet* fleet = MasterWithReplica();
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(
      {{"addrs", {fleet->node(0).addr()}}, {"min_replicas_ack", 1},
       {"replica_ack_timeout", "300ms"}},
      {{"plain", {{"key_prefix", "p:"}, {"ttl", "10s"}, {"script_timeout", "200ms"}}}});
  ASSERT_NE(locker, nullptr);
  auto l = *locker->NewLock("plain", "re");
  ASSERT_THAT(l->Acquire(), IsOk());
  ASSERT_THAT(fleet->node(1).Pause(), IsOk());
  const absl::Duration left = l->remaining();
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_THAT(l->Acquire(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(l->hold_count(), 1);
  EXPECT_LE(l->remaining(), left);  // not raised by the unacknowledged re-entry
  ASSERT_THAT(fleet->node(1).Resume(), IsOk());
  EXPECT_THAT(l->Release(), IsOk());
}

// Item 5: with the master and every sentinel unreachable, each hold of a
// renewal batch re-ran discovery (3 sentinels × timeouts) under the
// topology mutex: the last of 60 holds was announced lost ~20 s after its
// lease ran out.
TEST_F(EdgeFleetTest, UnreachableSentinelsDoNotStallTheLossSignal) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Sentinel(1, 3));
  ASSERT_NE(fleet, nullptr);
  nlohmann::json target = nlohmann::json::parse(fleet->PolicyTargetJson());
  target["connect_timeout"] = "100ms";
  auto locker = LockerFor(
      target, {{"renew", {{"key_prefix", "r:"}, {"ttl", "1s"}, {"script_timeout", "100ms"},
                          {"renewal", {{"threshold", 0.5}}}}}});
  ASSERT_NE(locker, nullptr);
  std::vector<std::unique_ptr<RedisLock>> locks;
  for (int i = 0; i < 60; ++i) {
    locks.push_back(*locker->NewLock("renew", absl::StrCat("k", i)));
    ASSERT_THAT(locks.back()->Acquire(), IsOk());
    ASSERT_THAT(locks.back()->EnableAutoRenew(), IsOk());
  }
  const auto paused_at = Clock::now();
  for (int i = 0; i < fleet->sentinel_count(); ++i) {
    ASSERT_THAT(fleet->sentinel(i).Pause(), IsOk());
  }
  for (int i = 0; i < fleet->size(); ++i) ASSERT_THAT(fleet->node(i).Pause(), IsOk());
  const bool all_lost = Eventually(
      [&] {
        for (auto& l : locks) {
          if (!lock::internal::LockAccess::Core(*l).hold()->lost.load()) return false;
        }
        return true;
      },
      std::chrono::seconds(30));
  const auto took = Clock::now() - paused_at;
  for (int i = 0; i < fleet->size(); ++i) EXPECT_THAT(fleet->node(i).Resume(), IsOk());
  for (int i = 0; i < fleet->sentinel_count(); ++i) {
    EXPECT_THAT(fleet->sentinel(i).Resume(), IsOk());
  }
  EXPECT_TRUE(all_lost);
  // Every lease ran out within 1 s of the pause; the signal may lag by a
  // scheduling step, not by a discovery per hold.
  EXPECT_LT(took, std::chrono::milliseconds(2500))
      << std::chrono::duration_cast<milliseconds>(took).count() << "ms";
}

// Item 6: Redlock connected to its masters one after another under one
// deadline: a first master that swallows connections used the whole budget,
// the live masters were asked only when it was spent, and a live quorum was
// refused. Here the live masters are busy (DEBUG SLEEP) from 100ms on: asked
// at once they answer in time; asked after the budget they cannot.
TEST_F(EdgeFleetTest, RedlockBlackholedMasterDoesNotStarveTheOthers) {
  Blackhole hole;
  ASSERT_TRUE(hole.ok());
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Masters(2));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(
      {{"mode", "redlock"},
       {"addrs", {hole.addr(), fleet->node(0).addr(), fleet->node(1).addr()}},
       {"connect_timeout", "1s"}},
      {{"q", {{"key_prefix", "q:"}, {"ttl", "5s"}, {"script_timeout", "300ms"},
              {"on_busy", "fail"}}}});
  ASSERT_NE(locker, nullptr);
  absl::Status acquired;
  std::thread caller([&] {
    acquired = locker->With("q", "k", [] { return absl::OkStatus(); });
  });
  std::this_thread::sleep_for(milliseconds(100));
  std::vector<std::thread> sleepers;
  for (int i = 0; i < 2; ++i) {
    sleepers.emplace_back([&, i] { (void)fleet->node(i).Exec({"DEBUG", "SLEEP", "0.4"}); });
  }
  caller.join();
  for (auto& t : sleepers) t.join();
  EXPECT_THAT(acquired, IsOk());
}

// Item 9: Redlock's release read its replies by another rule than renewal:
// 0 released, 1 refused and 2 unanswered was "not held" (With: IsLost),
// although the two silent masters may still hold a quorum.
TEST_F(EdgeFleetTest, RedlockReleaseWithSilentMastersIsUnknownNotLost) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Masters(3));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(
      {{"mode", "redlock"}, {"addrs", fleet->addrs()}, {"connect_timeout", "200ms"}},
      {{"q", {{"key_prefix", "q:"}, {"ttl", "5s"}, {"script_timeout", "200ms"}}}});
  ASSERT_NE(locker, nullptr);
  auto l = *locker->NewLock("q", "rel");
  ASSERT_THAT(l->Acquire(), IsOk());
  ASSERT_THAT(fleet->node(0).Exec({"DEL", "{q:rel}"}), IsOk());
  ASSERT_THAT(fleet->node(1).Kill(), IsOk());
  ASSERT_THAT(fleet->node(2).Kill(), IsOk());
  EXPECT_THAT(l->Release(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(lock::internal::LockAccess::Core(*l).hold()->lost.load());
}

// Item 7: renewal treated ASK as a failure: a slot migration longer than
// the renewal margin marked a live hold lost.
TEST_F(EdgeFleetTest, RenewalFollowsAskDuringALongMigration) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Cluster(3, 0));
  ASSERT_NE(fleet, nullptr);
  nlohmann::json target = nlohmann::json::parse(fleet->PolicyTargetJson());
  auto locker = LockerFor(
      target, {{"renew", {{"key_prefix", "r:"}, {"ttl", "600ms"}, {"script_timeout", "150ms"},
                          {"renewal", {{"threshold", 0.5}}}}}});
  ASSERT_NE(locker, nullptr);
  const int slot = harness::RedisFleet::KeySlot("{r:mig}");
  absl::Status s = locker->With("renew", "mig", [&](Held& held) {
    const int from = *fleet->NodeIndexForSlot(slot);
    const int to = (fleet->ShardOf(from) + 1) % fleet->shard_count();
    EXPECT_THAT(fleet->BeginMoveSlot(slot, to), IsOk());
    EXPECT_THAT(fleet->MigrateSlotKeys(slot, 100), IsOk());
    // Keys now on the target, the slot still migrating: the source answers
    // ASK for 2 s, more than 3 leases.
    std::this_thread::sleep_for(milliseconds(2000));
    EXPECT_FALSE(held.lost());
    EXPECT_THAT(fleet->FinishMoveSlot(slot), IsOk());
    absl::StatusOr<harness::RedisServer*> owner = fleet->NodeForSlot(slot);
    EXPECT_THAT(owner, IsOk());
    if (owner.ok()) {
      EXPECT_EQ((*owner)->Exec({"HGET", "{r:mig}", "owner"}).value_or(""),
                held.owner_token());
      // Renewed on the importing node during the migration.
      EXPECT_GT(std::stoll((*owner)->Exec({"PTTL", "{r:mig}"}).value_or("0")), 0);
    }
    return absl::OkStatus();
  });
  EXPECT_THAT(s, IsOk());
}

}  // namespace
}  // namespace lock
