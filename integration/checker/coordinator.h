// The coordinator: starts Redis (a server or a fleet) and the worker
// processes, injects the scenario's fault when the victim reports being
// inside a critical section, waits for the workers, reads the final state,
// runs the checker and the scenario's own checks, and prints the result
// (and appends it as one JSON line to --summary).
#ifndef INTEGRATION_CHECKER_COORDINATOR_H_
#define INTEGRATION_CHECKER_COORDINATOR_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "integration/checker/checker.h"
#include "integration/checker/driver_flags.h"
#include "integration/checker/history.h"
#include "integration/checker/scenarios.h"
#include "integration/harness/partition.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_server.h"
#include "nlohmann/json.hpp"

namespace lock::checker::driver {

struct ScenarioCheck {
  std::string name;
  bool ok;
  std::string detail;
};

class Coordinator {
 public:
  Coordinator(Flags flags, Scenario scenario)
      : f_(std::move(flags)), sc_(std::move(scenario)) {}

  // The driver's exit code: 0 pass (or skipped), 1 fail, 2 setup error.
  int Run();

 private:
  static void WriteFile(const std::string& path, const std::string& text);
  // Appends `row` to --summary; returns `rc`.
  int Emit(const nlohmann::json& row, int rc);

  // The scenario's fault, at the victim (worker 0's pid) or at Redis
  // (faults.cc).
  void Inject(pid_t victim, harness::Partition* partition);

  // What holds or waits for a lock of this run (owner hashes, holder and
  // queue ZSETs of the scenario's kind), on every master.
  std::vector<std::string> LockKeysNow();
  // The server holding `key` now: the one server, the sentinel master, or
  // the cluster master of its slot.
  harness::RedisServer* ServerFor(const std::string& key);
  absl::StatusOr<std::string> Exec(const std::string& key,
                                   const std::vector<std::string>& argv);
  std::vector<harness::RedisServer*> Masters();
  // Each lock key's fencing counter.
  std::map<std::string, int64_t> FenceCounters();
  // The owner tokens holding each key of the run now, as Redis shows them
  // (owner hashes, permits, readers); nullopt when Redis could not be read.
  std::optional<std::set<std::string>> HoldersNow();
  // Checks that no lock is left once the workers are gone.
  void LeftLocked();

  // What each scenario promises beyond the checker's rules
  // (scenario_checks.cc).
  void ScenarioChecks(const History& h, const Report& r);

  Flags f_;
  const Scenario sc_;
  std::unique_ptr<harness::RedisServer> redis_;
  std::unique_ptr<harness::RedisFleet> fleet_;
  std::string run_;
  std::vector<ScenarioCheck> checks_;
  nlohmann::json measures_ = nlohmann::json::object();
  std::string victim_key_;
  int64_t victim_fence_ = 0;
  int64_t victim_op_ = -1;
  int64_t fault_start_ns_ = 0;
  // kill9: who held what right after the kill. A section of the killed
  // process that no longer held its lock then had released it (killed
  // before it could log that): when, the history cannot say.
  std::optional<std::set<std::string>> held_at_kill_;
  int64_t fault_end_ns_ = 0;
  bool deadline_hit_ = false;
  std::map<std::string, int64_t> fences_before_;
  std::vector<std::string> locks_during_oom_;
};

}  // namespace lock::checker::driver

#endif  // INTEGRATION_CHECKER_COORDINATOR_H_
