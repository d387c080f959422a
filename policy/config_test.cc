#include "policy/config.h"

#include <cstdlib>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/status_matchers.h"

namespace policy {

// Failure messages show policies and targets as configuration JSON.
void PrintTo(const Policy& p, std::ostream* os) { *os << ExplainPolicy(p); }
void PrintTo(const RedisTarget& t, std::ostream* os) {
  *os << ExplainTarget(t);
}

namespace {

using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kSource[] = "test.json";
constexpr char kUnsetVariable[] = "POLICY_TEST_UNSET_VARIABLE";
constexpr char kPasswordVariable[] = "POLICY_TEST_PASSWORD";

// A configuration with one standalone "default" target and `policies` as the
// body of the "policies" object.
std::string WithPolicies(const std::string& policies) {
  return R"({"redis": {"default": {"addrs": ["127.0.0.1:6379"]}}, "policies": {)" +
         policies + "}}";
}

// A configuration whose only content is the target "default" = `target`.
std::string WithTarget(const std::string& target) {
  return R"({"redis": {"default": )" + target + "}}";
}

absl::StatusOr<std::shared_ptr<const Snapshot>> Parse(const std::string& json) {
  return ParseConfig(json, kSource);
}

// The error lines of a failed parse (empty when it succeeded).
std::vector<std::string> ErrorLines(const std::string& json) {
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = Parse(json);
  if (s.ok()) return {};
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  return absl::StrSplit(s.status().message(), '\n');
}

absl::StatusOr<Policy> ParsePolicy(const std::string& json,
                                   const std::string& name) {
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = Parse(json);
  if (!s.ok()) return s.status();
  const Policy* p = (*s)->FindPolicy(name);
  if (p == nullptr) return absl::NotFoundError(name);
  return *p;
}

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
         R"(unknown field "colour"; expected one of "redis", "key_prefix", "ttl")"},
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
// Durations.

TEST(DurationTest, AcceptsUnitsAndCombinations) {
  struct Case {
    std::string text;
    absl::Duration want;
  };
  for (const Case& c : std::vector<Case>{
           {"250ms", absl::Milliseconds(250)},
           {"30s", absl::Seconds(30)},
           {"2m", absl::Minutes(2)},
           {"1.5s", absl::Milliseconds(1500)},
           {"1h30m", absl::Minutes(90)},
           {"1m30s", absl::Seconds(90)},
           {"700000us", absl::Milliseconds(700)},
           {"2000000000ns", absl::Seconds(2)},
       }) {
    absl::StatusOr<Policy> p =
        ParsePolicy(WithPolicies(R"("a": {"ttl": ")" + c.text +
                                 R"(", "script_timeout": "10ms",
                                       "renewal": {"enabled": false}})"),
                    "a");
    ASSERT_THAT(p, IsOk()) << c.text;
    EXPECT_EQ(p->ttl, c.want) << c.text;
  }
}

TEST(DurationTest, ZeroIsAllowedWhereTheFieldAllowsIt) {
  for (const std::string zero : {"0s", "0", "0ms"}) {
    absl::StatusOr<Policy> p = ParsePolicy(
        WithPolicies(R"("a": {"hold_at_least": ")" + zero +
                     R"(", "wait": {"timeout": ")" + zero +
                     R"("}, "retry": {"initial_delay": ")" + zero + R"("}})"),
        "a");
    ASSERT_THAT(p, IsOk()) << zero;
    EXPECT_EQ(p->hold_at_least, absl::ZeroDuration());
    EXPECT_EQ(p->wait.timeout, absl::ZeroDuration());
    EXPECT_EQ(p->retry.initial_delay, absl::ZeroDuration());
  }
}

TEST(DurationTest, RejectsNonStringsAndUnitlessText) {
  for (const std::string bad : {"30", "true", "null", "[\"1s\"]", "\"1 s\"",
                                "\"s\"", "\"1d\"", "\"\""}) {
    EXPECT_THAT(ErrorLines(WithPolicies(R"("a": {"ttl": )" + bad + "}")),
                ElementsAre(StartsWith("test.json: /policies/a/ttl: ")))
        << bad;
  }
}

// ---------------------------------------------------------------------------
// Secrets.

class PasswordTest : public ::testing::Test {
 protected:
  void TearDown() override { unsetenv(kPasswordVariable); }
  static std::string Config(const std::string& extra = "") {
    return WithTarget(R"({"addrs": ["h:1"], "username": "app",
                          "password_env": "POLICY_TEST_PASSWORD")" +
                      extra + "}");
  }
};

TEST_F(PasswordTest, ReadsTheVariableAtLoad) {
  ASSERT_EQ(setenv(kPasswordVariable, "s3cret-value", 1), 0);
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = Parse(Config());
  ASSERT_THAT(s, IsOk());
  const RedisTarget* t = (*s)->FindTarget("default");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->password, "s3cret-value");
  EXPECT_EQ(t->password_env, kPasswordVariable);
  EXPECT_EQ(t->username, "app");

  const std::string explained = ExplainTarget(*t).dump();
  EXPECT_THAT(explained, Not(HasSubstr("s3cret")));
  EXPECT_THAT(explained, HasSubstr(kPasswordVariable));
  EXPECT_THAT(ExplainSnapshot(**s).dump(), Not(HasSubstr("s3cret")));
}

TEST_F(PasswordTest, MissingVariableIsNamedButNoValueIsPrinted) {
  unsetenv(kPasswordVariable);
  EXPECT_THAT(ErrorLines(Config()),
              ElementsAre("test.json: /redis/default/password_env: environment "
                          "variable POLICY_TEST_PASSWORD is not set, got "
                          "\"POLICY_TEST_PASSWORD\""));
}

TEST_F(PasswordTest, EmptyVariableIsAnError) {
  ASSERT_EQ(setenv(kPasswordVariable, "", 1), 0);
  EXPECT_THAT(ErrorLines(Config()),
              ElementsAre(HasSubstr("POLICY_TEST_PASSWORD is empty")));
}

TEST_F(PasswordTest, OtherErrorsNeverShowThePassword) {
  ASSERT_EQ(setenv(kPasswordVariable, "s3cret-value", 1), 0);
  absl::StatusOr<std::shared_ptr<const Snapshot>> s =
      Parse(Config(R"(, "pool_size": 0, "password": "s3cret-value")"));
  ASSERT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(s.status().message()), Not(HasSubstr("s3cret")));
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

TEST(FieldNamesTest, ListTheAcceptedFields) {
  EXPECT_THAT(TopLevelFieldNames(),
              ElementsAre("$schema", "redis", "defaults", "policies"));
  EXPECT_THAT(PolicyFieldNames(), SizeIs(13));
  EXPECT_THAT(TargetFieldNames(), SizeIs(12));
  EXPECT_THAT(WaitFieldNames(), ElementsAre("timeout", "notify"));
  EXPECT_THAT(RetryFieldNames(), SizeIs(5));
  EXPECT_THAT(RenewalFieldNames(),
              ElementsAre("enabled", "threshold", "on_failure"));
}

}  // namespace
}  // namespace policy
