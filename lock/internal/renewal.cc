#include "lock/internal/renewal.h"

#include <algorithm>
#include <array>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lock/errors.h"
#include "lock/internal/fork.h"
#include "lock/internal/parallel.h"
#include "lock/internal/kind_calls.h"
#include "lock/internal/primitive_calls.h"
#include "lock/internal/process.h"
#include "lock/internal/quorum.h"
#include "lock/redis/script.h"
#include "lock/scripts/embedded.h"

namespace lock::internal {
namespace {

// When the next renewal of a hold with `lease_ns`, renewed at `from_ns`,
// falls due.
int64_t NextDueNs(const HoldState& h, int64_t from_ns, int64_t lease_ns) {
  return from_ns + static_cast<int64_t>(lease_ns * (1 - h.policy->renewal.threshold));
}

// A due hold may be renewed this much early so that it joins a pipeline
// with its neighbours: a quarter of its safety margin, at most 50ms.
int64_t CoalesceNs(const HoldState& h) {
  return std::min<int64_t>(
      50'000'000, static_cast<int64_t>(h.lease_ns() * h.policy->renewal.threshold / 4));
}

// extend.lua's (and lease_extend.lua's) mode for renewals: never shorten a
// lease the owner set longer while this renewal was on its way.
constexpr absl::string_view kRenewMode = "renew";

}  // namespace

RenewalManager& RenewalManager::Global() {
  static RenewalManager* m = [] {
    InstallForkHandlers();
    return new RenewalManager;  // never destroyed: threads
  }();
  return *m;
}

void RenewalManager::Track(const std::shared_ptr<HoldState>& hold) {
  TrackShard& shard = ShardOf(hold.get());
  std::lock_guard<std::mutex> lock(shard.mu);
  shard.holds[hold.get()] = hold;
}

void RenewalManager::Untrack(const HoldState* hold) {
  TrackShard& shard = ShardOf(hold);
  std::lock_guard<std::mutex> lock(shard.mu);
  shard.holds.erase(hold);
}

void RenewalManager::StartLocked() {
  if (running_) return;
  ForgetParentsQueueLocked();
  running_ = true;
  stop_ = false;
  const uint64_t generation = ++generation_;
  scheduler_ = std::thread([this, generation] { SchedulerLoop(generation); });
  for (int i = 0; i < kWorkers; ++i) {
    workers_.emplace_back([this, generation] { WorkerLoop(generation); });
  }
  SetRenewalQueue(0, kQueueCapacity);
}

void RenewalManager::Renew(std::shared_ptr<HoldState> hold) {
  const uint64_t epoch = hold->lease_epoch.load();
  const int64_t due = NextDueNs(*hold, hold->acquired_at_ns, hold->lease_ns());
  std::lock_guard<std::mutex> lock(mu_);
  StartLocked();
  ScheduleLocked(std::move(hold), due, epoch);
}

void RenewalManager::Reschedule(const std::shared_ptr<HoldState>& hold, uint64_t epoch,
                                int64_t sent_ns) {
  if (!hold->renewing.load()) return;
  const int64_t due = sent_ns == 0 ? SteadyNowNs() : NextDueNs(*hold, sent_ns, hold->lease_ns());
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) return;
  StartLocked();
  ScheduleLocked(hold, due, epoch);
}

void RenewalManager::ScheduleLocked(std::shared_ptr<HoldState> hold, int64_t at_ns,
                                    uint64_t epoch, Kind kind) {
  const bool earliest = heap_.empty() || at_ns < heap_.top().at_ns;
  heap_.push(Due{at_ns, std::move(hold), EpochBits(epoch), kind});
  if (earliest) due_changed_.notify_one();
}

void RenewalManager::Schedule(std::shared_ptr<HoldState> hold, int64_t at_ns, uint64_t epoch) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) return;
  ScheduleLocked(std::move(hold), at_ns, epoch);
}

void RenewalManager::SchedulerLoop(uint64_t generation) {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_ && generation_ == generation) {
    if (heap_.empty()) {
      due_changed_.wait(lock);
      continue;
    }
    const int64_t now = SteadyNowNs();
    if (heap_.top().at_ns > now) {
      due_changed_.wait_for(lock, std::chrono::nanoseconds(heap_.top().at_ns - now));
      continue;
    }
    // Everything due now (or nearly), grouped per Redis target (a Redlock
    // hold is renewed on its own: it needs a quorum of separate replies).
    absl::flat_hash_map<const void*, Batch> by_pool;
    std::vector<std::shared_ptr<HoldState>> expired;
    std::vector<Due> later;  // pushed back after the loop, which they would re-enter
    while (!heap_.empty() && heap_.top().at_ns <= now + CoalesceNs(*heap_.top().hold)) {
      Due due = heap_.top();
      heap_.pop();
      const std::shared_ptr<HoldState>& h = due.hold;
      if (h->released.load() || h->lost.load() || EpochBits(h->lease_epoch.load()) != due.epoch) {
        continue;  // done with, or planned anew by a lease change
      }
      if (due.kind == Kind::kExpiry) {
        // Renewed meanwhile (or planned anew): nothing to watch any more.
        if (h->valid_until_ns.load() <= now) expired.push_back(h);
        continue;
      }
      // Sent to a worker: watch its validity until an answer moves it.
      later.push_back(Due{h->valid_until_ns.load(), h, due.epoch, Kind::kExpiry});
      const void* group = h->homes.size() > 1 ? static_cast<const void*>(h.get())
                                              : static_cast<const void*>(h->homes[0].get());
      by_pool[group].push_back(std::move(due.hold));
    }
    for (Due& due : later) heap_.push(std::move(due));
    for (auto& [pool, holds] : by_pool) {
      for (size_t i = 0; i < holds.size(); i += kMaxBatch) {
        Batch batch(holds.begin() + i,
                    holds.begin() + std::min(holds.size(), i + kMaxBatch));
        if (queue_.size() >= kQueueCapacity) {
          // Workers are behind: try these again shortly rather than queue
          // without bound.
          for (auto& h : batch) {
            Count(h->counters->skipped_renewals);
            if (h->valid_until_ns.load() <= now) {
              expired.push_back(h);
              continue;
            }
            ScheduleLocked(h, now + 10'000'000, h->lease_epoch.load());
          }
          continue;
        }
        queue_.push_back(std::move(batch));
        work_.notify_one();
      }
    }
    SetRenewalQueue(static_cast<int64_t>(queue_.size()), kQueueCapacity);
    if (!expired.empty()) {
      // Announced without mu_: OnLost may call back into the library.
      lock.unlock();
      for (const auto& h : expired) {
        if (h->released.load()) continue;
        h->MarkLost(LostError(absl::StrCat(
            "lock \"", h->key, "\" (policy ", h->policy->name,
            ") ran out of lease before any renewal was answered")));
      }
      lock.lock();
    }
  }
}

void RenewalManager::WorkerLoop(uint64_t generation) {
  while (true) {
    Batch batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_.wait(lock, [&] { return stop_ || generation_ != generation || !queue_.empty(); });
      if (stop_ || generation_ != generation) return;
      batch = std::move(queue_.front());
      queue_.pop_front();
      SetRenewalQueue(static_cast<int64_t>(queue_.size()), kQueueCapacity);
    }
    RenewBatch(std::move(batch));
  }
}

void RenewalManager::Failed(const Sent& s, const absl::Status& why) {
  const std::shared_ptr<HoldState>& hold = s.hold;
  if (hold->released.load()) return;
  Count(hold->counters->renewal_errors);
  if (auto cb = Callback()) cb->OnRenewalFailed(hold->policy->name, hold->key, why);
  const int64_t now = SteadyNowNs();
  const int64_t left = hold->valid_until_ns.load() - now;
  if (LogEnabled()) {
    // Limited per policy: an outage fails the renewal of every hold.
    LogLimited(LogSeverity::kWarning, "renewal_failed", hold->policy->name,
               absl::StrCat("renewal of lock \"", hold->key, "\" (policy ", hold->policy->name,
                            ") failed with ", std::max<int64_t>(0, left) / 1'000'000,
                            "ms of lease left: ", why.message()),
               {.policy = hold->policy->name, .key = hold->key});
  }
  if (left <= 0) {
    hold->MarkLost(LostError(absl::StrCat(
        "lock \"", hold->key, "\" (policy ", hold->policy->name,
        ") could not be renewed before its lease ran out: ", why.message())));
    return;
  }
  // Retry while the lease lasts: soon, but leave room for a few tries.
  Schedule(hold, now + std::clamp<int64_t>(left / 4, 1'000'000, 100'000'000), s.epoch);
}

void RenewalManager::Gone(const Sent& s) {
  if (s.hold->released.load()) return;
  s.hold->MarkLost(LostError(absl::StrCat(
      "lock \"", s.hold->key, "\" (policy ", s.hold->policy->name,
      ") was gone or held by another owner when its renewal ran")));
}

void RenewalManager::RenewBatch(Batch batch) {
  std::vector<Sent> sent;
  sent.reserve(batch.size());
  for (auto& h : batch) {
    // Epoch before length: a lease changed in between fails the epoch check.
    const uint64_t epoch = h->lease_epoch.load();
    const int64_t lease_ms = h->lease_ms.load();
    sent.push_back(Sent{std::move(h), epoch, lease_ms});
  }
  if (sent.front().hold->homes.size() > 1) {
    for (const Sent& s : sent) RenewQuorum(s);
    return;
  }
  // One home, but in a cluster its keys may live on several nodes: one
  // pipeline per node. The route is resolved once per node and slot, and
  // a failure to resolve it (sentinels or cluster unreachable) fails the
  // rest of the batch at once: asking again per hold tied a worker up for
  // minutes while critical sections ran past their leases.
  redis::Topology& home = *sent.front().hold->homes[0];
  absl::Duration timeout = absl::InfiniteDuration();
  for (const Sent& s : sent) timeout = std::min(timeout, s.hold->policy->script_timeout);
  absl::flat_hash_map<int, std::shared_ptr<redis::ConnectionPool>> by_slot;
  absl::flat_hash_map<redis::ConnectionPool*,
                      std::pair<std::shared_ptr<redis::ConnectionPool>, std::vector<Sent>>>
      by_node;
  absl::Status unroutable;
  for (Sent& s : sent) {
    if (!unroutable.ok()) {
      Failed(s, unroutable);
      continue;
    }
    const int slot = redis::KeySlot(s.hold->owner_key);
    auto it = by_slot.find(slot);
    if (it == by_slot.end()) {
      absl::StatusOr<std::shared_ptr<redis::ConnectionPool>> pool =
          home.PoolFor(s.hold->owner_key, timeout);
      if (!pool.ok()) {
        unroutable = pool.status();
        Failed(s, unroutable);
        continue;
      }
      it = by_slot.emplace(slot, *std::move(pool)).first;
    }
    auto& node = by_node[it->second.get()];
    node.first = it->second;
    node.second.push_back(std::move(s));
  }
  // Side by side: a node that does not answer keeps its own pipeline for
  // the script timeout, never the other nodes', whose holds have only the
  // renewal window left.
  std::vector<std::pair<std::shared_ptr<redis::ConnectionPool>, std::vector<Sent>>*> nodes;
  for (auto& [ptr, node] : by_node) nodes.push_back(&node);
  ParallelFor(static_cast<int>(nodes.size()), [&](int i) {
    RenewPipeline(home, *nodes[i]->first, std::move(nodes[i]->second));
  });
}

void RenewalManager::RenewQuorum(const Sent& s) {
  const std::shared_ptr<HoldState>& h = s.hold;
  const std::string ttl = absl::StrCat(s.lease_ms);
  const absl::string_view keys[] = {h->owner_key};
  const absl::string_view args[] = {h->token, ttl, kRenewMode};
  const int n = static_cast<int>(h->homes.size());
  const int64_t sent = SteadyNowNs();
  std::vector<absl::StatusOr<redis::ReplyPtr>> results = redis::RunOnEach(
      h->homes, h->extend_script(), keys, args, h->policy->script_timeout);
  AddRenewalRoundTrip();
  int extended = 0;
  absl::StatusOr<bool> held = QuorumAnswer(results, h->quorum, &extended);
  if (!held.ok()) {
    Failed(s, held.status());
  } else if (*held) {
    Renewed(s, sent, RedlockValidUntilNs(sent, s.lease_ms * 1'000'000, h->drift_factor));
  } else if (!h->released.load()) {
    h->MarkLost(LostError(absl::StrCat(
        "lock \"", h->key, "\" (policy ", h->policy->name, ") is held on only ", extended,
        " of ", n, " redlock masters, below the quorum of ", h->quorum)));
  }
}

void RenewalManager::Renewed(const Sent& s, int64_t sent_ns, int64_t valid_until_ns) {
  const std::shared_ptr<HoldState>& h = s.hold;
  Count(h->counters->renewals);
  h->counters->renewal_latency.Observe(absl::Nanoseconds(SteadyNowNs() - sent_ns));
  // Sent before an Extend and answered after it: Redis kept the longer of
  // the two leases, but the owner's lease is what validity and the next
  // renewal follow (the Extend planned that one).
  if (!h->SetValidUntil(s.epoch, valid_until_ns)) return;
  if (auto cb = Callback()) {
    cb->OnRenewed(h->policy->name, h->key, absl::Milliseconds(s.lease_ms));
  }
  Schedule(h, NextDueNs(*h, sent_ns, s.lease_ms * 1'000'000), s.epoch);
}

bool RenewalManager::RenewOne(redis::Topology& home, const Sent& s, absl::Duration timeout) {
  const std::shared_ptr<HoldState>& h = s.hold;
  const std::string ttl = absl::StrCat(s.lease_ms);
  const absl::string_view keys[] = {h->owner_key};
  const absl::string_view args[] = {h->token, ttl, kRenewMode};
  const int64_t sent = SteadyNowNs();
  absl::StatusOr<redis::Topology::RunResult> run =
      home.Run(h->extend_script(), keys, args,
               {.timeout = timeout,
                .wait_replicas = h->min_replicas_ack,
                .wait_timeout = h->replica_ack_timeout});
  if (!run.ok()) {
    Failed(s, run.status());
    return run.status().code() != absl::StatusCode::kUnavailable &&
           run.status().code() != absl::StatusCode::kDeadlineExceeded;
  }
  const redisReply& r = *run->reply;
  if (r.type != REDIS_REPLY_INTEGER) {
    Failed(s, absl::InternalError("renew: unexpected reply type"));
  } else if (r.integer != 1) {
    Gone(s);
  } else if (run->replicas_acked < h->min_replicas_ack) {
    home.Invalidate(h->owner_key, nullptr);  // maybe a demoted master
    Failed(s, absl::UnavailableError(absl::StrCat(
                  "renewal reached ", run->replicas_acked, " of the required ",
                  h->min_replicas_ack, " replicas")));
  } else {
    Renewed(s, sent, sent + s.lease_ms * 1'000'000);
  }
  return true;
}

void RenewalManager::RenewPipeline(redis::Topology& home, redis::ConnectionPool& pool,
                                   std::vector<Sent> batch) {
  absl::Duration timeout = absl::InfiniteDuration();
  for (const Sent& s : batch) timeout = std::min(timeout, s.hold->policy->script_timeout);
  const int64_t sent = SteadyNowNs();
  absl::StatusOr<redis::PooledConnection> conn = pool.Borrow(timeout);
  if (!conn.ok()) {
    home.Invalidate(batch.front().hold->owner_key, nullptr);
    for (const Sent& s : batch) Failed(s, conn.status());
    return;
  }
  // One pipeline: every EVALSHA is written before any reply is read.
  std::vector<std::string> ttls(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const HoldState& h = *batch[i].hold;
    ttls[i] = absl::StrCat(batch[i].lease_ms);
    const absl::string_view keys[] = {h.owner_key};
    const absl::string_view args[] = {h.token, ttls[i], kRenewMode};
    const redis::ScriptCall call(h.extend_script(), keys, args);
    absl::Status s = (*conn)->Append(call.argv());
    if (!s.ok()) {
      for (const Sent& f : batch) Failed(f, s);
      return;
    }
  }
  // The batch's holds share one target, hence one replica requirement.
  const int want_acks = batch.front().hold->min_replicas_ack;
  const absl::Duration ack_timeout = batch.front().hold->replica_ack_timeout;
  if (want_acks > 0) {
    const redis::WaitCall wait(want_acks, ack_timeout);
    absl::Status s = (*conn)->Append(wait.argv());
    if (!s.ok()) {
      for (const Sent& f : batch) Failed(f, s);
      return;
    }
  }
  AddRenewalRoundTrip();
  std::vector<redis::ReplyPtr> replies(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    absl::StatusOr<redis::ReplyPtr> reply = (*conn)->ReadReply(timeout);
    if (!reply.ok()) {
      home.Invalidate(batch[i].hold->owner_key, nullptr);
      for (size_t j = i; j < batch.size(); ++j) Failed(batch[j], reply.status());
      batch.resize(i);
      break;
    }
    replies[i] = *std::move(reply);
  }
  if (want_acks > 0 && replies.size() == batch.size()) {
    absl::StatusOr<redis::ReplyPtr> acked = (*conn)->ReadReply(timeout + ack_timeout);
    const int64_t n = acked.ok() && (*acked)->type == REDIS_REPLY_INTEGER ? (*acked)->integer : -1;
    if (n < want_acks) {
      // A master without its replicas may be one that was just demoted and
      // does not know it yet: its extensions must not count.
      home.Invalidate(batch.front().hold->owner_key, nullptr);
      const absl::Status why = absl::UnavailableError(absl::StrCat(
          "renewal reached ", std::max<int64_t>(n, 0), " of the required ", want_acks,
          " replicas"));
      for (const Sent& s : batch) Failed(s, why);
      return;
    }
  }
  // Back to the pool now: the one-by-one renewals below borrow from it.
  conn = absl::CancelledError("returned to the pool");
  std::vector<const Sent*> again;  // not executed here: renewed one by one
  for (size_t i = 0; i < batch.size(); ++i) {
    const Sent& s = batch[i];
    const redisReply& r = *replies[i];
    if (r.type == REDIS_REPLY_ERROR && redis::NotExecutedHere(redis::ReplyText(r))) {
      again.push_back(&s);
    } else if (r.type == REDIS_REPLY_ERROR) {
      home.Invalidate(s.hold->owner_key, &r);
      Failed(s, redis::ServerError(redis::ReplyText(r), pool.addr(), "renew"));
    } else if (r.type != REDIS_REPLY_INTEGER) {
      Failed(s, absl::InternalError("renew: unexpected reply type"));
    } else if (r.integer == 1) {
      Renewed(s, sent, sent + s.lease_ms * 1'000'000);
    } else {
      Gone(s);
    }
  }
  // A flushed script cache (restart, failover: what a freshly promoted
  // master answers), a slot being migrated (ASK) or moved (MOVED), a demoted
  // node (READONLY): each of these renewals goes through Topology::Run,
  // which follows the redirect, re-sends the script text, and WAITs for the
  // replicas again, so none of them counts without the acknowledgement a
  // pipelined renewal needs. One unreachable node fails the rest at once.
  for (size_t i = 0; i < again.size(); ++i) {
    if (RenewOne(home, *again[i], timeout)) continue;
    const absl::Status why = absl::UnavailableError(absl::StrCat(
        "renew: ", home.Describe(), " did not answer a redirected renewal"));
    for (size_t j = i + 1; j < again.size(); ++j) Failed(*again[j], why);
    break;
  }
}

void RenewalManager::Shutdown(uint64_t group, absl::Duration deadline) {
  const int64_t end = SteadyNowNs() + absl::ToInt64Nanoseconds(deadline);
  std::vector<std::shared_ptr<HoldState>> holds;
  bool none_left = true;
  for (TrackShard& shard : tracked_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (auto it = shard.holds.begin(); it != shard.holds.end();) {
      std::shared_ptr<HoldState> h = it->second.lock();
      if (h == nullptr || h->group == group) {
        if (h != nullptr) holds.push_back(std::move(h));
        shard.holds.erase(it++);
      } else {
        none_left = false;
        ++it;
      }
    }
  }
  // Marked released before anything else: a renewal due meanwhile skips
  // them, and the threads (still running for other groups) never touch
  // them again.
  for (const auto& h : holds) {
    if (h->released.exchange(true)) continue;
    h->MarkLost(LostError(absl::StrCat("lock \"", h->key, "\" (policy ",
                                       h->policy->name,
                                       ") was released by Shutdown")));
  }
  if (none_left) StopThreads();
  for (const auto& h : holds) {
    const absl::Duration left = absl::Nanoseconds(end - SteadyNowNs());
    if (left <= absl::ZeroDuration()) break;  // the rest expire after their ttl
    const absl::Duration timeout = std::min(left, h->policy->script_timeout);
    if (h->policy->kind != policy::LockKind::kMutex) {
      // The other kinds give the hold back whole (never on Redlock:
      // LockCore refuses them there).
      const PrimitiveCall call = FinalReleaseOf(*h->policy, h->key, h->access, h->token);
      (void)h->homes[0]->Run(*call.script, call.KeyViews(), call.ArgViews(),
                             {.timeout = timeout});
      continue;
    }
    // A run-once job cut short must not run again elsewhere in its period.
    const std::string keep = absl::StrCat(h->KeepAfterReleaseMs());
    const absl::string_view keys[] = {h->owner_key};
    const absl::string_view args[] = {h->token, "0", h->channel, keep};
    ParallelFor(static_cast<int>(h->homes.size()), [&](int i) {
      (void)h->homes[i]->Run(scripts::k_release, keys, args, {.timeout = timeout});
    });
  }
}

void RenewalManager::StopThreads() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    due_changed_.notify_all();
    work_.notify_all();
  }
  // Called from OnLost on one of our own threads: that one cannot be
  // joined by itself; it is let go and leaves its loop (stop_, generation).
  const auto join = [](std::thread& t) {
    if (!t.joinable()) return;
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else {
      t.join();
    }
  };
  join(scheduler_);
  for (auto& w : workers_) join(w);
  std::lock_guard<std::mutex> lock(mu_);
  workers_.clear();
  running_ = false;
  heap_ = {};
  ForgetParentsQueueLocked();
  queue_.clear();
}

// ---- fork() ------------------------------------------------------------------
// mu_ and the track shards are held only briefly, never across a Redis call,
// so taking them cannot stall a fork behind a slow server.

namespace {

// HoldState::lease_mu: leaf mutexes (nothing else is taken while one is held).
// 16: the fork handler holds them all at once, next to the other
// process-wide mutexes, and ThreadSanitizer tracks at most 64 held locks.
constexpr size_t kLeaseMutexes = 16;
std::array<std::mutex, kLeaseMutexes>& LeaseMutexes() {
  static auto* m = new std::array<std::mutex, kLeaseMutexes>;
  return *m;
}

}  // namespace

std::mutex& LeaseMutexFor(const void* hold) {
  return LeaseMutexes()[(reinterpret_cast<uintptr_t>(hold) >> 6) % kLeaseMutexes];
}

void RenewalManager::ForkPrepare() {
  mu_.lock();
  for (TrackShard& shard : tracked_) shard.mu.lock();
  for (std::mutex& m : LeaseMutexes()) m.lock();
}

void RenewalManager::ForkParent() {
  for (auto it = LeaseMutexes().rbegin(); it != LeaseMutexes().rend(); ++it) it->unlock();
  for (auto it = tracked_.rbegin(); it != tracked_.rend(); ++it) it->mu.unlock();
  mu_.unlock();
}

void RenewalManager::ForkChild() {
  // Neither allocates nor frees anything: between fork and exec an allocator
  // whose lock a parent thread held stays locked (ASan's does not lock
  // around fork), and a child that allocated here would never reach exec.
  // What the parent's threads owned is leaked in place instead: a
  // placement-new over a thread handle, a vector or a hash map forgets the
  // old one without touching its memory. The batch queue (a deque, whose
  // empty state allocates) is abandoned by the child's first use.
  new (&scheduler_) std::thread();  // its thread is not in the child
  new (&workers_) std::vector<std::thread>();
  new (&heap_) decltype(heap_)();
  parents_queue_ = true;
  // The dead threads were waiting on these; glibc would wait for them.
  new (&due_changed_) std::condition_variable();
  new (&work_) std::condition_variable();
  running_ = false;
  stop_ = false;
  // The parent's holds: the parent keeps renewing and releasing them. Here
  // they are lost (only atomics are touched: no callback, no stop request,
  // which could wait for a lock a dead thread held) and forgotten, so that
  // nothing in the child renews or releases them. A hold still tracked is
  // alive (its LockCore owns it); no shared_ptr is made, so none can drop
  // the last reference and free it here.
  for (TrackShard& shard : tracked_) {
    for (auto& [ptr, weak] : shard.holds) {
      if (weak.expired()) continue;
      HoldState* h = const_cast<HoldState*>(ptr);
      if (h->released.exchange(true)) continue;
      if (!h->lost.exchange(true)) Count(h->counters->lost);
      h->counters->active.fetch_sub(1, std::memory_order_relaxed);
    }
    new (&shard.holds) decltype(shard.holds)();
  }
  SetRenewalQueue(0, kQueueCapacity);
  for (auto it = LeaseMutexes().rbegin(); it != LeaseMutexes().rend(); ++it) it->unlock();
  for (auto it = tracked_.rbegin(); it != tracked_.rend(); ++it) it->mu.unlock();
  mu_.unlock();
}

void RenewalManager::ForgetParentsQueueLocked() {
  if (!parents_queue_) return;
  // Left untouched rather than destroyed: its batches are the parent's.
  Abandon(std::make_shared<std::deque<Batch>>(std::move(queue_)));
  queue_.clear();
  parents_queue_ = false;
}

void RenewalForkPrepare() { RenewalManager::Global().ForkPrepare(); }
void RenewalForkParent() { RenewalManager::Global().ForkParent(); }
void RenewalForkChild() { RenewalManager::Global().ForkChild(); }

}  // namespace lock::internal
