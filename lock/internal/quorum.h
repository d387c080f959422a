// The one rule for reading a Redlock round: how many independent masters
// said yes, how many said no, and what that means for the hold. Acquire,
// re-entry, extend, renewal and release all read their replies through it,
// so the same replies never mean "held" to one and "lost" to another.
#ifndef LOCK_INTERNAL_QUORUM_H_
#define LOCK_INTERNAL_QUORUM_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "lock/redis/reply.h"

namespace lock::internal {

enum class QuorumVerdict {
  kYes,      // at least a quorum said yes
  kNo,       // too many said no for a quorum, whatever the silent ones did
  kUnknown,  // no quorum yet, but the masters that did not answer could make one
};

// `n` masters, of which `yes` said yes and `no` said no; the others failed
// (timeout, connection error), so their answer is unknown.
inline QuorumVerdict Tally(int n, int quorum, int yes, int no) {
  if (yes >= quorum) return QuorumVerdict::kYes;
  if (n - no < quorum) return QuorumVerdict::kNo;
  return QuorumVerdict::kUnknown;
}

// The replies of one Redlock round of a script that answers a positive
// integer (yes) or 0 (no), read by Tally: true for a quorum of yes, false when too many said
// no for any quorum, else the last error (the masters that failed could
// still make one). `*yes` (optional) gets the count of yes answers.
inline absl::StatusOr<bool> QuorumAnswer(
    absl::Span<const absl::StatusOr<redis::ReplyPtr>> replies, int quorum,
    int* yes = nullptr) {
  int granted = 0, refused = 0;
  absl::Status error;
  for (const auto& reply : replies) {
    if (!reply.ok()) {
      error = reply.status();
    } else if ((*reply)->type != REDIS_REPLY_INTEGER) {
      error = absl::InternalError("unexpected reply type (want an integer)");
    } else if ((*reply)->integer >= 1) {
      ++granted;
    } else {
      ++refused;
    }
  }
  if (yes != nullptr) *yes = granted;
  switch (Tally(static_cast<int>(replies.size()), quorum, granted, refused)) {
    case QuorumVerdict::kYes:
      return true;
    case QuorumVerdict::kNo:
      return false;
    case QuorumVerdict::kUnknown:
      break;
  }
  return error;
}

// Validity of a Redlock grant or extension of `lease_ns` sent at `sent_ns`:
// the lease, less the clock-drift allowance (a fraction of the lease plus
// 2ms, as in the Redlock algorithm). Measured from the send, so the time
// the round took is already subtracted.
inline int64_t RedlockValidUntilNs(int64_t sent_ns, int64_t lease_ns, double drift_factor) {
  const int64_t drift = static_cast<int64_t>(static_cast<double>(lease_ns) * drift_factor) +
                        2'000'000;
  return sent_ns + lease_ns - drift;
}

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_QUORUM_H_
