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

}  // namespace

void Redlock(const Flags& f) {
  int most = 1;
  for (int n : f.redlock_masters) most = std::max(most, n);
  auto fleet = OrDie(lock::harness::RedisFleet::Masters(most), "starting masters");
  auto single = std::make_shared<lock::Backend>();
  single->homes.push_back(Standalone(fleet->node(0).addr(), 2));
  auto policy = BenchPolicy("bench:redlock:");
  auto single_lock = OrDie(lock::RedisLock::Create(single, policy, "single"), "lock");
  for (int n : f.redlock_masters) {
    auto quorum = std::make_shared<lock::Backend>();
    for (int i = 0; i < n; ++i) quorum->homes.push_back(Standalone(fleet->node(i).addr(), 2));
    auto quorum_lock =
        OrDie(lock::RedisLock::Create(quorum, policy, absl::StrCat("quorum", n)), "lock");
    const AbResult r = Interleave(
        1, f.seconds, f.phase_ms,
        [&](int) { return single_lock->Acquire().ok() && single_lock->Release().ok(); },
        [&](int) { return quorum_lock->Acquire().ok() && quorum_lock->Release().ok(); });
    const double ratio = r.b.p50_us / r.a.p50_us;
    Emit({{"scenario", "redlock"},
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
    auto standalone = std::make_shared<lock::Backend>();
    standalone->homes.push_back(Standalone(node->addr(), threads));
    auto cluster = std::make_shared<lock::Backend>();
    cluster->homes.push_back(std::make_shared<lock::redis::ClusterTopology>(
        lock::redis::ClusterOptions{.seeds = fleet->seed_addrs(),
                                    .data = {.max_size = threads}}));
    std::vector<std::unique_ptr<lock::RedisLock>> on_node, on_cluster;
    for (int t = 0; t < threads; ++t) {
      on_node.push_back(OrDie(lock::RedisLock::Create(standalone, policy, absl::StrCat("k", t)), "lock"));
      on_cluster.push_back(OrDie(lock::RedisLock::Create(cluster, policy, absl::StrCat("k", t)), "lock"));
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
