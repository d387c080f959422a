// How a RedisServer's redis-server actually runs: as a child process (the
// default) or as a container (LOCK_TEST_BACKEND=container). RedisServer owns
// the configuration, the port and readiness; a runner only starts, signals
// and stops the server. Runners are not thread-safe: RedisServer serializes
// every call under its mutex.
#ifndef INTEGRATION_HARNESS_RUNNER_H_
#define INTEGRATION_HARNESS_RUNNER_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lock::harness::internal {

struct LaunchSpec {
  std::string binary;             // redis-server on the host
  std::vector<std::string> args;  // after the binary
  std::string dir;                // the server's directory (data, config)
  // Other directories the server reads (certificates kept elsewhere); a
  // container mounts them read-only at the same path.
  std::vector<std::string> extra_dirs;
  std::string log_path;           // early output (before `logfile` opens)
  // RedisServerOptions::network_namespace: "" for the caller's.
  std::string network_namespace;
};

class Runner {
 public:
  virtual ~Runner() = default;

  // Starts the server; returns once it runs, not once it answers.
  virtual absl::Status Launch(const LaunchSpec& spec) = 0;

  // Non-blocking. If the server has exited since Launch(), forgets it (the
  // backend is down afterwards) and describes how it ended.
  virtual std::optional<std::string> CheckExited() = 0;

  // Whether `info_server` (INFO server output of whatever answers on the
  // port) comes from the server this backend launched.
  virtual bool Owns(absl::string_view info_server) const = 0;

  // Stops the server without a shutdown (SIGKILL) and waits until it is
  // gone. No-op while down.
  virtual absl::Status Kill() = 0;

  // Freezes / thaws a running server. Preconditions: up; paused() false /
  // true respectively.
  virtual absl::Status Pause() = 0;
  virtual absl::Status Resume() = 0;

  virtual bool up() const = 0;
  virtual bool paused() const = 0;
  // Host pid of redis-server; -1 while down.
  virtual pid_t pid() const = 0;
  // "process" or e.g. "podman container lockharness-...", for messages.
  virtual std::string Describe() const = 0;
};

// `name` is the server's name for error messages.
std::unique_ptr<Runner> NewProcessRunner(std::string name);

// kFailedPrecondition, naming the reason, when no container engine works.
absl::StatusOr<std::unique_ptr<Runner>> NewContainerRunner(
    std::string name);

}  // namespace lock::harness::internal

#endif  // INTEGRATION_HARNESS_RUNNER_H_
