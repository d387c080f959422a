#ifndef INTEGRATION_CHECKER_DATA_CONNECTION_H_
#define INTEGRATION_CHECKER_DATA_CONNECTION_H_

#include <initializer_list>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lock/redis/connection.h"
#include "lock/redis/topology.h"
#include "nlohmann/json.hpp"

namespace lock::checker::driver {

// The data connection of one worker thread, to the server that holds a key
// in the policy's redis target: the one server (standalone), the master the
// sentinels name (sentinel: rediscovered after a transport error or
// READONLY), or the slot's master (cluster: MOVED refreshes the slot map,
// ASK is followed once after ASKING, TRYAGAIN retried). Reconnects after any
// failure. The routing is the library's own Topology, used only to find
// addresses; the commands go over this thread's own connections.
class DataConnection {
 public:
  DataConnection(const nlohmann::json& target, absl::Duration timeout);

  // argv[1], if any, is the key that routes the command.
  absl::StatusOr<redis::ReplyPtr> Cmd(std::initializer_list<absl::string_view> argv);

  // Redis TIME in microseconds, -1 when the server cannot be asked.
  int64_t TimeUs();

 private:
  absl::StatusOr<redis::Connection*> Conn(const std::string& addr);

  const absl::Duration timeout_;
  std::string fixed_addr_;
  std::unique_ptr<redis::Topology> topology_;
  std::map<std::string, std::unique_ptr<redis::Connection>> conns_;
};

}  // namespace lock::checker::driver

#endif  // INTEGRATION_CHECKER_DATA_CONNECTION_H_
