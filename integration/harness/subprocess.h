// Runs a short-lived command and collects its output, for the harness's own
// use (container engine calls, ldd, tar). Not for long-running servers: those
// are started by the backends in server_backend.h.
#ifndef INTEGRATION_HARNESS_SUBPROCESS_H_
#define INTEGRATION_HARNESS_SUBPROCESS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace lock::harness::internal {

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal.
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs argv[0] (an absolute path, or a name looked up in $PATH, /usr/bin,
// /bin, /usr/sbin, /sbin) with argv[1..] and returns its exit code and output.
// A command still running after `timeout` is SIGKILLed and reported as
// kDeadlineExceeded; a command that cannot be found is kNotFound.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::Duration timeout);

// Like RunCommand, but a nonzero exit is kInternal (or `error_code` when
// given) with the command line and its stderr; returns stdout.
absl::StatusOr<std::string> RunChecked(
    const std::vector<std::string>& argv, absl::Duration timeout,
    absl::StatusCode error_code = absl::StatusCode::kInternal);

// The absolute path of `name` from $PATH or the usual system directories, or
// "" when there is none.
std::string FindExecutable(absl::string_view name);

}  // namespace lock::harness::internal

#endif  // INTEGRATION_HARNESS_SUBPROCESS_H_
