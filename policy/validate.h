// Resolving a lock policy without JSON (docs/DESIGN.md section 5).
#ifndef POLICY_VALIDATE_H_
#define POLICY_VALIDATE_H_

#include "absl/time/time.h"
#include "policy/policy.h"

namespace policy {

// The script_timeout a policy gets when neither it, its extends chain nor
// "defaults" sets one: min(600ms, half of the renewal window ttl * threshold,
// or of the ttl without renewal), at least 1ms — so that short leases work
// with default settings.
absl::Duration DefaultScriptTimeout(const Policy& policy);

}  // namespace policy

#endif  // POLICY_VALIDATE_H_
