// Which process built an object, for the library's fork() contract.
//
// A forked child inherits the parent's memory but only the thread that
// called fork(): the parent's pooled sockets, its subscriber and renewal
// threads, and every mutex another thread held at that moment come along as
// dead copies. Objects that own such things record ProcessId() when they are
// built, and refuse to be used from a child (ForkedError) instead of talking
// on the parent's sockets or waiting for threads that do not exist there.
#ifndef LOCK_INTERNAL_PROCESS_H_
#define LOCK_INTERNAL_PROCESS_H_

#include <sys/types.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lock::internal {

// getpid(), cached: refreshed by a pthread_atfork child handler, so reading
// it costs no system call. (A child made by a raw clone() system call, which
// runs no fork handlers, is not detected.)
pid_t ProcessId();

// True when the caller runs in a fork() child of the process `built_by`.
inline bool ForkedSince(pid_t built_by) { return ProcessId() != built_by; }

// kFailedPrecondition: `what` (e.g. "lock::Locker") was built by process
// `built_by` and is used in its fork() child. The message tells the caller
// to call lock::Init again after fork.
absl::Status ForkedError(absl::string_view what, pid_t built_by);

// Keeps `object` alive, unreachable by the library, until the process ends:
// for what a fork() child inherits but must neither use nor destroy (a
// joinable std::thread of a thread that is not there, state that dead
// threads still point into). Never destroyed, so it stays reachable for
// leak checkers.
void Abandon(std::shared_ptr<void> object);

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_PROCESS_H_
