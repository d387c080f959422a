// RedisLock: one reusable distributed lock on one key.
//
//   ASSIGN_OR_RETURN(auto lk, locker->NewLock("order-close", "order-42"));
//   RETURN_IF_ERROR(lk->Acquire());          // waits per the policy
//   WriteWithFence(lk->fencing_token());
//   RETURN_IF_ERROR(lk->Release());
//
// What an instance holds follows the policy's kind (docs/POLICIES.md
// "Kinds"); renewal, loss, waiting and the outcomes are the mutex's for all:
//   semaphore   one permit of `permits` (busy when all are taken);
//               fencing_token() is 0 (permits are shared)
//   read_write  the write side (Locker::NewLock, NewWriteLock: exclusive,
//               with a fencing token) or the read side (NewReadLock: shared
//               with other readers, fencing token 0). Writer preference: a
//               waiting writer keeps new readers out until it got its turn
//   fair        a mutex granted in request order: a waiting Acquire keeps
//               its place in line; one that gives up leaves it
//
// Reentrancy is per instance: Acquire on an instance that already holds the
// lock re-enters it (when the policy is reentrant) and needs as many Release
// calls (a re-entered semaphore instance still holds one permit). A second
// instance for the same key is a different owner and waits.
// Each fresh acquisition takes a new random owner token, so a late or repeated
// release from an earlier hold can never free a later one.
//
// Thread-safe: operations on one instance are serialized; the getters never
// block behind a Redis call.
#ifndef LOCK_REDIS_LOCK_H_
#define LOCK_REDIS_LOCK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lock/call_options.h"
#include "policy/policy.h"

namespace lock {
namespace internal {
class LockCore;
struct LockAccess;
}  // namespace internal

// A lock's state as stored in Redis, read in one consistent snapshot.
//
// On a semaphore, and a read_write lock held by readers, the owner fields
// describe one shared hold: the inspecting instance's own when it has one,
// else the one whose lease ends first; `holders` counts them, hold_count
// is 1 for another instance's hold (re-entry levels of a shared hold are
// counted by the instance holding it, not in Redis), and fencing_token is
// 0 (last_fencing_token is still the write side's).
struct LockState {
  bool held = false;         // some owner holds it now
  std::string owner_token;   // "" when free
  absl::Duration remaining;  // lease left; zero when free
  int64_t hold_count = 0;    // re-entry depth of the current owner
  int64_t fencing_token = 0;       // token of the current hold; 0 when free
  // Highest token issued for the key within fencing_retention; 0 when none.
  int64_t last_fencing_token = 0;
  // Holders now: 0 or 1 for a mutex, the write side and a fair lock, the
  // permits in use for a semaphore, the readers of a read-held lock.
  int64_t holders = 0;
  // Waiters that Redis knows of: writers waiting on a read_write lock (their
  // claims), the queue of a fair lock; 0 for the other kinds.
  int64_t waiting = 0;
};

class RedisLock {
 public:
  RedisLock(const RedisLock&) = delete;
  RedisLock& operator=(const RedisLock&) = delete;
  // Releases every level still held, best effort; never throws. If Redis
  // cannot be reached the lease simply expires after its TTL.
  ~RedisLock();

  // Takes the lock, behaving on a busy lock as the policy says: `wait`
  // retries with backoff until retry.max_attempts or wait.timeout (then
  // IsBusy), woken early by the holder's release when wait.notify is on;
  // `fail` returns IsBusy at once; `skip` returns IsSkipped.
  // kUnavailable when Redis cannot be reached or does not answer within
  // script_timeout; if the request was sent but its reply lost, the possibly
  // taken lock is cancelled before returning (see cancel.lua), and if even
  // that fails the lease expires after its TTL.
  absl::Status Acquire();
  // Acquire under the caller's deadline and stop request (CallOptions):
  // IsDeadlineExceeded / IsCancelled when they end it first, with nothing
  // held.
  absl::Status Acquire(const CallOptions& call);
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
  absl::Status ReleaseOwnedBy(std::string_view owner_token);
  // Releases one re-entry level if and only if `owner_token` holds the key
  // (UnlockByValue, like the Go library); the last level deletes the key and
  // notifies waiters. The lease is not refreshed, and hold_at_least is not
  // applied (the caller does not know when the hold began). IsNotHeld
  // otherwise; never touches another owner's lock. kFailedPrecondition on a
  // semaphore: its levels are not kept in Redis (ReleaseOwnedBy gives a
  // permit back whole).
  absl::Status ReleaseLevelOwnedBy(std::string_view owner_token);
  // Reads the key's state in Redis, whoever holds it.
  absl::StatusOr<LockState> Inspect();

  const std::string& key() const;
  const policy::Policy& policy() const;
  // Token of the current hold (0 when not held or fencing is off).
  int64_t fencing_token() const;
  // Lease left by the local steady clock, measured from before the acquire
  // was sent, so it never overstates; zero when not held.
  absl::Duration remaining() const;
  int hold_count() const;
  // Owner token of the current hold; empty when not held.
  std::string owner_token() const;

 private:
  friend struct internal::LockAccess;
  explicit RedisLock(std::unique_ptr<internal::LockCore> core);

  const std::unique_ptr<internal::LockCore> core_;
};

}  // namespace lock

#endif  // LOCK_REDIS_LOCK_H_
