// Coordinator::Inject: each scenario's fault, injected while the victim
// holds a lock.
#include <signal.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lock/internal/keys.h"
#include "integration/checker/coordinator.h"
#include "integration/checker/workload.h"

namespace lock::checker::driver {

std::optional<std::set<std::string>> Coordinator::HoldersNow() {
  std::set<std::string> out;
  const std::string prefix = KeyPrefix(run_);
  for (int k = 0; k < f_.keys; ++k) {
    const std::string key = KeyName(k);
    // {key, command}: owner hashes answer their owner, ZSETs their members.
    std::vector<std::vector<std::string>> reads;
    if (sc_.kind == "semaphore") {
      reads.push_back({"ZRANGE", internal::SemaphoreKeys(prefix, key).holders(), "0", "-1"});
    } else if (sc_.kind == "read_write") {
      const internal::ReadWriteKeys rw(prefix, key);
      reads.push_back({"HGET", rw.writer(), "owner"});
      reads.push_back({"ZRANGE", rw.readers(), "0", "-1"});
    } else if (sc_.kind == "fair") {
      reads.push_back({"HGET", internal::FairKeys(prefix, key).owner(), "owner"});
    } else {
      reads.push_back({"HGET", OwnerKey(run_, key), "owner"});
    }
    for (const auto& argv : reads) {
      absl::StatusOr<std::string> r = Exec(argv[1], argv);
      if (!r.ok()) return std::nullopt;
      for (absl::string_view token : absl::StrSplit(*r, '\n', absl::SkipEmpty())) {
        if (token != "(nil)") out.emplace(token);
      }
    }
  }
  return out;
}

void Coordinator::Inject(pid_t victim, harness::Partition* partition) {
  const int ttl = f_.ttl_ms;
  fault_start_ns_ = SteadyNs();
  if (sc_.Base() == "kill9") {
    kill(victim, SIGKILL);
    held_at_kill_ = HoldersNow();
  } else if (sc_.Base() == "sigstop") {
    kill(victim, SIGSTOP);
    SleepMs(3 * ttl);
    kill(victim, SIGCONT);
  } else if (sc_.Base() == "restart_aof" || sc_.Base() == "restart_nopersist") {
    fences_before_ = FenceCounters();
    absl::Status s = redis_->Restart(/*keep_data=*/sc_.Base() == "restart_aof");
    if (!s.ok()) checks_.push_back({"redis restarts", false, std::string(s.message())});
  } else if (sc_.Base() == "partition") {
    absl::Status s = partition->Cut();
    if (!s.ok()) checks_.push_back({"link down", false, std::string(s.message())});
    SleepMs(3 * ttl);
    s = partition->Heal();
    if (!s.ok()) checks_.push_back({"link up", false, std::string(s.message())});
  } else if (sc_.Base() == "slow") {
    absl::StatusOr<std::string> r = redis_->Exec(
        {"DEBUG", "SLEEP", absl::StrCat(2.0 * ttl / 1000.0)});
    if (!r.ok()) checks_.push_back({"DEBUG SLEEP", false, std::string(r.status().message())});
  } else if (sc_.Base() == "oom") {
    absl::StatusOr<std::string> r =
        redis_->Exec({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
    if (r.ok()) r = redis_->Exec({"CONFIG", "SET", "maxmemory", "1"});
    if (!r.ok()) checks_.push_back({"maxmemory", false, std::string(r.status().message())});
    SleepMs(1500);
    locks_during_oom_ = LockKeysNow();
    r = redis_->Exec({"CONFIG", "SET", "maxmemory", "0"});
    if (!r.ok()) checks_.push_back({"maxmemory off", false, std::string(r.status().message())});
  } else if (sc_.Base() == "sentinel_failover") {
    absl::StatusOr<int> before = fleet_->MasterIndex();
    absl::Status s = fleet_->Failover(absl::Seconds(30));
    absl::StatusOr<int> after = fleet_->MasterIndex();
    const bool ok = s.ok() && before.ok() && after.ok() && *before != *after;
    checks_.push_back({"sentinels promote the replica", ok,
                       ok ? absl::StrCat("master node ", *before, " -> ", *after)
                          : absl::StrCat("Failover: ", s.message())});
  } else if (sc_.Base() == "cluster_long_migration") {
    // Only the lock's slot, and it stays half-moved for 3 ttl: every
    // renewal meanwhile is answered ASK by the old master.
    const std::string owner_key = OwnerKey(run_, victim_key_);
    const int slot = harness::RedisFleet::KeySlot(owner_key);
    absl::StatusOr<int> from = fleet_->NodeIndexForSlot(slot);
    absl::Status s = from.status();
    int to = -1, moved = 0;
    if (s.ok()) {
      to = (fleet_->ShardOf(*from) + 1) % fleet_->shard_count();
      s = fleet_->BeginMoveSlot(slot, to);
    }
    while (s.ok()) {
      absl::StatusOr<int> n = fleet_->MigrateSlotKeys(slot, 100);
      if (!n.ok()) s = n.status();
      if (!n.ok() || *n == 0) break;
      moved += *n;
    }
    SleepMs(3 * ttl);
    if (s.ok()) s = fleet_->FinishMoveSlot(slot);
    const std::string detail =
        absl::StrCat(owner_key, " slot ", slot, " to shard ", to, " (", moved,
                     " keys), half-moved for ", 3 * ttl, "ms: ",
                     s.ok() ? "done" : std::string(s.message()));
    measures_["slot_moved"] = detail;
    checks_.push_back({"slot migrates to another master", s.ok(), detail});
  } else if (sc_.Base() == "cluster_migration") {
    // The lock's slot first (while the victim holds it and renews it),
    // then the resource's, each step by step: ASK while keys are half
    // moved, MOVED after.
    std::vector<std::string> detail;
    bool ok = true;
    for (const std::string& key : {OwnerKey(run_, victim_key_), ResourceKey(run_, victim_key_)}) {
      const int slot = harness::RedisFleet::KeySlot(key);
      absl::StatusOr<int> from = fleet_->NodeIndexForSlot(slot);
      if (!from.ok()) {
        ok = false;
        detail.push_back(absl::StrCat(key, ": ", from.status().message()));
        continue;
      }
      const int to = (fleet_->ShardOf(*from) + 1) % fleet_->shard_count();
      absl::Status s = fleet_->BeginMoveSlot(slot, to);
      SleepMs(300);
      int moved = 0;
      while (s.ok()) {
        absl::StatusOr<int> n = fleet_->MigrateSlotKeys(slot, 100);
        if (!n.ok()) s = n.status();
        if (!n.ok() || *n == 0) break;
        moved += *n;
      }
      SleepMs(300);
      if (s.ok()) s = fleet_->FinishMoveSlot(slot);
      absl::StatusOr<int> now = fleet_->NodeIndexForSlot(slot);
      const bool moved_ok = s.ok() && now.ok() && fleet_->ShardOf(*now) == to;
      ok &= moved_ok;
      detail.push_back(absl::StrCat(key, " slot ", slot, " shard ",
                                    fleet_->ShardOf(*from), " -> ", to, " (",
                                    moved, " keys): ",
                                    moved_ok ? "done" : std::string(s.message())));
    }
    measures_["slots_moved"] = absl::StrJoin(detail, "; ");
    checks_.push_back({"slots migrate to another master", ok, absl::StrJoin(detail, "; ")});
  }
  fault_end_ns_ = SteadyNs();
  measures_["fault_ms"] = (fault_end_ns_ - fault_start_ns_) / 1'000'000;
}

}  // namespace lock::checker::driver
