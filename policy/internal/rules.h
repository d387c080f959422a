// The validation rules of the policy model, written once for both ways a
// policy arrives: read from JSON (config.h) and given as a struct in code
// (validate.h).
//
// Single-value rules take the typed value and return "" or what is wrong; the
// caller reports it at the value's path, showing the value as it was given.
// The rules over several resolved fields report themselves.
#ifndef POLICY_INTERNAL_RULES_H_
#define POLICY_INTERNAL_RULES_H_

#include <array>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "policy/internal/errors.h"
#include "policy/policy.h"

namespace policy::internal {

// ---------------------------------------------------------------------------
// Single values.

// A rule on a duration. All of them refuse the infinities.
using DurationRule = std::string (*)(absl::Duration);
std::string NonNegativeDuration(absl::Duration d);
std::string PositiveDuration(absl::Duration d);
// A ttl: positive, at least 1ms and whole milliseconds (PEXPIRE's unit).
std::string LeaseDuration(absl::Duration d);

// An interval of allowed numbers.
struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  bool max_exclusive = false;

  bool Contains(double x) const {
    return (min_exclusive ? x > min : x >= min) &&
           (max_exclusive ? x < max : x <= max);
  }
  // "must be >= 1", "must be in (0, 1)".
  std::string Describe() const;
};

std::string CheckRange(double x, const Range& range);

// The ranges of the policy's numeric fields.
inline constexpr Range kMaxAttemptsRange{.min = 1};
inline constexpr Range kMultiplierRange{.min = 1};
inline constexpr Range kJitterRange{.min = 0, .max = 1};
inline constexpr Range kPermitsRange{.min = 1, .max = kMaxPermits};
inline constexpr Range kThresholdRange{
    .min = 0, .max = 1, .min_exclusive = true, .max_exclusive = true};

// The spellings of an enum's values, in declaration order.
template <typename Enum, size_t N>
std::vector<std::string_view> EnumNames(const std::array<Enum, N>& all,
                                        std::string_view (*name_of)(Enum)) {
  std::vector<std::string_view> names;
  for (Enum e : all) names.push_back(name_of(e));
  return names;
}

// `name` must be one of `names`.
std::string CheckEnumName(std::string_view name,
                          const std::vector<std::string_view>& names);

// Policy and target names.
std::string CheckName(std::string_view name);
// Key prefixes end up inside the hash tag "{prefix key}" (docs/DESIGN.md
// section 4), so braces would break slot routing.
std::string CheckKeyPrefix(std::string_view prefix);
std::string CheckEnvName(std::string_view name);
std::string CheckAddress(std::string_view addr);

// ---------------------------------------------------------------------------
// Whole policies, once resolved.

// The rules of "kind": a semaphore needs "permits", no other kind takes it,
// and "hold_at_least" is for mutexes only. Part of CheckCrossFieldRules.
void CheckKindRules(const Policy& p, const Where& at, ErrorList& errors);

// Rules that tie several resolved fields together, reported at `at` (the
// policy's path). `script_timeout_set`: false when script_timeout was derived
// from the ttl (DefaultScriptTimeout), so an error can say why it has that
// value.
void CheckCrossFieldRules(const Policy& p, bool script_timeout_set,
                          const Where& at, ErrorList& errors);

// The resolved policy's target must be one of `known` (sorted names).
void CheckTargetReference(const Policy& p,
                          const std::vector<std::string_view>& known,
                          const Where& at, ErrorList& errors);

// ---------------------------------------------------------------------------
// Targets.

// The rules of a target's "tls" block and its sentinel authentication, on
// the struct, reported below `at` (the target's path): the parser applies
// them to each "redis" entry it read, CheckTarget (validate.h) to a target
// built in code. With TLS enabled: cert_file and key_file both or neither,
// no "unix:" address. sentinel_username / sentinel_password_env only in
// sentinel mode, and the user needs the password variable.
void CheckTargetTlsAndAuth(const RedisTarget& t, const Where& at,
                           ErrorList& errors);

// What "extends" naming no policy of `known` is told.
std::string UnknownPolicyMessage(std::string_view name,
                                 const std::vector<std::string_view>& known);

// "extends cycle: a -> b -> a" for the policies of a cycle, given in the
// order the chain visits them. Rotates `cycle` to start at its smallest name,
// the policy it is reported at, so the text is the same wherever the cycle is
// entered.
std::string ExtendsCycleMessage(std::vector<std::string_view>* cycle);

}  // namespace policy::internal

#endif  // POLICY_INTERNAL_RULES_H_
