// Renewal at scale: N held locks auto-renewed by the process-wide renewal
// manager. Measures the CPU this process spends (and the server's), renewal
// round trips per renewal period, and memory per held lock: everything the
// process allocated for holding it (RedisLock, HoldState, strings, tracking map,
// renewal heap entries, the caller's pointer), as heap bytes and as RSS.
#include <algorithm>
#include <atomic>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lock/internal/lock_core.h"
#include "lock/redis/pool.h"
#include "lock/redis_lock.h"
#include "lock/stats.h"
#include "tools/bench/common.h"

namespace bench {
namespace {

// Runs fn(i) for i in [0, n) on `threads` threads.
template <typename Fn>
void ParallelRange(int n, int threads, Fn fn) {
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      for (int i = next++; i < n; i = next++) fn(i);
    });
  }
  for (auto& th : pool) th.join();
}

}  // namespace

void Renewal(const Flags& f, const std::string& addr, int server_pid) {
  constexpr int kThreads = 16;  // to take and free the locks; not timed
  for (int n : f.renewal_locks) {
    // Locks made on one pool share one backend (as a Locker's do per Redis
    // target), so the renewal manager pipelines their renewals together.
    // Room beyond the acquiring threads for the renewal workers, so that
    // taking 100,000 locks does not starve the renewals of the first ones.
    auto pool = std::make_shared<lock::redis::ConnectionPool>(
        lock::redis::PoolOptions{.connection = {.addr = addr}, .max_size = kThreads + 4});
    auto policy = BenchPolicy(absl::StrCat("bench:renew:", n, ":"));
    policy->ttl = absl::Seconds(f.renewal_ttl_s);  // renewed at 70% of it
    const double period = absl::ToDoubleSeconds(policy->ttl) * (1 - policy->renewal.threshold);
    const int64_t heap_before = HeapBytes();
    const int64_t rss_before = RssBytes();
    std::vector<std::unique_ptr<lock::RedisLock>> locks(n);
    std::atomic<int> failed{0};
    ParallelRange(n, kThreads, [&](int i) {
      auto lk = lock::internal::NewRedisLock(pool, policy, absl::StrCat("k", i));
      if (!lk.ok() || !(*lk)->Acquire().ok() || !(*lk)->EnableAutoRenew().ok()) {
        ++failed;
        return;
      }
      locks[i] = *std::move(lk);
    });
    if (failed > 0) {
      std::cerr << "bench: could not hold " << failed << " of " << n << " locks\n";
      std::exit(1);
    }
    // One full period, so that every hold sits in the renewal heap and the
    // pipelines have run once, before memory is read.
    std::this_thread::sleep_for(std::chrono::duration<double>(period + 0.2));
    const int64_t heap_after = HeapBytes();
    const int64_t rss_after = RssBytes();

    const lock::Stats before = lock::GetStats();
    const double cpu0 = CpuSeconds();
    const double server_cpu0 = ProcessCpuSeconds(server_pid);
    const Clock::time_point t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(f.renewal_seconds));
    const double cpu = CpuSeconds() - cpu0;
    const double server_cpu = ProcessCpuSeconds(server_pid) - server_cpu0;
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const lock::Stats after = lock::GetStats();
    const int64_t renewals = after.renewal_count - before.renewal_count;
    const int64_t trips = after.round_trips - before.round_trips;
    const int64_t errors = after.renewal_errors - before.renewal_errors;
    const double periods = wall / period;
    int64_t lost = 0;
    for (const auto& l : locks) lost += lock::internal::LockAccess::Core(*l).hold()->lost.load() ? 1 : 0;
    const double heap_per_lock = static_cast<double>(heap_after - heap_before) / n;
    const double rss_per_lock = static_cast<double>(rss_after - rss_before) / n;
    const double cpu_fraction = cpu / wall;
    Emit({{"scenario", "renewal"},
          {"held_locks", n},
          {"seconds", Round3(wall)},
          {"ttl_s", absl::ToDoubleSeconds(policy->ttl)},
          {"period_s", Round3(period)},
          {"renewals", renewals},
          {"renewal_errors", errors},
          {"renewals_per_lock_per_period", Round3(renewals / periods / n)},
          {"round_trips_per_period", Round3(trips / periods)},
          {"cpu_fraction_of_one_core", Round3(cpu_fraction)},
          {"server_cpu_fraction_of_one_core", Round3(server_cpu / wall)},
          {"heap_bytes_per_lock", static_cast<int64_t>(heap_per_lock)},
          {"rss_bytes_per_lock", static_cast<int64_t>(rss_per_lock)},
          {"lost", lost},
          {"target_cpu_lt_25pct", cpu_fraction < 0.25},
          {"target_le_1KiB_per_lock", std::max(heap_per_lock, rss_per_lock) <= 1024}});
    ParallelRange(n, kThreads, [&](int i) {
      (void)locks[i]->Release();
      locks[i].reset();
    });
  }
}

}  // namespace bench
