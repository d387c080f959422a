// C++20 coroutines over the asynchronous acquire:
//
//   asio::awaitable<void> Handle(...) {   // or any coroutine type
//     absl::StatusOr<lock::Lease> lease = co_await lock::Acquire(
//         "order-close", id, {.deadline = request_deadline, .executor = Post(ex)});
//     if (!lease.ok()) co_return Reply(lease.status());
//     co_await Close(id, lease->fencing_token());
//     Reply(lease->Release());
//   }
//
// The coroutine is suspended while the acquire waits (no thread is parked
// for it) and resumed through CallOptions::executor when one is given --
// back on the caller's event loop -- else on a library thread.
#ifndef LOCK_CORO_H_
#define LOCK_CORO_H_

#include <coroutine>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "lock/call_options.h"
#include "lock/lease.h"
#include "lock/lock.h"

namespace lock {

// What co_await lock::Acquire(...) waits on; yields absl::StatusOr<Lease>
// (the outcomes of Locker::AcquireAsync). Await it once.
class [[nodiscard]] AcquireAwaiter {
 public:
  AcquireAwaiter(Locker* locker, std::string_view policy, std::string_view key, CallOptions call)
      : locker_(locker), policy_(policy), key_(key), call_(std::move(call)) {}

  bool await_ready() const noexcept { return false; }

  void await_suspend(std::coroutine_handle<> handle) {
    // The completion may resume the coroutine, and so destroy this awaiter,
    // before AcquireAsync returns: nothing of it is touched afterwards.
    auto done = [this, handle](absl::StatusOr<Lease> result) {
      result_.emplace(std::move(result));
      handle.resume();
    };
    const std::string policy = policy_, key = key_;
    const CallOptions call = call_;
    if (locker_ != nullptr) {
      locker_->AcquireAsync(policy, key, call, std::move(done));
    } else {
      lock::AcquireAsync(policy, key, call, std::move(done));
    }
  }

  absl::StatusOr<Lease> await_resume() { return std::move(*result_); }

 private:
  Locker* const locker_;  // null: the process-wide Locker
  const std::string policy_;
  const std::string key_;
  const CallOptions call_;
  std::optional<absl::StatusOr<Lease>> result_;
};

// co_await lock::Acquire(policy, key[, options]) on the process-wide Locker.
inline AcquireAwaiter Acquire(std::string_view policy, std::string_view key,
                              CallOptions call = {}) {
  return AcquireAwaiter(nullptr, policy, key, std::move(call));
}

// The same on `locker`, which must outlive the await.
inline AcquireAwaiter Acquire(Locker& locker, std::string_view policy, std::string_view key,
                              CallOptions call = {}) {
  return AcquireAwaiter(&locker, policy, key, std::move(call));
}

}  // namespace lock

#endif  // LOCK_CORO_H_
