#include "lock/internal/process.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>

#include "absl/strings/str_cat.h"

namespace lock::internal {
namespace {

std::atomic<pid_t> g_pid{0};

void RefreshPid() { g_pid.store(getpid(), std::memory_order_relaxed); }

// The first ProcessId() registers the handler; other fork handlers of the
// library call ProcessId() before registering their own, so child handlers
// (run in registration order) already see the child's pid.
bool Register() {
  static const bool done = [] {
    RefreshPid();
    pthread_atfork(nullptr, nullptr, RefreshPid);
    return true;
  }();
  return done;
}
[[maybe_unused]] const bool g_registered = Register();

}  // namespace

pid_t ProcessId() {
  pid_t pid = g_pid.load(std::memory_order_relaxed);
  if (pid == 0) {  // before this file's static initializer ran
    Register();
    pid = g_pid.load(std::memory_order_relaxed);
  }
  return pid;
}

void Abandon(std::shared_ptr<void> object) {
  // A lock-free list: a mutex here could itself be held by a thread that a
  // later fork leaves behind.
  struct Node {
    std::shared_ptr<void> object;
    Node* next;
  };
  static std::atomic<Node*> abandoned{nullptr};
  Node* node = new Node{std::move(object), abandoned.load()};
  while (!abandoned.compare_exchange_weak(node->next, node)) {
  }
}

absl::Status ForkedError(absl::string_view what, pid_t built_by) {
  return absl::FailedPreconditionError(absl::StrCat(
      what, " was built by process ", built_by,
      " and is used in its fork() child ", ProcessId(),
      ", where the parent's Redis connections and threads must not be used "
      "(locks the parent holds stay the parent's): call lock::Init again after "
      "fork (or build a new lock::Locker) in the child"));
}

}  // namespace lock::internal
