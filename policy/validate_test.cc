#include "policy/validate.h"

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "policy/config.h"
#include "policy/internal/config_testing.h"
#include "policy/internal/errors.h"
#include "util/status_matchers.h"

namespace policy {
namespace {

using ::testing::HasSubstr;
using ::util::testing::IsOk;
using ::util::testing::StatusIs;

constexpr char kSource[] = "LockOptions";

std::shared_ptr<const Snapshot> TwoTargets() {
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = ParseConfig(
      R"({"redis": {"default": {"addrs": ["h:1"]}, "cache": {"addrs": ["h:2"]}}})",
      "targets.json");
  EXPECT_THAT(s, IsOk());
  return *s;
}

// What checking a struct meant before ResolvePolicy: render it as a policy
// file holding it as policy "options" (a script_timeout at its default left
// out) and its target, and parse that.
absl::StatusOr<Policy> ThroughTheParser(const Policy& options,
                                        const Snapshot& snapshot) {
  nlohmann::json rendered = ExplainPolicy(options);
  if (options.script_timeout == Policy().script_timeout) {
    rendered.erase("script_timeout");
  }
  nlohmann::json config = {{"policies", {{"options", std::move(rendered)}}}};
  if (const RedisTarget* t = snapshot.FindTarget(options.redis)) {
    config["redis"][options.redis] = ExplainTarget(*t);
  }
  absl::StatusOr<std::shared_ptr<const Snapshot>> parsed =
      ParseConfig(config.dump(), kSource);
  if (!parsed.ok()) return parsed.status();
  Policy p = *(*parsed)->FindPolicy("options");
  p.name = options.name;
  return p;
}

struct Case {
  std::string name;
  void (*tweak)(Policy& p);
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class SameAsTheParserTest : public ::testing::TestWithParam<Case> {};

// Every rule gives the struct the verdict and the message the parser gives
// the same policy written as JSON.
TEST_P(SameAsTheParserTest, VerdictAndMessage) {
  const std::shared_ptr<const Snapshot> snapshot = TwoTargets();
  Policy options;
  GetParam().tweak(options);
  const absl::StatusOr<Policy> want = ThroughTheParser(options, *snapshot);
  const absl::StatusOr<Policy> got = ResolvePolicy(options, *snapshot, kSource);
  ASSERT_EQ(got.status(), want.status());
  if (want.ok()) {
    EXPECT_EQ(*got, *want);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Rules, SameAsTheParserTest,
    ::testing::ValuesIn(std::vector<Case>{
        {"Defaults", [](Policy&) {}},
        {"Named", [](Policy& p) { p.name = "mine"; }},
        {"OtherTarget", [](Policy& p) { p.redis = "cache"; }},
        {"EverythingSet",
         [](Policy& p) {
           p.key_prefix = "k:";
           p.ttl = absl::Minutes(2);
           p.on_busy = OnBusy::kSkip;
           p.wait = {.timeout = absl::ZeroDuration(), .notify = false};
           p.retry = {.max_attempts = 3,
                      .initial_delay = absl::Milliseconds(10),
                      .max_delay = absl::Milliseconds(20),
                      .multiplier = 1.5,
                      .jitter = 0.125};
           p.renewal = {.enabled = true,
                        .threshold = 0.25,
                        .on_failure = OnRenewalFailure::kIgnore};
           p.script_timeout = absl::Milliseconds(400);
           p.fencing = false;
           p.fencing_retention = absl::Seconds(1);
           p.reentrant = false;
           p.hold_at_least = absl::Seconds(90);
         }},
        // Durations.
        {"TtlZero", [](Policy& p) { p.ttl = absl::ZeroDuration(); }},
        {"TtlNegative", [](Policy& p) { p.ttl = absl::Seconds(-5); }},
        {"TtlInfinite", [](Policy& p) { p.ttl = absl::InfiniteDuration(); }},
        {"TtlBelowOneMillisecond",
         [](Policy& p) {
           p.ttl = absl::Microseconds(500);
           p.renewal.enabled = false;
         }},
        {"TtlWithSubMillisecondRemainder",
         [](Policy& p) {
           p.ttl = absl::Microseconds(1500);
           p.renewal.enabled = false;
         }},
        {"ScriptTimeoutZero",
         [](Policy& p) { p.script_timeout = absl::ZeroDuration(); }},
        {"ScriptTimeoutNotBelowTtl",
         [](Policy& p) {
           p.ttl = absl::Milliseconds(500);
           p.script_timeout = absl::Milliseconds(700);
           p.renewal.enabled = false;
         }},
        {"WaitTimeoutNegative",
         [](Policy& p) { p.wait.timeout = absl::Seconds(-1); }},
        {"HoldAtLeastNegative",
         [](Policy& p) { p.hold_at_least = absl::Minutes(-2); }},
        {"HoldAtLeastInfinite",
         [](Policy& p) { p.hold_at_least = absl::InfiniteDuration(); }},
        {"FencingRetentionZero",
         [](Policy& p) { p.fencing_retention = absl::ZeroDuration(); }},
        {"FencingRetentionNotAboveTtl",
         [](Policy& p) { p.fencing_retention = p.ttl; }},
        {"FencingRetentionMootWithoutFencing",
         [](Policy& p) {
           p.fencing = false;
           p.fencing_retention = p.ttl;
         }},
        // Retry.
        {"MaxAttemptsZero", [](Policy& p) { p.retry.max_attempts = 0; }},
        {"MultiplierBelowOne", [](Policy& p) { p.retry.multiplier = 0.5; }},
        {"MultiplierInfinite",
         [](Policy& p) {
           p.retry.multiplier = std::numeric_limits<double>::infinity();
         }},
        {"JitterAboveOne", [](Policy& p) { p.retry.jitter = 1.5; }},
        {"JitterNegative", [](Policy& p) { p.retry.jitter = -0.1; }},
        {"JitterNaN",
         [](Policy& p) {
           p.retry.jitter = std::numeric_limits<double>::quiet_NaN();
         }},
        {"InitialDelayNegative",
         [](Policy& p) { p.retry.initial_delay = absl::Milliseconds(-1); }},
        {"InitialDelayAboveMaxDelay",
         [](Policy& p) {
           p.retry.initial_delay = absl::Seconds(2);
           p.retry.max_delay = absl::Seconds(1);
         }},
        // Renewal.
        {"ThresholdZero", [](Policy& p) { p.renewal.threshold = 0; }},
        {"ThresholdOne", [](Policy& p) { p.renewal.threshold = 1; }},
        {"RenewalWindowBelowExplicitScriptTimeout",
         [](Policy& p) {
           p.ttl = absl::Seconds(1);
           p.script_timeout = absl::Milliseconds(700);
         }},
        {"ShortLeaseGetsADerivedScriptTimeout",
         [](Policy& p) { p.ttl = absl::Seconds(1); }},
        {"LeaseTooShortForTheDerivedScriptTimeout",
         [](Policy& p) { p.ttl = absl::Milliseconds(2); }},
        // Enums cast from outside their values.
        {"OnBusyOutOfRange",
         [](Policy& p) { p.on_busy = static_cast<OnBusy>(7); }},
        {"OnFailureOutOfRange",
         [](Policy& p) {
           p.renewal.on_failure = static_cast<OnRenewalFailure>(9);
         }},
        // Kinds (issue 15).
        {"Semaphore",
         [](Policy& p) {
           p.kind = LockKind::kSemaphore;
           p.permits = 8;
         }},
        {"ReadWrite", [](Policy& p) { p.kind = LockKind::kReadWrite; }},
        {"Fair", [](Policy& p) { p.kind = LockKind::kFair; }},
        {"SemaphoreWithoutPermits",
         [](Policy& p) { p.kind = LockKind::kSemaphore; }},
        {"SemaphorePermitsNegative",
         [](Policy& p) {
           p.kind = LockKind::kSemaphore;
           p.permits = -2;
         }},
        {"SemaphorePermitsAboveTheLimit",
         [](Policy& p) {
           p.kind = LockKind::kSemaphore;
           p.permits = kMaxPermits + 1;
         }},
        {"PermitsOnAMutex", [](Policy& p) { p.permits = 3; }},
        {"PermitsOnFair",
         [](Policy& p) {
           p.kind = LockKind::kFair;
           p.permits = 3;
         }},
        {"HoldAtLeastOnReadWrite",
         [](Policy& p) {
           p.kind = LockKind::kReadWrite;
           p.hold_at_least = absl::Minutes(1);
         }},
        {"KindOutOfRange",
         [](Policy& p) { p.kind = static_cast<LockKind>(11); }},
        // Strings.
        {"KeyPrefixWithBrace", [](Policy& p) { p.key_prefix = "{orders}"; }},
        {"KeyPrefixTooLong",
         [](Policy& p) { p.key_prefix = std::string(129, 'k'); }},
        {"KeyPrefixControlCharacters",
         [](Policy& p) { p.key_prefix = std::string("a\tb\x01\"\\", 6); }},
        // References.
        {"ExtendsUnknown", [](Policy& p) { p.extends = "base"; }},
        {"ExtendsItself", [](Policy& p) { p.extends = "options"; }},
        {"ExtendsAndABadField",
         [](Policy& p) {
           p.extends = "optoins";
           p.ttl = absl::ZeroDuration();
         }},
        // Several problems, listed in the parser's order.
        {"SeveralFields",
         [](Policy& p) {
           p.wait.timeout = absl::Seconds(-1);
           p.ttl = absl::ZeroDuration();
           p.retry.jitter = 2;
           p.retry.max_attempts = -3;
           p.on_busy = static_cast<OnBusy>(5);
           p.key_prefix = "{";
           p.fencing_retention = absl::ZeroDuration();
         }},
        {"SeveralCrossFieldRules",
         [](Policy& p) {
           p.ttl = absl::Seconds(1);
           p.script_timeout = absl::Seconds(2);
           p.fencing_retention = absl::Seconds(1);
           p.retry.initial_delay = absl::Seconds(3);
         }},
    }),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(ResolvePolicyTest, MessageNamesTheField) {
  Policy options;
  options.ttl = absl::ZeroDuration();
  EXPECT_THAT(ResolvePolicy(options, *TwoTargets(), kSource),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "LockOptions: /policies/options/ttl: must be > 0, got "
                       "\"0s\""));
}

TEST(ResolvePolicyTest, KindRulesNameTheirFields) {
  Policy options;
  options.kind = LockKind::kSemaphore;
  EXPECT_THAT(ResolvePolicy(options, *TwoTargets(), kSource),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "LockOptions: /policies/options/kind: kind "
                       "\"semaphore\" needs \"permits\": how many holders at "
                       "once, 1..1000000, got \"semaphore\""));
  options.kind = LockKind::kReadWrite;
  options.permits = 4;
  EXPECT_THAT(ResolvePolicy(options, *TwoTargets(), kSource),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "LockOptions: /policies/options/permits: is only used "
                       "with kind \"semaphore\", not \"read_write\", got 4"));
}

TEST(ResolvePolicyTest, ScriptTimeoutAtItsDefaultIsFittedToTheLease) {
  Policy options;
  options.name = "short";
  options.ttl = absl::Seconds(1);
  absl::StatusOr<Policy> p = ResolvePolicy(options, *TwoTargets(), kSource);
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(p->script_timeout, absl::Milliseconds(150));
  Policy expected = options;
  expected.script_timeout = absl::Milliseconds(150);
  EXPECT_EQ(*p, expected);
}

// The one place the struct is told more than the parser would tell it: the
// parser saw only the policy's own target, the struct is checked against all
// of the snapshot's.
TEST(ResolvePolicyTest, UnknownTargetListsTheSnapshotsTargets) {
  Policy options;
  options.redis = "cahce";
  EXPECT_THAT(
      ResolvePolicy(options, *TwoTargets(), kSource),
      StatusIs(absl::StatusCode::kInvalidArgument,
               "LockOptions: /policies/options/redis: unknown redis target "
               "\"cahce\" (did you mean \"cache\"?); known targets: "
               "\"cache\", \"default\", got \"cahce\""));
}

TEST(ResolvePolicyTest, NoTargetsAtAll) {
  const Snapshot empty({}, {}, {});
  EXPECT_THAT(ResolvePolicy(Policy(), empty, kSource),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("no targets are defined under \"redis\"")));
}

// ---------------------------------------------------------------------------
// Bad values are shown as the JSON library would write them.

TEST(ShowTest, NumbersAsNlohmannDumpsThem) {
  // clang-format off
  const std::vector<double> numbers = {
      0.0, -0.0, 1.0, 2.0, -1.0, 0.5, 0.3, 0.1, 1.5, 0.125, 1e-5, 1e-4,
      0.00123, 12.5, 100.0, 1e3, 1e15, 1e16, 1e21, 1e100, 1e-300, 5e-324,
      -2.5e-7, 0.30000000000000004, 123456789012345.0, 1234567890123456.0,
      3.14159265358979, 1.7976931348623157e308};
  // clang-format on
  for (double x : numbers) {
    EXPECT_EQ(internal::ShowNumber(x).text, nlohmann::json(x).dump()) << x;
  }
  EXPECT_EQ(internal::ShowNumber(std::nan("")).text, "null");
  EXPECT_EQ(internal::ShowNumber(-std::numeric_limits<double>::infinity()).text,
            "null");
}

TEST(ShowTest, StringsAsNlohmannDumpsThem) {
  for (const std::string& s :
       {std::string(""), std::string("plain"), std::string("q\"b\\s/"),
        std::string("\b\f\n\r\t"), std::string("\x01\x1f\x7f", 3),
        std::string("\0", 1), std::string("caf\xc3\xa9")}) {
    EXPECT_EQ(internal::ShowString(s).text, nlohmann::json(s).dump()) << s;
  }
  EXPECT_EQ(internal::ShowString(std::string(500, 'x')).text.size(), 80u);
}

}  // namespace
}  // namespace policy
