// The fault scenarios: what each injects, where Redis runs, what it may
// break on purpose. Coordinator::Inject (faults.cc) does the fault and
// Coordinator::ScenarioChecks (scenario_checks.cc) checks what it promises.
#ifndef INTEGRATION_CHECKER_SCENARIOS_H_
#define INTEGRATION_CHECKER_SCENARIOS_H_

#include <set>
#include <string>
#include <vector>

#include "integration/checker/checker.h"

namespace lock::checker::driver {

struct Scenario {
  std::string name;
  std::string fault;  // what is done, for the table
  bool appendonly = false;
  bool needs_netns = false;
  // Set when the scenario cannot run in this build (waiting for RedisFleet).
  std::string todo;
  // Violation kinds the scenario is known to produce: measured and reported,
  // not a failure (see RELIABILITY.md for why).
  std::set<ViolationKind> expected;
  int victim_hold_ms = 0;  // 0: no victim
  // Where Redis runs: "standalone" (one RedisServer), "sentinel" (1 master,
  // 1 replica, 3 sentinels; acquires and renewals WAIT for the replica) or
  // "cluster" (3 masters, no replicas), the latter two from RedisFleet.
  std::string topology = "standalone";
  int min_seconds = 0;  // the run lasts at least this long
  int victim_extend_ms = 0;  // see Flags
  // The policy's kind ("mutex", "semaphore" with kPermits, "read_write",
  // "fair"): what the workers lock with and which checker rules apply.
  std::string kind = "mutex";
  // The mutex scenario whose fault and checks this one runs against its
  // kind; empty: its own name.
  std::string base;
  int keys = 0;  // 0: the mode's default

  const std::string& Base() const { return base.empty() ? name : base; }
};

// Every scenario, in the order --list prints them; `ttl_ms` sizes the faults.
std::vector<Scenario> Scenarios(int ttl_ms);

}  // namespace lock::checker::driver

#endif  // INTEGRATION_CHECKER_SCENARIOS_H_
