// Benchmarks of the lock library, each printing JSON lines with a baseline
// measured in the same run, so results are ratios that survive a noisy
// machine. Benchmarks are programs, never timed tests.
//
//   bazel run -c opt //tools/bench -- [--scenario=all] [--seconds=4]
//       [--threads=1,8] [--waiters=2,8,32] [--renewal-locks=10000]
//       [--renewal-seconds=30] [--redis=host:port]
//
// Scenarios:
//   uncontended  each thread acquires and releases its own key through
//                RedisLock; baseline: the same two EVALSHA round trips per
//                pair through bare hiredis, one connection per thread.
//   handoff      K waiters on one key, each holding it for --hold-ms; the
//                latency from a release to the next (other) waiter holding
//                it, against the measured PING round trip.
//   renewal      N held locks auto-renewed: CPU used, renewal round trips
//                per period and client memory per held lock.
// Starts its own redis-server unless --redis is given.
#include <hiredis/hiredis.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "integration/harness/redis_server.h"
#include "lock/internal/notifier.h"
#include "lock/redis/pool.h"
#include "lock/redis/reply.h"
#include "lock/redis_lock.h"
#include "lock/scripts/embedded.h"
#include "lock/stats.h"
#include "nlohmann/json.hpp"
#include "policy/policy.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string scenario = "all";
  double seconds = 4;
  std::vector<int> threads = {1, 8};
  std::vector<int> waiters = {2, 8, 32};
  std::vector<int> hold_ms = {0, 1};
  int renewal_locks = 10000;
  double renewal_seconds = 30;
  std::string redis;  // empty: start an embedded server
};

std::vector<int> IntList(absl::string_view flag, absl::string_view v) {
  std::vector<int> out;
  for (absl::string_view t : absl::StrSplit(v, ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(t, &n) || n < 0) {
      std::cerr << "bench: bad " << flag << " value \"" << t << "\"\n";
      std::exit(2);
    }
    out.push_back(n);
  }
  return out;
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--scenario=")) {
      f.scenario = std::string(a);
    } else if (absl::ConsumePrefix(&a, "--seconds=") && absl::SimpleAtod(a, &f.seconds)) {
    } else if (absl::ConsumePrefix(&a, "--threads=")) {
      f.threads = IntList("--threads", a);
    } else if (absl::ConsumePrefix(&a, "--waiters=")) {
      f.waiters = IntList("--waiters", a);
    } else if (absl::ConsumePrefix(&a, "--hold-ms=")) {
      f.hold_ms = IntList("--hold-ms", a);
    } else if (absl::ConsumePrefix(&a, "--renewal-locks=") &&
               absl::SimpleAtoi(a, &f.renewal_locks)) {
    } else if (absl::ConsumePrefix(&a, "--renewal-seconds=") &&
               absl::SimpleAtod(a, &f.renewal_seconds)) {
    } else if (absl::ConsumePrefix(&a, "--redis=")) {
      f.redis = std::string(a);
    } else {
      std::cerr << "usage: bench [--scenario=all|uncontended|handoff|renewal] "
                   "[--seconds=S] [--threads=1,8] [--waiters=2,8,32] "
                   "[--hold-ms=0,1] [--renewal-locks=N] [--renewal-seconds=S] "
                   "[--redis=host:port]\n";
      std::exit(2);
    }
  }
  return f;
}

void Emit(const nlohmann::json& line) { std::cout << line.dump() << std::endl; }

double Round3(double v) { return std::round(v * 1000) / 1000; }

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

std::pair<std::string, int> HostPort(const std::string& addr) {
  size_t colon = addr.rfind(':');
  return {addr.substr(0, colon), std::atoi(addr.c_str() + colon + 1)};
}

lock::redis::ContextPtr RawConnect(const std::string& addr) {
  auto [host, port] = HostPort(addr);
  lock::redis::ContextPtr c(redisConnect(host.c_str(), port));
  if (c == nullptr || c->err) {
    std::cerr << "bench: cannot connect to " << addr << "\n";
    std::exit(1);
  }
  return c;
}

lock::redis::ReplyPtr RawArgv(redisContext* c, const std::vector<std::string>& a) {
  const char* argv[16];
  size_t lens[16];
  for (size_t i = 0; i < a.size(); ++i) {
    argv[i] = a[i].data();
    lens[i] = a[i].size();
  }
  return lock::redis::ReplyPtr(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(a.size()), argv, lens)));
}

// PING round trip percentiles (ms) over `n` calls on one connection.
std::pair<double, double> PingRtt(const std::string& addr, int n = 2000) {
  auto c = RawConnect(addr);
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    const Clock::time_point t = Clock::now();
    RawArgv(c.get(), {"PING"});
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t).count());
  }
  return {Percentile(ms, 0.5), Percentile(ms, 0.99)};
}

std::shared_ptr<policy::Policy> BenchPolicy(const std::string& prefix) {
  auto p = std::make_shared<policy::Policy>();
  p->name = "bench";
  p->key_prefix = prefix;
  return p;
}

// ---- uncontended ------------------------------------------------------------

template <typename Body>
double RunPairs(int threads, double seconds, Body body) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> pairs{0};
  std::vector<std::thread> pool;
  const Clock::time_point start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      int64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!body(t)) std::abort();
        ++n;
      }
      pairs += n;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : pool) th.join();
  return pairs.load() / std::chrono::duration<double>(Clock::now() - start).count();
}

double RawFloor(const std::string& addr, int threads, double seconds) {
  std::vector<lock::redis::ContextPtr> ctxs;
  struct Args {
    std::vector<std::string> acquire, release;
  };
  std::vector<Args> args(threads);
  for (int t = 0; t < threads; ++t) {
    ctxs.push_back(RawConnect(addr));
    for (const auto* s : {&lock::scripts::k_acquire, &lock::scripts::k_release}) {
      RawArgv(ctxs.back().get(), {"SCRIPT", "LOAD", std::string(s->body)});
    }
    const std::string owner = absl::StrCat("{bench:raw:", t, "}");
    args[t].acquire = {"EVALSHA", std::string(lock::scripts::k_acquire.sha1), "3",
                       owner, owner + ":fence", owner + ":cancel:tok", "tok",
                       "30000", "1", "1"};
    args[t].release = {"EVALSHA", std::string(lock::scripts::k_release.sha1), "1",
                       owner, "tok", "0", owner + ":released", "0"};
  }
  return RunPairs(threads, seconds, [&](int t) {
    lock::redis::ReplyPtr a = RawArgv(ctxs[t].get(), args[t].acquire);
    lock::redis::ReplyPtr r = RawArgv(ctxs[t].get(), args[t].release);
    return a != nullptr && r != nullptr && a->type == REDIS_REPLY_ARRAY &&
           r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  });
}

double Library(const std::string& addr, int threads, double seconds) {
  auto pool = std::make_shared<lock::redis::ConnectionPool>(
      lock::redis::PoolOptions{.connection = {.addr = addr}, .max_size = threads});
  auto policy = BenchPolicy("bench:lib:");
  std::vector<std::unique_ptr<lock::RedisLock>> locks;
  for (int t = 0; t < threads; ++t) {
    locks.push_back(*lock::RedisLock::Create(pool, policy, absl::StrCat("k", t)));
  }
  return RunPairs(threads, seconds, [&](int t) {
    return locks[t]->Acquire().ok() && locks[t]->Release().ok();
  });
}

void Uncontended(const Flags& f, const std::string& addr) {
  for (int threads : f.threads) {
    // Interleaved and best-of-two, so a burst of noise hurts neither side more.
    double raw = 0, lib = 0;
    for (int round = 0; round < 2; ++round) {
      raw = std::max(raw, RawFloor(addr, threads, f.seconds / 2));
      lib = std::max(lib, Library(addr, threads, f.seconds / 2));
    }
    Emit({{"scenario", "uncontended_acquire_release"},
          {"threads", threads},
          {"lib_pairs_per_s", static_cast<int64_t>(lib)},
          {"raw_pairs_per_s", static_cast<int64_t>(raw)},
          {"ratio", Round3(lib / raw)}});
  }
}

// ---- handoff ----------------------------------------------------------------

void Handoff(const Flags& f, const std::string& addr) {
  const auto [rtt_p50, rtt_p99] = PingRtt(addr);
  for (int hold_ms : f.hold_ms) {
    for (int k : f.waiters) {
      lock::redis::ConnectionOptions conn{.addr = addr};
      auto pool = std::make_shared<lock::redis::ConnectionPool>(
          lock::redis::PoolOptions{.connection = conn, .max_size = k + 2});
      auto notifier = std::make_shared<lock::internal::ReleaseNotifier>(conn);
      auto policy = BenchPolicy(absl::StrCat("bench:handoff:", k, ":", hold_ms, ":"));
      policy->wait.timeout = absl::Seconds(60);
      policy->retry.max_attempts = 1 << 30;
      std::mutex mu;
      std::condition_variable taken;  // someone acquired
      int64_t last_release_ns = 0;  // when the last holder began releasing
      int last_holder = -1;
      std::vector<double> handoff_ms;
      int64_t acquisitions = 0;
      double held_ns = 0;
      std::atomic<bool> stop{false};
      std::vector<std::thread> threads;
      const Clock::time_point start = Clock::now();
      for (int t = 0; t < k; ++t) {
        threads.emplace_back([&, t] {
          auto lk = *lock::RedisLock::Create(pool, policy, "one", notifier);
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
      for (auto& th : threads) th.join();
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      const double p50 = Percentile(handoff_ms, 0.5), p99 = Percentile(handoff_ms, 0.99);
      Emit({{"scenario", "handoff"},
            {"waiters", k},
            {"hold_ms", hold_ms},
            {"handoffs", handoff_ms.size()},
            {"acquisitions_per_s", static_cast<int64_t>(acquisitions / elapsed)},
            {"handoff_p50_ms", Round3(p50)},
            {"handoff_p99_ms", Round3(p99)},
            {"rtt_p50_ms", Round3(rtt_p50)},
            {"rtt_p99_ms", Round3(rtt_p99)},
            {"p50_over_rtt", Round3(p50 / rtt_p50)},
            {"idle_fraction", Round3(std::max(0.0, 1 - held_ns / 1e9 / elapsed))},
            {"target_p50_le_2rtt", p50 <= 2 * rtt_p50},
            {"target_p99_le_5ms", p99 <= 5.0}});
    }
  }
}

// ---- renewal ----------------------------------------------------------------

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

void Renewal(const Flags& f, const std::string& addr) {
  const int n = f.renewal_locks;
  auto pool = std::make_shared<lock::redis::ConnectionPool>(
      lock::redis::PoolOptions{.connection = {.addr = addr}, .max_size = 8});
  auto policy = BenchPolicy("bench:renew:");
  policy->ttl = absl::Seconds(3);  // renewed every 2.1s at threshold 0.3
  std::vector<std::unique_ptr<lock::RedisLock>> locks;
  locks.reserve(n);
  const int64_t rss_before = RssBytes();
  for (int i = 0; i < n; ++i) {
    locks.push_back(*lock::RedisLock::Create(pool, policy, absl::StrCat("k", i)));
    if (!locks.back()->Acquire().ok() || !locks.back()->EnableAutoRenew().ok()) {
      std::cerr << "bench: cannot hold lock " << i << "\n";
      std::exit(1);
    }
  }
  const int64_t rss_after = RssBytes();
  const lock::Stats before = lock::GetStats();
  const double cpu0 = CpuSeconds();
  const Clock::time_point t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(f.renewal_seconds));
  const double cpu = CpuSeconds() - cpu0;
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const lock::Stats after = lock::GetStats();
  const double period = absl::ToDoubleSeconds(policy->ttl) * (1 - policy->renewal.threshold);
  const int64_t renewals = after.renewal_count - before.renewal_count;
  const int64_t trips = after.round_trips - before.round_trips;
  const double periods = wall / period;
  int64_t lost = 0;
  for (const auto& l : locks) lost += l->hold()->lost.load() ? 1 : 0;
  Emit({{"scenario", "renewal"},
        {"held_locks", n},
        {"seconds", Round3(wall)},
        {"renewals", renewals},
        {"renewals_per_lock_per_period", Round3(renewals / periods / n)},
        {"round_trips_per_period", Round3(trips / periods)},
        {"cpu_fraction_of_one_core", Round3(cpu / wall)},
        {"bytes_per_held_lock", (rss_after - rss_before) / n},
        {"lost", lost},
        {"target_cpu_lt_25pct", cpu / wall < 0.25},
        {"target_le_1KiB_per_lock", (rss_after - rss_before) / n <= 1024}});
  for (auto& l : locks) (void)l->Release();
}

}  // namespace

int main(int argc, char** argv) {
  const Flags f = ParseFlags(argc, argv);
  std::unique_ptr<lock::harness::RedisServer> server;
  std::string addr = f.redis;
  if (addr.empty()) {
    auto started = lock::harness::RedisServer::Start({.name = "bench-redis"});
    if (!started.ok()) {
      std::cerr << "bench: " << started.status() << "\n";
      return 1;
    }
    server = *std::move(started);
    addr = server->addr();
  }
  const bool all = f.scenario == "all";
  if (all || f.scenario == "uncontended") Uncontended(f, addr);
  if (all || f.scenario == "handoff") Handoff(f, addr);
  if (all || f.scenario == "renewal") Renewal(f, addr);
  return 0;
}
