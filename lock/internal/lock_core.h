// The engine of one reusable lock on one key (what lock::RedisLock wraps):
// acquire, release, extend and inspect by Lua scripts on the lock's homes,
// waiting, fencing, Redlock quorums and the hand-off to auto-renewal.
//
// It runs every policy kind on one code path: only the script calls differ.
// A mutex runs acquire.lua / release.lua / extend.lua / cancel.lua /
// inspect.lua on its owner hash, on an allocation-free path (the library's
// hot path); the other kinds (a semaphore permit, either side of a
// read_write lock, a fair lock) get their calls from KindCalls
// (kind_calls.h). Every kind's acquire answers as the mutex's (fencing
// token 0 for shared holds), its lease is renewed and lost like a mutex's,
// waiters wake on its channel. Where a kind keeps re-entry levels only in
// the instance (shared holds: one ZSET entry per hold), releasing an inner
// level is local.
//
// One owner token serves a whole Acquire (all its attempts): a fair lock's
// place in the queue and a waiting writer's claim belong to it, and a
// waiter that gives up withdraws them (its token is never used again).
//
// Everything documented on lock::RedisLock (redis_lock.h) holds here; this
// header adds what the public surface hides: the Redis backend a lock lives
// on, the factory over a connection pool, and the hold shared with Held and
// the renewal manager.
#ifndef LOCK_INTERNAL_LOCK_CORE_H_
#define LOCK_INTERNAL_LOCK_CORE_H_

#include <atomic>
#include <chrono>
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
#include "lock/call_options.h"
#include "lock/internal/counters.h"
#include "lock/internal/hold_state.h"
#include "lock/internal/keys.h"
#include "lock/internal/kind_calls.h"
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
  // Fails with kInvalidArgument when `key` is not a valid lock key or
  // `access` is kRead / kWrite on a policy that is not read_write, and with
  // kUnimplemented for a kind other than mutex on a Redlock target.
  static absl::StatusOr<std::unique_ptr<LockCore>> Create(
      std::shared_ptr<const Backend> backend,
      std::shared_ptr<const policy::Policy> policy, absl::string_view key,
      Access access = Access::kDefault);
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
  absl::Status Acquire(const CallOptions& call = {});
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

  enum class Outcome { kHeld, kBusy };
  struct Attempt {
    Outcome outcome;
    // kBusy: how long waiting is worth it (the other owner's lease left,
    // the first permit's, a claim's or the head's place).
    absl::Duration busy_remaining;
    // kBusy: the acquire reply's third value (permits in use, why a
    // read_write lock is busy, the place in a fair queue).
    int64_t detail = 0;
    int64_t sent_at_ns = 0;  // when the attempt was sent
  };

  // One Acquire in progress. The blocking Acquire and an asynchronous
  // acquire (lock/internal/async.cc) run the same steps -- BeginAcquire,
  // then AcquireStep until it is done, waiting between steps as it says and
  // passing what woke them to AfterWait -- and differ only in how they wait:
  // a blocked thread, or an armed watch and a timer.
  struct AcquireRun {
    using Clock = std::chrono::steady_clock;
    // CallOptions::stop (its own reference to the stop state: an
    // asynchronous run outlives the caller's options).
    std::stop_token stop;
    int64_t start_ns = 0;
    Clock::time_point wait_deadline;  // the policy's wait.timeout
    Clock::time_point call_deadline;  // CallOptions::deadline, on this clock
    std::string token;                // one for every attempt
    bool fresh = false;               // not a re-entry
    int attempt = 0;
    int max_attempts = 1;
    absl::Duration max_sleep;
    bool addressed = false;  // a fair lock: releases name their next owner
    Attempt busy{Outcome::kBusy, absl::ZeroDuration()};
    std::unique_ptr<ReleaseNotifier::Watch> watch;
    uint64_t seen = 0;  // the watch's generation before the last attempt
    bool waiting = false;  // counted in PolicyStats::waiting
  };
  struct Step {
    bool done = false;
    absl::Status status;  // done: the acquire's outcome
    bool again = false;   // not done: attempt again at once
    // Not done and not again: wait for a release (the watch, when active)
    // or until then, whichever comes first.
    AcquireRun::Clock::time_point until;
  };
  // Each takes the operation lock for its own length only: between steps
  // the instance is free (an asynchronous acquire's instance is its own).
  void BeginAcquire(AcquireRun& run, const CallOptions& call);
  Step AcquireStep(AcquireRun& run);
  // After a wait: counts what ended it, and takes a fair lock handed over
  // in the release `message` named this waiter in. Done (with the outcome)
  // when that handed it the lock.
  Step AfterWait(AcquireRun& run, bool woken, const std::string& message);
  // Counts a finished acquire and tells the callbacks; returns `s`.
  absl::Status EndAcquire(AcquireRun& run, absl::Status s);

 private:

  LockCore(std::shared_ptr<const Backend> backend,
           std::shared_ptr<const policy::Policy> policy, std::string key,
           std::unique_ptr<const KindCalls> kind, Access access);

  // One attempt for `token` (a new one for a fresh acquisition, the hold's
  // for a re-entry), its Redis call bounded by `deadline` too.
  absl::StatusOr<Attempt> AttemptLocked(
      const std::string& token,
      std::chrono::steady_clock::time_point deadline =
          std::chrono::steady_clock::time_point::max());
  absl::StatusOr<Attempt> AttemptQuorumLocked(int count, const std::string& token,
                                              absl::Span<const absl::string_view> keys,
                                              absl::Span<const absl::string_view> args,
                                              std::chrono::steady_clock::time_point deadline);
  // Runs a script on every home at once (Redlock); results in order. Each
  // call is bounded by script_timeout and by `deadline`.
  std::vector<absl::StatusOr<redis::ReplyPtr>> CallAll(
      const scripts::EmbeddedScript& script, absl::Span<const absl::string_view> keys,
      absl::Span<const absl::string_view> args,
      std::chrono::steady_clock::time_point deadline =
          std::chrono::steady_clock::time_point::max());
  // Sets the hold's lease to `ttl` on the homes and plans renewal by it.
  // OK when held (quorum), NotHeld when lost.
  absl::Status SetLeaseLocked(absl::Duration ttl);
  // The extend call itself: OK, NotHeld (refused), or why it is unknown.
  absl::Status RunExtendScriptLocked(absl::Span<const absl::string_view> keys,
                                absl::Span<const absl::string_view> args);
  void BeginAcquireLocked(AcquireRun& run, const CallOptions& call);
  Step AcquireStepLocked(AcquireRun& run);
  Step AfterWaitLocked(AcquireRun& run, bool woken, const std::string& message);
  // Uncounts a wait (PolicyStats::waiting) that AcquireStepLocked counted.
  void EndWait(AcquireRun& run);
  absl::StatusOr<bool> TryAcquireOnce();
  // Delivers a "lock.acquire" span (lock/observe.h) to the tracer.
  void TraceAcquire(int64_t start_ns, int attempts, bool reentry, std::string_view outcome,
                    const absl::Status& status) const;
  // The end of an acquire that did not take the lock (or gave it back):
  // withdraws what its busy attempts left and words the outcome.
  enum class GiveUp { kRules, kCancelled, kDeadline };
  absl::Status GiveUpLocked(AcquireRun& run, GiveUp why);
  // A run that just took the lock: OK, or, when the caller asked to stop
  // meanwhile, what it took given back and kCancelled.
  Step HeldLocked(AcquireRun& run);
  // The token an acquire uses for all its attempts.
  std::string AcquireTokenLocked() const;
  // A fresh acquire for `token` that did not take the lock gives back what
  // its busy attempts left (a claim, a place in the queue), best effort.
  void WithdrawLocked(const std::string& token);
  // A fair release that handed the lock to `token` inside its script said
  // so in `message` ("<token> <fence>"): the hold starts without a call of
  // ours, valid for the queue place the last attempt (sent at `sent_at_ns`)
  // set. false when the message is not such a handoff, or when replicas
  // must acknowledge the grant first (the next attempt finds the lock ours
  // and WAITs).
  bool TakeHandoffLocked(const std::string& token, const std::string& message,
                         int64_t sent_at_ns);
  // Where the hold's lease lives (an owner hash, or a ZSET of leases) and
  // the channel its release is published on: the kind's keys.
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
  // Drops the current hold, found lost (by a release, renewal or re-entry
  // call), and defers its announcement (op_mu_ held).
  void DropLostHoldLocked(const std::string& why);
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
  // Runs the kind's release for `token` (release.lua, or KindCalls::Release:
  // `count_after` must be 0 where levels are not kept in Redis); true when
  // it released, false when the token did not hold the lock.
  absl::StatusOr<bool> RunRelease(absl::string_view token, int count_after,
                                  int64_t keep_ms);
  // `in_background`: the caller's deadline bounded the call, so the cancel
  // is sent from the library's threads and the caller returns at once.
  void CancelLostAcquire(const std::string& token, absl::Status* cause,
                         bool in_background = false);
  // The kind's cancel for `token` (owns its keys and arguments).
  PrimitiveCall CancelCall(const std::string& token) const;
  // Runs the kind's cancel for `token`; 1 when a hold was given back.
  absl::StatusOr<int64_t> RunCancel(const std::string& token);
  absl::Status Annotate(const absl::Status& s, absl::string_view op) const;

  const std::shared_ptr<const Backend> backend_;
  const std::shared_ptr<const policy::Policy> policy_;
  const std::string key_;
  const LockKeys keys_;
  // The calls of a kind other than the mutex; null for a mutex (8 bytes,
  // not ~100, per mutex: a process may keep 100,000 locks).
  const std::unique_ptr<const KindCalls> kind_;
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

  std::mutex op_mu_;  // serializes operations; held across Redis calls
  std::vector<std::function<void()>> deferred_;  // guarded by op_mu_
  mutable std::mutex hold_mu_;
  std::shared_ptr<HoldState> hold_;  // guarded by hold_mu_; set under op_mu_
  std::atomic<int> count_{0};             // written under op_mu_
  const Access access_;  // after count_: packs into its padding
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
    std::shared_ptr<const policy::Policy> policy, std::string_view key,
    Access access = Access::kDefault);
absl::StatusOr<std::unique_ptr<RedisLock>> NewRedisLock(
    std::shared_ptr<redis::ConnectionPool> pool,
    std::shared_ptr<const policy::Policy> policy, std::string_view key,
    std::shared_ptr<ReleaseNotifier> notifier = nullptr);

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_LOCK_CORE_H_
