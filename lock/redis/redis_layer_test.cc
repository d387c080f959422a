// The Redis layer against FakeRedis (no redis-server): script calls and the
// NOSCRIPT fallback, connection timeouts and drops, and how Topology::Run
// follows MOVED, ASK and TRYAGAIN. The same paths also run against real
// servers in //lock:topology_test and the fleet suites.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lock/redis/connection.h"
#include "lock/redis/pool.h"
#include "lock/redis/script.h"
#include "lock/redis/testing/fake_redis.h"
#include "lock/redis/topology.h"
#include "lock/scripts/embedded.h"
#include "util/status_matchers.h"

namespace lock::redis {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using testing::FakeRedis;

std::unique_ptr<Connection> Open(const FakeRedis& redis) {
  auto conn = Connection::Open({.addr = redis.addr()});
  EXPECT_THAT(conn, IsOk());
  return conn.ok() ? *std::move(conn) : nullptr;
}

TEST(ScriptCallTest, WordsOfEvalshaAndEval) {
  const absl::string_view keys[] = {"{k}", "{k}:fence"};
  const absl::string_view args[] = {"tok", "30000"};
  const ScriptCall sha(scripts::k_acquire, keys, args);
  EXPECT_THAT(sha.argv(), ElementsAre("EVALSHA", scripts::k_acquire.sha1, "2", "{k}",
                                      "{k}:fence", "tok", "30000"));
  const ScriptCall text(scripts::k_acquire, keys, args, /*send_text=*/true);
  EXPECT_EQ(text.argv()[0], "EVAL");
  EXPECT_EQ(text.argv()[1], scripts::k_acquire.body);
  const WaitCall wait(2, absl::Microseconds(10));  // rounds up to 1ms
  EXPECT_THAT(wait.argv(), ElementsAre("WAIT", "2", "1"));
}

TEST(RunScriptTest, NoscriptFallsBackToTheScriptTextOnce) {
  FakeRedis redis([](const FakeRedis::Argv& argv) {
    if (argv[0] == "EVALSHA") return FakeRedis::Reply(FakeRedis::Error("NOSCRIPT No matching script."));
    return FakeRedis::Reply(FakeRedis::Integer(7));
  });
  auto conn = Open(redis);
  const absl::string_view keys[] = {"{k}"};
  const absl::string_view args[] = {"tok"};
  auto reply = RunScript(*conn, scripts::k_release, keys, args, absl::Seconds(1));
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ((*reply)->integer, 7);
  EXPECT_EQ(redis.Count("EVALSHA"), 1);
  ASSERT_EQ(redis.Count("EVAL"), 1);
  EXPECT_EQ(redis.commands().back()[1], std::string(scripts::k_release.body));
}

TEST(RunScriptTest, ErrorReplyNamesTheScriptAndTheServer) {
  FakeRedis redis([](const FakeRedis::Argv&) {
    return FakeRedis::Reply(FakeRedis::Error("OOM command not allowed"));
  });
  auto conn = Open(redis);
  const absl::string_view keys[] = {"{k}"};
  EXPECT_THAT(RunScript(*conn, scripts::k_release, keys, {}, absl::Seconds(1)),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       HasSubstr(absl::StrCat("redis ", redis.addr(), ": script release: OOM"))));
}

TEST(ConnectionTest, ReplyThatNeverComesTimesOutAndBreaksTheConnection) {
  FakeRedis redis([](const FakeRedis::Argv&) { return FakeRedis::Answer{.silent = true}; });
  auto conn = Open(redis);
  const absl::Time start = absl::Now();
  EXPECT_THAT(conn->Command({"PING"}, absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));
  // A late reply would answer the next command: the connection is unusable.
  EXPECT_TRUE(conn->broken());
}

TEST(ConnectionTest, ServerClosingMidCallIsUnavailable) {
  FakeRedis redis([](const FakeRedis::Argv&) { return FakeRedis::Answer{.close = true}; });
  auto conn = Open(redis);
  EXPECT_THAT(conn->Command({"PING"}, absl::Seconds(1)), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(conn->broken());
}

TEST(PoolTest, ReusesAReturnedConnectionAndWaitsWhenAllAreLent) {
  FakeRedis redis([](const FakeRedis::Argv&) { return FakeRedis::Reply(FakeRedis::Status("PONG")); });
  ConnectionPool pool({.connection = {.addr = redis.addr()}, .max_size = 1});
  {
    auto first = pool.Borrow(absl::Seconds(1));
    ASSERT_THAT(first, IsOk());
    ASSERT_THAT((*first)->Command({"PING"}, absl::Seconds(1)), IsOk());
    // The only connection is lent out: a second borrower waits, then gives up.
    EXPECT_THAT(pool.Borrow(absl::Milliseconds(30)), StatusIs(absl::StatusCode::kUnavailable));
  }
  auto again = pool.Borrow(absl::Seconds(1));
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(pool.connections_opened(), 1);
  EXPECT_EQ(redis.connections_accepted(), 1);
}

TEST(PoolTest, BrokenConnectionIsNotLentAgain) {
  FakeRedis redis([](const FakeRedis::Argv& argv) {
    if (argv[0] == "QUIT") return FakeRedis::Answer{.close = true};
    return FakeRedis::Reply(FakeRedis::Status("PONG"));
  });
  ConnectionPool pool({.connection = {.addr = redis.addr()}, .max_size = 1});
  {
    auto conn = pool.Borrow(absl::Seconds(1));
    ASSERT_THAT(conn, IsOk());
    EXPECT_THAT((*conn)->Command({"QUIT"}, absl::Seconds(1)), StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_TRUE((*conn)->broken());
  }
  auto fresh = pool.Borrow(absl::Seconds(1));
  ASSERT_THAT(fresh, IsOk());
  EXPECT_THAT((*fresh)->Command({"PING"}, absl::Seconds(1)), IsOk());
  EXPECT_EQ(pool.connections_opened(), 2);
}

// Two fake cluster nodes; CLUSTER SLOTS names `owner` for every slot.
std::string SlotsReply(const FakeRedis& owner) {
  const std::string addr = owner.addr();
  const std::string host = addr.substr(0, addr.rfind(':'));
  const int port = std::stoi(addr.substr(addr.rfind(':') + 1));
  return FakeRedis::Array({FakeRedis::Array(
      {FakeRedis::Integer(0), FakeRedis::Integer(16383),
       FakeRedis::Array({FakeRedis::Bulk(host), FakeRedis::Integer(port), FakeRedis::Bulk("id")})})});
}

ClusterOptions Seeds(const FakeRedis& seed) {
  return {.seeds = {seed.addr()}, .data = {.max_size = 2}};
}

TEST(ClusterRunTest, MovedRefreshesTheSlotMapAndRunsOnTheNewOwner) {
  FakeRedis b([](const FakeRedis::Argv&) { return FakeRedis::Reply(FakeRedis::Integer(1)); });
  bool moved = false;
  std::unique_ptr<FakeRedis> a;
  a = std::make_unique<FakeRedis>([&](const FakeRedis::Argv& argv) {
    if (argv[0] == "CLUSTER") return FakeRedis::Reply(SlotsReply(moved ? b : *a));
    moved = true;
    return FakeRedis::Reply(FakeRedis::Error(absl::StrCat("MOVED ", KeySlot("{k}"), " ", b.addr())));
  });
  ClusterTopology cluster(Seeds(*a));
  const absl::string_view keys[] = {"{k}"};
  auto run = cluster.Run(scripts::k_release, keys, {}, {.timeout = absl::Seconds(1)});
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->reply->integer, 1);
  EXPECT_EQ(a->Count("EVALSHA"), 1);
  EXPECT_EQ(a->Count("CLUSTER"), 2);  // the first map, and the refresh after MOVED
  EXPECT_EQ(b.Count("EVALSHA"), 1);
}

TEST(ClusterRunTest, AskSendsAskingAndTheScriptTextToTheImportingNode) {
  FakeRedis b([](const FakeRedis::Argv& argv) {
    if (argv[0] == "ASKING") return FakeRedis::Reply(FakeRedis::Status("OK"));
    return FakeRedis::Reply(FakeRedis::Integer(1));
  });
  std::unique_ptr<FakeRedis> a;
  a = std::make_unique<FakeRedis>([&](const FakeRedis::Argv& argv) {
    if (argv[0] == "CLUSTER") return FakeRedis::Reply(SlotsReply(*a));
    return FakeRedis::Reply(FakeRedis::Error(absl::StrCat("ASK ", KeySlot("{k}"), " ", b.addr())));
  });
  ClusterTopology cluster(Seeds(*a));
  const absl::string_view keys[] = {"{k}"};
  auto run = cluster.Run(scripts::k_release, keys, {}, {.timeout = absl::Seconds(1)});
  ASSERT_THAT(run, IsOk());
  const std::vector<FakeRedis::Argv> at_b = b.commands();
  ASSERT_EQ(at_b.size(), 2u);
  EXPECT_EQ(at_b[0], FakeRedis::Argv{"ASKING"});
  // ASKING covers one command: an EVALSHA answered NOSCRIPT there would
  // lose it, so the text goes at once.
  EXPECT_EQ(at_b[1][0], "EVAL");
  EXPECT_EQ(a->Count("CLUSTER"), 1);  // an ASK does not change the map
}

TEST(ClusterRunTest, TryagainWaitsOnTheSameNodeUntilTheMigrationEnds) {
  int tries = 0;
  std::unique_ptr<FakeRedis> a;
  a = std::make_unique<FakeRedis>([&](const FakeRedis::Argv& argv) {
    if (argv[0] == "CLUSTER") return FakeRedis::Reply(SlotsReply(*a));
    if (++tries < 3) return FakeRedis::Reply(FakeRedis::Error("TRYAGAIN Multiple keys request"));
    return FakeRedis::Reply(FakeRedis::Integer(1));
  });
  ClusterTopology cluster(Seeds(*a));
  const absl::string_view keys[] = {"{k}", "{k}:fence"};
  ASSERT_THAT(cluster.Run(scripts::k_release, keys, {}, {.timeout = absl::Seconds(1)}), IsOk());
  EXPECT_EQ(a->Count("EVALSHA"), 3);
}

TEST(ClusterRunTest, EndlessRedirectsGiveUpWithAClearError) {
  std::unique_ptr<FakeRedis> a;
  a = std::make_unique<FakeRedis>([&](const FakeRedis::Argv& argv) {
    if (argv[0] == "CLUSTER") return FakeRedis::Reply(SlotsReply(*a));
    return FakeRedis::Reply(FakeRedis::Error(absl::StrCat("MOVED ", KeySlot("{k}"), " ", a->addr())));
  });
  ClusterTopology cluster(Seeds(*a));
  const absl::string_view keys[] = {"{k}"};
  EXPECT_THAT(cluster.Run(scripts::k_release, keys, {}, {.timeout = absl::Seconds(1)}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("gave up after 5 redirects")));
}

TEST(StandaloneRunTest, WaitReportsTheReplicasThatAcknowledged) {
  FakeRedis redis([](const FakeRedis::Argv& argv) {
    if (argv[0] == "WAIT") return FakeRedis::Reply(FakeRedis::Integer(1));
    return FakeRedis::Reply(FakeRedis::Integer(1));
  });
  StandaloneTopology home(PoolOptions{.connection = {.addr = redis.addr()}});
  const absl::string_view keys[] = {"{k}"};
  auto run = home.Run(scripts::k_release, keys, {},
                      {.timeout = absl::Seconds(1), .wait_replicas = 2,
                       .wait_timeout = absl::Milliseconds(40)});
  ASSERT_THAT(run, IsOk());
  EXPECT_EQ(run->replicas_acked, 1);
  EXPECT_EQ(redis.commands().back(), (FakeRedis::Argv{"WAIT", "2", "40"}));
}

}  // namespace
}  // namespace lock::redis
