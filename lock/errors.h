// Error kinds of the lock library. Each has a canonical absl code and a
// predicate; the predicates also check a payload, so an unrelated error with
// the same code (say, a kAborted returned by the critical section itself) is
// never mistaken for a lock outcome.
//
//   absl::Status s = lock::With("order-close", id, fn);
//   if (lock::IsBusy(s)) { /* someone else is closing it; try later */ }
//
//   kind        code                 meaning
//   busy        kAborted             held by another owner after the policy's
//                                    waiting/attempts; retry higher up. Why it
//                                    gave up is told apart by
//                                    IsAttemptsExhausted (retry.max_attempts
//                                    made, like Go's ErrMaxRetriesExceeded)
//                                    and IsWaitTimedOut (wait.timeout
//                                    passed); on_busy "fail" is neither
//   skipped     kAlreadyExists       held by another owner, policy on_busy=skip
//   lost        kDataLoss            the lock expired or changed hands while
//                                    held: writes made under it may be unsafe
//   not held    kFailedPrecondition  release/extend of a lock this owner does
//                                    not hold (never touches another's lock)
//   self-       kFailedPrecondition  a nested With or WithAll on a key the
//   deadlock                         calling thread already holds in an
//                                    enclosing With or WithAll; it would
//                                    wait for itself
//   stale fence kAborted             FencedSet refused a write whose fencing
//                                    token is older than one already written
//   deadline    kDeadlineExceeded    the caller's CallOptions::deadline passed
//   exceeded                         before the lock was taken; nothing held
//   cancelled   kCancelled           the caller's CallOptions::stop was
//                                    requested, or lock::Shutdown ended a
//                                    pending asynchronous acquire; nothing held
// Redis unreachable or too slow is kUnavailable; a bad key or policy is
// kInvalidArgument; an unknown policy is kNotFound.
#ifndef LOCK_ERRORS_H_
#define LOCK_ERRORS_H_

#include <string_view>

#include "absl/status/status.h"

namespace lock {

absl::Status BusyError(std::string_view message);
absl::Status SkippedError(std::string_view message);
absl::Status LostError(std::string_view message);
absl::Status NotHeldError(std::string_view message);
absl::Status StaleFenceError(std::string_view message);
absl::Status SelfDeadlockError(std::string_view message);
// Busy outcomes that also say why waiting ended (IsBusy holds for both).
absl::Status AttemptsExhaustedError(std::string_view message);
absl::Status WaitTimedOutError(std::string_view message);
absl::Status DeadlineExceededError(std::string_view message);
absl::Status CancelledError(std::string_view message);

bool IsBusy(const absl::Status& s);
bool IsSkipped(const absl::Status& s);
bool IsLost(const absl::Status& s);
bool IsNotHeld(const absl::Status& s);
bool IsStaleFence(const absl::Status& s);
bool IsSelfDeadlock(const absl::Status& s);
bool IsAttemptsExhausted(const absl::Status& s);
bool IsWaitTimedOut(const absl::Status& s);
// Call these two qualified (lock::IsCancelled(s)): absl has predicates of
// the same names (code only, no payload), which an unqualified call finds
// too by argument-dependent lookup.
bool IsDeadlineExceeded(const absl::Status& s);
bool IsCancelled(const absl::Status& s);

}  // namespace lock

#endif  // LOCK_ERRORS_H_
