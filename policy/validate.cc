#include "policy/validate.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "policy/internal/errors.h"
#include "policy/internal/rules.h"

namespace policy {
namespace {

using internal::ErrorList;
using internal::Range;
using internal::Where;

// The name the struct is checked under, as ParseConfig would see it.
constexpr std::string_view kEntryName = "options";

// One field's rule on its typed value. Each reports as the parser's reader of
// that field does, with the value shown as the parser would show it.

void CheckDurationField(absl::Duration d, internal::DurationRule rule,
                        const Where& at, ErrorList& errors) {
  if (std::string problem = rule(d); !problem.empty()) {
    errors.Add(at, problem, internal::ShowDuration(d));
  }
}

void CheckNumberField(double x, const Range& range, const Where& at,
                      ErrorList& errors) {
  // NaN and the infinities have no JSON spelling: what the parser's type
  // check says of a value that is not a number.
  const std::string problem =
      std::isfinite(x) ? internal::CheckRange(x, range) : "must be a number";
  if (!problem.empty()) errors.Add(at, problem, internal::ShowNumber(x));
}

void CheckIntField(int x, const Range& range, const Where& at,
                   ErrorList& errors) {
  if (std::string problem = internal::CheckRange(x, range); !problem.empty()) {
    errors.Add(at, problem, internal::ShowInt(x));
  }
}

// Catches values cast from outside the enum.
template <typename Enum, size_t N>
void CheckEnumField(Enum value, const std::array<Enum, N>& all,
                    std::string_view (*name_of)(Enum), const Where& at,
                    ErrorList& errors) {
  const std::string_view name = name_of(value);
  if (std::string problem =
          internal::CheckEnumName(name, internal::EnumNames(all, name_of));
      !problem.empty()) {
    errors.Add(at, problem, internal::ShowString(name));
  }
}

// Every single-field rule, in the order the parser meets the fields (a
// policy object's keys, sorted), so that several problems are listed as it
// would list them.
void CheckPolicyFields(const Policy& p, bool script_timeout_set,
                       const Where& at, ErrorList& errors) {
  CheckDurationField(p.fencing_retention, &internal::PositiveDuration,
                     at / "fencing_retention", errors);
  CheckDurationField(p.hold_at_least, &internal::NonNegativeDuration,
                     at / "hold_at_least", errors);
  if (std::string problem = internal::CheckKeyPrefix(p.key_prefix);
      !problem.empty()) {
    errors.Add(at / "key_prefix", problem, internal::ShowString(p.key_prefix));
  }
  CheckEnumField(p.kind, kAllLockKinds, &LockKindName, at / "kind", errors);
  CheckEnumField(p.on_busy, kAllOnBusy, &OnBusyName, at / "on_busy", errors);
  // 0 is "not set" in the struct; the parser never sees it then (explain
  // leaves it out).
  if (p.permits != 0) {
    CheckIntField(p.permits, internal::kPermitsRange, at / "permits", errors);
  }
  const Where renewal = at / "renewal";
  CheckEnumField(p.renewal.on_failure, kAllOnRenewalFailure,
                 &OnRenewalFailureName, renewal / "on_failure", errors);
  CheckNumberField(p.renewal.threshold, internal::kThresholdRange,
                   renewal / "threshold", errors);
  const Where retry = at / "retry";
  CheckDurationField(p.retry.initial_delay, &internal::NonNegativeDuration,
                     retry / "initial_delay", errors);
  CheckNumberField(p.retry.jitter, internal::kJitterRange, retry / "jitter",
                   errors);
  CheckIntField(p.retry.max_attempts, internal::kMaxAttemptsRange,
                retry / "max_attempts", errors);
  CheckDurationField(p.retry.max_delay, &internal::NonNegativeDuration,
                     retry / "max_delay", errors);
  CheckNumberField(p.retry.multiplier, internal::kMultiplierRange,
                   retry / "multiplier", errors);
  if (script_timeout_set) {
    CheckDurationField(p.script_timeout, &internal::PositiveDuration,
                       at / "script_timeout", errors);
  }
  CheckDurationField(p.ttl, &internal::LeaseDuration, at / "ttl", errors);
  CheckDurationField(p.wait.timeout, &internal::NonNegativeDuration,
                     at / "wait" / "timeout", errors);
}

}  // namespace

absl::Duration DefaultScriptTimeout(const Policy& p) {
  // The built-in 600ms fits leases of 4s and more. A shorter lease (the Go
  // library accepts lock.Lock(ctx, key, time.Second, fn)) gets half of its
  // renewal window (or of the lease, without renewal): a renewal call then
  // always ends before the lease does. Only an explicit script_timeout that
  // contradicts the lease is an error.
  const absl::Duration window =
      p.renewal.enabled ? p.ttl * p.renewal.threshold : p.ttl;
  const absl::Duration fitted = absl::Trunc(window / 2, absl::Milliseconds(1));
  return std::clamp(fitted, absl::Milliseconds(1), Policy().script_timeout);
}

absl::StatusOr<Policy> ResolvePolicy(const Policy& options,
                                     const Snapshot& snapshot,
                                     std::string_view source) {
  ErrorList errors;
  const Where at = Where{source, ""} / "policies" / kEntryName;
  Policy p = options;
  const bool script_timeout_set = p.script_timeout != Policy().script_timeout;
  CheckPolicyFields(p, script_timeout_set, at, errors);
  const bool clean = errors.size() == 0;
  if (!p.extends.empty()) {
    // As the parser resolves an extends chain: the only policy there is can
    // name itself (a cycle) or an unknown policy, and is not resolved.
    std::vector<std::string_view> self = {kEntryName};
    errors.Add(at / "extends",
               p.extends == kEntryName
                   ? internal::ExtendsCycleMessage(&self)
                   : internal::UnknownPolicyMessage(p.extends, self),
               internal::ShowString(p.extends));
    return errors.ToStatus();
  }
  if (!script_timeout_set) p.script_timeout = DefaultScriptTimeout(p);
  const std::vector<std::string> targets = snapshot.TargetNames();
  internal::CheckTargetReference(
      p, std::vector<std::string_view>(targets.begin(), targets.end()), at,
      errors);
  if (clean) internal::CheckCrossFieldRules(p, script_timeout_set, at, errors);
  if (absl::Status status = errors.ToStatus(); !status.ok()) return status;
  return p;
}

absl::Status CheckTarget(const RedisTarget& target, std::string_view source) {
  ErrorList errors;
  internal::CheckTargetTlsAndAuth(
      target, Where{source, ""} / "redis" / target.name, errors);
  return errors.ToStatus();
}

}  // namespace policy
