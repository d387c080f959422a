// Parity with the Go library lynx-redis-lock: its call shapes, on the
// process-wide Locker (lock.h) and the same code path as lock::With.
//
//   #include "lock/compat.h"
//
//   absl::Status s = lock::Lock("job-42", absl::Seconds(10), [] {
//     return RunJob();
//   });
//
// Every helper takes the key without a policy: the lock is configured by
// LockOptions (a policy::Policy without a name) whose `redis` field names a
// target of the loaded configuration ("default" unless set). Options pass
// through the same validation as a policy file, so a bad ttl or retry value
// is kInvalidArgument naming the field. Outcomes are the ones of lock::With
// (lock/errors.h): IsBusy, IsSkipped, IsLost, kUnavailable...
#ifndef LOCK_COMPAT_H_
#define LOCK_COMPAT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lock/lock.h"

namespace lock {

// Retry settings of LockWithRetry: `max_attempts` counts attempts (1 = try
// once), `delay` is the fixed pause between them (with ±50% jitter): N
// attempts make N-1 pauses, as in the Go library, the first of which may end
// early when the holder releases. Giving up is IsAttemptsExhausted.
struct RetryStrategy {
  int max_attempts = 3;
  absl::Duration delay = absl::Milliseconds(100);
};

// Runs `fn` holding `key` with the default options and a lease of `ttl`,
// and releases it on every path, like lock::With. A script_timeout left at
// its default is fitted to a short ttl, so a 1s lease works.
absl::Status Lock(std::string_view key, absl::Duration ttl,
                  const std::function<absl::Status()>& fn);

// Runs `fn` holding `key` under `options` (validated like a policy file;
// kInvalidArgument names the bad field), like lock::With.
absl::Status LockWithOptions(std::string_view key, const LockOptions& options,
                             const std::function<absl::Status()>& fn);

// Lock with a fixed retry schedule instead of the default waiting: up to
// strategy.max_attempts attempts, strategy.delay (±50% jitter) apart, the
// first pause ending early when the holder releases. Giving up is
// IsAttemptsExhausted (IsBusy holds too).
absl::Status LockWithRetry(std::string_view key, absl::Duration ttl,
                           const std::function<absl::Status()>& fn,
                           const RetryStrategy& strategy);

// Lock, passing the hold's fencing token to `fn` (0 when the options turn
// fencing off): hand it to the resource you write, e.g. lock::FencedSet.
absl::Status LockWithToken(std::string_view key, absl::Duration ttl,
                           const std::function<absl::Status(int64_t)>& fn);

// A reusable lock instance for `key` under `options` (Locker::NewLock on the
// process-wide Locker). Reentrant per instance.
absl::StatusOr<std::unique_ptr<RedisLock>> NewLock(std::string_view key,
                                                   const LockOptions& options);

// Releases one re-entry level of `key` of the unnamed default options
// (target "default", no key prefix) if and only if `owner_token` holds it,
// from any process; the last level deletes the key and wakes waiters.
// IsNotHeld otherwise; never touches another owner's lock.
absl::Status UnlockByValue(std::string_view key, std::string_view owner_token);

}  // namespace lock

#endif  // LOCK_COMPAT_H_
