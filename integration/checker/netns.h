// Network namespaces for the partition scenario: the pair the coordinator
// creates, and entering one.
#ifndef INTEGRATION_CHECKER_NETNS_H_
#define INTEGRATION_CHECKER_NETNS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace lock::checker::driver {

// Moves the calling thread (call it before any other thread exists) into the
// network namespace /run/netns/<name>; exits with 2 when it cannot.
void EnterNetns(const std::string& name);

// Two network namespaces joined by a veth pair: Redis side 10.213.0.1,
// client side 10.213.0.2. Every address lives inside namespaces made here.
class NetnsPair {
 public:
  // kUnavailable, naming the step, where namespaces cannot be made (not
  // root, no `ip`).
  static absl::StatusOr<std::unique_ptr<NetnsPair>> Create();
  ~NetnsPair();

  // Takes the client side's link down or up again.
  absl::Status Link(bool up);

  const std::string redis_ns, client_ns, redis_if, client_if;

 private:
  NetnsPair(std::string r, std::string c, std::string ri, std::string ci);
  bool created_ = false;
};

}  // namespace lock::checker::driver

#endif  // INTEGRATION_CHECKER_NETNS_H_
