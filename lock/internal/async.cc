#include "lock/internal/async.h"

#include <exception>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "lock/errors.h"
#include "lock/internal/held.h"
#include "lock/internal/hold_state.h"
#include "lock/internal/lock_core.h"
#include "lock/internal/notifier.h"
#include "lock/internal/reworded.h"

namespace lock::internal {
namespace {

class AsyncAcquire;

// Every pending asynchronous acquire of the process, by Locker group, so
// that Shutdown and a Locker's destruction can end them.
struct Pending {
  std::mutex mu;
  absl::flat_hash_map<AsyncAcquire*, std::pair<uint64_t, std::weak_ptr<AsyncAcquire>>> ops;
};

Pending& PendingAcquires() {
  static Pending* pending = new Pending;
  return *pending;
}

// One asynchronous acquire. Between steps it waits as a blocked Acquire
// would, without the thread: its watch armed with itself as the waker, a
// timer for the backoff, and a stop callback. Whichever fires first ends
// the wait (the others are cancelled or find it over); the next step runs
// on a runtime thread.
class AsyncAcquire final : public std::enable_shared_from_this<AsyncAcquire>,
                           public ReleaseNotifier::Watch::Waker {
 public:
  AsyncAcquire(std::unique_ptr<RedisLock> lock, uint64_t group, const CallOptions& call,
               std::function<void(absl::StatusOr<::lock::Lease>)> done)
      : lock_(std::move(lock)),
        core_(LockAccess::Core(*lock_)),
        group_(group),
        executor_(call.executor),
        done_(std::move(done)) {
    core_.BeginAcquire(run_, call);
    // The steps watch a stop source of ours: the caller's stop request and
    // an abort (Shutdown) both reach them through it.
    run_.stop = stop_.get_token();
  }

  void Start(const std::stop_token& caller_stop) {
    {
      Pending& p = PendingAcquires();
      std::lock_guard<std::mutex> lock(p.mu);
      p.ops[this] = {group_, weak_from_this()};
    }
    // Runs at once (on this thread) if the stop was requested already.
    caller_stop_.emplace(caller_stop, Forward{this});
    on_stop_.emplace(stop_.get_token(), Interrupt{this});
    AsyncRuntime::Get().Post([self = shared_from_this()] { self->Steps(); });
  }

  void Abort(const absl::Status& why) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (abort_.ok()) abort_ = Reworded(why, why.message());  // its own copy (see Finish)
    }
    stop_.request_stop();
  }

  // Watch::Waker: a release concerns this waiter (notifier lock held).
  void Wake() override { ResumeLater(); }

 private:
  struct Forward {
    AsyncAcquire* op;
    void operator()() const noexcept { op->stop_.request_stop(); }
  };
  struct Interrupt {
    AsyncAcquire* op;
    void operator()() const noexcept { op->ResumeLater(); }
  };

  // Posts the end of the current wait (a wake, a stop, an abort); a wait
  // already ended, or a step running, ignores it. Takes no lock that the
  // notifier or the stop source might hold.
  void ResumeLater() {
    std::shared_ptr<AsyncAcquire> self = weak_from_this().lock();
    if (self == nullptr) return;  // finishing
    const uint64_t wait = wait_id_.load();
    AsyncRuntime::Get().Post([self, wait] { self->Resume(wait); });
  }

  // Steps until done or waiting.
  void Steps() {
    while (true) {
      LockCore::Step step = core_.AcquireStep(run_);
      if (step.done) return Finish(std::move(step.status));
      if (step.again) continue;
      if (WaitFor(step.until)) return;
      // A release (or a stop) came before the wait began.
      step = AfterWait();
      if (step.done) return Finish(std::move(step.status));
    }
  }

  // Begins a wait until `until`; false when it is over at once.
  bool WaitFor(AsyncRuntime::Clock::time_point until) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t wait = wait_id_.fetch_add(1) + 1;
    if (stop_.stop_requested()) return false;
    if (run_.watch != nullptr && run_.watch->active() && !run_.watch->Arm(run_.seen, this)) {
      return false;
    }
    waiting_ = true;
    timer_ = AsyncRuntime::Get().After(
        until, [self = shared_from_this(), wait] { self->Resume(wait); });
    return true;
  }

  void Resume(uint64_t wait) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!waiting_ || wait != wait_id_.load()) return;
      waiting_ = false;
      AsyncRuntime::Get().Cancel(timer_);
      if (run_.watch != nullptr) run_.watch->Disarm();
    }
    LockCore::Step step = AfterWait();
    if (step.done) return Finish(std::move(step.status));
    Steps();
  }

  // Whatever ended the wait, the watch tells whether a release concerning
  // this waiter came (a wake-up) or not (the timer, a stop).
  LockCore::Step AfterWait() {
    std::string message;
    const bool woken = run_.watch != nullptr && run_.watch->Woken(run_.seen, &message);
    return core_.AfterWait(run_, woken, message);
  }

  void Finish(absl::Status s) {
    run_.watch.reset();
    {
      std::lock_guard<std::mutex> lock(mu_);
      // A copy of its own: abseil (an uninstrumented system library) shares
      // a status' text between copies, and ThreadSanitizer would not see the
      // copies' reference count.
      if (::lock::IsCancelled(s) && !abort_.ok()) s = Reworded(abort_, abort_.message());
    }
    s = core_.EndAcquire(run_, std::move(s));
    {
      Pending& p = PendingAcquires();
      std::lock_guard<std::mutex> lock(p.mu);
      p.ops.erase(this);
    }
    // Nothing may call back into a finished acquire: the callbacks wait for
    // a running one to return (they only post).
    caller_stop_.reset();
    on_stop_.reset();
    if (s.ok() && core_.policy().renewal.enabled) s = lock_->EnableAutoRenew();
    // Not held, or renewal could not start: given back (else its lease
    // would expire after its ttl).
    if (!s.ok() && core_.hold_count() > 0) (void)lock_->Release();
    // Moved, never copied, into what `done` gets (see above).
    absl::StatusOr<::lock::Lease> out =
        s.ok() ? absl::StatusOr<::lock::Lease>(LeaseAccess::Make(std::move(lock_), executor_))
               : absl::StatusOr<::lock::Lease>(std::move(s));
    Complete(executor_, std::move(done_), std::move(out), /*on_library_thread=*/true);
  }

  std::unique_ptr<RedisLock> lock_;
  LockCore& core_;
  const uint64_t group_;
  const Executor executor_;
  std::function<void(absl::StatusOr<::lock::Lease>)> done_;
  LockCore::AcquireRun run_;
  std::stop_source stop_;
  std::optional<std::stop_callback<Forward>> caller_stop_;
  std::optional<std::stop_callback<Interrupt>> on_stop_;

  std::mutex mu_;
  std::atomic<uint64_t> wait_id_{0};  // the current wait; written under mu_
  bool waiting_ = false;              // guarded by mu_
  AsyncRuntime::TimerId timer_;       // guarded by mu_
  absl::Status abort_;                // guarded by mu_
};

}  // namespace

void StartAsyncAcquire(std::unique_ptr<RedisLock> lock, uint64_t group,
                       const CallOptions& call,
                       std::function<void(absl::StatusOr<::lock::Lease>)> done) {
  auto op = std::make_shared<AsyncAcquire>(std::move(lock), group, call, std::move(done));
  op->Start(call.stop);
}

void AbortAsyncAcquires(uint64_t group, const absl::Status& why) {
  std::vector<std::shared_ptr<AsyncAcquire>> ops;
  {
    Pending& p = PendingAcquires();
    std::lock_guard<std::mutex> lock(p.mu);
    for (auto& [ptr, entry] : p.ops) {
      if (entry.first != group) continue;
      if (std::shared_ptr<AsyncAcquire> op = entry.second.lock()) ops.push_back(std::move(op));
    }
  }
  for (auto& op : ops) op->Abort(why);
}

absl::Status RunLeased(::lock::Lease& lease, const std::function<absl::Status(Held&)>& fn) {
  RedisLock* lock = LeaseAccess::Lock(lease);
  if (lock == nullptr) return absl::FailedPreconditionError("the lease holds nothing");
  Held held = HeldAccess::Make(lock, LeaseAccess::Hold(lease));
  RedisLock* const taken[] = {lock};
  return RunHeld(taken, held, [&fn](Held& h) -> absl::Status {
    try {
      return fn(h);
    } catch (const std::exception& e) {
      return absl::InternalError(
          absl::StrCat("the critical section threw (after the release): ", e.what()));
    } catch (...) {
      return absl::InternalError("the critical section threw a non-std exception (after the release)");
    }
  });
}

}  // namespace lock::internal
