// lockctl: the operator's tool for lock policies and the locks in Redis.
//
//   lockctl validate FILE|DIR...            check policy files offline
//   lockctl explain POLICY                  the resolved policy, as JSON
//   lockctl status POLICY KEY               one lock: owner, lease, fence
//   lockctl list POLICY [--match PAT]       the locks held under a policy
//   lockctl release POLICY KEY --owner T    owner-checked release
//   lockctl release POLICY KEY --force      release whoever holds it
//   lockctl stats FILE                      read a process's stats dump
//   lockctl watch POLICY [KEY-PATTERN]      live view, redrawn every second
//   lockctl bench [--policy P]              throughput/latency smoke test
//   lockctl --version                       the library version it is built from
//
// Exit codes (all commands): 0 ok; 1 refused or invalid (bad configuration,
// unknown policy, not held by that owner, declined); 2 usage error; 3 Redis
// unreachable or failing. --config defaults to $LOCK_CONFIG.
#include <iostream>
#include <string>
#include <vector>

#include "lock/version.h"
#include "tools/lockctl/cli.h"
#include "tools/lockctl/commands.h"

namespace {

constexpr char kUsage[] =
    "usage: lockctl <command> [args]   (lockctl <command> --help for details)\n"
    "\n"
    "commands:\n"
    "  validate FILE|DIR...                 check policy files (a directory's\n"
    "                                       *.json are merged); every error\n"
    "  explain POLICY                       the fully resolved policy and its\n"
    "                                       redis target, as JSON\n"
    "  status POLICY KEY                    held or free, owner (host, pid),\n"
    "                                       lease left, reentry count, fence\n"
    "  list POLICY [--match PATTERN]        locks held under the policy's "
    "prefix\n"
    "  release POLICY KEY --owner TOKEN     release if TOKEN holds it\n"
    "  release POLICY KEY --force [--yes]   release whoever holds it (asks "
    "first)\n"
    "  watch POLICY [KEY-PATTERN]           live view of the locks held: "
    "owner\n"
    "                                       host:pid, age, lease, fence,\n"
    "                                       waiters, grants/s; q quits\n"
    "  stats FILE                           pretty-print a lock::StatsJson() "
    "or\n"
    "                                       Prometheus stats dump\n"
    "  bench [--policy P] [--seconds S] [--threads N]\n"
    "                                       acquire/release and handoff rates\n"
    "  --version                            the library version lockctl is\n"
    "                                       built from\n"
    "\n"
    "Options are --name VALUE or --name=VALUE (--json, --json=false,\n"
    "--nojson for yes/no ones); \"--\" ends them. Each command takes its own\n"
    "(see its --help). Commands that need policies take --config FILE|DIR\n"
    "(default $LOCK_CONFIG); status, list, release, watch, stats and bench\n"
    "take --json. Redis is reached as the policy's redis target says, on any\n"
    "mode: standalone, sentinel (the master the sentinels name), cluster\n"
    "(every master scanned, each key on its slot's master) or redlock (every\n"
    "master, and whether a quorum agrees).\n"
    "\n"
    "exit codes:\n"
    "  0  success\n"
    "  1  refused or invalid: bad configuration, unknown policy, lock not "
    "held\n"
    "     by that owner (or not at all), confirmation declined, bad stats "
    "dump\n"
    "  2  usage error: an option the command does not take, a bad value,\n"
    "     the wrong arguments, release without --owner or --force\n"
    "  3  Redis unreachable or failing (down, timeout, auth refused, error "
    "reply)\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return lockctl::kExitUsage;
  }
  const std::string command = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return lockctl::kExitOk;
  }
  if (command == "--version" || command == "version") {
    std::cout << "lockctl " << lock::kVersion << "\n";
    return lockctl::kExitOk;
  }
  for (const lockctl::Command& c :
       {lockctl::ValidateCommand(), lockctl::ExplainCommand(),
        lockctl::StatusCommand(), lockctl::ListCommand(),
        lockctl::ReleaseCommand(), lockctl::StatsCommand(),
        lockctl::BenchCommand(), lockctl::WatchCommand()}) {
    if (c.name == command) return lockctl::RunCommand(c, args);
  }
  return lockctl::UsageError("", "unknown command \"" + command + "\"");
}
