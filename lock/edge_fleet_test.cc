// Edge paths of the engine on real fleets: a master whose replica stopped
// acknowledging, sentinels that stopped answering, a Redlock master that
// swallows connections, a slot migration that lasts several leases. Each
// test is named after the hole it pins; each failed before its fix.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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
using ::testing::HasSubstr;
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

  // A locker on `fleet` whose policy "renew" holds for 1 s and renews at
  // half of it, with a 100 ms bound on connecting and `script_timeout` on
  // each call: a loss shows within a few leases.
  std::unique_ptr<Locker> ShortLeaseLocker(harness::RedisFleet& fleet,
                                           const std::string& script_timeout = "100ms") {
    nlohmann::json target = nlohmann::json::parse(fleet.PolicyTargetJson());
    target["connect_timeout"] = "100ms";
    return LockerFor(target, {{"renew", {{"key_prefix", "r:"}, {"ttl", "1s"},
                                         {"script_timeout", script_timeout},
                                         {"renewal", {{"threshold", 0.5}}}}}});
  }
  // A lock of policy "renew" on `key`, acquired and renewed in the
  // background; null (and the test failed) when either did not work.
  static std::unique_ptr<RedisLock> HeldAndRenewed(Locker& locker, const std::string& key) {
    absl::StatusOr<std::unique_ptr<RedisLock>> l = locker.NewLock("renew", key);
    EXPECT_THAT(l, IsOk());
    if (!l.ok()) return nullptr;
    absl::Status s = (*l)->Acquire();
    if (s.ok()) s = (*l)->EnableAutoRenew();
    EXPECT_THAT(s, IsOk()) << key;
    return s.ok() ? *std::move(l) : nullptr;
  }

  // A locker on MasterWithReplica()'s master whose writes wait for its
  // replica (min_replicas_ack 1, 300 ms); policy "plain", ttl 10 s.
  std::unique_ptr<Locker> ReplicaAckLocker(harness::RedisFleet& fleet) {
    return LockerFor(
        {{"addrs", {fleet.node(0).addr()}}, {"min_replicas_ack", 1},
         {"replica_ack_timeout", "300ms"}},
        {{"plain", {{"key_prefix", "p:"}, {"ttl", "10s"}, {"script_timeout", "200ms"}}}});
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
  auto locker = ReplicaAckLocker(*fleet);
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

// A fenced write on a target that asks for min_replicas_ack was accepted
// on the master alone: a failover right after it lost the write while the
// holder was told it was done (the checker's sentinel_failover scenario
// found the next holder writing the same value again). It now waits for the
// replicas as the lock's own writes do, and says when they did not answer.
TEST_F(EdgeFleetTest, FencedSetWaitsForReplicasOnATargetThatAsksForThem) {
  harness::RedisFleet* fleet = MasterWithReplica();
  ASSERT_NE(fleet, nullptr);
  auto locker = ReplicaAckLocker(*fleet);
  ASSERT_NE(locker, nullptr);
  ASSERT_THAT(locker->With("plain", "res", [&](Held& held) {
    EXPECT_THAT(locker->FencedSet("plain", "res:1", "a", held.fencing_token()), IsOk());
    EXPECT_EQ(fleet->node(1).Exec({"HGET", "res:1", "value"}).value_or(""), "a")
        << "acknowledged, so on the replica";
    EXPECT_THAT(fleet->node(1).Pause(), IsOk());
    absl::Status s = locker->FencedSet("plain", "res:1", "b", held.fencing_token());
    EXPECT_THAT(fleet->node(1).Resume(), IsOk());
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("replicas acknowledged")));
    EXPECT_THAT(s.message(), HasSubstr("res:1"));
    return absl::OkStatus();
  }), IsOk());
}

// Item 5: with the master and every sentinel unreachable, each hold of a
// renewal batch re-ran discovery (3 sentinels × timeouts) under the
// topology mutex: the last of 60 holds was announced lost ~20 s after its
// lease ran out.
TEST_F(EdgeFleetTest, UnreachableSentinelsDoNotStallTheLossSignal) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Sentinel(1, 3));
  ASSERT_NE(fleet, nullptr);
  auto locker = ShortLeaseLocker(*fleet);
  ASSERT_NE(locker, nullptr);
  std::vector<std::unique_ptr<RedisLock>> locks;
  for (int i = 0; i < 60; ++i) {
    locks.push_back(HeldAndRenewed(*locker, absl::StrCat("k", i)));
    ASSERT_NE(locks.back(), nullptr);
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

// Item 5, the Cluster half: one master stops answering (SIGSTOP: its port
// still takes connections, nothing is ever answered, as with a blackholed
// node). Its holds are announced lost when their leases run out, and the
// holds on the two live masters go on being renewed: the route to the
// paused node costs a renewal batch one bounded wait, not one per hold, and
// never the other nodes' renewals. (After cluster-node-timeout, 2 s here,
// the live masters declare the cluster down themselves; the test judges
// the time before that.) The script_timeout, 400 ms, is the longest the
// policy allows in a 500 ms renewal window: a wait for the paused node
// that any live hold's renewal sat behind would cost it its lease.
TEST_F(EdgeFleetTest, AnUnreachableClusterMasterDoesNotStallTheOthersRenewals) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Cluster(3, 0));
  ASSERT_NE(fleet, nullptr);
  auto locker = ShortLeaseLocker(*fleet, "400ms");
  ASSERT_NE(locker, nullptr);
  std::vector<std::unique_ptr<RedisLock>> on_paused, on_live;
  for (int i = 0; i < 90; ++i) {
    std::unique_ptr<RedisLock> l = HeldAndRenewed(*locker, absl::StrCat("k", i));
    ASSERT_NE(l, nullptr);
    const bool there =
        fleet->node(0).Exec({"EXISTS", absl::StrCat("{r:k", i, "}")}).value_or("?") == "1";
    (there ? on_paused : on_live).push_back(std::move(l));
  }
  ASSERT_FALSE(on_paused.empty());
  ASSERT_FALSE(on_live.empty());
  const auto lost = [](const std::vector<std::unique_ptr<RedisLock>>& locks) {
    int n = 0;
    for (const auto& l : locks) n += lock::internal::LockAccess::Core(*l).hold()->lost.load();
    return n;
  };
  const auto paused_at = Clock::now();
  ASSERT_THAT(fleet->node(0).Pause(), IsOk());
  // Until 1.8 s after the pause: nearly two leases of the live holds, which
  // only renewals can have kept, and time for the paused node's to run out.
  std::chrono::steady_clock::duration all_lost_after{};
  int live_lost = 0;
  while (Clock::now() - paused_at < milliseconds(1800)) {
    if (all_lost_after == decltype(all_lost_after){} &&
        lost(on_paused) == static_cast<int>(on_paused.size())) {
      all_lost_after = Clock::now() - paused_at;
    }
    live_lost = std::max(live_lost, lost(on_live));
    std::this_thread::sleep_for(milliseconds(20));
  }
  int live_renewed = 0;
  for (int i = 1; i < fleet->size(); ++i) {
    for (const auto& l : on_live) {
      const std::string key = absl::StrCat("{r:", l->key(), "}");
      live_renewed += std::stoll(fleet->node(i).Exec({"PTTL", key}).value_or("-2")) > 0;
    }
  }
  EXPECT_THAT(fleet->node(0).Resume(), IsOk());
  EXPECT_EQ(live_lost, 0) << "of " << on_live.size() << " holds on the live masters";
  EXPECT_EQ(live_renewed, static_cast<int>(on_live.size()));
  EXPECT_NE(all_lost_after, decltype(all_lost_after){})
      << lost(on_paused) << " of " << on_paused.size()
      << " holds on the paused master announced lost within 1.8 s";
}

// A Redlock round without a quorum cancels its token on the masters, and
// that cancel marker refused every later attempt of the same wait: the
// waiter's second attempt, after the holder released, found "0 of 3
// masters granted" with no error named, and With returned kUnavailable
// instead of the lock. Each attempt of a wait needs a token of its own.
TEST_F(EdgeFleetTest, RedlockWaiterTakesTheLockAfterABusyAttempt) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Masters(3));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(
      {{"mode", "redlock"},
       {"addrs", fleet->addrs()}},
      {{"rl-busy", {{"key_prefix", "b:"}, {"ttl", "10s"}, {"on_busy", "wait"},
                    {"wait", {{"timeout", "5s"}, {"notify", false}}},
                    {"retry", {{"initial_delay", "50ms"}, {"max_delay", "50ms"}}}}}});
  ASSERT_NE(locker, nullptr);
  std::unique_ptr<RedisLock> holder = *locker->NewLock("rl-busy", "k");
  ASSERT_THAT(holder->Acquire(), IsOk());
  std::thread release([&] {
    std::this_thread::sleep_for(milliseconds(300));
    EXPECT_THAT(holder->Release(), IsOk());
  });
  const PolicyStats before = GetStats().per_policy["rl-busy"];
  int attempts_seen = 0;
  EXPECT_THAT(locker->With("rl-busy", "k", [&] {
    ++attempts_seen;
    return absl::OkStatus();
  }), IsOk());
  release.join();
  EXPECT_EQ(attempts_seen, 1);
  // It did find the lock busy and wait before it got it.
  EXPECT_GE(GetStats().per_policy["rl-busy"].waits_woken_by_timer - before.waits_woken_by_timer,
            1);
  // Busy masters were not cancelled: no marker is left on any of them.
  for (int i = 0; i < fleet->size(); ++i) {
    absl::StatusOr<std::string> markers = fleet->node(i).Exec({"KEYS", "{b:k}:cancel:*"});
    EXPECT_THAT(markers, IsOk());
    EXPECT_EQ(markers.value_or("?"), "") << "master " << i;
  }
}

// The cancel marker a timed-out master keeps refuses the token it names:
// with one master down and one that timed out (and then set the marker),
// a waiter that retried under the same token could never make a quorum
// again until the marker expired, and gave up at wait.timeout. Each attempt
// of a wait has a token of its own.
TEST_F(EdgeFleetTest, RedlockWaiterRetriesPastAMarkerLeftByATimedOutMaster) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Masters(3));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(
      {{"mode", "redlock"},
       {"addrs", fleet->addrs()}},
      {{"rl-marker", {{"key_prefix", "m:"}, {"ttl", "10s"}, {"script_timeout", "200ms"},
                      {"on_busy", "wait"}, {"wait", {{"timeout", "4s"}, {"notify", false}}},
                      {"retry", {{"initial_delay", "50ms"}, {"max_delay", "50ms"}}}}}});
  ASSERT_NE(locker, nullptr);
  std::unique_ptr<RedisLock> holder = *locker->NewLock("rl-marker", "k");
  ASSERT_THAT(holder->Acquire(), IsOk());
  ASSERT_THAT(fleet->node(1).Kill(), IsOk());  // the quorum is now masters 0 and 2
  // Master 2 stops answering for 600 ms: the waiter's attempts time out
  // there, and their cancels, run when it wakes, leave markers.
  std::thread sleeper([&] { (void)fleet->node(2).Exec({"DEBUG", "SLEEP", "0.6"}); });
  std::this_thread::sleep_for(milliseconds(50));
  std::thread release([&] {
    std::this_thread::sleep_for(milliseconds(1000));
    EXPECT_THAT(holder->Release(), IsOk());
  });
  EXPECT_THAT(locker->With("rl-marker", "k", [] { return absl::OkStatus(); }), IsOk());
  release.join();
  sleeper.join();
  // Markers were left on master 2, and did not stop the waiter.
  EXPECT_NE(fleet->node(2).Exec({"KEYS", "{m:k}:cancel:*"}).value_or(""), "");
}

// Item 10: Redlock waiters listen on the first master only (docs/DESIGN.md
// section 9): a release wakes them through it, and while it is down they
// fall back to their backoff and still get the lock.
TEST_F(EdgeFleetTest, RedlockWaitersAreWokenThroughTheFirstMasterAndPollWithoutIt) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Masters(3));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(
      {{"mode", "redlock"},
       {"addrs", fleet->addrs()},
       {"connect_timeout", "200ms"}},
      {{"rl-wait", {{"key_prefix", "v:"}, {"ttl", "10s"}, {"script_timeout", "300ms"},
                    {"on_busy", "wait"}, {"wait", {{"timeout", "10s"}, {"notify", true}}},
                    {"retry", {{"initial_delay", "1500ms"}, {"max_delay", "1500ms"},
                               {"multiplier", 1.0}, {"jitter", 0.0}}}}}});
  ASSERT_NE(locker, nullptr);
  // One handoff: a waiter blocks while the lock is held, then it is
  // released; returns how long the waiter took after the release.
  const auto handoff = [&]() -> milliseconds {
    std::unique_ptr<RedisLock> holder = *locker->NewLock("rl-wait", "k");
    EXPECT_THAT(holder->Acquire(), IsOk());
    std::atomic<int64_t> got_ns{0};
    std::thread waiter([&] {
      EXPECT_THAT(locker->With("rl-wait", "k", [&] {
        got_ns = Clock::now().time_since_epoch().count();
        return absl::OkStatus();
      }), IsOk());
    });
    // Past the waiter's first attempt and subscription (it sleeps between
    // attempts), well before its backoff (1.5 s) would try again.
    EXPECT_TRUE(Eventually([&] { return GetStats().per_policy["rl-wait"].waiting == 1; }));
    std::this_thread::sleep_for(milliseconds(100));
    const int64_t released_ns = Clock::now().time_since_epoch().count();
    EXPECT_THAT(holder->Release(), IsOk());
    waiter.join();
    return std::chrono::duration_cast<milliseconds>(std::chrono::nanoseconds(got_ns - released_ns));
  };
  PolicyStats before = GetStats().per_policy["rl-wait"];
  const milliseconds woken = handoff();
  PolicyStats after = GetStats().per_policy["rl-wait"];
  // Woken by the release, never by its timer: at least once (a wake-up can
  // come before the release reached every master; the waiter's attempt then
  // finds no quorum, gives back the master that granted it, and that
  // publishes again).
  EXPECT_GE(after.waits_woken_by_notify - before.waits_woken_by_notify, 1);
  EXPECT_EQ(after.waits_woken_by_timer - before.waits_woken_by_timer, 0);
  EXPECT_LT(woken, milliseconds(700)) << "a release on every master wakes the waiter at once";

  // The one the waiters listen on. Its drop may reach the next waiter
  // asleep: that wait counts with the timer's, not as a notification.
  ASSERT_THAT(fleet->node(0).Kill(), IsOk());
  before = after;
  const milliseconds polled = handoff();
  after = GetStats().per_policy["rl-wait"];
  EXPECT_EQ(after.waits_woken_by_notify - before.waits_woken_by_notify, 0);
  EXPECT_GE(after.waits_woken_by_timer - before.waits_woken_by_timer, 1);
  EXPECT_LT(polled, milliseconds(5000)) << "the backoff, not wait.timeout, ends the wait";
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
