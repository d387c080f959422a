// driver: runs a lock workload under one injected fault and checks its
// history (checker.h). The scenarios behind RELIABILITY.md.
//
//   driver --scenario=sigstop [--short|--long] [--out=DIR] [--summary=FILE]
//   driver --list                       # scenario names, one per line
//
// The coordinator starts a real redis-server (the harness), then P worker
// processes (this binary again, with --worker) of T threads each. Every
// thread loops over K keys calling lock::With; inside, it reads the Redis
// TIME and the lock's owner, reads a per-key counter, sleeps a little and
// writes counter+1 with lock::FencedSet under its fencing token, then reads
// TIME again. Each step is logged (history.h). Thread 0 of process 0 is the
// "victim": once, after a quarter of the run, it tells the coordinator (over
// a pipe) that it is inside a critical section and stays there a while, and
// the coordinator injects the scenario's fault at that moment. At the end
// the coordinator reads each counter's final state, runs the checker, checks
// what the scenario specifically promises (the paused holder's late write
// was refused, the fence counter survived the restart...), and prints one
// JSON line per scenario to --summary (tools/reliability renders those).
//
// Scenarios named semaphore_*, rw_* and fair_* run a mutex scenario's fault
// (Scenario::base) against a policy of that kind: semaphore sections take a
// permit and only read; on read_write 3 calls in 4 are reads (WithRead,
// reading only) and the rest writes (WithWrite, the fenced write above); the
// victim's section is always a write.
//
// sentinel_failover and cluster_migration run on a RedisFleet (integration/
// harness/redis_fleet.h) instead of one server; the workers route their
// data reads with the library's Topology (see DataConnection).
//
// Exit codes: 0 pass (or skipped, with the reason printed), 1 a violation
// or a failed scenario check, 2 usage or setup error. A flag abseil rejects
// (unknown, malformed) exits 1 with an "ERROR: ... flag" line before any run.
//
// The pieces: driver_flags (the command line), workload (names, the policy
// file and time, shared by both sides), worker and data_connection (a
// worker process), scenarios (the list), coordinator (a run), faults (the
// injection), scenario_checks (what each scenario promises). The partition
// scenario's namespaces are the harness's Partition
// (integration/harness/partition.h).
#include <algorithm>
#include <iostream>

#include "integration/checker/coordinator.h"
#include "integration/checker/driver_flags.h"
#include "integration/checker/scenarios.h"
#include "integration/checker/worker.h"
#include "util/flags.h"

namespace lock::checker::driver {
namespace {

int Main(int argc, char** argv) {
  Flags f = ParseFlags(argc, argv);
  if (f.worker >= 0) return RunWorker(f);
  if (f.list) {
    for (const Scenario& s : Scenarios(f.ttl_ms)) std::cout << s.name << "\n";
    return 0;
  }
  if (f.scenario.empty()) util::UsageError("--scenario is required");
  const bool is_long = f.mode == "long";
  if (f.processes == 0) f.processes = is_long ? 4 : 3;
  if (f.threads == 0) f.threads = is_long ? 4 : 3;
  const int default_keys = is_long ? 8 : 4;
  if (f.seconds == 0) f.seconds = is_long ? 60 : 8;
  if (f.processes < 2 || f.threads < 1 || f.keys < 0 || f.seconds < 4) {
    util::UsageError(
        "need --processes >= 2, --threads >= 1, --keys >= 1, --seconds >= 4");
  }
  for (const Scenario& s : Scenarios(f.ttl_ms)) {
    if (s.name == f.scenario) {
      f.seconds = std::max(f.seconds, s.min_seconds);
      if (f.keys == 0) f.keys = s.keys > 0 ? s.keys : default_keys;
      return Coordinator(f, s).Run();
    }
  }
  util::UsageError("unknown scenario \"" + f.scenario +
                   "\"; --list prints the names");
}

}  // namespace
}  // namespace lock::checker::driver

int main(int argc, char** argv) { return lock::checker::driver::Main(argc, argv); }
