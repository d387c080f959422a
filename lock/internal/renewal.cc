#include "lock/internal/renewal.h"

#include <algorithm>
#include <new>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lock/errors.h"
#include "lock/internal/fork.h"
#include "lock/internal/parallel.h"
#include "lock/internal/process.h"
#include "lock/redis/script.h"
#include "lock/scripts/embedded.h"

namespace lock::internal {
namespace {

int64_t TtlNs(const Hold& h) { return absl::ToInt64Nanoseconds(h.policy->ttl); }

// When the next renewal of a hold renewed at `from_ns` falls due.
int64_t NextDueNs(const Hold& h, int64_t from_ns) {
  return from_ns + static_cast<int64_t>(TtlNs(h) * (1 - h.policy->renewal.threshold));
}

// A due hold may be renewed this much early so that it joins a pipeline
// with its neighbours: a quarter of its safety margin, at most 50ms.
int64_t CoalesceNs(const Hold& h) {
  return std::min<int64_t>(
      50'000'000, static_cast<int64_t>(TtlNs(h) * h.policy->renewal.threshold / 4));
}

}  // namespace

RenewalManager& RenewalManager::Global() {
  static RenewalManager* m = [] {
    InstallForkHandlers();
    return new RenewalManager;  // never destroyed: threads
  }();
  return *m;
}

void RenewalManager::Track(const std::shared_ptr<Hold>& hold) {
  TrackShard& shard = ShardOf(hold.get());
  std::lock_guard<std::mutex> lock(shard.mu);
  shard.holds[hold.get()] = hold;
}

void RenewalManager::Untrack(const Hold* hold) {
  TrackShard& shard = ShardOf(hold);
  std::lock_guard<std::mutex> lock(shard.mu);
  shard.holds.erase(hold);
}

void RenewalManager::StartLocked() {
  if (running_) return;
  running_ = true;
  stop_ = false;
  scheduler_ = std::thread([this] { SchedulerLoop(); });
  for (int i = 0; i < kWorkers; ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  SetRenewalQueue(0, kQueueCapacity);
}

void RenewalManager::Renew(std::shared_ptr<Hold> hold) {
  const int64_t due = NextDueNs(*hold, hold->acquired_at_ns);
  std::lock_guard<std::mutex> lock(mu_);
  StartLocked();
  ScheduleLocked(std::move(hold), due);
}

void RenewalManager::ScheduleLocked(std::shared_ptr<Hold> hold, int64_t at_ns) {
  const bool earliest = heap_.empty() || at_ns < heap_.top().at_ns;
  heap_.push(Due{at_ns, std::move(hold)});
  if (earliest) due_changed_.notify_one();
}

void RenewalManager::Schedule(std::shared_ptr<Hold> hold, int64_t at_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) return;
  ScheduleLocked(std::move(hold), at_ns);
}

void RenewalManager::SchedulerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
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
    while (!heap_.empty() &&
           heap_.top().at_ns <= now + CoalesceNs(*heap_.top().hold)) {
      std::shared_ptr<Hold> h = heap_.top().hold;
      heap_.pop();
      if (h->released.load() || h->lost.load()) continue;
      const void* group = h->homes.size() > 1 ? static_cast<const void*>(h.get())
                                              : static_cast<const void*>(h->homes[0].get());
      by_pool[group].push_back(std::move(h));
    }
    for (auto& [pool, holds] : by_pool) {
      for (size_t i = 0; i < holds.size(); i += kMaxBatch) {
        Batch batch(holds.begin() + i,
                    holds.begin() + std::min(holds.size(), i + kMaxBatch));
        if (queue_.size() >= kQueueCapacity) {
          // Workers are behind: try these again shortly rather than queue
          // without bound.
          for (auto& h : batch) {
            h->counters->skipped_renewals.fetch_add(1, std::memory_order_relaxed);
            ScheduleLocked(h, now + 10'000'000);
          }
          continue;
        }
        queue_.push_back(std::move(batch));
        work_.notify_one();
      }
    }
    SetRenewalQueue(static_cast<int64_t>(queue_.size()), kQueueCapacity);
  }
}

void RenewalManager::WorkerLoop() {
  while (true) {
    Batch batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      work_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      batch = std::move(queue_.front());
      queue_.pop_front();
      SetRenewalQueue(static_cast<int64_t>(queue_.size()), kQueueCapacity);
    }
    RenewBatch(batch);
  }
}

void RenewalManager::Failed(const std::shared_ptr<Hold>& hold,
                            const absl::Status& why) {
  if (hold->released.load()) return;
  hold->counters->renewal_errors.fetch_add(1, std::memory_order_relaxed);
  if (auto cb = Callback()) cb->OnRenewalFailed(hold->policy->name, hold->key, why);
  const int64_t now = SteadyNowNs();
  const int64_t left = hold->valid_until_ns.load() - now;
  if (left <= 0) {
    hold->MarkLost(LostError(absl::StrCat(
        "lock \"", hold->key, "\" (policy ", hold->policy->name,
        ") could not be renewed before its lease ran out: ", why.message())));
    return;
  }
  // Retry while the lease lasts: soon, but leave room for a few tries.
  Schedule(hold, now + std::clamp<int64_t>(left / 4, 1'000'000, 100'000'000));
}

void RenewalManager::RenewBatch(Batch batch) {
  if (batch.front()->homes.size() > 1) {
    for (const auto& h : batch) RenewQuorum(h);
    return;
  }
  // One home, but in a cluster its keys may live on several nodes: one
  // pipeline per node.
  redis::Topology& home = *batch.front()->homes[0];
  absl::flat_hash_map<redis::ConnectionPool*, std::pair<std::shared_ptr<redis::ConnectionPool>, Batch>>
      by_node;
  for (auto& h : batch) {
    absl::StatusOr<std::shared_ptr<redis::ConnectionPool>> pool =
        home.PoolFor(h->owner_key, h->policy->script_timeout);
    if (!pool.ok()) {
      Failed(h, pool.status());
      continue;
    }
    auto& slot = by_node[pool->get()];
    slot.first = *pool;
    slot.second.push_back(std::move(h));
  }
  for (auto& [ptr, node] : by_node) RenewPipeline(home, *node.first, std::move(node.second));
}

void RenewalManager::RenewQuorum(const std::shared_ptr<Hold>& h) {
  const std::string ttl = absl::StrCat(absl::ToInt64Milliseconds(h->policy->ttl));
  const absl::string_view keys[] = {h->owner_key};
  const absl::string_view args[] = {h->token, ttl};
  const int n = static_cast<int>(h->homes.size());
  std::vector<absl::StatusOr<redis::Topology::RunResult>> results(n);
  const int64_t sent = SteadyNowNs();
  ParallelFor(n, [&](int i) {
    results[i] = h->homes[i]->Run(scripts::k_extend, keys, args,
                                  {.timeout = h->policy->script_timeout});
  });
  AddRenewalRoundTrip();
  int extended = 0, refused = 0;
  absl::Status error;
  for (auto& r : results) {
    if (!r.ok()) {
      error = r.status();
    } else if (r->reply->type == REDIS_REPLY_INTEGER && r->reply->integer == 1) {
      ++extended;
    } else {
      ++refused;
    }
  }
  if (extended >= h->quorum) {
    const int64_t drift = static_cast<int64_t>(TtlNs(*h) * h->drift_factor) + 2'000'000;
    Renewed(h, sent, sent + TtlNs(*h) - drift);
  } else if (n - refused < h->quorum) {
    if (!h->released.load()) {
      h->MarkLost(LostError(absl::StrCat(
          "lock \"", h->key, "\" (policy ", h->policy->name, ") is held on only ",
          extended, " of ", n, " redlock masters, below the quorum of ", h->quorum)));
    }
  } else {
    Failed(h, error);
  }
}

void RenewalManager::Renewed(const std::shared_ptr<Hold>& h, int64_t sent_ns,
                             int64_t valid_until_ns) {
  h->valid_until_ns.store(valid_until_ns);
  h->counters->renewals.fetch_add(1, std::memory_order_relaxed);
  h->counters->renewal_latency.Observe(absl::Nanoseconds(SteadyNowNs() - sent_ns));
  if (auto cb = Callback()) cb->OnRenewed(h->policy->name, h->key, h->policy->ttl);
  Schedule(h, NextDueNs(*h, sent_ns));
}

void RenewalManager::RenewPipeline(redis::Topology& home, redis::ConnectionPool& pool,
                                   Batch batch) {
  absl::Duration timeout = absl::InfiniteDuration();
  for (const auto& h : batch) timeout = std::min(timeout, h->policy->script_timeout);
  const int64_t sent = SteadyNowNs();
  absl::StatusOr<redis::PooledConnection> conn = pool.Borrow(timeout);
  if (!conn.ok()) {
    for (const auto& h : batch) Failed(h, conn.status());
    return;
  }
  // One pipeline: every EVALSHA is written before any reply is read.
  std::vector<std::string> ttls(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    const Hold& h = *batch[i];
    ttls[i] = absl::StrCat(absl::ToInt64Milliseconds(h.policy->ttl));
    const absl::string_view argv[] = {"EVALSHA", scripts::k_extend.sha1, "1",
                                      h.owner_key, h.token, ttls[i]};
    absl::Status s = (*conn)->Append(argv);
    if (!s.ok()) {
      for (const auto& f : batch) Failed(f, s);
      return;
    }
  }
  // The batch's holds share one target, hence one replica requirement.
  const int want_acks = batch.front()->min_replicas_ack;
  std::string acks_arg, ack_ms_arg;
  if (want_acks > 0) {
    acks_arg = absl::StrCat(want_acks);
    ack_ms_arg = absl::StrCat(
        std::max<int64_t>(1, absl::ToInt64Milliseconds(batch.front()->replica_ack_timeout)));
    const absl::string_view wait[] = {"WAIT", acks_arg, ack_ms_arg};
    absl::Status s = (*conn)->Append(wait);
    if (!s.ok()) {
      for (const auto& f : batch) Failed(f, s);
      return;
    }
  }
  AddRenewalRoundTrip();
  std::vector<redis::ReplyPtr> replies(batch.size());
  for (size_t i = 0; i < batch.size(); ++i) {
    absl::StatusOr<redis::ReplyPtr> reply = (*conn)->ReadReply(timeout);
    if (!reply.ok()) {
      home.Invalidate(batch[i]->owner_key, nullptr);
      for (size_t j = i; j < batch.size(); ++j) Failed(batch[j], reply.status());
      batch.resize(i);
      break;
    }
    replies[i] = *std::move(reply);
  }
  if (want_acks > 0 && replies.size() == batch.size()) {
    absl::StatusOr<redis::ReplyPtr> acked =
        (*conn)->ReadReply(timeout + batch.front()->replica_ack_timeout);
    const int64_t n = acked.ok() && (*acked)->type == REDIS_REPLY_INTEGER ? (*acked)->integer : -1;
    if (n < want_acks) {
      // A master without its replicas may be one that was just demoted and
      // does not know it yet: its extensions must not count.
      home.Invalidate(batch.front()->owner_key, nullptr);
      const absl::Status why = absl::UnavailableError(absl::StrCat(
          "renewal reached ", std::max<int64_t>(n, 0), " of the required ", want_acks,
          " replicas"));
      for (const auto& h : batch) Failed(h, why);
      return;
    }
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    const std::shared_ptr<Hold>& h = batch[i];
    if (replies[i]->type == REDIS_REPLY_ERROR &&
        absl::StartsWith(redis::ReplyText(*replies[i]), "NOSCRIPT")) {
      // Script cache flushed (restart, failover): this call goes by EVAL,
      // which also re-caches the script for the next pipeline.
      const absl::string_view keys[] = {h->owner_key};
      const absl::string_view args[] = {h->token, ttls[i]};
      absl::StatusOr<redis::ReplyPtr> again =
          redis::EvalScript(**conn, scripts::k_extend, keys, args, timeout);
      if (!again.ok()) {
        Failed(h, again.status());
        continue;
      }
      replies[i] = *std::move(again);
    }
    const redisReply& r = *replies[i];
    if (r.type == REDIS_REPLY_ERROR) {
      // MOVED, READONLY (failover) and the like: learn, then retry soon.
      home.Invalidate(h->owner_key, &r);
      Failed(h, redis::ServerError(redis::ReplyText(r), pool.addr(), "renew"));
    } else if (r.type != REDIS_REPLY_INTEGER) {
      Failed(h, absl::InternalError("renew: unexpected reply type"));
    } else if (r.integer == 1) {
      Renewed(h, sent, sent + TtlNs(*h));
    } else if (!h->released.load()) {
      h->MarkLost(LostError(absl::StrCat(
          "lock \"", h->key, "\" (policy ", h->policy->name,
          ") was gone or held by another owner when its renewal ran")));
    }
  }
}

void RenewalManager::Shutdown(absl::Duration deadline) {
  const int64_t end = SteadyNowNs() + absl::ToInt64Nanoseconds(deadline);
  std::vector<std::shared_ptr<Hold>> holds;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    due_changed_.notify_all();
    work_.notify_all();
  }
  if (scheduler_.joinable()) scheduler_.join();
  for (auto& w : workers_) w.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers_.clear();
    running_ = false;
    heap_ = {};
    queue_.clear();
  }
  for (TrackShard& shard : tracked_) {
    std::lock_guard<std::mutex> lock(shard.mu);
    for (auto& [ptr, weak] : shard.holds) {
      if (auto h = weak.lock()) holds.push_back(std::move(h));
    }
    shard.holds.clear();
  }
  for (const auto& h : holds) {
    if (h->released.exchange(true)) continue;
    h->MarkLost(LostError(absl::StrCat("lock \"", h->key, "\" (policy ",
                                       h->policy->name,
                                       ") was released by Shutdown")));
    const absl::Duration left = absl::Nanoseconds(end - SteadyNowNs());
    if (left <= absl::ZeroDuration()) continue;  // expires after its ttl
    const absl::Duration timeout = std::min(left, h->policy->script_timeout);
    const absl::string_view keys[] = {h->owner_key};
    const absl::string_view args[] = {h->token, "0", h->channel, "0"};
    ParallelFor(static_cast<int>(h->homes.size()), [&](int i) {
      (void)h->homes[i]->Run(scripts::k_release, keys, args, {.timeout = timeout});
    });
  }
}

// ---- fork() ------------------------------------------------------------------
// mu_ and the track shards are held only briefly, never across a Redis call,
// so taking them cannot stall a fork behind a slow server.

void RenewalManager::ForkPrepare() {
  mu_.lock();
  for (TrackShard& shard : tracked_) shard.mu.lock();
}

void RenewalManager::ForkParent() {
  for (auto it = tracked_.rbegin(); it != tracked_.rend(); ++it) it->mu.unlock();
  mu_.unlock();
}

void RenewalManager::ForkChild() {
  // The threads are not in the child: a joinable std::thread must be
  // neither joined nor destroyed. What they were working on (batches, the
  // schedule) is left untouched rather than destroyed here.
  if (scheduler_.joinable()) Abandon(std::make_shared<std::thread>(std::move(scheduler_)));
  for (std::thread& w : workers_) Abandon(std::make_shared<std::thread>(std::move(w)));
  workers_.clear();
  Abandon(std::make_shared<decltype(heap_)>(std::move(heap_)));
  heap_ = {};
  Abandon(std::make_shared<std::deque<Batch>>(std::move(queue_)));
  queue_.clear();
  // The dead threads were waiting on these; glibc would wait for them.
  new (&due_changed_) std::condition_variable();
  new (&work_) std::condition_variable();
  running_ = false;
  stop_ = false;
  // The parent's holds: the parent keeps renewing and releasing them. Here
  // they are lost (only atomics are touched: no callback, no stop request,
  // which could wait for a lock a dead thread held) and forgotten, so that
  // nothing in the child renews or releases them.
  for (TrackShard& shard : tracked_) {
    for (auto& [ptr, weak] : shard.holds) {
      std::shared_ptr<Hold> h = weak.lock();
      if (h == nullptr || h->released.exchange(true)) continue;
      if (!h->lost.exchange(true)) h->counters->lost.fetch_add(1, std::memory_order_relaxed);
      h->counters->active.fetch_sub(1, std::memory_order_relaxed);
    }
    shard.holds.clear();
  }
  SetRenewalQueue(0, kQueueCapacity);
  for (auto it = tracked_.rbegin(); it != tracked_.rend(); ++it) it->mu.unlock();
  mu_.unlock();
}

void RenewalForkPrepare() { RenewalManager::Global().ForkPrepare(); }
void RenewalForkParent() { RenewalManager::Global().ForkParent(); }
void RenewalForkChild() { RenewalManager::Global().ForkChild(); }

}  // namespace lock::internal
