// Checking and resolving a lock policy built in code (lock::LockOptions is a
// policy::Policy) by the rules a policy file gets (docs/DESIGN.md section 5),
// without a detour through JSON:
//
//   absl::StatusOr<policy::Policy> p =
//       policy::ResolvePolicy(options, *snapshot, "LockOptions");
//   // LockOptions: /policies/options/ttl: must be > 0, got "0s"
//
// The parser (config.h) applies the very same rules to the policies it reads.
#ifndef POLICY_VALIDATE_H_
#define POLICY_VALIDATE_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "policy/policy.h"

namespace policy {

// The script_timeout a policy gets when neither it, its extends chain nor
// "defaults" sets one: min(600ms, half of the renewal window ttl * threshold,
// or of the ttl without renewal), at least 1ms — so that short leases work
// with default settings.
absl::Duration DefaultScriptTimeout(const Policy& policy);

// Checks `options` as ParseConfig checks a policy named "options" with these
// field values, and resolves it: every field's rule, the rules over several
// fields, and that the `redis` target exists in `snapshot`. All problems come
// in one InvalidArgumentError, a line each, in the parser's form with the
// field's path: `<source>: /policies/options/<field>: <message>, got <value>`.
//
// A struct cannot tell a field left at its default from one set to the same
// value: a script_timeout equal to Policy().script_timeout counts as not set
// and becomes DefaultScriptTimeout(), so that a 1s ttl works with defaults.
// `extends` must be empty: the struct is the only policy there is, so there
// is nothing to inherit from. The result is `options` with that
// script_timeout.
absl::StatusOr<Policy> ResolvePolicy(const Policy& options,
                                     const Snapshot& snapshot,
                                     std::string_view source);

// Checks a Redis target built in code (for a Snapshot made from structs) by
// the rules a "redis" entry named `target.name` gets for its TLS block and its
// sentinel authentication: with TLS enabled, a client certificate and its
// key both or neither (as files or as PEM texts) and no "unix:" address;
// sentinel_username / sentinel_password_env only in sentinel mode, the user
// with a password variable. Files are not read here: the loader does that,
// and a target built in code carries the PEM texts itself. Errors as the
// parser reports them:
//   `<source>: /redis/<name>/tls/cert_file: needs "key_file": ...`
absl::Status CheckTarget(const RedisTarget& target, std::string_view source);

}  // namespace policy

#endif  // POLICY_VALIDATE_H_
