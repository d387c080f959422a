// How lockctl reaches a policy's locks, whatever its Redis target's mode,
// through the library's own topologies (lock::internal::HomesFor):
//
//   mode        homes  masters to SCAN            node for a key
//   standalone  1      the node                   the node
//   sentinel    1      the master sentinels name  that master
//   cluster     1      every master of the slots  the master of its slot
//   redlock     N      every master               every master (a quorum)
//
//   Reach reach(*target, timeout);
//   ASSIGN_OR_RETURN(std::vector<Master> masters, reach.Masters());
//   ASSIGN_OR_RETURN(Answer a, reach.Run(0, MutexInspect(keys)));
//   std::cout << "on " << reach.Where(a.addr);
#ifndef TOOLS_LOCKCTL_REACH_H_
#define TOOLS_LOCKCTL_REACH_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lock/internal/primitive_calls.h"
#include "lock/redis/pool.h"
#include "lock/redis/reply.h"
#include "lock/redis/topology.h"
#include "policy/policy.h"

namespace lockctl {

// A master that holds keys of the target now.
struct Master {
  std::string addr;  // host:port, as the topology reached it
  std::shared_ptr<lock::redis::ConnectionPool> pool;
};

// A reply and the address of the master that gave it.
struct Answer {
  lock::redis::ReplyPtr reply;
  std::string addr;
};

class Reach {
 public:
  // Nothing is connected until a call needs it. `timeout` bounds each step
  // (routing, connecting, one command or script).
  static absl::StatusOr<std::unique_ptr<Reach>> For(const policy::RedisTarget& target,
                                                    absl::Duration timeout);

  policy::RedisMode mode() const { return target_.mode; }
  // Independent homes: N for a Redlock target, else 1.
  size_t homes() const { return homes_.size(); }
  bool redlock() const { return homes_.size() > 1; }
  // Masters that must agree on a Redlock owner (n/2 + 1); 1 otherwise.
  int quorum() const;

  // Every master holding keys now, over all homes, each once.
  absl::StatusOr<std::vector<Master>> Masters();

  // Runs `call` on home `home` (0 unless Redlock), on the master serving
  // call.keys[0]: routed by slot on a cluster (MOVED and ASK followed), to
  // the master the sentinels name, rediscovered after a failover.
  absl::StatusOr<Answer> Run(size_t home, const lock::internal::PrimitiveCall& call);

  // One plain command about `key` (DEL, PUBSUB NUMSUB...) on that home's
  // master for the key.
  absl::StatusOr<Answer> Command(size_t home, absl::string_view key,
                                 const std::vector<std::string>& argv);

  // One command on one master (SCAN, PUBSUB NUMSUB on each node).
  absl::StatusOr<lock::redis::ReplyPtr> CommandOn(const Master& master,
                                                  const std::vector<std::string>& argv);

  // Where a key's answer came from, for messages: "127.0.0.1:6379 db 0"
  // (standalone), "master 127.0.0.1:7001 via sentinel mymaster db 0",
  // "127.0.0.1:7002 (cluster master of slot 9189)", "redlock master
  // 127.0.0.1:7001".
  std::string Where(absl::string_view addr, absl::string_view key = "") const;
  // The whole target, for messages about many keys: as Where for a
  // standalone or Sentinel target (the master resolved now), "cluster
  // masters a, b, c", "redlock masters a, b, c (quorum 2)".
  std::string Describe();

 private:
  Reach(policy::RedisTarget target, std::vector<std::shared_ptr<lock::redis::Topology>> homes,
        absl::Duration timeout)
      : target_(std::move(target)), homes_(std::move(homes)), timeout_(timeout) {}

  absl::StatusOr<std::string> AddrFor(size_t home, absl::string_view key);

  const policy::RedisTarget target_;
  const std::vector<std::shared_ptr<lock::redis::Topology>> homes_;
  const absl::Duration timeout_;
};

}  // namespace lockctl

#endif  // TOOLS_LOCKCTL_REACH_H_
