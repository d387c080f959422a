// Shared plumbing of the lockctl commands: argument parsing, configuration
// loading, connecting to a policy's Redis, exit codes, output helpers.
//
//   absl::StatusOr<Args> args = ParseArgs(argv, {.values = {"config"},
//                                                .flags = {"json"}});
//   absl::StatusOr<PolicyContext> ctx = OpenPolicy(*args, "order-close");
//   if (!ctx.ok()) return Fail(ctx.status());   // prints, maps to an exit code
#ifndef TOOLS_LOCKCTL_CLI_H_
#define TOOLS_LOCKCTL_CLI_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lock/lock.h"
#include "lock/redis/connection.h"
#include "nlohmann/json.hpp"
#include "policy/registry.h"
#include "tools/lockctl/reach.h"

namespace lockctl {

// Documented in `lockctl --help` and tools/lockctl/README.md; scripts rely on them.
enum ExitCode : int {
  kExitOk = 0,
  // The answer is "no": invalid configuration, unknown policy, lock not held
  // by the given owner, confirmation declined, unreadable stats dump.
  kExitRefused = 1,
  kExitUsage = 2,
  // Could not talk to Redis: unreachable, timed out, authentication refused,
  // or an error reply.
  kExitRedis = 3,
};

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> values;  // --name VALUE / --name=VALUE
  std::set<std::string> flags;                // --name
  bool help = false;                          // --help / -h

  bool Has(const std::string& flag) const { return flags.count(flag) > 0; }
  std::optional<std::string> Value(const std::string& name) const;
};

struct ArgSpec {
  std::set<std::string> values;  // names (without "--") taking a value
  std::set<std::string> flags;   // boolean names
};

// kInvalidArgument naming the offending argument (an unknown --option, a
// missing value). "--" ends the options.
absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const ArgSpec& spec);

// Prints "lockctl: <why>" and a hint to run `lockctl <command> --help` to
// stderr; returns kExitUsage.
int UsageError(const std::string& command, const std::string& why);

// A path the user typed, as the shell meant it: `bazel run` starts the tool
// in its runfiles tree, so a relative path is taken from the directory
// `bazel run` was called in ($BUILD_WORKING_DIRECTORY) when that is set.
std::string UserPath(const std::string& path);

// --config, else $LOCK_CONFIG (through UserPath); kInvalidArgument when
// neither is set.
absl::StatusOr<std::string> ConfigPath(const Args& args);

// Reads and validates the configuration (a file or a directory).
absl::StatusOr<std::shared_ptr<policy::Registry>> LoadRegistry(
    const std::string& path);

// Everything a command needs to act on one policy's locks.
struct PolicyContext {
  std::string config_path;
  std::shared_ptr<policy::Registry> registry;
  std::unique_ptr<lock::Locker> locker;
  std::shared_ptr<const policy::Policy> policy;
  std::shared_ptr<const policy::RedisTarget> target;
  // The target's masters, whatever its mode.
  std::unique_ptr<Reach> reach;

  // The target for messages about many keys: "127.0.0.1:6379 db 0", "master
  // 127.0.0.1:7001 via sentinel mymaster db 0", "cluster masters ...",
  // "redlock masters ... (quorum 2)" (Reach::Describe).
  std::string Where() const { return reach->Describe(); }
};

// Loads the configuration named by `args` and finds `policy_name` in it.
// kNotFound for an unknown policy (listing the known ones).
absl::StatusOr<PolicyContext> OpenPolicy(const Args& args,
                                         const std::string& policy_name);

// Maps an error to the documented exit code.
int ExitCodeFor(const absl::Status& s);

// Prints "lockctl: <message>" (every line of it) to stderr and returns
// ExitCodeFor(s). Redis errors get a hint about what to check.
int Fail(const absl::Status& s);

// An owner token "host:pid:32hex" split into its readable parts. `host` and
// `pid` are empty when the token does not have that shape (a token written
// by another client).
struct OwnerParts {
  std::string host;
  std::string pid;
  std::string random;
};
OwnerParts SplitOwner(const std::string& token);

// "29.9s", "59m59.9s", "120ms": lease left, to 100ms (to 1ms below 1s).
std::string FormatTtl(absl::Duration d);

// A lock's state as lockctl prints it, human and JSON.
struct LockView {
  std::string policy;
  std::string key;        // the caller's key, without prefix
  std::string redis_key;  // {P K}
  lock::LockState state;
};
// "held", "free", or "released (kept for hold_at_least)": a run-once job's
// key stays, owned by nobody live, until hold_at_least has passed.
std::string StateName(const lock::LockState& st);
nlohmann::json LockViewJson(const LockView& v);

// Left-aligned columns; the last column is not padded.
std::string RenderTable(const std::vector<std::vector<std::string>>& rows);

// True when stdout / stderr / stdin is a terminal.
bool StdoutIsTty();
bool StderrIsTty();
bool StdinIsTty();

}  // namespace lockctl

#endif  // TOOLS_LOCKCTL_CLI_H_
