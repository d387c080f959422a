#include "integration/checker/scenarios.h"

#include "absl/strings/str_cat.h"

namespace lock::checker::driver {

std::vector<Scenario> Scenarios(int ttl_ms) {
  // A restart without persistence loses the resource data (values, the
  // fence each resource was last written with), but no longer the order of
  // fencing tokens: they follow the server clock (issue 11), so kFenceOrder
  // is not expected here.
  const std::set<ViolationKind> data_lost = {
      ViolationKind::kStaleWriteAccepted, ViolationKind::kDuplicateValue,
      ViolationKind::kValueGap, ViolationKind::kFinalState};
  std::vector<Scenario> all = {
      {"baseline", "none", false, false, "", {}, 0},
      {"kill9", "holder process SIGKILLed inside its critical section", false,
       false, "", {}, 60'000},
      {"sigstop", absl::StrCat("holder process SIGSTOPped for ", 3 * ttl_ms,
                               "ms (3 ttl) inside its critical section, then "
                               "SIGCONT"),
       false, false, "", {}, 300},
      {"restart_aof", "redis-server SIGKILLed and restarted from its AOF "
                      "(appendfsync always) while a lock is held",
       true, false, "", {}, 600},
      {"restart_nopersist", "redis-server SIGKILLed and restarted empty (no "
                            "AOF, no RDB) while a lock is held",
       false, false, "", data_lost, 600},
      {"partition", absl::StrCat("link between the holder's network namespace "
                                 "and Redis down for ", 3 * ttl_ms, "ms"),
       false, true, "", {}, 3 * ttl_ms + 1500},
      {"slow", absl::StrCat("DEBUG SLEEP ", 2 * ttl_ms, "ms (> script_timeout "
                            "and > ttl) while a lock is held"),
       false, false, "", {}, 100},
      {"oom", "maxmemory 1 with noeviction for 1.5s while a lock is held",
       false, false, "", {}, 300},
      {"sentinel_failover",
       "SENTINEL FAILOVER while a lock is held (1 master, 1 replica, 3 "
       "sentinels; acquires and renewals wait for 1 replica)",
       false, false, "", {}, 2000, "sentinel", 20},
      {"cluster_migration",
       "hash slots of a held lock and of its resource migrated to another "
       "master (3-master cluster; ASK while moving, MOVED after)",
       false, false, "", {}, 2500, "cluster", 0},
      {"cluster_long_migration",
       absl::StrCat("hash slot of a held lock left half-migrated (its keys on the "
                    "importing master, ASK from the old one) for ", 3 * ttl_ms,
                    "ms (3 ttl) while the holder renews it"),
       false, false, "", {}, 3 * ttl_ms + 2500, "cluster", 0},
      {"extend_shorter",
       absl::StrCat("holder sets its lease to ", ttl_ms / 2, "ms (Extend, half the "
                    "policy's ttl) and holds on for ", 3 * ttl_ms, "ms"),
       false, false, "", {}, 3 * ttl_ms, "standalone", 0, ttl_ms / 2},
  };
  // The other kinds under the mutex scenarios' faults. Semaphore runs on one
  // key so that its permits are always contended (an over-grant can only
  // show while all are taken); read_write and fair on two, so that readers
  // share and fair waiters queue.
  struct Variant {
    const char* name;
    const char* base;
    const char* kind;
    int keys;
  };
  for (const Variant& v : std::initializer_list<Variant>{
           {"semaphore_baseline", "baseline", "semaphore", 1},
           {"semaphore_kill9", "kill9", "semaphore", 1},
           {"semaphore_sigstop", "sigstop", "semaphore", 1},
           {"rw_baseline", "baseline", "read_write", 2},
           {"rw_kill9", "kill9", "read_write", 2},
           {"rw_sigstop", "sigstop", "read_write", 2},
           {"fair_baseline", "baseline", "fair", 2},
           {"fair_kill9", "kill9", "fair", 2},
           {"fair_sigstop", "sigstop", "fair", 2},
           {"fair_restart_aof", "restart_aof", "fair", 2},
           {"rw_failover", "sentinel_failover", "read_write", 2},
       }) {
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i].name != v.base) continue;
      Scenario s = all[i];
      s.name = v.name;
      s.base = v.base;
      s.kind = v.kind;
      s.keys = v.keys;
      all.push_back(std::move(s));
      break;
    }
  }
  return all;
}

}  // namespace lock::checker::driver
