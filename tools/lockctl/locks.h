// What lockctl reads of a policy's locks, shared by status, list, release
// and watch: the keys that hold or queue anything, found on every master,
// and a mutex's state on each of its masters (several on a Redlock target).
#ifndef TOOLS_LOCKCTL_LOCKS_H_
#define TOOLS_LOCKCTL_LOCKS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lock/redis_lock.h"
#include "tools/lockctl/cli.h"

namespace lockctl {

// One master's answer about a mutex; a Redlock target has one per master.
struct MasterState {
  std::string addr;
  absl::Status error;  // OK when it answered
  lock::LockState state;
};

// A mutex as lockctl shows it. On a Redlock target `lock.state` is the hold
// of the owner that most masters agree on, with the shortest lease left
// among them, and `agreeing` counts those masters; elsewhere it is the one
// master's answer.
struct MutexView {
  LockView lock;
  std::string where;  // the master that answered; every master for Redlock
  std::vector<MasterState> masters;
  int agreeing = 0;
  int quorum = 1;

  bool quorum_holds() const { return agreeing >= quorum; }
};

// Reads a mutex on every home of the target. Fails when fewer masters than
// a quorum answered (the one master, unless Redlock); kInvalidArgument for
// an invalid key.
absl::StatusOr<MutexView> InspectMutex(const PolicyContext& ctx, const std::string& key);

// The keys of the locks of the policy's kind whose key matches the glob
// `match` (over the key without prefix), sorted, each once, from every
// master of the target.
absl::StatusOr<std::vector<std::string>> ScanLockKeys(const PolicyContext& ctx,
                                                      const std::string& match);

}  // namespace lockctl

#endif  // TOOLS_LOCKCTL_LOCKS_H_
