// Distributed locks on Redis, driven by named policies.
//
//   #include "lock/lock.h"
//
//   lock::Init("/etc/myservice/locks.json");   // or set LOCK_CONFIG
//   absl::Status s = lock::With("order-close", order_id, [&](lock::Held& held) {
//     return CloseOrder(order_id, held.fencing_token());
//   });
//   if (lock::IsBusy(s)) { ... }   // see lock/errors.h for every outcome
//
// How a lock behaves (lease, waiting, retries, renewal, timeouts, fencing,
// which Redis) comes from the policy named in the call, defined in JSON and
// loaded by a policy::Registry (docs/POLICIES.md lists every field). The free
// functions use a process-wide Locker; code that prefers dependency injection
// builds its own Locker and never touches the globals.
#ifndef LOCK_LOCK_H_
#define LOCK_LOCK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lock/call_options.h"
#include "lock/errors.h"
#include "lock/lease.h"
#include "lock/observe.h"
#include "lock/redis_lock.h"
#include "lock/stats.h"
#include "policy/policy.h"
#include "policy/registry.h"

namespace lock {
namespace internal {
struct HoldState;
struct HeldAccess;
struct HeldSet;
struct LockerAccess;
}  // namespace internal

// Options for Locker::WithOptions / NewLock and the Go-parity helpers
// (lock/compat.h): a policy without a name. Its `redis` field names the
// Redis target of the loaded configuration ("default"). They are validated
// like a policy file; a script_timeout left at its default (600ms) counts as
// not set and is fitted to a short ttl (script_timeout in docs/POLICIES.md),
// so Lock(key, absl::Seconds(1), fn) works.
using LockOptions = policy::Policy;

// What a critical section sees. Valid only inside the function passed to
// With or WithAll. Thread-safe.
//
// Under WithAll one Held stands for every key of the set: key(),
// owner_token() and fencing_token() describe the first key in the caller's
// order, keys() and fencing_token(key) each of them, and lost(),
// stop_token() and Extend() act on them all.
class Held {
 public:
  const std::string& key() const;
  const std::string& owner_token() const;
  // Strictly increasing per key across all holders; pass it to the resource
  // you write (e.g. Locker::FencedSet) so that a stale holder's write can be
  // refused. It is max(last token + 1, the Redis server clock in
  // microseconds), so it keeps increasing after the key's fence record
  // expired (fencing_retention) or Redis restarted without persistence,
  // provided the server clock never steps back (and, after a failover, the
  // new master's clock is not behind by more than the failover took).
  // 0 when the policy has "fencing": false or in Redlock mode: no token;
  // 0 for a semaphore permit and a read hold too (shared: not exclusive).
  // The write side of a read_write lock and a fair lock get one.
  int64_t fencing_token() const;
  // Every key of the hold in the caller's order, each once: one key for
  // With, the deduplicated set for WithAll.
  std::vector<std::string> keys() const;
  // The fencing token of `key` in this hold (see fencing_token()); 0 for a
  // key the hold does not cover. Each key of a WithAll has its own.
  int64_t fencing_token(std::string_view key) const;
  // True once the lock (under WithAll: any of its keys) is known to have
  // expired or changed hands (found by auto-renewal, Extend, or the final
  // release).
  bool lost() const;
  // Requested when the lock (any key of a WithAll) is lost, unless the
  // policy's renewal.on_failure is "ignore": long critical sections should
  // poll it, or register a std::stop_callback, and stop writing.
  std::stop_token stop_token() const;
  // Sets the lease to `ttl` from now (under WithAll: of every key, the
  // first error returned). IsNotHeld (and lost() becomes true) when the lock
  // was already lost. kInvalidArgument for a ttl under 1ms (Redis keeps
  // leases in whole milliseconds; a sub-millisecond remainder is dropped,
  // and lost() / remaining time count only what Redis got).
  absl::Status Extend(absl::Duration ttl);

  Held(const Held&) = delete;
  Held& operator=(const Held&) = delete;
  ~Held();

 private:
  friend struct internal::HeldAccess;
  Held(RedisLock* lock, std::shared_ptr<internal::HoldState> hold,
       std::unique_ptr<internal::HeldSet> set);

  // The only key of a With, the first key of a WithAll.
  RedisLock* const lock_;
  const std::shared_ptr<internal::HoldState> hold_;
  // WithAll only: every key's lock and hold, and the stop source they all
  // request. Null for With, which so costs no allocation more.
  const std::unique_ptr<internal::HeldSet> set_;
};

// Locks built from a policy registry and the Redis targets it names.
// Thread-safe; share one per process (or per configuration). In a fork()
// child of the process that built it, every entry point returns
// kFailedPrecondition ("... lock::Init again after fork"): build a new one
// there.
class Locker {
 public:
  // Connections are opened lazily, at the first lock on each target.
  static absl::StatusOr<std::unique_ptr<Locker>> Create(
      std::shared_ptr<policy::Registry> registry);

  ~Locker();

  // Runs `fn` while holding the lock `key` under the named policy, and
  // releases it on every path: fn returning an error, fn throwing (the
  // exception is rethrown after the release), or fn succeeding.
  // The policy's "kind" says what holding means: "mutex" (default), one
  // owner; "semaphore", one of its `permits` (IsBusy & co. when all are
  // taken; fencing token 0); "read_write", the write side (see WithRead);
  // "fair", one owner, granted in request order. Every kind is renewed,
  // lost, waited for and reported like a mutex. Kinds other than mutex are
  // refused (kUnimplemented) on a Redlock target.
  // Returns fn's error if it failed; otherwise IsLost if the lock was lost
  // while fn ran (its writes may be unsafe), else the release result.
  // kNotFound for an unknown policy (the message lists the known ones),
  // kInvalidArgument for a bad key, and the acquire outcome (IsBusy,
  // IsSkipped, kUnavailable) when the lock was not taken — fn did not run.
  // IsSelfDeadlock (kFailedPrecondition) at once, without touching Redis,
  // when the calling thread already holds the same Redis key (same target
  // and key_prefix + key, through any policy) in an enclosing With,
  // WithOptions or WithAll of this Locker: each With is a new owner, so the
  // nested one would only wait for itself until wait.timeout. The outer hold
  // is unaffected. Re-entry is per RedisLock instance (NewLock + Acquire
  // twice). Other keys, and other threads, behave as usual.
  absl::Status With(std::string_view policy, std::string_view key,
                    const std::function<absl::Status(Held&)>& fn);
  absl::Status With(std::string_view policy, std::string_view key,
                    const std::function<absl::Status()>& fn);
  // With under the caller's deadline and stop request (lock/call_options.h):
  // the acquire ends with IsDeadlineExceeded or IsCancelled when they come
  // first, fn not run and nothing held. The same overload exists for
  // WithRead, WithWrite and WithAll (whose deadline bounds the whole set).
  absl::Status With(std::string_view policy, std::string_view key, const CallOptions& call,
                    const std::function<absl::Status(Held&)>& fn);
  absl::Status With(std::string_view policy, std::string_view key, const CallOptions& call,
                    const std::function<absl::Status()>& fn);

  // With on a "read_write" policy: WithRead shares the lock with other
  // readers (fencing token 0), WithWrite holds it alone (With means write).
  // Writer preference: a writer that waits keeps new readers out (its claim
  // lasts one ttl past its last attempt), so a stream of readers cannot
  // starve it. kInvalidArgument on a policy of another kind. A thread may
  // not nest a read or write With of a key it holds either way
  // (IsSelfDeadlock): a nested read would wait behind a writer waiting for
  // the outer hold.
  absl::Status WithRead(std::string_view policy, std::string_view key,
                        const std::function<absl::Status(Held&)>& fn);
  absl::Status WithRead(std::string_view policy, std::string_view key,
                        const std::function<absl::Status()>& fn);
  absl::Status WithWrite(std::string_view policy, std::string_view key,
                         const std::function<absl::Status(Held&)>& fn);
  absl::Status WithWrite(std::string_view policy, std::string_view key,
                         const std::function<absl::Status()>& fn);
  absl::Status WithRead(std::string_view policy, std::string_view key,
                        const CallOptions& call,
                        const std::function<absl::Status(Held&)>& fn);
  absl::Status WithRead(std::string_view policy, std::string_view key,
                        const CallOptions& call, const std::function<absl::Status()>& fn);
  absl::Status WithWrite(std::string_view policy, std::string_view key,
                         const CallOptions& call,
                         const std::function<absl::Status(Held&)>& fn);
  absl::Status WithWrite(std::string_view policy, std::string_view key,
                         const CallOptions& call, const std::function<absl::Status()>& fn);

  // Runs `fn` while holding every key of `keys` under the named policy, all
  // or none, and releases them all on every path, as With does for one key
  // (same outcomes: fn's error, else IsLost naming a key that was lost, else
  // the release result; an exception is rethrown after the release).
  // - The policy must be of kind "mutex": kInvalidArgument (naming the policy
  //   and its kind) for any other, before Redis is touched. kNotFound for an
  //   unknown policy.
  // - kInvalidArgument for an empty set, or for a bad key (the message names
  //   its index in `keys` and its value): nothing is taken.
  // - A key given twice is taken once (Held::keys() lists it once).
  // - When a key cannot be taken (IsBusy, IsSkipped, kUnavailable...) every
  //   key already taken is released before returning that outcome, which
  //   names the key; fn did not run.
  // - Keys are taken one by one in the order of their Redis keys
  //   (key_prefix + key), whatever the caller's order: two callers taking
  //   overlapping sets ({a,b} and {b,a}) then never each hold what the other
  //   waits for, so they cannot deadlock. Holding one key in an enclosing
  //   With while taking a set outside that order can still deadlock.
  // - Waiting follows the policy for each key, but the policy's wait.timeout
  //   bounds the whole set, measured from the first key: a later key waits
  //   only for what is left of it (at least one attempt). retry.max_attempts
  //   counts per key.
  // - Each key is its own lock, on whatever the target is (standalone,
  //   Sentinel, Cluster with keys in any slots, a Redlock quorum per key),
  //   with its own owner token and fencing token (Held::fencing_token(key)).
  // - IsSelfDeadlock, without touching Redis, when the calling thread holds
  //   any of the keys in an enclosing With or WithAll; the keys of a WithAll
  //   are seen by a nested With in turn.
  absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                       const std::function<absl::Status(Held&)>& fn);
  absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                       const std::function<absl::Status()>& fn);
  absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                       const CallOptions& call, const std::function<absl::Status(Held&)>& fn);
  absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                       const CallOptions& call, const std::function<absl::Status()>& fn);

  // ---- Without a thread per waiter ----
  //
  // Takes the lock as With would (same policy rules, outcomes, deadline and
  // stop), but returns at once: `done` runs once, with the held Lease or
  // the outcome, on a library thread or through `call.executor`. Waiting
  // parks no thread: every pending acquire of the process shares the
  // notifier connection and a few library threads (one Redis call at a
  // time each), and its backoff is a timer. Errors found before Redis is
  // touched (unknown policy, bad key) come through `done` as well.
  // lock::Shutdown (for the process-wide Locker) and this Locker's
  // destruction end pending acquires with IsCancelled. Reentrancy and the
  // self-deadlock check are per thread, so they do not apply here: each
  // acquire is a new owner.
  void AcquireAsync(std::string_view policy, std::string_view key, const CallOptions& call,
                    std::function<void(absl::StatusOr<Lease>)> done);
  // With, asynchronously: `fn` runs while the lock is held, on a library
  // thread (or `call.executor`), and `done(status)` after the release, with
  // With's outcome rules (fn's error, else IsLost, else the release's
  // result; the acquire's outcome when fn did not run). An exception from
  // fn becomes kInternal (there is no caller to rethrow it to).
  void WithAsync(std::string_view policy, std::string_view key, const CallOptions& call,
                 std::function<absl::Status(Held&)> fn,
                 std::function<void(absl::Status)> done);

  // Same as With with an unnamed policy.
  absl::Status WithOptions(std::string_view key, const LockOptions& options,
                           const std::function<absl::Status(Held&)>& fn);

  // A reusable lock instance for `key` under a named policy / options.
  absl::StatusOr<std::unique_ptr<RedisLock>> NewLock(std::string_view policy,
                                                     std::string_view key);
  absl::StatusOr<std::unique_ptr<RedisLock>> NewLock(std::string_view key,
                                                     const LockOptions& options);
  // The read or the write side of `key` under a "read_write" policy
  // (NewLock gives the write side); kInvalidArgument for another kind.
  absl::StatusOr<std::unique_ptr<RedisLock>> NewReadLock(std::string_view policy,
                                                         std::string_view key);
  absl::StatusOr<std::unique_ptr<RedisLock>> NewWriteLock(std::string_view policy,
                                                          std::string_view key);

  // Releases one re-entry level of `key` if and only if `owner_token` holds
  // it, from any process, like the Go library's UnlockByValue; the last
  // level deletes the key and wakes waiters. The lease is not refreshed.
  // IsNotHeld otherwise; never touches another owner. (lockctl release
  // --force releases every level: RedisLock::ReleaseOwnedBy.)
  absl::Status UnlockByValue(std::string_view policy, std::string_view key,
                             std::string_view owner_token);

  // Writes `value` to the Redis hash `resource_key` (fields "value" and
  // "fence", on the policy's Redis target) only if `fencing_token` is at
  // least the highest token that ever wrote it; IsStaleFence otherwise.
  // An equal token is accepted (one hold may write many times under its one
  // token; two holds never share one). Token 0 -- what fencing_token()
  // returns when the policy has "fencing": false, or for a semaphore permit
  // (the message says which) -- is kFailedPrecondition
  // and a negative token kInvalidArgument, both before Redis is touched:
  // neither can fence anything.
  // Refused (kFailedPrecondition) on a Redlock target: independent masters
  // cannot issue one monotonic token sequence, so there is none to check.
  // On a target with min_replicas_ack the write waits for that many
  // replicas, as the lock's own writes do; fewer within replica_ack_timeout
  // is kUnavailable: written on the master, but a failover could lose it.
  // Why: a holder paused past its lease (GC, SIGSTOP, a slow disk) still
  // believes it holds the lock; its late write must not overwrite the work
  // of the holder that came after it. Pass Held::fencing_token().
  absl::Status FencedSet(std::string_view policy, std::string_view resource_key,
                         std::string_view value, int64_t fencing_token);

  const std::shared_ptr<policy::Registry>& registry() const;

 private:
  friend struct internal::LockerAccess;
  struct Impl;  // the registry, and the connections of each Redis target
  explicit Locker(std::shared_ptr<policy::Registry> registry);

  const std::unique_ptr<Impl> impl_;
};

// ---- Process-wide layer over one Locker ------------------------------------
//
// fork(): everything built before a fork belongs to the parent. In the child,
// a Locker built by the parent (so the process-wide one, until the child
// calls Init again) and every RedisLock made in the parent answer
// kFailedPrecondition, "... lock::Init again after fork", without touching
// the parent's connections; locks the parent holds are neither renewed nor
// released by the child, which sees them as lost (Held::lost()). After Init
// (or InitFromJson, or a new Locker) in the child, the library works there
// with its own connections and renewal threads. Forking while other threads
// are in Redis calls is safe (pthread_atfork handlers). See docs/DESIGN.md
// section 11.

// How lock::Init follows its configuration after loading it (hot reload).
struct InitOptions {
  // Checks the file (or the directory's set of *.json files and each one's
  // content) every `watch_interval` and, when anything changed, loads and
  // validates it all again. A valid configuration is swapped in for locks
  // taken from then on (a lock keeps the policy it started with); a broken
  // edit changes nothing: the working policies stay. Each change counts in
  // GetStats() (config_reloads / config_reload_errors) and is passed to
  // `on_reload` once.
  bool watch = true;
  absl::Duration watch_interval = absl::Seconds(2);
  // OK when a change was swapped in, else why it was refused (every problem,
  // with file and JSON path). Runs on the watching thread; keep it quick,
  // and do not call lock::Init or lock::Shutdown from it (they stop the
  // watching thread and would wait for themselves).
  std::function<void(const absl::Status&)> on_reload;
};

// Loads policies from a file or a directory of *.json files, and watches
// them (see InitOptions). In a fork() child, replaces the parent's Locker
// (see above): call it there before taking locks.
absl::Status Init(const std::string& config_path, const InitOptions& options = {});
absl::Status InitFromJson(std::string_view json);
// Installs a Locker built elsewhere (tests, dependency injection).
void InitWith(std::shared_ptr<Locker> locker);
// Drops the process-wide Locker, marks every lock it still holds lost
// (requesting their stop tokens, stopping their renewal) and releases each,
// giving up on Redis calls after `deadline`. Locks of a Locker built and
// kept elsewhere (never installed with InitWith) are not touched. Locks can
// be taken again after a new Init. In a fork() child it releases only the
// locks the child took after its own Init, never those inherited from the
// parent.
void Shutdown(absl::Duration deadline = absl::Seconds(5));
// The process-wide Locker; on first use without Init it loads $LOCK_CONFIG.
absl::StatusOr<std::shared_ptr<Locker>> Default();

absl::Status With(std::string_view policy, std::string_view key,
                  const std::function<absl::Status(Held&)>& fn);
absl::Status With(std::string_view policy, std::string_view key,
                  const std::function<absl::Status()>& fn);
absl::Status WithRead(std::string_view policy, std::string_view key,
                      const std::function<absl::Status(Held&)>& fn);
absl::Status WithRead(std::string_view policy, std::string_view key,
                      const std::function<absl::Status()>& fn);
absl::Status WithWrite(std::string_view policy, std::string_view key,
                       const std::function<absl::Status(Held&)>& fn);
absl::Status WithWrite(std::string_view policy, std::string_view key,
                       const std::function<absl::Status()>& fn);

// Locker::WithAll on the process-wide Locker.
absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                     const std::function<absl::Status(Held&)>& fn);
absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                     const std::function<absl::Status()>& fn);

// The CallOptions forms (deadline, stop) on the process-wide Locker.
absl::Status With(std::string_view policy, std::string_view key, const CallOptions& call,
                  const std::function<absl::Status(Held&)>& fn);
absl::Status With(std::string_view policy, std::string_view key, const CallOptions& call,
                  const std::function<absl::Status()>& fn);
absl::Status WithRead(std::string_view policy, std::string_view key, const CallOptions& call,
                      const std::function<absl::Status(Held&)>& fn);
absl::Status WithRead(std::string_view policy, std::string_view key, const CallOptions& call,
                      const std::function<absl::Status()>& fn);
absl::Status WithWrite(std::string_view policy, std::string_view key, const CallOptions& call,
                       const std::function<absl::Status(Held&)>& fn);
absl::Status WithWrite(std::string_view policy, std::string_view key, const CallOptions& call,
                       const std::function<absl::Status()>& fn);
absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                     const CallOptions& call, const std::function<absl::Status(Held&)>& fn);
absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                     const CallOptions& call, const std::function<absl::Status()>& fn);

// Locker::AcquireAsync and WithAsync on the process-wide Locker (loaded
// from $LOCK_CONFIG on first use without Init, as With does).
void AcquireAsync(std::string_view policy, std::string_view key, const CallOptions& call,
                  std::function<void(absl::StatusOr<Lease>)> done);
void WithAsync(std::string_view policy, std::string_view key, const CallOptions& call,
               std::function<absl::Status(Held&)> fn, std::function<void(absl::Status)> done);

// Locker::FencedSet on the process-wide Locker.
absl::Status FencedSet(std::string_view policy, std::string_view resource_key,
                       std::string_view value, int64_t fencing_token);

}  // namespace lock

// The Go-parity helpers (lock::Lock, LockWithRetry, ...) live in
// lock/compat.h; included here so that code written before they moved keeps
// compiling.
#include "lock/compat.h"  // IWYU pragma: export

#endif  // LOCK_LOCK_H_
