// A worker process (the driver run with --worker): --threads threads loop
// over the keys calling lock::With, each section logged to the process's
// history file; thread 0 of worker 0 may be the victim the coordinator
// injects its fault at.
#ifndef INTEGRATION_CHECKER_WORKER_H_
#define INTEGRATION_CHECKER_WORKER_H_

#include "integration/checker/driver_flags.h"

namespace lock::checker::driver {

// The worker's exit code: 0, 1 when history lines were lost, 2 on a setup
// error.
int RunWorker(const Flags& f);

}  // namespace lock::checker::driver

#endif  // INTEGRATION_CHECKER_WORKER_H_
