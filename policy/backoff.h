// The library's one backoff function: how long to sleep before a retry.
//
//   absl::BitGen gen;
//   absl::Duration d = policy::BackoffDelay(p.retry, retry_index,
//                                           absl::Uniform(gen, 0.0, 1.0));
//
// It is pure (the caller supplies the randomness) so tests can pin every
// value and callers can pick their own random source.
#ifndef POLICY_BACKOFF_H_
#define POLICY_BACKOFF_H_

#include "absl/time/time.h"
#include "policy/policy.h"

namespace policy {

// Returns the delay before retry number `retry_index` (0 = the delay between
// the first and the second attempt):
//
//   base  = min(retry.max_delay, retry.initial_delay * multiplier^retry_index)
//   delay = base * (1 + jitter * (2 * unit_random - 1))
//
// so the delay is spread uniformly over base * (1 - jitter) .. base *
// (1 + jitter) when unit_random is uniform in [0, 1). Jitter is applied after
// the cap, so a delay may exceed max_delay by up to the jitter fraction; that
// keeps waiters spread apart even once they all reached the cap.
//
// Never overflows (huge indexes saturate at max_delay) and never returns a
// negative duration. A negative retry_index is treated as 0 and unit_random
// is clamped to [0, 1].
[[nodiscard]] absl::Duration BackoffDelay(const RetryPolicy& retry,
                                          int retry_index, double unit_random);

}  // namespace policy

#endif  // POLICY_BACKOFF_H_
