// One acquisition of a lock, shared by the RedisLock that made it, the Held
// that a critical section sees, and the renewal manager. Shared ownership
// lets a renewal in flight outlive a RedisLock that was destroyed meanwhile
// without touching freed memory.
#ifndef LOCK_INTERNAL_HOLD_STATE_H_
#define LOCK_INTERNAL_HOLD_STATE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <algorithm>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>

#include "absl/status/status.h"
#include "lock/internal/counters.h"
#include "lock/internal/observe.h"
#include "lock/redis/topology.h"
#include "lock/scripts/embedded.h"
#include "lock/stats.h"
#include "policy/policy.h"
#include "util/strings.h"

namespace lock::internal {

inline int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Time since `start_ns` (a SteadyNowNs value).
inline absl::Duration Since(int64_t start_ns) {
  return absl::Nanoseconds(SteadyNowNs() - start_ns);
}

// Which side of a read_write lock an instance takes. kDefault is the write
// side there (lock::With on a read_write policy means write), and the only
// side of every other kind.
enum class Access : uint8_t { kDefault, kRead, kWrite };

// The script that extends a hold's lease (renewal, Held::Extend):
// extend.lua on an owner hash (mutex, the write side, fair), lease_extend.lua
// on a ZSET of leases (a semaphore permit, a read hold). Both take KEYS
// {lease key} and ARGV {token, lease ms[, "renew"]}, and answer 1 (extended)
// or 0 (gone: lost).
inline const scripts::EmbeddedScript& ExtendScriptOf(bool lease_in_zset) {
  return lease_in_zset ? scripts::k_lease_extend : scripts::k_extend;
}

// The lease mutex of a hold (see HoldState::lease_mu); defined in renewal.cc,
// whose fork handlers take them all.
std::mutex& LeaseMutexFor(const void* hold);

struct HoldState {
  // The homes the lock was taken on (one, or Redlock's masters).
  std::vector<std::shared_ptr<redis::Topology>> homes;
  int quorum = 1;            // homes that must grant a renewal
  // A renewal counts only once this many replicas acknowledged it, so a
  // demoted master that still answers cannot keep the hold alive alone.
  int min_replicas_ack = 0;
  absl::Duration replica_ack_timeout;
  double drift_factor = 0;   // Redlock: validity lost to clock drift
  std::shared_ptr<const policy::Policy> policy;
  // The Locker whose locks these are (Backend::group); 0 for none.
  uint64_t group = 0;
  std::string key;        // the caller's key, without prefix
  // Where the lease lives: an owner hash ({P K} of a mutex, the write side's,
  // the fair lock's) or a ZSET of leases (a semaphore's holders, the
  // readers). What the extend script gets.
  std::string owner_key;
  std::string channel;    // release channel of the kind (keys.h)
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
  bool lease_in_zset = false;        // owner_key is a ZSET of leases
  Access access = Access::kDefault;  // the side of a read_write lock
  std::stop_source stop;

  // The lease the holder asked for last, in the milliseconds Redis gets:
  // the policy's ttl until an Extend sets another. Renewal sends this one
  // and schedules by it, so an Extend shorter than the policy's ttl is not
  // left to expire between two renewals planned for the longer lease.
  std::atomic<int64_t> lease_ms{0};
  // Bumped whenever the lease changes hands between the owner and the
  // renewal manager (Extend, a release that failed): a renewal sent under
  // an older epoch neither moves valid_until_ns nor reschedules itself.
  std::atomic<uint64_t> lease_epoch{0};
  int64_t lease_ns() const { return lease_ms.load() * 1'000'000; }
  const scripts::EmbeddedScript& extend_script() const { return ExtendScriptOf(lease_in_zset); }

  // Orders valid_until_ns updates against lease changes. Held only for a
  // few loads and stores, never across a call. One of a fixed set shared
  // by all holds: a mutex per hold cost 40 bytes of each of 100,000 holds.
  std::mutex& lease_mu() const { return LeaseMutexFor(this); }

  // Makes `ms` the hold's lease and starts a new epoch, which it returns:
  // renewals planned or sent under the old one no longer count.
  uint64_t ChangeLease(int64_t ms) {
    std::lock_guard<std::mutex> lock(lease_mu());
    lease_ms.store(ms);
    return lease_epoch.fetch_add(1) + 1;
  }

  // Stores a validity earned by a call sent under `epoch`; false (nothing
  // stored) when the lease changed since.
  bool SetValidUntil(uint64_t epoch, int64_t until_ns) {
    std::lock_guard<std::mutex> lock(lease_mu());
    if (lease_epoch.load() != epoch) return false;
    valid_until_ns.store(until_ns);
    return true;
  }

  // How long the key must outlive a release sent now (hold_at_least, for
  // run-once jobs), in ms rounded up; 0 = delete it.
  int64_t KeepAfterReleaseMs() const {
    if (policy->hold_at_least <= absl::ZeroDuration()) return 0;
    const int64_t until = acquired_at_ns + absl::ToInt64Nanoseconds(policy->hold_at_least);
    return std::max<int64_t>(0, (until - SteadyNowNs() + 999'999) / 1'000'000);
  }

  // Marks the hold lost; true the first time. Counts it, and nothing else:
  // a caller holding an internal lock announces it after letting go (see
  // AnnounceLost), because the stop callbacks and OnLost may call back
  // into the library.
  bool SetLost() {
    if (lost.exchange(true)) return false;
    counters->lost.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  // Requests the stop token unless the policy says to ignore failures, and
  // tells the callback. Call with no internal lock held.
  void AnnounceLost(const absl::Status& why) {
    if (policy->renewal.on_failure == policy::OnRenewalFailure::kSignal) {
      stop.request_stop();
    }
    if (auto cb = Callback()) cb->OnLost(policy->name, key, why);
    Log(LogSeverity::kError, "lock_lost", util::ToStd(why.message()), {.policy = policy->name, .key = key});
  }
  // Delivers the "lock.hold" span (lock/observe.h) of a hold that ends
  // now. Call with no internal lock held.
  void TraceEnd(std::string_view outcome, const absl::Status& status) const {
    const SpanAttribute attributes[] = {
        {"lock.policy", std::string_view(policy->name)},
        {"lock.key", std::string_view(key)},
        {"lock.kind", policy::LockKindName(policy->kind)},
        {"lock.fencing_token", fence},
        {"lock.lost", lost.load()},
        {"lock.outcome", outcome},
    };
    EmitSpan("lock.hold", acquired_at_ns, status, attributes);
  }
  // Both, for callers that hold no internal lock.
  void MarkLost(const absl::Status& why) {
    if (SetLost()) AnnounceLost(why);
  }
};

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_HOLD_STATE_H_
