// Auto-renewal of held locks, shared by every lock of the process.
//
// One scheduler thread keeps the holds in a min-heap by due time: a hold is
// due when `renewal.threshold` of its TTL is left (its own policy's TTL,
// threshold and script_timeout — nothing is global). Holds that fall due
// together on the same Redis are renewed in one pipeline by a small bounded
// worker pool, so thousands of held locks cost a handful of round trips per
// period, not one each.
//
// A renewal that finds the hold gone or owned by someone else marks it lost
// at once. One that cannot reach Redis retries until the hold's local
// validity (steady clock) runs out, then marks it lost. A released hold is
// never renewed again: the flag is checked before every send, and the extend
// script is owner-checked against a token unique to the hold.
#ifndef LOCK_INTERNAL_RENEWAL_H_
#define LOCK_INTERNAL_RENEWAL_H_

#include <array>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "lock/internal/hold.h"

namespace lock::internal {

class RenewalManager {
 public:
  static RenewalManager& Global();

  // Every live hold is tracked, so Shutdown can release it.
  void Track(const std::shared_ptr<Hold>& hold);
  void Untrack(const Hold* hold);
  // Starts renewing `hold` until it is released or lost.
  void Renew(std::shared_ptr<Hold> hold);

  // Stops renewing, marks every tracked hold lost (their critical sections
  // must stop) and releases each, giving up when `deadline` passes.
  // The manager starts again on the next Renew.
  void Shutdown(absl::Duration deadline);

  // For the fork handlers (lock/internal/fork.h). In the child the manager
  // has no threads, nothing scheduled and no tracked holds: the holds of the
  // parent are marked released (never renewed, never released by the
  // child's Shutdown) and lost (the child does not hold them); it starts
  // again on the child's first Renew.
  void ForkPrepare();
  void ForkParent();
  void ForkChild();

  // Pipelines renew at most this many holds each.
  static constexpr size_t kMaxBatch = 4096;
  static constexpr size_t kQueueCapacity = 1024;
  static constexpr int kWorkers = 2;

 private:
  struct Due {
    int64_t at_ns;
    std::shared_ptr<Hold> hold;
    bool operator>(const Due& o) const { return at_ns > o.at_ns; }
  };
  using Batch = std::vector<std::shared_ptr<Hold>>;

  void StartLocked();
  void ScheduleLocked(std::shared_ptr<Hold> hold, int64_t at_ns);
  void Schedule(std::shared_ptr<Hold> hold, int64_t at_ns);
  void SchedulerLoop();
  void WorkerLoop();
  void RenewBatch(Batch batch);
  void RenewPipeline(redis::Topology& home, redis::ConnectionPool& pool, Batch batch);
  void RenewQuorum(const std::shared_ptr<Hold>& hold);
  void Renewed(const std::shared_ptr<Hold>& hold, int64_t sent_ns, int64_t valid_until_ns);
  void Failed(const std::shared_ptr<Hold>& hold, const absl::Status& why);

  std::mutex mu_;
  std::condition_variable due_changed_;
  std::condition_variable work_;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> heap_;
  std::deque<Batch> queue_;
  bool running_ = false;
  bool stop_ = false;
  std::thread scheduler_;
  std::vector<std::thread> workers_;
  // Every acquisition and release passes here: sharded so that threads
  // locking different keys do not queue on one mutex.
  struct TrackShard {
    std::mutex mu;
    absl::flat_hash_map<const Hold*, std::weak_ptr<Hold>> holds;
  };
  static constexpr size_t kTrackShards = 16;
  std::array<TrackShard, kTrackShards> tracked_;
  TrackShard& ShardOf(const Hold* h) {
    return tracked_[(reinterpret_cast<uintptr_t>(h) >> 6) % kTrackShards];
  }
};

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_RENEWAL_H_
