// The threads behind the asynchronous API: a small fixed pool that runs the
// steps of every asynchronous acquire of the process (each one Redis call
// long), and one timer thread that schedules their retries. A waiting
// acquire holds no thread: it is a timer and an armed notifier watch.
#ifndef LOCK_INTERNAL_ASYNC_RUNTIME_H_
#define LOCK_INTERNAL_ASYNC_RUNTIME_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "lock/internal/process.h"

namespace lock::internal {

class AsyncRuntime {
 public:
  using Clock = std::chrono::steady_clock;
  // Threads that run steps. Redis calls block them for a round trip each,
  // so a few keep many acquires moving; waiting costs none of them.
  static constexpr int kWorkers = 4;

  struct TimerId {
    Clock::time_point at;
    uint64_t seq = 0;  // 0: no timer
  };

  // The process's runtime, its threads started on first use. A fork()
  // child gets a new one (the parent's threads do not exist there).
  static AsyncRuntime& Get();

  AsyncRuntime(const AsyncRuntime&) = delete;
  AsyncRuntime& operator=(const AsyncRuntime&) = delete;

  // Runs `task` on a worker thread.
  void Post(std::function<void()> task);
  // Posts `task` at `at`; its id cancels it.
  TimerId After(Clock::time_point at, std::function<void()> task);
  // true when the timer was cancelled before it was posted.
  bool Cancel(const TimerId& id);

  // Threads running now (workers + timer), for tests and benchmarks.
  int threads() const;

 private:
  AsyncRuntime() = default;
  ~AsyncRuntime() = delete;  // lives as long as the process
  void StartLocked();
  void Work();
  void Time();

  const pid_t built_by_ = ProcessId();
  mutable std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable timer_cv_;
  std::deque<std::function<void()>> tasks_;                                 // guarded by mu_
  std::map<std::pair<Clock::time_point, uint64_t>, std::function<void()>> timers_;  // guarded by mu_
  uint64_t next_seq_ = 1;                                                   // guarded by mu_
  std::vector<std::thread> threads_;                                        // guarded by mu_
};

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_ASYNC_RUNTIME_H_
