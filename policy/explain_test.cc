// Snapshots and rendering them back as configuration JSON.
#include "policy/config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/internal/config_testing.h"
#include "util/status_matchers.h"

namespace policy {
namespace {

using config_testing::Parse;
using config_testing::kSource;
using ::util::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Snapshot and explain.

constexpr char kFullConfig[] = R"({
  "redis": {
    "default": {"addrs": ["127.0.0.1:6379"], "db": 3, "pool_size": 4,
                "connect_timeout": "250ms"},
    "ha": {"mode": "sentinel", "sentinels": ["s1:26379", "s2:26379"],
           "master_name": "mymaster", "min_replicas_ack": 1},
    "cl": {"mode": "cluster", "addrs": ["c1:7000"]},
    "rl": {"mode": "redlock", "addrs": ["r1:1", "r2:1", "r3:1"],
           "drift_factor": 0.05}
  },
  "defaults": {"script_timeout": "400ms"},
  "policies": {
    "base": {"on_busy": "fail", "hold_at_least": "1m30s", "redis": "rl"},
    "orders": {"extends": "base", "key_prefix": "o:", "ttl": "2m",
               "wait": {"timeout": "0s", "notify": false},
               "retry": {"max_attempts": 1, "initial_delay": "0s",
                         "max_delay": "0s", "multiplier": 1, "jitter": 0},
               "renewal": {"enabled": true, "threshold": 0.25,
                           "on_failure": "ignore"},
               "fencing": false, "reentrant": false}
  }
})";

TEST(SnapshotTest, Lookups) {
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = Parse(kFullConfig);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ((*s)->FindPolicy("nope"), nullptr);
  EXPECT_EQ((*s)->FindTarget("nope"), nullptr);
  EXPECT_THAT((*s)->PolicyNames(), ElementsAre("base", "orders"));
  EXPECT_THAT((*s)->TargetNames(), ElementsAre("cl", "default", "ha", "rl"));
  EXPECT_THAT((*s)->sources(), ElementsAre(kSource));
  const RedisTarget* ha = (*s)->FindTarget(std::string_view("ha"));
  ASSERT_NE(ha, nullptr);
  EXPECT_EQ(ha->mode, RedisMode::kSentinel);
  EXPECT_THAT(ha->sentinels, ElementsAre("s1:26379", "s2:26379"));
  EXPECT_EQ(ha->master_name, "mymaster");
  EXPECT_EQ((*s)->FindPolicy("orders")->hold_at_least, absl::Seconds(90));
}

TEST(SnapshotTest, ExplainRendersDurationsAsConfigStrings) {
  const nlohmann::json p = ExplainPolicy(Policy());
  EXPECT_EQ(p["ttl"], "30s");
  EXPECT_EQ(p["script_timeout"], "600ms");
  EXPECT_EQ(p["hold_at_least"], "0s");
  EXPECT_EQ(p["fencing_retention"], "24h");
  EXPECT_EQ(p["retry"]["initial_delay"], "50ms");
  EXPECT_EQ(p["on_busy"], "wait");
  EXPECT_EQ(p["renewal"]["on_failure"], "signal");
  EXPECT_FALSE(p.contains("extends"));
  EXPECT_FALSE(p.contains("name"));
}

TEST(SnapshotTest, ExplainRoundTripsThroughTheParser) {
  absl::StatusOr<std::shared_ptr<const Snapshot>> first = Parse(kFullConfig);
  ASSERT_THAT(first, IsOk());
  const std::string explained = ExplainSnapshot(**first).dump(2);
  absl::StatusOr<std::shared_ptr<const Snapshot>> second =
      ParseConfig(explained, "explained.json");
  ASSERT_THAT(second, IsOk()) << explained;
  for (const std::string& name : (*first)->PolicyNames()) {
    ASSERT_NE((*second)->FindPolicy(name), nullptr) << name;
    EXPECT_EQ(*(*second)->FindPolicy(name), *(*first)->FindPolicy(name));
  }
  for (const std::string& name : (*first)->TargetNames()) {
    ASSERT_NE((*second)->FindTarget(name), nullptr) << name;
    EXPECT_EQ(*(*second)->FindTarget(name), *(*first)->FindTarget(name));
  }
}

TEST(SnapshotTest, ExplainKindSaysWhatHoldingMeansPerKind) {
  Policy p;
  EXPECT_THAT(ExplainKind(p), ::testing::AllOf(::testing::StartsWith("mutex: one holder"),
                                               HasSubstr("ttl 30s"),
                                               HasSubstr("gets a fencing token")));
  p.fencing = false;
  EXPECT_THAT(ExplainKind(p), HasSubstr("gets no fencing token"));
  p.fencing = true;

  p.kind = LockKind::kSemaphore;
  p.permits = 8;
  EXPECT_THAT(ExplainKind(p),
              ::testing::AllOf(HasSubstr("up to 8 holders at once"),
                               HasSubstr("none gets a fencing token"),
                               HasSubstr("holders above the new count keep theirs")));
  p.permits = 0;

  p.kind = LockKind::kReadWrite;
  EXPECT_THAT(ExplainKind(p),
              ::testing::AllOf(HasSubstr("Writer preference"),
                               HasSubstr("no new reader is admitted"),
                               HasSubstr("Only the write hold is exclusive: it gets a fencing"),
                               HasSubstr("read holds get none")));

  p.kind = LockKind::kFair;
  EXPECT_THAT(ExplainKind(p),
              ::testing::AllOf(HasSubstr("granted in request order"),
                               HasSubstr("a dead waiter leaves the queue when its place's lease ends"),
                               HasSubstr("gets a fencing token")));
}

TEST(SnapshotTest, CanBeBuiltFromStructs) {
  Policy p;
  p.name = "x";
  RedisTarget t;
  t.name = "default";
  const Snapshot s({p}, {t}, {"code"});
  ASSERT_NE(s.FindPolicy("x"), nullptr);
  EXPECT_EQ(*s.FindPolicy("x"), p);
  EXPECT_THAT(s.TargetNames(), ElementsAre("default"));
}

}  // namespace
}  // namespace policy
