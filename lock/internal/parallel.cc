#include "lock/internal/parallel.h"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

#include "lock/internal/fork.h"
#include "lock/internal/process.h"

namespace lock::internal {
namespace {

class Pool {
 public:
  void Submit(std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mu_);
    if (parents_tasks_) {
      Abandon(std::make_shared<std::deque<std::function<void()>>>(std::move(tasks_)));
      tasks_.clear();
      parents_tasks_ = false;
    }
    tasks_.push_back(std::move(task));
    // One idle thread per queued task; threads live for the process.
    if (idle_ < static_cast<int>(tasks_.size())) {
      std::thread([this] { Work(); }).detach();
      ++idle_;
    }
    ready_.notify_one();
  }

  void ForkPrepare() { mu_.lock(); }
  void ForkParent() { mu_.unlock(); }
  // The child has none of the pool's threads: it starts new ones on demand.
  // Queued tasks point into the stacks of callers that are not there.
  // Neither allocates nor frees: between fork and exec an allocator whose
  // lock a parent thread held stays locked (ASan's does not lock around
  // fork), and the child would never reach exec. So the parent's tasks are
  // abandoned by the child's first Submit, not here.
  void ForkChild() {
    parents_tasks_ = true;
    idle_ = 0;
    new (&ready_) std::condition_variable();  // the dead workers waited on it
    mu_.unlock();
  }

 private:
  void Work() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      ready_.wait(lock, [&] { return !tasks_.empty(); });
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      --idle_;
      lock.unlock();
      task();
      lock.lock();
      ++idle_;
    }
  }

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> tasks_;
  int idle_ = 0;
  bool parents_tasks_ = false;  // a fork() child's tasks_ are its parent's
};

Pool& Shared() {
  static Pool* pool = [] {
    InstallForkHandlers();
    return new Pool;  // never destroyed: its threads are detached
  }();
  return *pool;
}

}  // namespace

void ParallelForkPrepare() { Shared().ForkPrepare(); }
void ParallelForkParent() { Shared().ForkParent(); }
void ParallelForkChild() { Shared().ForkChild(); }

void ParallelFor(int n, const std::function<void(int)>& fn) {
  if (n <= 0) return;
  std::mutex mu;
  std::condition_variable done;
  int pending = n - 1;
  for (int i = 1; i < n; ++i) {
    Shared().Submit([&, i] {
      fn(i);
      std::lock_guard<std::mutex> lock(mu);
      if (--pending == 0) done.notify_one();
    });
  }
  fn(0);
  std::unique_lock<std::mutex> lock(mu);
  done.wait(lock, [&] { return pending == 0; });
}

}  // namespace lock::internal
