#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/hiredis_ptr.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_test.h"
#include "util/status_matchers.h"

namespace lock::harness {
namespace {

using ::util::testing::IsOk;
using ::util::testing::IsOkAndHolds;
using ::util::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

// What a plain (not cluster-aware) client gets back: the reply's text, with
// errors prefixed "ERR:" so tests can tell them apart.
class RawClient {
 public:
  explicit RawClient(const RedisServer& server)
      : context_(redisConnectWithTimeout(server.host().c_str(), server.port(),
                                         absl::ToTimeval(absl::Seconds(5)))) {}

  std::string Run(const std::vector<std::string>& argv) {
    if (context_ == nullptr || context_->err != 0) return "CONNECT FAILED";
    ReplyPtr reply = CommandArgv(context_.get(), argv);
    if (reply == nullptr) return "IO ERROR";
    if (reply->type == REDIS_REPLY_NIL) return "(nil)";
    const std::string text =
        reply->str == nullptr ? "" : std::string(reply->str, reply->len);
    return reply->type == REDIS_REPLY_ERROR ? "ERR:" + text : text;
  }

 private:
  ContextPtr context_;
};

class FleetTest : public RedisFleetTest {};

TEST_F(FleetTest, MastersAreIndependent) {
  RedisFleet* fleet = Start(RedisFleet::Masters(3));
  ASSERT_NE(fleet, nullptr);
  EXPECT_EQ(fleet->kind(), RedisFleet::Kind::kMasters);
  ASSERT_THAT(fleet->addrs(), SizeIs(3));
  EXPECT_NE(fleet->addrs()[0], fleet->addrs()[1]);
  EXPECT_NE(fleet->addrs()[1], fleet->addrs()[2]);
  EXPECT_EQ(fleet->node(2).name(), "master-2");

  ASSERT_THAT(fleet->node(0).Exec({"SET", "k", "v"}), IsOk());
  EXPECT_THAT(fleet->node(0).Exec({"GET", "k"}), IsOkAndHolds("v"));
  EXPECT_THAT(fleet->node(1).Exec({"GET", "k"}), IsOkAndHolds("(nil)"));
  EXPECT_THAT(fleet->node(2).Exec({"GET", "k"}), IsOkAndHolds("(nil)"));
  // A fault on one master leaves the others alone.
  ASSERT_THAT(fleet->node(1).Kill(), IsOk());
  EXPECT_THAT(fleet->node(2).Exec({"PING"}), IsOkAndHolds("PONG"));

  EXPECT_EQ(fleet->PolicyTargetJson(),
            absl::StrCat(R"({"mode": "redlock", "addrs": [")",
                         fleet->addrs()[0], R"(", ")", fleet->addrs()[1],
                         R"(", ")", fleet->addrs()[2], R"("]})"));
}

TEST_F(FleetTest, LogsArePrefixedWithNodeNames) {
  RedisFleet* fleet = Start(RedisFleet::Masters(2));
  ASSERT_NE(fleet, nullptr);
  const std::string logs = fleet->Logs();
  EXPECT_THAT(logs, HasSubstr("[master-0] "));
  EXPECT_THAT(logs, HasSubstr("[master-1] "));
  EXPECT_EQ(PrefixLines("n", "a\nb\n"), "[n] a\n[n] b\n");
}

TEST_F(FleetTest, SentinelsReportTheMasterAndItsReplica) {
  RedisFleet* fleet = Start(RedisFleet::Sentinel(/*replicas=*/1,
                                                 /*sentinels=*/3));
  ASSERT_NE(fleet, nullptr);
  EXPECT_EQ(fleet->master_name(), "mymaster");
  EXPECT_THAT(fleet->sentinel_addrs(), SizeIs(3));
  EXPECT_THAT(fleet->MasterAddr(), IsOkAndHolds(fleet->node(0).addr()));
  EXPECT_THAT(fleet->MasterIndex(), IsOkAndHolds(0));
  EXPECT_THAT(RoleOf(fleet->node(0)), IsOkAndHolds("master"));
  EXPECT_THAT(RoleOf(fleet->node(1)), IsOkAndHolds("slave"));
  EXPECT_THAT(RoleOf(fleet->sentinel(2)), IsOkAndHolds("sentinel"));
  EXPECT_THAT(fleet->PolicyTargetJson(),
              StartsWith(absl::StrCat(R"({"mode": "sentinel", "sentinels": [")",
                                      fleet->sentinel_addrs()[0])));
  EXPECT_THAT(fleet->PolicyTargetJson(),
              HasSubstr(R"("master_name": "mymaster"})"));
}

TEST_F(FleetTest, SentinelFailoverPromotesTheReplicaAndKeepsReplicatedData) {
  RedisFleet* fleet = Start(RedisFleet::Sentinel());
  ASSERT_NE(fleet, nullptr);
  ASSERT_THAT(fleet->node(0).Exec({"SET", "k", "before"}), IsOk());
  // Acknowledged by the replica: it must survive the failover.
  ASSERT_THAT(fleet->node(0).Exec({"WAIT", "1", "2000"}), IsOkAndHolds("1"));

  ASSERT_THAT(fleet->Failover(absl::Seconds(30)), IsOk());
  EXPECT_THAT(fleet->MasterIndex(), IsOkAndHolds(1));
  EXPECT_THAT(RoleOf(fleet->node(1)), IsOkAndHolds("master"));
  EXPECT_THAT(fleet->node(1).Exec({"GET", "k"}), IsOkAndHolds("before"));
  EXPECT_THAT(fleet->node(1).Exec({"SET", "k", "after"}), IsOk());
  // The sentinels turn the old master into a replica of the new one.
  EXPECT_THAT(PollUntilOk(absl::Seconds(20),
                          [&]() -> absl::Status {
                            absl::StatusOr<std::string> role =
                                RoleOf(fleet->node(0));
                            if (!role.ok()) return role.status();
                            if (*role != "slave") {
                              return absl::UnavailableError(*role);
                            }
                            return absl::OkStatus();
                          }),
              IsOk());
  EXPECT_THAT(PollUntilOk(absl::Seconds(10),
                          [&]() -> absl::Status {
                            absl::StatusOr<std::string> value =
                                fleet->node(0).Exec({"GET", "k"});
                            if (!value.ok()) return value.status();
                            if (*value != "after") {
                              return absl::UnavailableError(*value);
                            }
                            return absl::OkStatus();
                          }),
              IsOk());
}

// fleet_container_test runs this file with LOCK_TEST_BACKEND=container: this
// proves its nodes, sentinels included, really are containers there.
TEST_F(FleetTest, NodesRunOnTheConfiguredBackend) {
  absl::StatusOr<ServerBackend> backend = BackendFromEnvironment();
  ASSERT_THAT(backend, IsOk());
  RedisFleet* fleet = Start(RedisFleet::Sentinel(1, 1));
  ASSERT_NE(fleet, nullptr);
  const auto expected = *backend == ServerBackend::kContainer
                            ? HasSubstr(" container lockharness-")
                            : HasSubstr("process");
  EXPECT_THAT(fleet->node(0).backend_description(), expected);
  EXPECT_THAT(fleet->node(1).backend_description(), expected);
  EXPECT_THAT(fleet->sentinel(0).backend_description(), expected);
  EXPECT_GT(fleet->node(0).pid(), 0);
  // Faults work the same way on either backend.
  ASSERT_THAT(fleet->node(1).Pause(), IsOk());
  EXPECT_TRUE(fleet->node(1).paused());
  EXPECT_THAT(fleet->node(1).Query({"PING"}, absl::Milliseconds(200)),
              StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_THAT(fleet->node(1).Resume(), IsOk());
  EXPECT_THAT(fleet->node(1).Exec({"PING"}), IsOkAndHolds("PONG"));
}

TEST_F(FleetTest, TopologyOperationsCheckTheKind) {
  RedisFleet* fleet = Start(RedisFleet::Masters(1));
  ASSERT_NE(fleet, nullptr);
  EXPECT_THAT(fleet->Failover(absl::Seconds(1)),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(fleet->MoveSlot(0, 1),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(RedisFleet::Cluster(/*masters=*/2),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

class ClusterTest : public RedisFleetTest {
 protected:
  // A key and its owner, plus a master that does not own it.
  struct Placement {
    int slot;
    int owner;  // node index
    int other;  // node index of another shard's master
  };

  Placement Place(RedisFleet& fleet, const std::string& key) {
    Placement p;
    p.slot = RedisFleet::KeySlot(key);
    absl::StatusOr<int> owner = fleet.NodeIndexForSlot(p.slot);
    EXPECT_THAT(owner, IsOk());
    p.owner = owner.value_or(0);
    absl::StatusOr<int> other =
        fleet.MasterOf((fleet.ShardOf(p.owner) + 1) % fleet.shard_count());
    EXPECT_THAT(other, IsOk());
    p.other = other.value_or(0);
    return p;
  }
};

TEST_F(ClusterTest, IsOkRoutesKeysAndRedirectsWithMoved) {
  RedisFleet* fleet = Start(RedisFleet::Cluster(/*masters=*/3,
                                                /*replicas_per_master=*/1));
  ASSERT_NE(fleet, nullptr);
  ASSERT_EQ(fleet->size(), 6);
  EXPECT_EQ(fleet->shard_count(), 3);
  EXPECT_EQ(fleet->ShardOf(4), 1);
  for (int i = 0; i < fleet->size(); ++i) {
    EXPECT_THAT(fleet->node(i).Exec({"CLUSTER", "INFO"}),
                IsOkAndHolds(HasSubstr("cluster_state:ok")));
    EXPECT_THAT(RoleOf(fleet->node(i)),
                IsOkAndHolds(i < 3 ? "master" : "slave"));
  }
  EXPECT_THAT(fleet->node(0).Exec({"CLUSTER", "KEYSLOT", "{order:1}x"}),
              IsOkAndHolds(absl::StrCat(RedisFleet::KeySlot("{order:1}x"))));

  const Placement p = Place(*fleet, "{order:1}x");
  absl::StatusOr<RedisServer*> owner = fleet->NodeForSlot(p.slot);
  ASSERT_THAT(owner, IsOk());
  EXPECT_EQ(*owner, &fleet->node(p.owner));
  EXPECT_THAT((*owner)->Exec({"SET", "{order:1}x", "v"}), IsOk());
  EXPECT_EQ(RawClient(fleet->node(p.other)).Run({"GET", "{order:1}x"}),
            absl::StrCat("ERR:MOVED ", p.slot, " ", fleet->node(p.owner).addr()));
  EXPECT_THAT(fleet->PolicyTargetJson(),
              StartsWith(R"({"mode": "cluster", "addrs": [)"));
}

TEST_F(ClusterTest, MoveSlotMigratesKeysWithAskDuringAndMovedAfter) {
  RedisFleet* fleet = Start(RedisFleet::Cluster(3, 0));
  ASSERT_NE(fleet, nullptr);
  const Placement p = Place(*fleet, "{acct}a");
  RedisServer& source = fleet->node(p.owner);
  RedisServer& target = fleet->node(p.other);
  ASSERT_THAT(source.Exec({"SET", "{acct}a", "1"}), IsOk());
  ASSERT_THAT(source.Exec({"SET", "{acct}b", "2"}), IsOk());

  ASSERT_THAT(fleet->BeginMoveSlot(p.slot, fleet->ShardOf(p.other)), IsOk());
  ASSERT_THAT(fleet->MigrateSlotKeys(p.slot, 1), IsOkAndHolds(1));
  // One key has moved: the source answers for the other and sends clients
  // to the target, with ASK, for the moved one.
  RawClient on_source(source);
  const std::string a = on_source.Run({"GET", "{acct}a"});
  const std::string b = on_source.Run({"GET", "{acct}b"});
  const std::string ask =
      absl::StrCat("ERR:ASK ", p.slot, " ", target.addr());
  EXPECT_TRUE((a == ask && b == "2") || (a == "1" && b == ask))
      << "a: " << a << ", b: " << b;
  const std::string moved_key = a == ask ? "{acct}a" : "{acct}b";
  RawClient on_target(target);
  EXPECT_EQ(on_target.Run({"ASKING"}), "OK");
  EXPECT_EQ(on_target.Run({"GET", moved_key}), a == ask ? "1" : "2");
  EXPECT_THAT(fleet->FinishMoveSlot(p.slot),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not migrated")));

  ASSERT_THAT(fleet->MigrateSlotKeys(p.slot, 100), IsOkAndHolds(1));
  ASSERT_THAT(fleet->MigrateSlotKeys(p.slot, 100), IsOkAndHolds(0));
  ASSERT_THAT(fleet->FinishMoveSlot(p.slot), IsOk());
  EXPECT_THAT(fleet->NodeIndexForSlot(p.slot), IsOkAndHolds(p.other));
  EXPECT_EQ(RawClient(source).Run({"GET", "{acct}a"}),
            absl::StrCat("ERR:MOVED ", p.slot, " ", target.addr()));
  EXPECT_THAT(target.Exec({"GET", "{acct}a"}), IsOkAndHolds("1"));
  EXPECT_THAT(target.Exec({"GET", "{acct}b"}), IsOkAndHolds("2"));

  // And back in one call.
  ASSERT_THAT(fleet->MoveSlot(p.slot, fleet->ShardOf(p.owner)), IsOk());
  EXPECT_THAT(fleet->NodeIndexForSlot(p.slot), IsOkAndHolds(p.owner));
  EXPECT_THAT(source.Exec({"GET", "{acct}b"}), IsOkAndHolds("2"));
  EXPECT_THAT(fleet->MoveSlot(p.slot, fleet->ShardOf(p.owner)), IsOk());
}

TEST_F(ClusterTest, FailoverPromotesAReplicaThatKeepsTheData) {
  RedisFleet* fleet = Start(RedisFleet::Cluster(3, 1));
  ASSERT_NE(fleet, nullptr);
  const Placement p = Place(*fleet, "{inv}k");
  const int shard = fleet->ShardOf(p.owner);
  ASSERT_THAT(fleet->node(p.owner).Exec({"SET", "{inv}k", "v"}), IsOk());
  ASSERT_THAT(fleet->node(p.owner).Exec({"WAIT", "1", "2000"}),
              IsOkAndHolds("1"));

  ASSERT_THAT(fleet->Failover(shard), IsOk());
  absl::StatusOr<int> promoted = fleet->MasterOf(shard);
  ASSERT_THAT(promoted, IsOk());
  EXPECT_NE(*promoted, p.owner);
  EXPECT_EQ(fleet->ShardOf(*promoted), shard);
  EXPECT_THAT(RoleOf(fleet->node(*promoted)), IsOkAndHolds("master"));
  EXPECT_THAT(RoleOf(fleet->node(p.owner)), IsOkAndHolds("slave"));
  EXPECT_THAT(fleet->NodeIndexForSlot(p.slot), IsOkAndHolds(*promoted));
  EXPECT_THAT(fleet->node(*promoted).Exec({"GET", "{inv}k"}),
              IsOkAndHolds("v"));

  // A master that is gone: its replica takes over with FORCE.
  ASSERT_THAT(fleet->node(*promoted).Kill(), IsOk());
  ASSERT_THAT(fleet->Failover(shard), IsOk());
  EXPECT_THAT(fleet->MasterOf(shard), IsOkAndHolds(p.owner));
  EXPECT_THAT(fleet->node(p.owner).Exec({"GET", "{inv}k"}), IsOkAndHolds("v"));
}

}  // namespace
}  // namespace lock::harness
