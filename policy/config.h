// Parsing and validation of lock policy configuration (docs/DESIGN.md section 5).
//
//   absl::StatusOr<std::shared_ptr<const policy::Snapshot>> s =
//       policy::ParseConfig(text, "policies.json");
//   if (!s.ok()) {
//     // One line per problem, e.g.
//     // policies.json: /policies/order-close/retry/max_attempts: must be >= 1,
//     got 0 std::cerr << s.status().message();
//   }
//   const policy::Policy* p = (*s)->FindPolicy("order-close");
//
// Parsing is a pure function of the texts plus the environment variables
// named by `password_env` / `sentinel_password_env` and the TLS files named
// in "tls" blocks (read at load time); configuration files are read by
// registry.h. Validation is strict and exhaustive: every error of every
// source is reported at once, as one absl::InvalidArgumentError whose message
// has one error per line, each
// `<source>: <JSON pointer>: <message>[, got <bad value>]`.
//
// Resolution order of every policy field:
//   struct default < "defaults" block < extends chain (base first) < policy.
// A policy built in code gets the same checks from ResolvePolicy
// (validate.h, which also declares DefaultScriptTimeout).
#ifndef POLICY_CONFIG_H_
#define POLICY_CONFIG_H_

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "policy/policy.h"
#include "policy/validate.h"

namespace policy {

// Parses and validates one configuration text.
absl::StatusOr<std::shared_ptr<const Snapshot>> ParseConfig(
    std::string_view json, std::string_view source_name);

// Parses several sources (e.g. the *.json files of a directory) as one
// configuration: their "redis", "defaults" and "policies" are merged. The same
// policy or target name in two sources, or the same "defaults" field set in
// two sources, is an error naming both. Errors of all sources are reported
// together.
absl::StatusOr<std::shared_ptr<const Snapshot>> ParseConfig(
    absl::Span<const ConfigSource> sources);

// As above, and sets *files to the other files the configuration read (the
// TLS files of targets with "tls" enabled), by resolved path, each with
// FileFingerprint() of the content that was read — also when the
// configuration is invalid, so that a watcher sees a missing or broken file
// being fixed.
absl::StatusOr<std::shared_ptr<const Snapshot>> ParseConfig(
    absl::Span<const ConfigSource> sources,
    std::map<std::string, std::string>* files);

// What a watcher compares to notice that a file changed: its size and a hash
// of its content, or why it cannot be read.
std::string FileFingerprint(const std::string& path);

// Renders a resolved policy back as a configuration object (the value of a
// "policies" entry): every field, durations as strings ("30s", "600ms").
// Feeding it back to ParseConfig yields the same Policy.
nlohmann::json ExplainPolicy(const Policy& policy);

// The policy's kind in words, for an operator: what holding means, which
// holds get a fencing token, and the kind's own rules (a semaphore's permits,
// the fair queue, read_write's writer preference). Not configuration: kept
// out of ExplainPolicy so that its output still parses back.
std::string ExplainKind(const Policy& policy);

// Same for a target (the value of a "redis" entry). Never includes the
// passwords, only password_env and sentinel_password_env, nor the PEM
// contents of the TLS files, only their (resolved) paths.
nlohmann::json ExplainTarget(const RedisTarget& target);

// A whole resolved configuration: {"redis": {...}, "policies": {...}}.
nlohmann::json ExplainSnapshot(const Snapshot& snapshot);

// The field names the parser accepts, per kind of JSON object. The schema
// test checks that policy/schema.json declares exactly these.
const std::vector<std::string_view>& TopLevelFieldNames();
const std::vector<std::string_view>& TargetFieldNames();
const std::vector<std::string_view>& PolicyFieldNames();
const std::vector<std::string_view>& WaitFieldNames();
const std::vector<std::string_view>& RetryFieldNames();
const std::vector<std::string_view>& RenewalFieldNames();
const std::vector<std::string_view>& TlsFieldNames();

}  // namespace policy

#endif  // POLICY_CONFIG_H_
