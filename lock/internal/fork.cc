#include "lock/internal/fork.h"

#include <pthread.h>

#include "lock/internal/observe.h"
#include "lock/internal/process.h"

namespace lock::internal {
namespace {

void Prepare() {
  ProcessLayerForkPrepare();
  StatsForkPrepare();
  ObserveForkPrepare();
  NotifierForkPrepare();
  RenewalForkPrepare();
  ParallelForkPrepare();
}

void Parent() {
  ParallelForkParent();
  RenewalForkParent();
  NotifierForkParent();
  ObserveForkParent();
  StatsForkParent();
  ProcessLayerForkParent();
}

void Child() {
  ParallelForkChild();
  RenewalForkChild();
  NotifierForkChild();
  ObserveForkChild();
  StatsForkChild();
  ProcessLayerForkChild();
}

}  // namespace

void InstallForkHandlers() {
  static const bool installed = [] {
    ProcessId();  // its own child handler runs first: ours see the new pid
    pthread_atfork(Prepare, Parent, Child);
    return true;
  }();
  (void)installed;
}

}  // namespace lock::internal
