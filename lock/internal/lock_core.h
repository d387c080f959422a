// The engine of one reusable lock on one key (what lock::RedisLock wraps):
// acquire, release, extend and inspect by Lua scripts on the lock's homes,
// waiting, fencing, Redlock quorums and the hand-off to auto-renewal.
//
// It runs the policy kinds "mutex" and "semaphore" (issue 15) on one code
// path: only the script calls differ (acquire.lua / release.lua /
// extend.lua / cancel.lua / inspect.lua on the owner hash, or sem_*.lua and
// lease_extend.lua on the holders ZSET, built by primitive_calls.h). A
// semaphore hold is one permit: its acquire replies as the mutex's (fencing
// token 0), its lease is renewed and lost like a mutex's, waiters wake on
// its channel ({P K}:sem:released). Re-entry levels of a permit are counted
// by the instance only (sem_acquire.lua refreshes the one permit of a
// re-entered token; sem_release.lua gives it back whole), so releasing an
// inner level is local. Other kinds are refused by Create.
//
// Everything documented on lock::RedisLock (redis_lock.h) holds here; this
// header adds what the public surface hides: the Redis backend a lock lives
// on, the factory over a connection pool, and the hold shared with Held and
// the renewal manager.
#ifndef LOCK_INTERNAL_LOCK_CORE_H_
#define LOCK_INTERNAL_LOCK_CORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "lock/internal/counters.h"
#include "lock/internal/hold_state.h"
#include "lock/internal/keys.h"
#include "lock/internal/notifier.h"
#include "lock/redis/pool.h"
#include "lock/redis/topology.h"
#include "lock/redis_lock.h"
#include "lock/scripts/embedded.h"
#include "lock/stats.h"
#include "policy/policy.h"

namespace lock::internal {

// Where a lock lives, built from a Redis target of the configuration.
struct Backend {
  // One home (standalone, sentinel, cluster), or the independent masters of
  // a Redlock target: a lock is held when a quorum (n/2+1) of them grant it.
  std::vector<std::shared_ptr<redis::Topology>> homes;
  // Wakes waiters on release (may be null: waiting then polls).
  std::shared_ptr<ReleaseNotifier> notifier;
  // After a fresh acquisition, WAIT for this many replicas; fewer within
  // replica_ack_timeout releases the lock again and reports kUnavailable.
  int min_replicas_ack = 0;
  absl::Duration replica_ack_timeout = absl::Milliseconds(100);
  // The Locker that built it (an id, never reused; 0 for locks made
  // without one): lock::Shutdown releases only the process-wide Locker's.
  uint64_t group = 0;
  // Redlock: clock drift allowance, as a fraction of the TTL (plus 2ms).
  double drift_factor = 0.01;

  bool redlock() const { return homes.size() > 1; }
  int quorum() const { return policy::RedlockQuorum(static_cast<int>(homes.size())); }
};

class LockCore {
 public:
  // Fails with kInvalidArgument when `key` is not a valid lock key, and
  // with kUnimplemented for a policy kind the engine does not run yet
  // (read_write, fair) or a semaphore on a Redlock target.
  static absl::StatusOr<std::unique_ptr<LockCore>> Create(
      std::shared_ptr<const Backend> backend,
      std::shared_ptr<const policy::Policy> policy, absl::string_view key);
  // A lock on one standalone Redis reached through `pool`; `notifier` (may
  // be null) wakes waiters on release when the policy has wait.notify.
  static absl::StatusOr<std::unique_ptr<LockCore>> Create(
      std::shared_ptr<redis::ConnectionPool> pool,
      std::shared_ptr<const policy::Policy> policy, absl::string_view key,
      std::shared_ptr<ReleaseNotifier> notifier = nullptr);

  LockCore(const LockCore&) = delete;
  LockCore& operator=(const LockCore&) = delete;
  // Releases every level still held, best effort; never throws. If Redis
  // cannot be reached the lease simply expires after its TTL.
  ~LockCore();

  // The operations of lock::RedisLock, documented there (redis_lock.h).
  absl::Status Acquire();
  absl::StatusOr<bool> TryAcquire();
  absl::Status Release();
  absl::Status Renew(absl::Duration ttl);
  absl::Status EnableAutoRenew();
  absl::StatusOr<bool> IsLocked();
  absl::Status ReleaseOwnedBy(absl::string_view owner_token);
  absl::Status ReleaseLevelOwnedBy(absl::string_view owner_token);
  absl::StatusOr<LockState> Inspect();

  const std::string& key() const { return key_; }
  const policy::Policy& policy() const { return *policy_; }
  int64_t fencing_token() const;
  absl::Duration remaining() const;
  int hold_count() const { return count_.load(); }
  std::string owner_token() const;
  // The current hold, shared with Held and the renewal manager; null when
  // not held.
  std::shared_ptr<HoldState> hold() const;

 private:
  enum class Outcome { kHeld, kBusy };
  struct Attempt {
    Outcome outcome;
    // kBusy: lease left of the other owner (semaphore: of the permit that
    // returns first).
    absl::Duration busy_remaining;
    int64_t in_use = 0;  // kBusy, semaphore: permits in use
  };

  LockCore(std::shared_ptr<const Backend> backend,
            std::shared_ptr<const policy::Policy> policy, std::string key);

  absl::StatusOr<Attempt> AttemptLocked();
  absl::StatusOr<Attempt> AttemptQuorumLocked(int count, const std::string& token,
                                              absl::Span<const absl::string_view> keys,
                                              absl::Span<const absl::string_view> args);
  // Runs a script on every home at once (Redlock); results in order.
  std::vector<absl::StatusOr<redis::ReplyPtr>> CallAll(
      const scripts::EmbeddedScript& script, absl::Span<const absl::string_view> keys,
      absl::Span<const absl::string_view> args);
  // Sets the hold's lease to `ttl` on the homes and plans renewal by it.
  // OK when held (quorum), NotHeld when lost.
  absl::Status SetLeaseLocked(absl::Duration ttl);
  // The extend call itself: OK, NotHeld (refused), or why it is unknown.
  absl::Status RunExtendScriptLocked(absl::Span<const absl::string_view> keys,
                                absl::Span<const absl::string_view> args);
  absl::Status AcquireLocked();
  bool semaphore() const { return sem_keys_ != nullptr; }
  // Where the hold's lease lives (the owner hash, or the semaphore's holders
  // ZSET) and the channel its release is published on: the kind's keys.
  absl::string_view lease_key() const;
  absl::string_view channel() const;
  // Why a waiter found the lock busy, for IsBusy / IsSkipped messages.
  std::string BusyText(const Attempt& busy) const;
  // Runs a script on a pooled connection, timing it for the statistics.
  // `outcome_unknown` (optional) is set when the request may have been
  // applied although no reply came.
  absl::StatusOr<redis::ReplyPtr> Call(const scripts::EmbeddedScript& script,
                                       absl::Span<const absl::string_view> keys,
                                       absl::Span<const absl::string_view> args,
                                       bool* outcome_unknown = nullptr);
  // Records a fresh hold (op_mu_ held).
  void StartHoldLocked(const std::string& token, int64_t fence, int64_t sent_at_ns,
                       int64_t valid_until_ns);
  // Drops the current hold after it was found lost (op_mu_ held).
  void ForgetHoldLocked();
  // Releases down to `count_after` levels. When the last level's release
  // fails, the hold stays in place and renewed if `owner_stays` (the caller
  // may retry), else renewal stops and the lease runs out by itself (the
  // destructor: nobody could ever release it).
  absl::Status ReleaseLocked(int count_after, bool owner_stays = true);
  // Runs an owner-checked script that answers a positive integer (done) or
  // 0 (not held by this token): once, or on every Redlock master read by
  // the quorum rule. true when done, false when not held; an error when
  // the outcome is unknown.
  absl::StatusOr<bool> CallOwned(const scripts::EmbeddedScript& script,
                                 absl::Span<const absl::string_view> keys,
                                 absl::Span<const absl::string_view> args);
  // Runs the kind's release for `token` (release.lua; sem_release.lua,
  // which gives the whole permit back: `count_after` must be 0 there);
  // true when it released, false when the token did not hold the lock.
  absl::StatusOr<bool> RunRelease(absl::string_view token, int count_after,
                                  int64_t keep_ms);
  void CancelLostAcquire(const std::string& token, absl::Status* cause);
  // Inspect of a semaphore: its permits in use, and this instance's permit
  // among them (else the one that returns first).
  absl::StatusOr<LockState> InspectSemaphore();
  absl::Status Annotate(const absl::Status& s, absl::string_view op) const;

  const std::shared_ptr<const Backend> backend_;
  const std::shared_ptr<const policy::Policy> policy_;
  const std::string key_;
  const LockKeys keys_;
  // A semaphore's keys; null for a mutex (8 bytes, not ~100, per mutex: a
  // process may keep 100,000 locks).
  const std::unique_ptr<const SemaphoreKeys> sem_keys_;
  PolicyCounters& counters_;

  // Holds op_mu_ for one operation. On leaving it lets go of op_mu_ first
  // and then runs what the operation deferred — loss announcements (stop
  // callbacks, OnLost) and the other callbacks — which may call back into
  // this very lock (Held::Extend from a std::stop_callback).
  class OpScope {
   public:
    explicit OpScope(LockCore* lock);
    OpScope(const OpScope&) = delete;
    OpScope& operator=(const OpScope&) = delete;
    ~OpScope();

   private:
    LockCore* const lock_;
  };
  void DeferLocked(std::function<void()> fn) { deferred_.push_back(std::move(fn)); }
  // Marks the current hold lost and defers its announcement (op_mu_ held).
  void LoseLocked(const std::string& why);

  std::mutex op_mu_;  // serializes operations; held across Redis calls
  std::vector<std::function<void()>> deferred_;  // guarded by op_mu_
  mutable std::mutex hold_mu_;
  std::shared_ptr<HoldState> hold_;  // guarded by hold_mu_; set under op_mu_
  std::atomic<int> count_{0};             // written under op_mu_
};

// Wraps a core in the public type, and reaches the core of a public lock.
struct LockAccess {
  static std::unique_ptr<RedisLock> Wrap(std::unique_ptr<LockCore> core);
  static LockCore& Core(const RedisLock& lock);
};

// A public RedisLock over `backend` (what Locker builds), or over one
// standalone Redis reached through `pool` (tools and tests).
absl::StatusOr<std::unique_ptr<RedisLock>> NewRedisLock(
    std::shared_ptr<const Backend> backend,
    std::shared_ptr<const policy::Policy> policy, std::string_view key);
absl::StatusOr<std::unique_ptr<RedisLock>> NewRedisLock(
    std::shared_ptr<redis::ConnectionPool> pool,
    std::shared_ptr<const policy::Policy> policy, std::string_view key,
    std::shared_ptr<ReleaseNotifier> notifier = nullptr);

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_LOCK_CORE_H_
