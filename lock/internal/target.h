// How the connections to a configured Redis target are made (address, AUTH,
// db, timeouts, TLS): one place for the library's backends and for lockctl.
#ifndef LOCK_INTERNAL_TARGET_H_
#define LOCK_INTERNAL_TARGET_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "lock/redis/connection.h"
#include "lock/redis/topology.h"
#include "policy/policy.h"

namespace lock::internal {

// Options for the target's data nodes, `addr` set to its first address (the
// standalone node; a cluster seed). Builds the target's TLS context from the
// PEM text read at load time; an error names the target.
absl::StatusOr<redis::ConnectionOptions> ConnectionOptionsFor(const policy::RedisTarget& target);

// Where the target's locks live, one topology per independent home: the
// standalone node, the Sentinel-named master, the cluster, or each Redlock
// master (several homes = a Redlock target). Nothing is connected yet.
absl::StatusOr<std::vector<std::shared_ptr<redis::Topology>>> HomesFor(
    const policy::RedisTarget& target);

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_TARGET_H_
