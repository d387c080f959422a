#include "lock/internal/async_runtime.h"

#include <atomic>

namespace lock::internal {

AsyncRuntime& AsyncRuntime::Get() {
  // Leaked on purpose: completions may run until the process ends, and
  // joining worker threads from a static destructor would race with them.
  static std::atomic<AsyncRuntime*> current{new AsyncRuntime};
  AsyncRuntime* rt = current.load(std::memory_order_acquire);
  if (!ForkedSince(rt->built_by_)) return *rt;
  // A fork() child: the parent's threads are gone, and its queue's mutex
  // may have been held by one of them at the fork. Leave it untouched.
  static std::mutex fork_mu;
  std::lock_guard<std::mutex> lock(fork_mu);
  rt = current.load(std::memory_order_acquire);
  if (ForkedSince(rt->built_by_)) {
    rt = new AsyncRuntime;
    current.store(rt, std::memory_order_release);
  }
  return *rt;
}

void AsyncRuntime::StartLocked() {
  if (!threads_.empty()) return;
  for (int i = 0; i < kWorkers; ++i) threads_.emplace_back([this] { Work(); });
  threads_.emplace_back([this] { Time(); });
  for (std::thread& t : threads_) t.detach();
}

int AsyncRuntime::threads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(threads_.size());
}

void AsyncRuntime::Post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    StartLocked();
    tasks_.push_back(std::move(task));
  }
  work_cv_.notify_one();
}

AsyncRuntime::TimerId AsyncRuntime::After(Clock::time_point at, std::function<void()> task) {
  TimerId id;
  bool earliest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    StartLocked();
    id = TimerId{at, next_seq_++};
    auto it = timers_.emplace(std::make_pair(at, id.seq), std::move(task)).first;
    earliest = it == timers_.begin();
  }
  if (earliest) timer_cv_.notify_one();
  return id;
}

bool AsyncRuntime::Cancel(const TimerId& id) {
  if (id.seq == 0) return false;
  decltype(timers_)::node_type node;
  {
    std::lock_guard<std::mutex> lock(mu_);
    node = timers_.extract(std::make_pair(id.at, id.seq));
  }
  // The task (and what it owns) goes here, with no lock of ours held.
  return !node.empty();
}

void AsyncRuntime::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait(lock, [this] { return !tasks_.empty(); });
    std::function<void()> task = std::move(tasks_.front());
    tasks_.pop_front();
    lock.unlock();
    task();
    task = nullptr;  // whatever it captured goes before the lock is taken
    lock.lock();
  }
}

void AsyncRuntime::Time() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    if (timers_.empty()) {
      timer_cv_.wait(lock);
      continue;
    }
    auto first = timers_.begin();
    // A copy: Cancel may erase the timer (and its key) while this waits.
    const Clock::time_point at = first->first.first;
    if (at > Clock::now()) {
      timer_cv_.wait_until(lock, at);
      continue;
    }
    tasks_.push_back(std::move(first->second));
    timers_.erase(first);
    work_cv_.notify_one();
  }
}

}  // namespace lock::internal
