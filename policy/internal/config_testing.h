// Helpers of the configuration tests (config_test.cc, fields_test.cc,
// resolve_test.cc, explain_test.cc, validate_test.cc).
#ifndef POLICY_INTERNAL_CONFIG_TESTING_H_
#define POLICY_INTERNAL_CONFIG_TESTING_H_

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "policy/config.h"

namespace policy {

// Failure messages show policies and targets as configuration JSON.
inline void PrintTo(const Policy& p, std::ostream* os) {
  *os << ExplainPolicy(p);
}
inline void PrintTo(const RedisTarget& t, std::ostream* os) {
  *os << ExplainTarget(t);
}

namespace config_testing {

inline constexpr char kSource[] = "test.json";

// A configuration with one standalone "default" target and `policies` as the
// body of the "policies" object.
inline std::string WithPolicies(const std::string& policies) {
  return R"({"redis": {"default": {"addrs": ["127.0.0.1:6379"]}}, "policies": {)" +
         policies + "}}";
}

// A configuration whose only content is the target "default" = `target`.
inline std::string WithTarget(const std::string& target) {
  return R"({"redis": {"default": )" + target + "}}";
}

inline absl::StatusOr<std::shared_ptr<const Snapshot>> Parse(
    const std::string& json) {
  return ParseConfig(json, kSource);
}

// The error lines of a failed parse (empty when it succeeded).
inline std::vector<std::string> ErrorLines(const std::string& json) {
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = Parse(json);
  if (s.ok()) return {};
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  return absl::StrSplit(s.status().message(), '\n');
}

inline absl::StatusOr<Policy> ParsePolicy(const std::string& json,
                                          const std::string& name) {
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = Parse(json);
  if (!s.ok()) return s.status();
  const Policy* p = (*s)->FindPolicy(name);
  if (p == nullptr) return absl::NotFoundError(name);
  return *p;
}

}  // namespace config_testing
}  // namespace policy

#endif  // POLICY_INTERNAL_CONFIG_TESTING_H_
