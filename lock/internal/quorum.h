// The one rule for reading a Redlock round: how many independent masters
// said yes, how many said no, and what that means for the hold. Acquire,
// re-entry, extend, renewal and release all read their replies through it,
// so the same replies never mean "held" to one and "lost" to another.
#ifndef LOCK_INTERNAL_QUORUM_H_
#define LOCK_INTERNAL_QUORUM_H_

#include <cstdint>

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
