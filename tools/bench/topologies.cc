// Multi-server topologies against one server, each on harness-started
// redis-servers on this machine:
//   redlock  acquire+release latency on a quorum of N independent masters
//            vs the same lock on one of those masters alone;
//   cluster  uncontended pairs/s on a 3-master Redis Cluster vs one
//            standalone node, same thread count, distinct keys.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_server.h"
#include "lock/internal/keys.h"
#include "lock/internal/lock_core.h"
#include "lock/internal/token.h"
#include "lock/redis/pool.h"
#include "lock/redis/topology.h"
#include "lock/redis_lock.h"
#include "tools/bench/common.h"

namespace bench {
namespace {

std::shared_ptr<lock::redis::Topology> Standalone(const std::string& addr, int pool_size) {
  return std::make_shared<lock::redis::StandaloneTopology>(
      lock::redis::PoolOptions{.connection = {.addr = addr}, .max_size = pool_size});
}

template <typename T>
T OrDie(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::cerr << "bench: " << what << ": " << v.status() << "\n";
    std::exit(1);
  }
  return *std::move(v);
}

// The floor of a quorum round: bare hiredis writing the same acquire (then
// release) to every master before reading any reply, on one thread.
class RawFanOut {
 public:
  RawFanOut(const std::vector<std::string>& addrs, const lock::internal::LockKeys& keys,
            const std::string& token)
      // As the library asks Redlock masters: no fencing token.
      : acquire_(RawAcquireArgs(keys, token, /*fencing=*/false)),
        release_(RawReleaseArgs(keys, token)) {
    for (const std::string& a : addrs) {
      ctxs_.push_back(RawConnect(a));
      RawLoadScripts(ctxs_.back().get());
    }
  }
  bool Run() { return Round(acquire_, true) && Round(release_, false); }

 private:
  bool Round(const RawCommand& cmd, bool acquire) {
    for (auto& c : ctxs_) {
      if (!cmd.Write(c.get())) return false;
    }
    bool ok = true;
    for (auto& c : ctxs_) {
      void* raw = nullptr;
      if (redisGetReply(c.get(), &raw) != REDIS_OK) return false;
      lock::redis::ReplyPtr r(static_cast<redisReply*>(raw));
      ok &= acquire ? r->type == REDIS_REPLY_ARRAY && r->element[0]->integer == 1
                    : r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    }
    return ok;
  }

  RawCommand acquire_, release_;
  std::vector<ContextPtr> ctxs_;
};

}  // namespace

void Redlock(const Flags& f) {
  int most = 1;
  for (int n : f.redlock_masters) most = std::max(most, n);
  auto fleet = OrDie(lock::harness::RedisFleet::Masters(most), "starting masters");
  auto single = std::make_shared<lock::internal::Backend>();
  single->homes.push_back(Standalone(fleet->node(0).addr(), 2));
  auto policy = BenchPolicy("bench:redlock:");
  auto single_lock = OrDie(lock::internal::NewRedisLock(single, policy, "single"), "lock");
  for (int n : f.redlock_masters) {
    auto quorum = std::make_shared<lock::internal::Backend>();
    for (int i = 0; i < n; ++i) quorum->homes.push_back(Standalone(fleet->node(i).addr(), 2));
    auto quorum_lock =
        OrDie(lock::internal::NewRedisLock(quorum, policy, absl::StrCat("quorum", n)), "lock");
    const AbResult r = Interleave(
        1, f.seconds, f.phase_ms,
        [&](int) { return single_lock->Acquire().ok() && single_lock->Release().ok(); },
        [&](int) { return quorum_lock->Acquire().ok() && quorum_lock->Release().ok(); });
    std::vector<std::string> addrs;
    for (int i = 0; i < n; ++i) addrs.push_back(fleet->node(i).addr());
    RawFanOut floor(addrs, lock::internal::LockKeys("bench:redlock:", absl::StrCat("raw", n)),
                    lock::internal::NewOwnerToken());
    const AbResult fl = Interleave(
        1, f.seconds, f.phase_ms, [&](int) { return floor.Run(); },
        [&](int) { return quorum_lock->Acquire().ok() && quorum_lock->Release().ok(); });
    const double ratio = r.b.p50_us / r.a.p50_us;
    Emit({{"scenario", "redlock"},
          {"raw_fanout_p50_us", Round3(fl.a.p50_us)},
          {"redlock_vs_raw_fanout_p50", Round3(fl.b.p50_us / fl.a.p50_us)},
          {"masters", n},
          {"quorum", quorum->quorum()},
          {"redlock_p50_us", Round3(r.b.p50_us)},
          {"single_p50_us", Round3(r.a.p50_us)},
          {"redlock_p99_us", Round3(r.b.p99_us)},
          {"single_p99_us", Round3(r.a.p99_us)},
          {"redlock_mean_us", Round3(r.b.mean_us)},
          {"single_mean_us", Round3(r.a.mean_us)},
          {"ratio_p50", Round3(ratio)},
          {"ratio_mean", Round3(r.b.mean_us / r.a.mean_us)},
          {"pairs", r.b.latency_us.size()},
          {"target_ratio", 1.3},
          {"target_met", ratio <= 1.3}});
  }
}

void Cluster(const Flags& f) {
  auto fleet = OrDie(lock::harness::RedisFleet::Cluster(3, /*replicas_per_master=*/0),
                     "starting the cluster");
  auto node = OrDie(lock::harness::RedisServer::Start({.name = "bench-standalone"}),
                    "starting the standalone node");
  auto policy = BenchPolicy("bench:cluster:");
  for (int threads : f.cluster_threads) {
    auto standalone = std::make_shared<lock::internal::Backend>();
    standalone->homes.push_back(Standalone(node->addr(), threads));
    auto cluster = std::make_shared<lock::internal::Backend>();
    cluster->homes.push_back(std::make_shared<lock::redis::ClusterTopology>(
        lock::redis::ClusterOptions{.seeds = fleet->seed_addrs(),
                                    .data = {.max_size = threads}}));
    std::vector<std::unique_ptr<lock::RedisLock>> on_node, on_cluster;
    for (int t = 0; t < threads; ++t) {
      on_node.push_back(OrDie(lock::internal::NewRedisLock(standalone, policy, absl::StrCat("k", t)), "lock"));
      on_cluster.push_back(OrDie(lock::internal::NewRedisLock(cluster, policy, absl::StrCat("k", t)), "lock"));
    }
    const AbResult r = Interleave(
        threads, f.seconds, f.phase_ms,
        [&](int t) { return on_node[t]->Acquire().ok() && on_node[t]->Release().ok(); },
        [&](int t) { return on_cluster[t]->Acquire().ok() && on_cluster[t]->Release().ok(); });
    Emit({{"scenario", "cluster"},
          {"threads", threads},
          {"masters", 3},
          {"cluster_pairs_per_s", static_cast<int64_t>(r.b.per_s)},
          {"standalone_pairs_per_s", static_cast<int64_t>(r.a.per_s)},
          {"ratio", Round3(r.b.per_s / r.a.per_s)},
          {"cluster_p50_us", Round3(r.b.p50_us)},
          {"standalone_p50_us", Round3(r.a.p50_us)}});
  }
}

}  // namespace bench
