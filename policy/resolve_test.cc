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
