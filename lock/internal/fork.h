// The library's pthread_atfork handlers, in one place so that the order in
// which they take the process-wide mutexes is fixed.
//
// Contract (docs/DESIGN.md section 11): everything built before a fork()
// belongs to the parent. In the child, a Locker, RedisLock, pool or topology built
// by the parent answers kFailedPrecondition ("... lock::Init again after
// fork") without touching the parent's sockets; the child calls lock::Init
// (or builds a new Locker) and gets a working library with its own
// connections and threads. Locks the parent holds stay the parent's: the
// child never renews nor releases them, and sees them as lost.
//
// What the handlers do: prepare takes the process-wide mutexes that are
// only ever held briefly (never across a Redis call), so that the child
// inherits them consistent and unlocked; parent and child release them. The
// child handlers also rebuild what the parent's threads owned: the renewal
// manager forgets its threads, schedule and tracked holds; the parallel
// pool forgets its threads; condition variables that the parent's threads
// waited on are replaced (glibc would wait for those waiters forever).
// Objects whose mutexes may be held across I/O (pools, topologies, each
// lock's operation mutex) are not taken: the child never uses them.
#ifndef LOCK_INTERNAL_FORK_H_
#define LOCK_INTERNAL_FORK_H_

namespace lock::internal {

// Registers the handlers once; cheap after the first call. Called by the
// constructors of the objects whose state the handlers guard.
void InstallForkHandlers();

// Per-module hooks, called only by the handlers (prepare in this order,
// parent and child in reverse). Each is defined next to the state it guards.
void ProcessLayerForkPrepare();  // lock.cc: the process-wide Locker
void ProcessLayerForkParent();
void ProcessLayerForkChild();
void StatsForkPrepare();  // stats.cc: counters and callback
// (ObserveFork*, next in this order: internal/observe.h, the log sink and
// tracer.)
void StatsForkParent();
void StatsForkChild();
void NotifierForkPrepare();  // notifier.cc: every live ReleaseNotifier
void NotifierForkParent();
void NotifierForkChild();
void RenewalForkPrepare();  // renewal.cc: the RenewalManager
void RenewalForkParent();
void RenewalForkChild();
void ParallelForkPrepare();  // parallel.cc: the Redlock thread pool
void ParallelForkParent();
void ParallelForkChild();

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_FORK_H_
