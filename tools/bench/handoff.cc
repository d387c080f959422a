// Contended handoff: K waiters on one key, each holding it for hold_ms. The
// latency from a holder starting its release to the next (other) waiter
// holding the lock, against the PING round trip measured at the same time
// on another connection.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lock/internal/lock_core.h"
#include "lock/internal/notifier.h"
#include "lock/redis/pool.h"
#include "lock/redis_lock.h"
#include "lock/stats.h"
#include "tools/bench/common.h"

namespace bench {

void Handoff(const Flags& f, const std::string& addr) {
  for (int hold_ms : f.hold_ms) {
    for (int k : f.waiters) {
      lock::redis::ConnectionOptions conn{.addr = addr};
      auto pool = std::make_shared<lock::redis::ConnectionPool>(
          lock::redis::PoolOptions{.connection = conn, .max_size = k + 2});
      auto notifier = std::make_shared<lock::internal::ReleaseNotifier>(conn);
      auto policy = BenchPolicy(absl::StrCat("bench:handoff:", k, ":", hold_ms, ":"));
      policy->name = absl::StrCat("bench-handoff-", k, "-", hold_ms);
      policy->wait.timeout = absl::Seconds(60);
      policy->retry.max_attempts = 1 << 30;
      std::mutex mu;
      std::condition_variable taken;  // someone acquired
      int64_t last_release_ns = 0;    // when the last holder began releasing
      int last_holder = -1;
      std::vector<double> handoff_ms;
      int64_t acquisitions = 0;
      double held_ns = 0;
      std::atomic<bool> stop{false};

      // The round trip this run is judged against, sampled throughout it.
      std::vector<double> rtt_us;
      std::thread pinger([&] {
        auto c = RawConnect(addr);
        const RawCommand ping({"PING"});
        while (!stop.load()) {
          const Clock::time_point t = Clock::now();
          ping.Send(c.get());
          rtt_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
      });

      lock::Stats stats_before = lock::GetStats();
      std::vector<std::thread> threads;
      const Clock::time_point start = Clock::now();
      for (int t = 0; t < k; ++t) {
        threads.emplace_back([&, t] {
          auto lk = *lock::internal::NewRedisLock(pool, policy, "one", notifier);
          while (!stop.load()) {
            if (!lk->Acquire().ok()) continue;
            const int64_t got = Clock::now().time_since_epoch().count();
            {
              std::lock_guard<std::mutex> l(mu);
              if (last_holder >= 0 && last_holder != t) {
                handoff_ms.push_back((got - last_release_ns) / 1e6);
              }
              last_holder = t;
              ++acquisitions;
            }
            taken.notify_all();
            if (hold_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(hold_ms));
            const int64_t rel = Clock::now().time_since_epoch().count();
            {
              std::lock_guard<std::mutex> l(mu);
              last_release_ns = rel;
              held_ns += rel - got;
            }
            (void)lk->Release();
            // Step back until another waiter has it: otherwise the releaser,
            // already running, wins again and nothing is handed off.
            std::unique_lock<std::mutex> l(mu);
            taken.wait_for(l, std::chrono::milliseconds(100),
                           [&] { return last_holder != t || stop.load(); });
          }
        });
      }
      std::this_thread::sleep_for(std::chrono::duration<double>(f.seconds));
      stop = true;
      taken.notify_all();
      for (auto& th : threads) th.join();
      pinger.join();
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      lock::Stats stats_after = lock::GetStats();
      const lock::PolicyStats& ps0 = stats_before.per_policy[policy->name];
      const lock::PolicyStats& ps = stats_after.per_policy[policy->name];
      const double p50 = Percentile(handoff_ms, 0.5), p99 = Percentile(handoff_ms, 0.99);
      const double rtt_p50 = Percentile(rtt_us, 0.5) / 1000;
      const double rtt_p99 = Percentile(rtt_us, 0.99) / 1000;
      Emit({{"scenario", "handoff"},
            {"waiters", k},
            {"hold_ms", hold_ms},
            {"handoffs", handoff_ms.size()},
            {"acquisitions_per_s", Round3(acquisitions / elapsed)},
            {"handoff_p50_ms", Round3(p50)},
            {"handoff_p99_ms", Round3(p99)},
            {"rtt_p50_ms", Round3(rtt_p50)},
            {"rtt_p99_ms", Round3(rtt_p99)},
            {"p50_over_rtt", Round3(p50 / rtt_p50)},
            {"idle_fraction", Round3(std::max(0.0, 1 - held_ns / 1e9 / elapsed))},
            {"woken_by_notify", ps.waits_woken_by_notify - ps0.waits_woken_by_notify},
            {"woken_by_timer", ps.waits_woken_by_timer - ps0.waits_woken_by_timer},
            {"target_p50_le_2rtt", p50 <= 2 * rtt_p50},
            {"target_p99_le_5ms", p99 <= 5.0}});
    }
  }
}

}  // namespace bench
