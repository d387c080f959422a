// lock::AcquireAsync as an asio asynchronous operation, so that an
// asio::awaitable coroutine can co_await it (asio's awaitable accepts only
// asio operations, not lock::Acquire's plain awaiter):
//
//   absl::StatusOr<lock::Lease> lease = co_await asio_lock::Acquire(
//       locker, "order-close", id, {.deadline = ...}, asio::use_awaitable);
//
// The completion runs on the handler's associated executor (the
// coroutine's), whatever thread the lock library finished on.
#ifndef EXAMPLES_ASYNC_SERVER_ASIO_LOCK_H_
#define EXAMPLES_ASYNC_SERVER_ASIO_LOCK_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "asio.hpp"
#include "lock/lock.h"

namespace asio_lock {

template <typename CompletionToken>
auto Acquire(lock::Locker& locker, std::string policy, std::string key, lock::CallOptions call,
             CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(absl::StatusOr<lock::Lease>)>(
      [&locker, policy = std::move(policy), key = std::move(key),
       call = std::move(call)](auto handler) mutable {
        auto executor = asio::get_associated_executor(handler);
        // asio handlers are move-only; lock's completion is a std::function.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        locker.AcquireAsync(policy, key, call,
                            [shared, executor](absl::StatusOr<lock::Lease> result) {
                              asio::post(executor, [shared, r = std::move(result)]() mutable {
                                (*shared)(std::move(r));
                              });
                            });
      },
      token);
}

}  // namespace asio_lock

#endif  // EXAMPLES_ASYNC_SERVER_ASIO_LOCK_H_
