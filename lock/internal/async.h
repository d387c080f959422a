// The asynchronous acquire behind Locker::AcquireAsync / WithAsync and
// co_await lock::Acquire: LockCore's acquire steps driven by the async
// runtime's threads, with a notifier watch and a timer in place of a
// blocked thread between them.
#ifndef LOCK_INTERNAL_ASYNC_H_
#define LOCK_INTERNAL_ASYNC_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lock/call_options.h"
#include "lock/internal/async_runtime.h"
#include "lock/lease.h"
#include "lock/lock.h"
#include "lock/redis_lock.h"

namespace lock::internal {

// Runs `done(value)` through `executor`, or on a library thread when it is
// empty: right here when the caller is one (`on_library_thread`), else
// posted, never inline in an application's thread.
template <typename T>
void Complete(const Executor& executor, std::function<void(T)> done, T value,
              bool on_library_thread = false) {
  if (done == nullptr) return;
  if (!executor && on_library_thread) {
    done(std::move(value));
    return;
  }
  // std::function must be copyable, and a Lease is not: the task owns the
  // value through a shared box and moves it out once.
  auto box = std::make_shared<T>(std::move(value));
  std::function<void()> task = [done = std::move(done), box] { done(std::move(*box)); };
  if (executor) {
    executor(std::move(task));
  } else {
    AsyncRuntime::Get().Post(std::move(task));
  }
}

// Takes `lock` (a fresh instance) without blocking; `done` gets the Lease
// or the outcome, once. `group` is the Locker's (AbortAsyncAcquires).
void StartAsyncAcquire(std::unique_ptr<RedisLock> lock, uint64_t group,
                       const CallOptions& call,
                       std::function<void(absl::StatusOr<::lock::Lease>)> done);

// Ends every pending asynchronous acquire of `group` with `why` (each
// `done` once). Acquires whose lock was granted in the meantime give it
// back.
void AbortAsyncAcquires(uint64_t group, const absl::Status& why);

// Runs `fn` under the lease, with With's rules (lock/internal/held.h), and
// releases it; an exception from fn becomes kInternal.
absl::Status RunLeased(::lock::Lease& lease, const std::function<absl::Status(Held&)>& fn);

// Builds and reads a Lease (its constructor and state are not public).
struct LeaseAccess {
  static ::lock::Lease Make(std::unique_ptr<RedisLock> lock, Executor executor);
  static RedisLock* Lock(const ::lock::Lease& lease) { return lease.lock_.get(); }
  static const std::shared_ptr<HoldState>& Hold(const ::lock::Lease& lease) { return lease.hold_; }
};

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_ASYNC_H_
