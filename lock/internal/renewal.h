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
#include "lock/internal/hold_state.h"

namespace lock::internal {

class RenewalManager {
 public:
  static RenewalManager& Global();

  // Every live hold is tracked, so Shutdown can release it.
  void Track(const std::shared_ptr<HoldState>& hold);
  void Untrack(const HoldState* hold);
  // Starts renewing `hold` until it is released or lost.
  void Renew(std::shared_ptr<HoldState> hold);
  // The owner changed the lease of a renewing hold (Extend; a final release
  // that failed and left the hold in place) and got `epoch` from
  // HoldState::ChangeLease: plans the next renewal under it, at
  // `sent_ns + lease × (1 − threshold)`, or at once when `sent_ns` is 0.
  // No-op for a hold that is not renewing.
  void Reschedule(const std::shared_ptr<HoldState>& hold, uint64_t epoch, int64_t sent_ns);

  // Marks every tracked hold of `group` (HoldState::group) lost — their
  // critical sections must stop — and releases each, keeping the key for
  // what is left of hold_at_least, giving up when `deadline` passes. Holds
  // of other groups keep being renewed. When no hold is tracked any more it
  // also stops the manager's threads; it starts again on the next Renew.
  // Safe to call from a callback that runs on one of the manager's own
  // threads (OnLost): that thread is let go, not joined, and ends after its
  // current step.
  void Shutdown(uint64_t group, absl::Duration deadline);

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
  // Stops and joins the scheduler and the workers; drops what was planned.
  void StopThreads();

  // What falls due: a renewal, or the check that marks a hold lost when
  // its local validity ran out while no renewal answered (a worker stuck
  // on an unreachable node must not keep a loss unannounced). A check is
  // planned each time a renewal is handed to a worker, for the validity it
  // had then; one that finds the validity moved on is dropped.
  enum class Kind : uint8_t { kRenew, kExpiry };
  struct Due {
    int64_t at_ns;
    std::shared_ptr<HoldState> hold;
    // The low bits of the hold's lease_epoch when planned: 32 of them tell
    // a stale entry apart (it would take 2^32 lease changes between an
    // entry's planning and its due time to confuse them), and keep an entry
    // at 32 bytes — the heap holds one or two per renewing hold.
    uint32_t epoch;
    Kind kind = Kind::kRenew;
    bool operator>(const Due& o) const { return at_ns > o.at_ns; }
  };
  static uint32_t EpochBits(uint64_t epoch) { return static_cast<uint32_t>(epoch); }
  using Batch = std::vector<std::shared_ptr<HoldState>>;

  // A hold with the lease epoch and length its renewal was sent under.
  struct Sent {
    std::shared_ptr<HoldState> hold;
    uint64_t epoch;
    int64_t lease_ms;
  };

  void StartLocked();
  // Abandons the parent's batch queue in a fork() child (mu_ held).
  void ForgetParentsQueueLocked();
  void ScheduleLocked(std::shared_ptr<HoldState> hold, int64_t at_ns, uint64_t epoch,
                      Kind kind = Kind::kRenew);
  void Schedule(std::shared_ptr<HoldState> hold, int64_t at_ns, uint64_t epoch);
  void SchedulerLoop(uint64_t generation);
  void WorkerLoop(uint64_t generation);
  void RenewBatch(Batch batch);
  void RenewPipeline(redis::Topology& home, redis::ConnectionPool& pool,
                     std::vector<Sent> batch);
  // Renews one hold through Topology::Run, which follows ASK/MOVED, TRYAGAIN,
  // READONLY and NOSCRIPT and WAITs for replicas; false on a transport
  // failure (the node is unreachable: the caller stops trying others).
  bool RenewOne(redis::Topology& home, const Sent& s, absl::Duration timeout);
  void RenewQuorum(const Sent& s);
  void Renewed(const Sent& s, int64_t sent_ns, int64_t valid_until_ns);
  void Failed(const Sent& s, const absl::Status& why);
  void Gone(const Sent& s);

  std::mutex mu_;
  std::condition_variable due_changed_;
  std::condition_variable work_;
  std::priority_queue<Due, std::vector<Due>, std::greater<>> heap_;
  std::deque<Batch> queue_;
  // In a fork() child, until its first start or Shutdown: queue_ holds the
  // parent's batches (ForkChild cannot replace it without allocating).
  bool parents_queue_ = false;
  bool running_ = false;
  bool stop_ = false;
  // Bumped by every start: a thread let go by a Shutdown that ran on it
  // exits instead of joining the threads of the next start.
  uint64_t generation_ = 0;
  std::thread scheduler_;
  std::vector<std::thread> workers_;
  // Every acquisition and release passes here: sharded so that threads
  // locking different keys do not queue on one mutex.
  struct TrackShard {
    std::mutex mu;
    absl::flat_hash_map<const HoldState*, std::weak_ptr<HoldState>> holds;
  };
  static constexpr size_t kTrackShards = 16;
  std::array<TrackShard, kTrackShards> tracked_;
  TrackShard& ShardOf(const HoldState* h) {
    return tracked_[(reinterpret_cast<uintptr_t>(h) >> 6) % kTrackShards];
  }
};

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_RENEWAL_H_
