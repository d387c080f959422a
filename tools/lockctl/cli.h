// Shared plumbing of the lockctl commands: their command lines (abseil
// flags, each command taking its own), configuration loading, connecting to
// a policy's Redis, exit codes, output helpers.
//
//   ABSL_FLAG(int, limit, 1000, "N: show at most N locks");
//   Command ListCommand() {
//     return {.name = "list", .usage = "usage: lockctl list POLICY ...\n",
//             .flags = {Opt(FLAGS_limit), Opt(FLAGS_config)}, .run = List};
//   }
//   // main: RunCommand(ListCommand(), args) parses, answers --help, runs.
//   int List(const std::vector<std::string>& positional) {
//     absl::StatusOr<std::string> config = ConfigPath();
//     absl::StatusOr<PolicyContext> ctx = OpenPolicy(*config, positional[0]);
//     if (!ctx.ok()) return Fail(ctx.status());  // prints; the exit code
#ifndef TOOLS_LOCKCTL_CLI_H_
#define TOOLS_LOCKCTL_CLI_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lock/lock.h"
#include "lock/redis/connection.h"
#include "nlohmann/json.hpp"
#include "policy/registry.h"
#include "tools/lockctl/reach.h"

// The options most commands share; the others are declared by the command
// that reads them.
ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(bool, json);

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

// A command's command line: `lockctl NAME [--flag[=VALUE]]... [POSITIONAL]...`.
//
// Every lockctl option is one abseil flag (ABSL_FLAG next to the code that
// reads it); a command names the ones it takes, and any other is a usage
// error for it. lockctl parses the options itself rather than with
// absl::ParseCommandLine, which could not tell one command's options from
// another's and exits 1 on a usage error where lockctl's documented code is
// 2; the values are still abseil's to parse (CommandLineFlag::ParseFrom).
//
// The help text of a flag that takes a value starts with the value's name
// and ": " ("FILE|DIR: policy configuration"); `--help` shows it as
// "--config FILE|DIR  policy configuration".
//
// The texts may start with a line break, which is not shown: a raw string
// literal can open on a line of its own.
struct Command {
  std::string name;   // "list"
  std::string usage;  // the synopsis lines, "usage: lockctl list POLICY ..."
  std::string about;  // what it does: the paragraphs after the synopsis
  std::vector<const absl::CommandLineFlag*> flags;  // in --help's order
  std::string exit_codes;                           // "Exit codes: 0 ..."
  // Runs the command once its flags are set, with the other arguments.
  int (*run)(const std::vector<std::string>& positional) = nullptr;
};

// The handle of a flag, for Command::flags.
template <typename T>
const absl::CommandLineFlag* Opt(const absl::Flag<T>& flag) {
  return &absl::GetFlagReflectionHandle(flag);
}

// What a command's arguments say besides the flags, which it sets.
struct CommandLine {
  std::vector<std::string> positional;
  bool help = false;  // --help / -h
};

// Sets `command`'s flags from `argv` (the arguments after the command's
// name): `--name=VALUE` and `--name VALUE`; `--name`, `--noname`,
// `--no-name` and `--name=true|false` for a bool flag (which never takes the
// next argument as its value); dashes in a name are underscores
// (--phase-ms is --phase_ms). Other arguments are positional, and so is
// everything after "--". kInvalidArgument naming the argument: an option
// the command does not take, a missing value, a value the flag cannot
// parse.
absl::StatusOr<CommandLine> ParseCommandLine(
    const Command& command, const std::vector<std::string>& argv);

// `lockctl NAME --help`: the synopsis, what it does, each flag with its help
// and default, the exit codes.
std::string HelpText(const Command& command);

// Parses `argv` for `command` and runs it; --help prints HelpText; a usage
// error is reported as UsageError says.
int RunCommand(const Command& command, const std::vector<std::string>& argv);

// kInvalidArgument "--NAME needs WHAT, got VALUE" unless `ok`, for the checks
// of a flag's value that its type cannot make (a range).
absl::Status CheckFlag(const absl::CommandLineFlag& flag, bool ok,
                       const std::string& what);
template <typename T>
absl::Status CheckFlag(const absl::Flag<T>& flag, bool ok,
                       const std::string& what) {
  return CheckFlag(absl::GetFlagReflectionHandle(flag), ok, what);
}

// Prints "lockctl: <why>" and a hint to run `lockctl <command> --help` to
// stderr; returns kExitUsage.
int UsageError(const std::string& command, const std::string& why);

// A path the user typed, as the shell meant it: `bazel run` starts the tool
// in its runfiles tree, so a relative path is taken from the directory
// `bazel run` was called in ($BUILD_WORKING_DIRECTORY) when that is set.
std::string UserPath(const std::string& path);

// --config, else $LOCK_CONFIG (through UserPath); kInvalidArgument when
// neither is set.
absl::StatusOr<std::string> ConfigPath();

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

// Loads the configuration at `config_path` and finds `policy_name` in it.
// kNotFound for an unknown policy (listing the known ones).
absl::StatusOr<PolicyContext> OpenPolicy(const std::string& config_path,
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
