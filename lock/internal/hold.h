// One acquisition of a lock, shared by the RedisLock that made it, the Held
// that a critical section sees, and the renewal manager. Shared ownership
// lets a renewal in flight outlive a RedisLock that was destroyed meanwhile
// without touching freed memory.
#ifndef LOCK_INTERNAL_HOLD_H_
#define LOCK_INTERNAL_HOLD_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>

#include "absl/status/status.h"
#include "lock/redis/topology.h"
#include "lock/stats.h"
#include "policy/policy.h"

namespace lock::internal {

inline int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Hold {
  // The homes the lock was taken on (one, or Redlock's masters).
  std::vector<std::shared_ptr<redis::Topology>> homes;
  int quorum = 1;            // homes that must grant a renewal
  // A renewal counts only once this many replicas acknowledged it, so a
  // demoted master that still answers cannot keep the hold alive alone.
  int min_replicas_ack = 0;
  absl::Duration replica_ack_timeout;
  double drift_factor = 0;   // Redlock: validity lost to clock drift
  std::shared_ptr<const policy::Policy> policy;
  std::string key;        // the caller's key, without prefix
  std::string owner_key;  // {P K}
  std::string channel;    // release channel, from LockKeys
  std::string token;
  int64_t fence = 0;
  int64_t acquired_at_ns = 0;  // steady clock, when the acquire was sent
  PolicyCounters* counters = nullptr;

  // Lease end by the local steady clock, conservative: measured from before
  // the acquire/renewal was sent.
  std::atomic<int64_t> valid_until_ns{0};
  std::atomic<bool> released{false};  // the owner let go; stop renewing
  std::atomic<bool> renewing{false};  // handed to the renewal manager
  std::atomic<bool> lost{false};
  std::stop_source stop;

  // Marks the hold lost exactly once: counts it, tells the callback, and
  // requests the stop token unless the policy says to ignore failures.
  void MarkLost(const absl::Status& why) {
    if (lost.exchange(true)) return;
    counters->lost.fetch_add(1, std::memory_order_relaxed);
    if (policy->renewal.on_failure == policy::OnRenewalFailure::kSignal) {
      stop.request_stop();
    }
    if (auto cb = Callback()) cb->OnLost(policy->name, key, why);
  }
};

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_HOLD_H_
