// ParseConfig as a whole: one malformed configuration per row, and how
// errors are collected and reported.
#include "policy/config.h"

#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/internal/config_testing.h"
#include "util/status_matchers.h"

namespace policy {
namespace {

using config_testing::ErrorLines;
using config_testing::WithPolicies;
using config_testing::WithTarget;
using config_testing::kSource;
using ::util::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kUnsetVariable[] = "POLICY_TEST_UNSET_VARIABLE";

// ---------------------------------------------------------------------------
// One malformed configuration per row: the error names the exact JSON path
// and says what is wrong.

struct BadConfig {
  std::string name;      // Test name suffix.
  std::string json;      // The configuration.
  std::string path;      // Expected JSON pointer; "" for errors without one.
  std::string fragment;  // Expected part of the message after the path.
};

void PrintTo(const BadConfig& c, std::ostream* os) { *os << c.name; }

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {
 protected:
  void SetUp() override { unsetenv(kUnsetVariable); }
};

TEST_P(BadConfigTest, ReportsPathAndMessage) {
  const BadConfig& c = GetParam();
  const std::string prefix = c.path.empty()
                                 ? std::string(kSource) + ": "
                                 : std::string(kSource) + ": " + c.path + ": ";
  EXPECT_THAT(ErrorLines(c.json),
              Contains(AllOf(StartsWith(prefix), HasSubstr(c.fragment))))
      << c.json;
}

std::string P(const std::string& body) { return WithPolicies(body); }
std::string T(const std::string& body) { return WithTarget(body); }

INSTANTIATE_TEST_SUITE_P(
    Config, BadConfigTest,
    ::testing::ValuesIn(std::vector<BadConfig>{
        // Retry.
        {"MaxAttemptsZero", P(R"("a": {"retry": {"max_attempts": 0}})"),
         "/policies/a/retry/max_attempts", "must be >= 1, got 0"},
        {"MaxAttemptsFraction", P(R"("a": {"retry": {"max_attempts": 2.5}})"),
         "/policies/a/retry/max_attempts", "must be an integer, got 2.5"},
        {"MaxAttemptsString", P(R"("a": {"retry": {"max_attempts": "3"}})"),
         "/policies/a/retry/max_attempts", R"(must be a number, got "3")"},
        {"JitterAboveOne", P(R"("a": {"retry": {"jitter": 1.5}})"),
         "/policies/a/retry/jitter", "must be in [0, 1], got 1.5"},
        {"JitterNegative", P(R"("a": {"retry": {"jitter": -0.1}})"),
         "/policies/a/retry/jitter", "must be in [0, 1], got -0.1"},
        {"MultiplierBelowOne", P(R"("a": {"retry": {"multiplier": 0.5}})"),
         "/policies/a/retry/multiplier", "must be >= 1, got 0.5"},
        {"InitialDelayNegative",
         P(R"("a": {"retry": {"initial_delay": "-1ms"}})"),
         "/policies/a/retry/initial_delay", R"(must be >= 0, got "-1ms")"},
        {"InitialDelayAboveMaxDelay",
         P(R"("a": {"retry": {"initial_delay": "2s", "max_delay": "1s"}})"),
         "/policies/a/retry/initial_delay",
         R"(must be <= retry.max_delay (1s), got "2s")"},
        // Durations.
        {"TtlZero", P(R"("a": {"ttl": "0s"})"), "/policies/a/ttl",
         R"(must be > 0, got "0s")"},
        {"TtlNegative", P(R"("a": {"ttl": "-5s"})"), "/policies/a/ttl",
         R"(must be > 0, got "-5s")"},
        {"TtlBareNumber", P(R"("a": {"ttl": 30})"), "/policies/a/ttl",
         R"(durations are strings with a unit, e.g. "250ms", got 30)"},
        {"TtlWithoutUnit", P(R"("a": {"ttl": "30"})"), "/policies/a/ttl",
         R"(not a duration: use a number with a unit)"},
        {"TtlInfinite", P(R"("a": {"ttl": "inf"})"), "/policies/a/ttl",
         R"(must be finite, got "inf")"},
        {"ScriptTimeoutZero", P(R"("a": {"script_timeout": "0ms"})"),
         "/policies/a/script_timeout", R"(must be > 0, got "0ms")"},
        {"ScriptTimeoutNotBelowTtl",
         P(R"("a": {"ttl": "500ms", "script_timeout": "600ms",
                    "renewal": {"enabled": false}})"),
         "/policies/a/script_timeout", R"(must be < ttl (500ms))"},
        {"WaitTimeoutNegative", P(R"("a": {"wait": {"timeout": "-1s"}})"),
         "/policies/a/wait/timeout", R"(must be >= 0, got "-1s")"},
        {"HoldAtLeastNegative", P(R"("a": {"hold_at_least": "-2m"})"),
         "/policies/a/hold_at_least", R"(must be >= 0, got "-2m")"},
        // Renewal.
        {"ThresholdZero", P(R"("a": {"renewal": {"threshold": 0}})"),
         "/policies/a/renewal/threshold", "must be in (0, 1), got 0"},
        {"ThresholdOne", P(R"("a": {"renewal": {"threshold": 1}})"),
         "/policies/a/renewal/threshold", "must be in (0, 1), got 1"},
        // An explicit script_timeout that contradicts the lease is an error
        // naming both values; an unset one is derived (ShortLeaseTest).
        {"RenewalWindowBelowScriptTimeout",
         P(R"("a": {"ttl": "1s", "script_timeout": "600ms"})"),
         "/policies/a/renewal/threshold",
         "renewal would start only 300ms before expiry, less than "
         "script_timeout 600ms (ttl 1s * threshold 0.3)"},
        // Redis keeps leases in whole milliseconds: PEXPIRE 0 would delete
        // the key, and a remainder would make the local validity overstate
        // the lease Redis really has.
        {"TtlBelowOneMillisecond",
         P(R"("a": {"ttl": "500us", "renewal": {"enabled": false}})"),
         "/policies/a/ttl", R"(must be at least 1ms (Redis keeps leases in whole milliseconds), got "500us")"},
        {"TtlWithSubMillisecondRemainder",
         P(R"("a": {"ttl": "1500us", "renewal": {"enabled": false}})"),
         "/policies/a/ttl", R"(must be a whole number of milliseconds (Redis keeps leases in whole milliseconds), got "1500us")"},
        {"OnFailureUnknown", P(R"("a": {"renewal": {"on_failure": "panic"}})"),
         "/policies/a/renewal/on_failure",
         R"(must be one of "signal", "ignore", got "panic")"},
        // Enums and types.
        {"OnBusyUnknown", P(R"("a": {"on_busy": "wiat"})"),
         "/policies/a/on_busy",
         R"(must be one of "wait", "skip", "fail" (did you mean "wait"?), got "wiat")"},
        {"OnBusyNotString", P(R"("a": {"on_busy": 1})"), "/policies/a/on_busy",
         R"(must be one of "wait", "skip", "fail", got 1)"},
        {"FencingRetentionNotAboveTtl",
         P(R"("a": {"ttl": "1m", "fencing_retention": "1m"})"),
         "/policies/a/fencing_retention",
         R"(must be > ttl (1m): the fence record must outlive the lease it fences, got "1m")"},
        {"FencingRetentionZero", P(R"("a": {"fencing_retention": "0s"})"),
         "/policies/a/fencing_retention", R"(must be > 0, got "0s")"},
        {"FencingNotBool", P(R"("a": {"fencing": "yes"})"),
         "/policies/a/fencing", R"(must be true or false, got "yes")"},
        {"WaitNotObject", P(R"("a": {"wait": []})"), "/policies/a/wait",
         "must be an object, got []"},
        {"PolicyNotObject", P(R"("a": 7)"), "/policies/a",
         "must be an object, got 7"},
        {"PoliciesNotObject",
         R"({"redis": {"default": {"addrs": ["h:1"]}}, "policies": []})",
         "/policies", "must be an object mapping policy names to policies"},
        {"RedisNotObject", R"({"redis": ["h:1"]})", "/redis",
         "must be an object mapping target names to targets"},
        {"SchemaNotString", R"({"$schema": 5})", "/$schema",
         "must be a string, got 5"},
        {"RootNotObject", "[1]", "/", "must be an object, got [1]"},
        // Unknown fields.
        {"UnknownPolicyField", P(R"("a": {"tll": "30s"})"), "/policies/a/tll",
         R"(unknown field "tll", did you mean "ttl"?)"},
        {"UnknownFieldIgnoresCase", P(R"("a": {"TTL": "30s"})"),
         "/policies/a/TTL", R"(did you mean "ttl"?)"},
        {"UnknownNestedField", P(R"("a": {"retry": {"max_attempt": 3}})"),
         "/policies/a/retry/max_attempt",
         R"(unknown field "max_attempt", did you mean "max_attempts"?)"},
        {"UnknownFieldWithoutSuggestion", P(R"("a": {"colour": "red"})"),
         "/policies/a/colour",
         R"(unknown field "colour"; expected one of "redis", "key_prefix", "kind", "permits", "ttl")"},
        {"UnknownTopLevelField",
         R"({"redis": {"default": {"addrs": ["h:1"]}}, "polices": {}})",
         "/polices", R"(did you mean "policies"?)"},
        {"UnknownTargetField", T(R"({"addrs": ["h:1"], "pool": 3})"),
         "/redis/default/pool", R"(did you mean "pool_size"?)"},
        // References.
        {"UnknownRedisTarget", P(R"("a": {"redis": "cache"})"),
         "/policies/a/redis",
         R"(unknown redis target "cache"; known targets: "default", got "cache")"},
        {"UnknownRedisTargetSuggestion",
         R"({"redis": {"cache": {"addrs": ["h:1"]}}, "policies": {"a": {"redis": "cahce"}}})",
         "/policies/a/redis", R"(did you mean "cache"?)"},
        {"MissingDefaultTarget", R"({"policies": {"a": {}}})",
         "/policies/a/redis",
         R"(unknown redis target "default" (the default when "redis" is not set); no targets are defined under "redis")"},
        {"UnknownExtends", P(R"("base": {}, "a": {"extends": "bsae"})"),
         "/policies/a/extends",
         R"(unknown policy "bsae" (did you mean "base"?); known policies: "a", "base")"},
        {"ExtendsCycle",
         P(R"("a": {"extends": "b"}, "b": {"extends": "c"}, "c": {"extends": "a"})"),
         "/policies/a/extends", "extends cycle: a -> b -> c -> a"},
        {"ExtendsItself", P(R"("a": {"extends": "a"})"), "/policies/a/extends",
         "extends cycle: a -> a"},
        {"ExtendsEmpty", P(R"("a": {"extends": ""})"), "/policies/a/extends",
         R"(must name a policy, got "")"},
        {"ExtendsInDefaults",
         R"({"redis": {"default": {"addrs": ["h:1"]}}, "defaults": {"extends": "a"}, "policies": {"a": {}}})",
         "/defaults/extends", R"(is not allowed in "defaults")"},
        {"BadDefaultsField",
         R"({"redis": {"default": {"addrs": ["h:1"]}}, "defaults": {"ttl": "0s"}})",
         "/defaults/ttl", "must be > 0"},
        // Names and prefixes.
        {"PolicyNameWithSpace", P(R"("order close": {})"),
         "/policies/order close",
         R"(names must be non-empty and use only A-Z a-z 0-9 . _ -, got "order close")"},
        {"TargetNameEmpty", R"({"redis": {"": {"addrs": ["h:1"]}}})", "/redis/",
         "names must be non-empty"},
        {"KeyPrefixWithBrace", P(R"("a": {"key_prefix": "{orders}"})"),
         "/policies/a/key_prefix", "must not contain '{' or '}'"},
        {"KeyPrefixTooLong",
         P(R"("a": {"key_prefix": ")" + std::string(129, 'k') + R"("})"),
         "/policies/a/key_prefix", "must be at most 128 bytes"},
        {"KeyPrefixControlCharacter", P(R"("a": {"key_prefix": "a\tb"})"),
         "/policies/a/key_prefix", "must be printable ASCII"},
        // Syntax.
        {"MalformedJson", "{\n  \"policies\": {\n    \"a\": {,\n", "",
         "malformed JSON at line 3, column"},
        {"TrailingGarbage", R"({} x)", "", "malformed JSON at line 1"},
        {"DuplicateKey", P(R"("a": {"ttl": "5s"}, "a": {"ttl": "6s"})"),
         "/policies/a", "duplicate key"},
        {"DuplicateNestedKey", T(R"({"addrs": ["h:1"], "addrs": ["h:2"]})"),
         "/redis/default/addrs", "duplicate key"},
        // Targets.
        {"ModeUnknown", T(R"({"mode": "replica", "addrs": ["h:1"]})"),
         "/redis/default/mode",
         R"(must be one of "standalone", "sentinel", "cluster", "redlock", got "replica")"},
        {"StandaloneTwoAddrs", T(R"({"addrs": ["a:1", "b:2"]})"),
         "/redis/default/addrs",
         R"(mode "standalone" needs exactly 1 address, got ["a:1","b:2"])"},
        {"StandaloneWithoutAddrs", T("{}"), "/redis/default",
         R"(mode "standalone" needs "addrs": exactly 1 address)"},
        {"AddrWithoutPort", T(R"({"addrs": ["localhost"]})"),
         "/redis/default/addrs/0",
         R"(must be "host:port" (port 1..65535), "[ipv6]:port" or "unix:/path", got "localhost")"},
        {"AddrPortZero", T(R"({"addrs": ["h:0"]})"), "/redis/default/addrs/0",
         R"(must be "host:port")"},
        {"AddrPortTooLarge", T(R"({"addrs": ["h:65536"]})"),
         "/redis/default/addrs/0", R"(got "h:65536")"},
        {"AddrUnixRelative", T(R"({"addrs": ["unix:redis.sock"]})"),
         "/redis/default/addrs/0", R"(got "unix:redis.sock")"},
        {"AddrsNotArray", T(R"({"addrs": "h:1"})"), "/redis/default/addrs",
         R"(must be an array of strings, got "h:1")"},
        {"AddrsDuplicate",
         T(R"({"mode": "redlock", "addrs": ["a:1", "b:1", "a:1"]})"),
         "/redis/default/addrs/2", R"(duplicate entry, got "a:1")"},
        {"SentinelWithoutMasterName",
         T(R"({"mode": "sentinel", "sentinels": ["s:26379"]})"),
         "/redis/default", R"(mode "sentinel" needs "master_name")"},
        {"SentinelEmptySentinels",
         T(R"({"mode": "sentinel", "sentinels": [], "master_name": "m"})"),
         "/redis/default/sentinels",
         R"(mode "sentinel" needs at least 1 sentinel address, got [])"},
        {"SentinelWithAddrs",
         T(R"({"mode": "sentinel", "addrs": ["h:1"], "sentinels": ["s:1"], "master_name": "m"})"),
         "/redis/default/addrs", R"(is not used with mode "sentinel")"},
        {"SentinelsInStandalone",
         T(R"({"addrs": ["h:1"], "sentinels": ["s:1"]})"),
         "/redis/default/sentinels",
         R"(is only used with mode "sentinel", not "standalone")"},
        {"ClusterNonZeroDb",
         T(R"({"mode": "cluster", "addrs": ["c:7000"], "db": 3})"),
         "/redis/default/db", R"(must be 0 in mode "cluster", got 3)"},
        {"ClusterWithoutAddrs", T(R"({"mode": "cluster"})"), "/redis/default",
         R"(mode "cluster" needs "addrs": at least 1 seed address)"},
        {"RedlockOneAddr", T(R"({"mode": "redlock", "addrs": ["r:1"]})"),
         "/redis/default/addrs",
         R"(mode "redlock" needs at least 2 independent masters)"},
        {"DriftFactorOutsideRedlock",
         T(R"({"addrs": ["h:1"], "drift_factor": 0.01})"),
         "/redis/default/drift_factor", R"(is only used with mode "redlock")"},
        {"DriftFactorTooLarge",
         T(R"({"mode": "redlock", "addrs": ["a:1", "b:1", "c:1"], "drift_factor": 0.5})"),
         "/redis/default/drift_factor", "must be in [0, 0.1], got 0.5"},
        {"MinReplicasAckOnRedlock",
         T(R"({"mode": "redlock", "addrs": ["a:1", "b:1", "c:1"], "min_replicas_ack": 1})"),
         "/redis/default/min_replicas_ack",
         R"(is not used with mode "redlock": its masters are independent)"},
        {"ReplicaAckTimeoutOnRedlock",
         T(R"({"mode": "redlock", "addrs": ["a:1", "b:1"], "replica_ack_timeout": "1s"})"),
         "/redis/default/replica_ack_timeout", R"(is not used with mode "redlock")"},
        {"PoolSizeZero", T(R"({"addrs": ["h:1"], "pool_size": 0})"),
         "/redis/default/pool_size", "must be in [1, 1024], got 0"},
        {"PoolSizeTooLarge", T(R"({"addrs": ["h:1"], "pool_size": 2000})"),
         "/redis/default/pool_size", "must be in [1, 1024], got 2000"},
        {"DbNegative", T(R"({"addrs": ["h:1"], "db": -1})"),
         "/redis/default/db", "must be >= 0, got -1"},
        {"DbHuge", T(R"({"addrs": ["h:1"], "db": 99999999999})"),
         "/redis/default/db", "is out of range, got 99999999999"},
        {"MinReplicasAckNegative",
         T(R"({"addrs": ["h:1"], "min_replicas_ack": -1})"),
         "/redis/default/min_replicas_ack", "must be >= 0, got -1"},
        {"ReplicaAckTimeoutZero",
         T(R"({"addrs": ["h:1"], "replica_ack_timeout": "0s"})"),
         "/redis/default/replica_ack_timeout", R"(must be > 0, got "0s")"},
        {"ConnectTimeoutBareNumber",
         T(R"({"addrs": ["h:1"], "connect_timeout": 500})"),
         "/redis/default/connect_timeout", "durations are strings with a unit"},
        // Secrets.
        {"PasswordEnvUnset",
         T(R"({"addrs": ["h:1"], "password_env": "POLICY_TEST_UNSET_VARIABLE"})"),
         "/redis/default/password_env",
         "environment variable POLICY_TEST_UNSET_VARIABLE is not set"},
        {"PasswordEnvBadName", T(R"({"addrs": ["h:1"], "password_env": "1X"})"),
         "/redis/default/password_env", "must be an environment variable name"},
        {"PasswordInConfig", T(R"({"addrs": ["h:1"], "password": "hunter2"})"),
         "/redis/default/password",
         "secrets are not read from the configuration"},
        {"UsernameWithoutPassword",
         T(R"({"addrs": ["h:1"], "username": "app"})"),
         "/redis/default/username", R"(needs "password_env")"},
    }),
    [](const ::testing::TestParamInfo<BadConfig>& info) {
      return info.param.name;
    });

// ---------------------------------------------------------------------------
// Error reporting as a whole.

TEST(ConfigErrorsTest, MessageHasTheDocumentedForm) {
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = ParseConfig(
      WithPolicies(R"("order-close": {"retry": {"max_attempts": 0}})"),
      "policies.json");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(
      s.status().message(),
      "policies.json: /policies/order-close/retry/max_attempts: must be >= 1, "
      "got 0");
}

TEST(ConfigErrorsTest, EveryErrorIsReportedOncePerLine) {
  const std::string json = R"({
    "redis": {
      "default": {"addrs": ["h:1"], "pool_size": 0},
      "bad": {"mode": "cluster"}
    },
    "defaults": {"retry": {"jitter": 3}},
    "policies": {
      "a": {"ttl": 30, "on_busy": "never"},
      "b": {"tll": "1s", "redis": "nope"},
      "c": {"extends": "missing"}
    }
  })";
  EXPECT_THAT(
      ErrorLines(json),
      ElementsAre(
          StartsWith("test.json: /defaults/retry/jitter: must be in [0, 1]"),
          StartsWith("test.json: /policies/a/on_busy: must be one of"),
          StartsWith("test.json: /policies/a/ttl: durations are strings"),
          StartsWith("test.json: /policies/b/tll: unknown field"),
          StartsWith("test.json: /redis/bad: mode \"cluster\" needs \"addrs\""),
          StartsWith("test.json: /redis/default/pool_size: must be in"),
          StartsWith("test.json: /policies/c/extends: unknown policy"),
          StartsWith("test.json: /policies/b/redis: unknown redis target "
                     "\"nope\"")));
}

TEST(ConfigErrorsTest, CrossFieldRulesWaitForCleanObjects) {
  // The ttl is unreadable, so "script_timeout must be < ttl" would compare
  // against the default ttl and only add noise.
  EXPECT_THAT(ErrorLines(WithPolicies(
                  R"("a": {"ttl": "fast", "script_timeout": "40s"})")),
              ElementsAre(StartsWith("test.json: /policies/a/ttl: not a "
                                     "duration")));
}

TEST(ConfigErrorsTest, TargetReferenceNeedsOnlyAReadableRedisField) {
  EXPECT_THAT(ErrorLines(WithPolicies(
                  R"("b": {"tll": "1s", "redis": "nope"}, "c": {"redis": 7})")),
              ElementsAre(StartsWith("test.json: /policies/b/tll:"),
                          StartsWith("test.json: /policies/c/redis: must be a "
                                     "string, got 7"),
                          StartsWith("test.json: /policies/b/redis: unknown "
                                     "redis target \"nope\"")));
}

TEST(ConfigErrorsTest, ErrorInBasePolicyIsNotRepeatedForDerivedOnes) {
  EXPECT_THAT(
      ErrorLines(WithPolicies(
          R"("base": {"ttl": "0s"}, "mid": {"extends": "base"},
                     "leaf": {"extends": "mid"})")),
      ElementsAre("test.json: /policies/base/ttl: must be > 0, got \"0s\""));
}

TEST(ConfigErrorsTest, CycleIsReportedOnceForAllItsMembersAndFollowers) {
  EXPECT_THAT(ErrorLines(WithPolicies(
                  R"("x": {"extends": "y"}, "y": {"extends": "z"},
                     "z": {"extends": "x"}, "follower": {"extends": "y"})")),
              ElementsAre("test.json: /policies/x/extends: extends cycle: x -> "
                          "y -> z -> x, got \"y\""));
}

TEST(ConfigErrorsTest, UnknownExtendsIsReportedOnlyWhereItIsWritten) {
  EXPECT_THAT(ErrorLines(WithPolicies(
                  R"("a": {"extends": "ghost"}, "b": {"extends": "a"})")),
              ElementsAre(StartsWith(
                  "test.json: /policies/a/extends: unknown policy \"ghost\"")));
}

TEST(ConfigErrorsTest, MalformedJsonGivesLineColumnAndByte) {
  EXPECT_THAT(
      ErrorLines("{\n  \"policies\": {\n    \"a\": {,\n"),
      ElementsAre(AllOf(StartsWith("test.json: malformed JSON at line 3, "
                                   "column 11"),
                        HasSubstr("(byte "))));
}

TEST(ConfigErrorsTest, EmptyTextIsMalformed) {
  EXPECT_THAT(ErrorLines(""),
              ElementsAre(StartsWith("test.json: malformed JSON")));
}

TEST(ConfigErrorsTest, LongBadValuesAreShortened) {
  const std::string long_value(500, 'x');
  std::vector<std::string> lines =
      ErrorLines(WithPolicies(R"("a": {"ttl": ")" + long_value + R"("})"));
  ASSERT_THAT(lines, SizeIs(1));
  EXPECT_LT(lines[0].size(), 250u);
  EXPECT_THAT(lines[0], HasSubstr("..."));
}

}  // namespace
}  // namespace policy
