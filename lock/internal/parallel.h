// Runs a few blocking calls at once, for Redlock: a quorum round must ask
// every master in parallel, not one after another, or its latency (and the
// validity it loses to elapsed time) grows with the number of masters.
#ifndef LOCK_INTERNAL_PARALLEL_H_
#define LOCK_INTERNAL_PARALLEL_H_

#include <functional>

namespace lock::internal {

// Calls fn(0..n-1) concurrently (fn(0) on the calling thread, the rest on a
// shared pool of threads that grows on demand) and returns when all are done.
void ParallelFor(int n, const std::function<void(int)>& fn);

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_PARALLEL_H_
