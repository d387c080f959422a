// A lock held by an asynchronous acquire (Locker::AcquireAsync,
// co_await lock::Acquire): what a critical section that is not one
// function call holds, as a value.
//
//   locker->AcquireAsync("order-close", id, {}, [](absl::StatusOr<lock::Lease> l) {
//     if (!l.ok()) return Reply(l.status());
//     Close(id, l->fencing_token());
//     absl::Status s = l->Release();   // IsLost if the lease was lost meanwhile
//   });
#ifndef LOCK_LEASE_H_
#define LOCK_LEASE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lock/redis_lock.h"

namespace lock {
namespace internal {
struct HoldState;
struct LeaseAccess;
}  // namespace internal

// Movable, not copyable. Auto-renewed as the policy says (like With), from
// the grant until Release or destruction; lost() and stop_token() signal a
// loss as Held's do. Thread-safe; it may be released or destroyed on any
// thread.
class Lease {
 public:
  // Holds nothing (held() is false).
  Lease() = default;
  Lease(Lease&& other) noexcept;
  // Releases what this one held first.
  Lease& operator=(Lease&& other) noexcept;
  // Releases the lock if still held: one Redis call, bounded by the
  // policy's script_timeout; if that fails the lease expires after its ttl.
  // Use Release() to learn the outcome, or ReleaseAsync() not to block.
  ~Lease();

  // Not released yet (it may be lost, though: see lost()).
  bool held() const { return lock_ != nullptr; }
  const std::string& key() const;
  const std::string& owner_token() const;
  // As Held::fencing_token(): strictly increasing per key; 0 for shared
  // holds and policies without fencing.
  int64_t fencing_token() const;
  // True once the lock is known to have expired or changed hands.
  bool lost() const;
  // Requested when the lock is lost (unless renewal.on_failure is
  // "ignore").
  std::stop_token stop_token() const;
  // Lease left by the local clock (conservative); zero when not held.
  absl::Duration remaining() const;
  // As Held::Extend: the lease becomes `ttl` from now.
  absl::Status Extend(absl::Duration ttl);
  // Releases the lock, and says how the hold went: IsLost when it was lost
  // while held (writes made under it may be unsafe), else the release's
  // result. Afterwards held() is false. kFailedPrecondition when there is
  // nothing to release.
  absl::Status Release();
  // Release without blocking: `done` (may be empty) gets Release()'s
  // result on a library thread (or the executor of the acquire's
  // CallOptions). held() is false at once.
  void ReleaseAsync(std::function<void(absl::Status)> done = nullptr);

 private:
  friend struct internal::LeaseAccess;
  Lease(std::unique_ptr<RedisLock> lock, std::shared_ptr<internal::HoldState> hold,
        std::function<void(std::function<void()>)> executor);

  std::unique_ptr<RedisLock> lock_;
  std::shared_ptr<internal::HoldState> hold_;
  std::function<void(std::function<void()>)> executor_;  // the acquire's, or empty
};

}  // namespace lock

#endif  // LOCK_LEASE_H_
