// Reading single fields: durations, secrets, and the field tables.
#include "policy/config.h"

#include <cstdlib>
#include <string>
#include <vector>

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
using config_testing::WithTarget;
using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;
using ::testing::StartsWith;

constexpr char kPasswordVariable[] = "POLICY_TEST_PASSWORD";

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

TEST(FieldNamesTest, ListTheAcceptedFields) {
  EXPECT_THAT(TopLevelFieldNames(),
              ElementsAre("$schema", "redis", "defaults", "policies"));
  EXPECT_THAT(PolicyFieldNames(), SizeIs(15));
  EXPECT_THAT(TargetFieldNames(), SizeIs(15));
  EXPECT_THAT(WaitFieldNames(), ElementsAre("timeout", "notify"));
  EXPECT_THAT(RetryFieldNames(), SizeIs(5));
  EXPECT_THAT(RenewalFieldNames(),
              ElementsAre("enabled", "threshold", "on_failure"));
  EXPECT_THAT(TlsFieldNames(),
              ElementsAre("enabled", "ca_file", "cert_file", "key_file",
                          "server_name", "verify_peer"));
}

}  // namespace
}  // namespace policy
