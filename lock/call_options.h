// Per-call control of an acquire: a deadline and a cancellation request
// that the caller passes down (a request's deadline, a client that went
// away), and where asynchronous completions run.
//
//   lock::CallOptions call{.deadline = absl::Now() + absl::Milliseconds(250),
//                          .stop = request.stop_token()};
//   absl::Status s = lock::With("order-close", id, call, fn);
//   if (lock::IsDeadlineExceeded(s)) { ... }  // not taken; nothing held
#ifndef LOCK_CALL_OPTIONS_H_
#define LOCK_CALL_OPTIONS_H_

#include <functional>
#include <stop_token>

#include "absl/time/time.h"

namespace lock {

// Runs a task somewhere: an event loop's post (asio::post), a thread pool's
// submit. Must not run the task inline while the caller still needs to
// return (the library calls it from its own threads).
using Executor = std::function<void(std::function<void()>)>;

struct CallOptions {
  // Bounds the whole acquire: waiting, retries, every Redis call of it
  // (connecting, NOSCRIPT retries, redirects, WAIT for replicas). Passing
  // it first ends the acquire with IsDeadlineExceeded (kDeadlineExceeded),
  // whatever the policy's wait.timeout would still allow; the policy's
  // wait.timeout passing first ends it as before (IsWaitTimedOut). It does
  // not bound the critical section nor the release.
  absl::Time deadline = absl::InfiniteFuture();
  // A stop request ends the acquire with IsCancelled (kCancelled): a
  // waiting acquire notices it at once (it is woken, not left to its next
  // backoff); one whose Redis call is in flight when it comes notices it
  // when that call returns, and gives back what the call took. Either way
  // nothing is left held.
  std::stop_token stop;
  // Asynchronous calls (AcquireAsync, WithAsync, co_await Acquire) run
  // their completion through it; empty: on a library thread.
  Executor executor;
};

}  // namespace lock

#endif  // LOCK_CALL_OPTIONS_H_
