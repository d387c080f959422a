// Resolution: struct default < defaults < extends chain (base first) <
// policy, the rules over several fields, and several sources as one.
#include "policy/config.h"

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/internal/config_testing.h"
#include "util/status_matchers.h"

namespace policy {
namespace {

using config_testing::ErrorLines;
using config_testing::Parse;
using config_testing::ParsePolicy;
using config_testing::WithPolicies;
using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// ---------------------------------------------------------------------------
// Resolution: struct default < defaults < extends chain (base first) < policy.

TEST(ResolutionTest, ThreeLevelChainOverDefaults) {
  const std::string json = R"({
    "redis": {"default": {"addrs": ["h:1"]}, "other": {"addrs": ["h:2"]}},
    "defaults": {"ttl": "20s", "retry": {"jitter": 0.1}, "key_prefix": "d:"},
    "policies": {
      "base": {"ttl": "10s", "on_busy": "skip", "retry": {"max_attempts": 5},
               "redis": "other"},
      "mid": {"extends": "base", "retry": {"initial_delay": "200ms"},
              "wait": {"notify": false}},
      "leaf": {"extends": "mid", "ttl": "5s", "key_prefix": "leaf:"}
    }
  })";
  absl::StatusOr<Policy> leaf = ParsePolicy(json, "leaf");
  ASSERT_THAT(leaf, IsOk());
  EXPECT_EQ(leaf->name, "leaf");
  EXPECT_EQ(leaf->extends, "mid");
  EXPECT_EQ(leaf->ttl, absl::Seconds(5));  // leaf
  EXPECT_EQ(leaf->key_prefix, "leaf:");    // leaf over defaults
  EXPECT_EQ(leaf->retry.initial_delay, absl::Milliseconds(200));  // mid
  EXPECT_FALSE(leaf->wait.notify);                                // mid
  EXPECT_EQ(leaf->on_busy, OnBusy::kSkip);                        // base
  EXPECT_EQ(leaf->retry.max_attempts, 5);                         // base
  EXPECT_EQ(leaf->redis, "other");                                // base
  EXPECT_EQ(leaf->retry.jitter, 0.1);                             // defaults
  EXPECT_EQ(leaf->retry.multiplier, 2.0);            // struct default
  EXPECT_EQ(leaf->wait.timeout, absl::Seconds(10));  // struct default

  absl::StatusOr<Policy> mid = ParsePolicy(json, "mid");
  ASSERT_THAT(mid, IsOk());
  EXPECT_EQ(mid->ttl, absl::Seconds(10));  // Base beats defaults.
  EXPECT_EQ(mid->key_prefix, "d:");
  EXPECT_EQ(mid->extends, "base");

  absl::StatusOr<Policy> base = ParsePolicy(json, "base");
  ASSERT_THAT(base, IsOk());
  EXPECT_EQ(base->retry.initial_delay, absl::Milliseconds(50));
  EXPECT_EQ(base->extends, "");
}

TEST(ResolutionTest, DefaultsBlockAppliesToEveryPolicy) {
  const std::string json = R"({
    "redis": {"default": {"addrs": ["h:1"]}},
    "defaults": {"ttl": "45s", "fencing": false, "renewal": {"threshold": 0.5}},
    "policies": {"a": {}, "b": {"fencing": true}}
  })";
  absl::StatusOr<Policy> a = ParsePolicy(json, "a");
  absl::StatusOr<Policy> b = ParsePolicy(json, "b");
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(a->ttl, absl::Seconds(45));
  EXPECT_FALSE(a->fencing);
  EXPECT_EQ(a->renewal.threshold, 0.5);
  EXPECT_TRUE(a->renewal.enabled);  // Nested objects merge field by field.
  EXPECT_TRUE(b->fencing);
  EXPECT_EQ(b->ttl, absl::Seconds(45));
}

TEST(ResolutionTest, EmptyPolicyIsTheStructDefault) {
  absl::StatusOr<Policy> p =
      ParsePolicy(WithPolicies(R"("plain": {})"), "plain");
  ASSERT_THAT(p, IsOk());
  Policy expected;
  expected.name = "plain";
  EXPECT_EQ(*p, expected);
}

TEST(ResolutionTest, FencingRetentionMustOutliveTheLeaseOnlyWithFencingOn) {
  absl::StatusOr<Policy> on = ParsePolicy(
      WithPolicies(R"("a": {"ttl": "2h", "fencing_retention": "3h"})"), "a");
  ASSERT_THAT(on, IsOk());
  EXPECT_EQ(on->fencing_retention, absl::Hours(3));
  // With fencing off no fence record is written, so its lifetime is moot.
  absl::StatusOr<Policy> off = ParsePolicy(
      WithPolicies(R"("a": {"ttl": "48h", "fencing": false})"), "a");
  ASSERT_THAT(off, IsOk());
  EXPECT_EQ(off->fencing_retention, absl::Hours(24));
}

TEST(ResolutionTest, CrossFieldRulesSeeTheResolvedValues) {
  // Neither object is wrong alone: defaults shorten the ttl, the policy
  // lengthens script_timeout.
  EXPECT_THAT(ErrorLines(R"({"redis": {"default": {"addrs": ["h:1"]}},
                     "defaults": {"ttl": "2s"},
                     "policies": {"a": {"script_timeout": "700ms"}}})"),
              ElementsAre(HasSubstr(
                  "/policies/a/renewal/threshold: renewal would start "
                  "only 600ms before expiry, less than "
                  "script_timeout 700ms")));
  // Disabling renewal lifts the rule.
  EXPECT_THAT(Parse(R"({"redis": {"default": {"addrs": ["h:1"]}},
                        "defaults": {"ttl": "2s", "renewal": {"enabled": false}},
                        "policies": {"a": {"script_timeout": "700ms"}}})"),
              IsOk());
}

// ---------------------------------------------------------------------------
// kind and permits (issue 15).

TEST(KindTest, DefaultIsAMutexWithoutPermits) {
  absl::StatusOr<Policy> p = ParsePolicy(WithPolicies(R"("a": {})"), "a");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->kind, LockKind::kMutex);
  EXPECT_EQ(p->permits, 0);
}

TEST(KindTest, EveryKindParses) {
  for (LockKind kind : kAllLockKinds) {
    const std::string name(LockKindName(kind));
    const std::string permits =
        kind == LockKind::kSemaphore ? R"(, "permits": 5)" : "";
    absl::StatusOr<Policy> p = ParsePolicy(
        WithPolicies(R"("a": {"kind": ")" + name + "\"" + permits + "}"), "a");
    ASSERT_THAT(p, IsOk()) << name;
    EXPECT_EQ(p->kind, kind);
    EXPECT_EQ(p->permits, kind == LockKind::kSemaphore ? 5 : 0);
    EXPECT_EQ(LockKindFromName(name), kind);
  }
  EXPECT_EQ(LockKindFromName("Mutex"), std::nullopt);
  EXPECT_EQ(LockKindFromName("rw"), std::nullopt);
}

TEST(KindTest, UnknownKindIsNamedWithAHint) {
  EXPECT_THAT(ErrorLines(WithPolicies(R"("a": {"kind": "semaphor"})")),
              ElementsAre(
                  "test.json: /policies/a/kind: must be one of \"mutex\", "
                  "\"read_write\", \"semaphore\", \"fair\" (did you mean "
                  "\"semaphore\"?), got \"semaphor\""));
}

TEST(KindTest, SemaphoreNeedsPermits) {
  EXPECT_THAT(ErrorLines(WithPolicies(R"("q": {"kind": "semaphore"})")),
              ElementsAre("test.json: /policies/q/kind: kind \"semaphore\" "
                          "needs \"permits\": how many holders at once, "
                          "1..1000000, got \"semaphore\""));
}

TEST(KindTest, PermitsOnAnotherKindNamesThePath) {
  EXPECT_THAT(
      ErrorLines(WithPolicies(R"("a": {"permits": 2},
                                 "b": {"kind": "fair", "permits": 2})")),
      ElementsAre("test.json: /policies/a/permits: is only used with kind "
                  "\"semaphore\", not \"mutex\", got 2",
                  "test.json: /policies/b/permits: is only used with kind "
                  "\"semaphore\", not \"fair\", got 2"));
}

TEST(KindTest, PermitsBounds) {
  for (const std::string bad : {"0", "-1", "1000001", "2.5", "\"4\"", "true"}) {
    EXPECT_THAT(
        ErrorLines(WithPolicies(R"("a": {"kind": "semaphore", "permits": )" +
                                bad + "}")),
        ElementsAre(StartsWith("test.json: /policies/a/permits: ")))
        << bad;
  }
  for (int good : {1, 1000000}) {
    absl::StatusOr<Policy> p = ParsePolicy(
        WithPolicies(R"("a": {"kind": "semaphore", "permits": )" +
                     std::to_string(good) + "}"),
        "a");
    ASSERT_THAT(p, IsOk()) << good;
    EXPECT_EQ(p->permits, good);
  }
}

TEST(KindTest, HoldAtLeastIsForMutexesOnly) {
  EXPECT_THAT(ErrorLines(WithPolicies(
                  R"("a": {"kind": "read_write", "hold_at_least": "1m"})")),
              ElementsAre("test.json: /policies/a/hold_at_least: is only used "
                          "with kind \"mutex\", not \"read_write\", got "
                          "\"1m\""));
  EXPECT_THAT(ParsePolicy(WithPolicies(
                  R"("a": {"kind": "fair", "hold_at_least": "0s"})"), "a"),
              IsOk());
}

TEST(KindTest, InheritedLikeEveryField) {
  const std::string json = R"({
    "redis": {"default": {"addrs": ["h:1"]}},
    "defaults": {"kind": "semaphore", "permits": 4},
    "policies": {
      "quota": {},
      "small": {"extends": "quota", "permits": 1}
    }
  })";
  absl::StatusOr<Policy> quota = ParsePolicy(json, "quota");
  ASSERT_THAT(quota, IsOk());
  EXPECT_EQ(quota->kind, LockKind::kSemaphore);
  EXPECT_EQ(quota->permits, 4);
  absl::StatusOr<Policy> small = ParsePolicy(json, "small");
  ASSERT_THAT(small, IsOk());
  EXPECT_EQ(small->permits, 1);
  // A kind set below permits inherited from above: the permits are still
  // there, and meaningless, so it is an error at the policy's own path.
  EXPECT_THAT(ErrorLines(R"({
                "redis": {"default": {"addrs": ["h:1"]}},
                "defaults": {"kind": "semaphore", "permits": 4},
                "policies": {"rw": {"kind": "read_write"}}})"),
              ElementsAre("test.json: /policies/rw/permits: is only used with "
                          "kind \"semaphore\", not \"read_write\", got 4"));
}

TEST(KindTest, ExplainShowsKindAndPermitsOnlyWhereSet) {
  absl::StatusOr<Policy> sem = ParsePolicy(
      WithPolicies(R"("a": {"kind": "semaphore", "permits": 3})"), "a");
  ASSERT_THAT(sem, IsOk());
  const nlohmann::json explained = ExplainPolicy(*sem);
  EXPECT_EQ(explained["kind"], "semaphore");
  EXPECT_EQ(explained["permits"], 3);
  const nlohmann::json mutex = ExplainPolicy(Policy());
  EXPECT_EQ(mutex["kind"], "mutex");
  EXPECT_FALSE(mutex.contains("permits"));
}

// Issue 12(a): a short lease with the default script_timeout, as the Go
// library accepts it (lock.Lock(ctx, key, time.Second, fn)).
TEST(ShortLeaseTest, UnsetScriptTimeoutIsDerivedFromTheLease) {
  absl::StatusOr<Policy> p =
      ParsePolicy(WithPolicies(R"("a": {"ttl": "1s"})"), "a");
  ASSERT_THAT(p, IsOk());
  // Half of the renewal window (1s * 0.3), so a renewal call fits in it.
  EXPECT_EQ(p->script_timeout, absl::Milliseconds(150));
  // Without renewal, half the lease.
  p = ParsePolicy(
      WithPolicies(R"("a": {"ttl": "500ms", "renewal": {"enabled": false}})"),
      "a");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->script_timeout, absl::Milliseconds(250));
  // Long leases keep the 600ms default.
  p = ParsePolicy(WithPolicies(R"("a": {"ttl": "10s"})"), "a");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->script_timeout, absl::Milliseconds(600));
  // Never below 1ms, whatever the lease.
  p = ParsePolicy(WithPolicies(R"("a": {"ttl": "3ms", "renewal": {"threshold": 0.5}})"),
                  "a");
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->script_timeout, absl::Milliseconds(1));
}

TEST(ShortLeaseTest, LeaseTooShortForTheDerivedTimeoutSaysItWasNotSet) {
  // 2ms * 0.3 leaves 0.6ms to renew in, under the 1ms minimum call deadline.
  EXPECT_THAT(ErrorLines(WithPolicies(R"("a": {"ttl": "2ms"})")),
              ElementsAre(AllOf(
                  HasSubstr("/policies/a/renewal/threshold: renewal would start "
                            "only 600us before expiry, less than script_timeout 1ms"),
                  HasSubstr("script_timeout is not set: derived from the ttl, "
                            "at least 1ms"))));
}

TEST(ShortLeaseTest, ScriptTimeoutSetInDefaultsIsExplicit) {
  EXPECT_THAT(ErrorLines(R"({"redis": {"default": {"addrs": ["h:1"]}},
                     "defaults": {"script_timeout": "600ms"},
                     "policies": {"a": {"ttl": "1s"}}})"),
              ElementsAre(HasSubstr(
                  "/policies/a/renewal/threshold: renewal would start "
                  "only 300ms before expiry, less than script_timeout 600ms")));
  // Set in a base policy: explicit for every policy extending it.
  EXPECT_THAT(ErrorLines(R"({"redis": {"default": {"addrs": ["h:1"]}},
                     "policies": {"base": {"script_timeout": "600ms"},
                                  "a": {"extends": "base", "ttl": "1s"}}})"),
              ElementsAre(HasSubstr(
                  "/policies/a/renewal/threshold: renewal would start "
                  "only 300ms before expiry, less than script_timeout 600ms")));
}

// ---------------------------------------------------------------------------
// Several sources.

TEST(MultiSourceTest, MergesTargetsDefaultsAndPolicies) {
  const std::vector<ConfigSource> sources = {
      {"conf/10-redis.json",
       R"({"redis": {"default": {"addrs": ["h:1"]}, "b": {"addrs": ["h:2"]}}})"},
      {"conf/20-defaults.json", R"({"defaults": {"ttl": "12s"}})"},
      {"conf/30-orders.json",
       R"({"defaults": {"retry": {"max_attempts": 4}},
           "policies": {"orders": {"redis": "b"}}})"},
      {"conf/40-jobs.json", R"({"policies": {"jobs": {"extends": "orders"}}})"},
  };
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = ParseConfig(sources);
  ASSERT_THAT(s, IsOk());
  EXPECT_THAT((*s)->sources(),
              ElementsAre("conf/10-redis.json", "conf/20-defaults.json",
                          "conf/30-orders.json", "conf/40-jobs.json"));
  EXPECT_THAT((*s)->PolicyNames(), ElementsAre("jobs", "orders"));
  EXPECT_THAT((*s)->TargetNames(), ElementsAre("b", "default"));
  const Policy* jobs = (*s)->FindPolicy("jobs");
  ASSERT_NE(jobs, nullptr);
  EXPECT_EQ(jobs->ttl, absl::Seconds(12));
  EXPECT_EQ(jobs->retry.max_attempts, 4);
  EXPECT_EQ(jobs->redis, "b");
}

TEST(MultiSourceTest, DuplicatePolicyNamesBothFiles) {
  const std::vector<ConfigSource> sources = {
      {"one.json", R"({"redis": {"default": {"addrs": ["h:1"]}},
                       "policies": {"orders": {}}})"},
      {"two.json", R"({"policies": {"orders": {"ttl": "5s"}}})"},
  };
  EXPECT_THAT(ParseConfig(sources),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "two.json: /policies/orders: policy \"orders\" is "
                       "defined in both one.json and two.json"));
}

TEST(MultiSourceTest, DuplicateTargetNamesBothFiles) {
  const std::vector<ConfigSource> sources = {
      {"one.json", R"({"redis": {"default": {"addrs": ["h:1"]}}})"},
      {"two.json", R"({"redis": {"default": {"addrs": ["h:2"]}}})"},
  };
  EXPECT_THAT(ParseConfig(sources),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "two.json: /redis/default: redis target \"default\" is "
                       "defined in both one.json and two.json"));
}

TEST(MultiSourceTest, SameDefaultsFieldInTwoFilesIsAnError) {
  const std::vector<ConfigSource> sources = {
      {"one.json", R"({"defaults": {"ttl": "5s", "retry": {"jitter": 0.1}}})"},
      {"two.json",
       R"({"defaults": {"retry": {"jitter": 0.2, "multiplier": 3}}})"},
  };
  EXPECT_THAT(ParseConfig(sources),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "two.json: /defaults/retry/jitter: defaults field is "
                       "set in both one.json and two.json"));
}

TEST(MultiSourceTest, ErrorsOfAllFilesAreCollectedWithoutFollowOnNoise) {
  const std::vector<ConfigSource> sources = {
      {"redis.json", R"({"redis": {"default": {"addrs": ["h:1"]}})"},  // Cut.
      {"policies.json", R"({"policies": {"a": {"ttl": "0s"}, "b": {}}})"},
  };
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = ParseConfig(sources);
  ASSERT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  // No "unknown redis target" for b: its target is in the unreadable file.
  EXPECT_THAT(
      std::vector<std::string>(absl::StrSplit(s.status().message(), '\n')),
      ElementsAre(StartsWith("redis.json: malformed JSON"),
                  "policies.json: /policies/a/ttl: must be > 0, got "
                  "\"0s\""));
}

}  // namespace
}  // namespace policy
