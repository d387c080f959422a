// The engine of one reusable lock on one key (what lock::RedisLock wraps):
// acquire, release, extend and inspect by Lua scripts on the lock's homes,
// waiting, fencing, Redlock quorums and the hand-off to auto-renewal.
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
#include "lock/internal/hold.h"
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
  // Redlock: clock drift allowance, as a fraction of the TTL (plus 2ms).
  double drift_factor = 0.01;

  bool redlock() const { return homes.size() > 1; }
  int quorum() const { return static_cast<int>(homes.size()) / 2 + 1; }
};

class LockCore {
 public:
  // Fails with kInvalidArgument when `key` is not a valid lock key.
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

  // Takes the lock, behaving on a busy lock as the policy says: `wait`
  // retries with backoff until retry.max_attempts or wait.timeout (then
  // IsBusy), woken early by the holder's release when wait.notify is on;
  // `fail` returns IsBusy at once; `skip` returns IsSkipped.
  // kUnavailable when Redis cannot be reached or does not answer within
  // script_timeout; if the request was sent but its reply lost, the possibly
  // taken lock is cancelled before returning (see cancel.lua), and if even
  // that fails the lease expires after its TTL.
  absl::Status Acquire();
  // One attempt: true when held now, false when another owner holds it.
  absl::StatusOr<bool> TryAcquire();
  // Releases one level. IsNotHeld when this instance does not hold the lock,
  // or when Redis shows it expired or passed to another owner (nothing is
  // deleted then). After the last level the key is deleted (or kept until
  // hold_at_least has passed) and waiters are notified.
  absl::Status Release();
  // Sets the lease to `ttl` from now, owner-checked. IsNotHeld if lost;
  // kInvalidArgument when ttl < 1ms. Redis gets whole milliseconds, and so
  // does remaining().
  absl::Status Renew(absl::Duration ttl);
  // Renews the current hold in the background, per the policy's renewal
  // settings (its TTL, threshold, script_timeout), until it is released or
  // lost. lock::With does this itself when the policy enables renewal.
  // kFailedPrecondition when not held.
  absl::Status EnableAutoRenew();
  // Asks Redis whether this instance's hold is still in place.
  absl::StatusOr<bool> IsLocked();
  // Releases the key entirely if and only if `owner_token` holds it — for an
  // operator or another process cleaning up after a known owner. IsNotHeld
  // otherwise; never touches another owner's lock.
  absl::Status ReleaseOwnedBy(absl::string_view owner_token);
  // Releases one re-entry level if and only if `owner_token` holds the key
  // (UnlockByValue, like the Go library); the last level deletes the key and
  // notifies waiters. The lease is not refreshed, and hold_at_least is not
  // applied (the caller does not know when the hold began). IsNotHeld
  // otherwise; never touches another owner's lock.
  absl::Status ReleaseLevelOwnedBy(absl::string_view owner_token);
  // Reads the key's state in Redis, whoever holds it.
  absl::StatusOr<LockState> Inspect();

  const std::string& key() const { return key_; }
  const policy::Policy& policy() const { return *policy_; }
  // Token of the current hold (0 when not held or fencing is off).
  int64_t fencing_token() const;
  // Lease left by the local steady clock, measured from before the acquire
  // was sent, so it never overstates; zero when not held.
  absl::Duration remaining() const;
  int hold_count() const { return count_.load(); }
  // Owner token of the current hold; empty when not held.
  std::string owner_token() const;
  // The current hold, shared with Held and the renewal manager; null when
  // not held.
  std::shared_ptr<Hold> hold() const;

 private:
  enum class Outcome { kHeld, kBusy };
  struct Attempt {
    Outcome outcome;
    absl::Duration busy_remaining;  // lease left of the other owner
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
  absl::Status ExtendLocked(absl::Duration ttl);
  // The extend call itself: OK, NotHeld (refused), or why it is unknown.
  absl::Status ExtendCallLocked(absl::Span<const absl::string_view> keys,
                                absl::Span<const absl::string_view> args);
  absl::Status AcquireLocked();
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
  // Runs release.lua for `token`; true when it released, false when the
  // token did not hold the lock.
  absl::StatusOr<bool> RunRelease(absl::string_view token, int count_after,
                                  int64_t keep_ms);
  void CancelLostAcquire(const std::string& token, absl::Status* cause);
  absl::Status Annotate(const absl::Status& s, absl::string_view op) const;

  const std::shared_ptr<const Backend> backend_;
  const std::shared_ptr<const policy::Policy> policy_;
  const std::string key_;
  const LockKeys keys_;
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
  std::shared_ptr<Hold> hold_;  // guarded by hold_mu_; set under op_mu_
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
