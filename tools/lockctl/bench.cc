// lockctl bench: how fast the configured Redis and a policy hand locks out.
//
// Two scenarios, each for --seconds with --threads threads, each thread
// reusing one RedisLock instance:
//   uncontended  every thread locks and unlocks its own key: the round-trip
//                floor of acquire + release under the policy
//   handoff      all threads take turns on one key: waiting, wake-up on
//                release (wait.notify) and retry under the policy
// This is an operator's smoke test of a deployment, not the library's
// benchmark: //tools/bench measures against a raw hiredis baseline.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "integration/harness/redis_server.h"
#include "lock/internal/keys.h"
#include "lock/internal/token.h"
#include "lock/lock.h"
#include "tools/lockctl/cli.h"
#include "tools/lockctl/commands.h"
#include "tools/lockctl/stats_dump.h"

ABSL_FLAG(std::string, policy, "",
          "P: the policy to use; required with a configuration (without one: "
          "the built-in \"bench\")");
ABSL_FLAG(double, seconds, 3, "S: seconds per scenario, (0, 3600]");
ABSL_FLAG(int, threads, 4, "N: threads, 1..1024");

namespace lockctl {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kEmbeddedConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"], "pool_size": 64 } },
  "policies": {
    "bench": { "key_prefix": "", "ttl": "10s",
               "wait": { "timeout": "10s", "notify": true },
               "retry": { "initial_delay": "1ms", "max_delay": "20ms" } }
  }
})json";

struct Result {
  std::string scenario;
  int threads = 0;
  double seconds = 0;
  int64_t pairs = 0;
  int64_t busy = 0;  // IsBusy / IsSkipped outcomes (on_busy fail / skip)
  int64_t errors = 0;
  absl::Status first_status;
  std::vector<double> latency_s;  // per pair, sorted

  double Rate() const { return seconds > 0 ? pairs / seconds : 0; }
  double Quantile(double q) const {
    if (latency_s.empty()) return 0;
    size_t i = std::min(latency_s.size() - 1,
                        static_cast<size_t>(q * latency_s.size()));
    return latency_s[i];
  }
};

void DrawProgress(const std::string& scenario, double elapsed, double total,
                  int64_t pairs) {
  constexpr int kWidth = 24;
  const int filled =
      std::clamp(static_cast<int>(kWidth * elapsed / total), 0, kWidth);
  std::cerr << absl::StrFormat("\r  %-12s [%s%s] %4.1fs/%.1fs  %d pairs ",
                               scenario, std::string(filled, '#'),
                               std::string(kWidth - filled, '.'),
                               std::min(elapsed, total), total, pairs)
            << std::flush;
}

Result RunScenario(lock::Locker& locker, const std::string& policy,
                   const std::string& scenario,
                   const std::vector<std::string>& keys, int threads,
                   double seconds, bool progress) {
  Result res;
  res.scenario = scenario;
  res.threads = threads;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> pairs{0};
  std::mutex mu;
  std::vector<std::thread> pool;
  const Clock::time_point start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      std::vector<double> lat;
      int64_t busy = 0, errors = 0;
      absl::Status first;
      absl::StatusOr<std::unique_ptr<lock::RedisLock>> lk =
          locker.NewLock(policy, keys[t % keys.size()]);
      if (!lk.ok()) {
        std::lock_guard<std::mutex> l(mu);
        ++res.errors;
        if (res.first_status.ok()) res.first_status = lk.status();
        return;
      }
      while (!stop.load(std::memory_order_relaxed)) {
        const Clock::time_point t0 = Clock::now();
        absl::Status s = (*lk)->Acquire();
        if (s.ok()) s = (*lk)->Release();
        if (s.ok()) {
          lat.push_back(
              std::chrono::duration<double>(Clock::now() - t0).count());
          pairs.fetch_add(1, std::memory_order_relaxed);
        } else if (lock::IsBusy(s) || lock::IsSkipped(s)) {
          ++busy;
        } else {
          ++errors;
          if (first.ok()) first = s;
          // Redis down: don't spin; the error is reported once at the end.
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
      std::lock_guard<std::mutex> l(mu);
      res.latency_s.insert(res.latency_s.end(), lat.begin(), lat.end());
      res.busy += busy;
      res.errors += errors;
      if (res.first_status.ok() && !first.ok()) res.first_status = first;
    });
  }
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(seconds));
  while (Clock::now() < end) {
    std::this_thread::sleep_for(std::min<Clock::duration>(
        std::chrono::milliseconds(100), end - Clock::now()));
    if (progress) {
      DrawProgress(scenario,
                   std::chrono::duration<double>(Clock::now() - start).count(),
                   seconds, pairs.load());
    }
  }
  stop = true;
  for (auto& th : pool) th.join();
  res.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  res.pairs = pairs.load();
  std::sort(res.latency_s.begin(), res.latency_s.end());
  if (progress) {
    DrawProgress(scenario, seconds, seconds, res.pairs);
    std::cerr << "\n";
  }
  return res;
}

int Bench(const std::vector<std::string>& positional) {
  if (!positional.empty()) {
    return UsageError("bench", "unexpected argument \"" + positional[0] + "\"");
  }
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const int threads = absl::GetFlag(FLAGS_threads);
  for (const absl::Status& s :
       {CheckFlag(FLAGS_seconds, seconds > 0 && seconds <= 3600,
                  "a number in (0, 3600]"),
        CheckFlag(FLAGS_threads, threads >= 1 && threads <= 1024,
                  "a number in 1..1024")}) {
    if (!s.ok()) return UsageError("bench", std::string(s.message()));
  }

  // Where: the configured policy, or a throwaway server with a built-in one.
  std::unique_ptr<lock::harness::RedisServer> embedded;
  absl::StatusOr<std::string> config = ConfigPath();
  std::string policy_name = absl::GetFlag(FLAGS_policy);
  if (config.ok()) {
    if (policy_name.empty())
      return UsageError("bench", "bench needs --policy P");
  } else {
    auto server =
        lock::harness::RedisServer::Start({.name = "lockctl-bench-redis"});
    if (!server.ok()) {
      std::cerr << "lockctl: no --config or LOCK_CONFIG, and no redis-server "
                   "could be "
                   "started: "
                << server.status().message() << "\n";
      return kExitRedis;
    }
    embedded = *std::move(server);
    std::string json = kEmbeddedConfig;
    json.replace(json.find("ADDR"), 4, embedded->addr());
    char tmpl[] = "/tmp/lockctl-bench.XXXXXX.json";
    const int fd = mkstemps(tmpl, 5);
    if (fd < 0) {
      std::perror("lockctl: mkstemps");
      return kExitRefused;
    }
    if (write(fd, json.data(), json.size()) !=
        static_cast<ssize_t>(json.size())) {
      std::perror("lockctl: write");
      close(fd);
      return kExitRefused;
    }
    close(fd);
    config = std::string(tmpl);
    if (policy_name.empty()) policy_name = "bench";
  }
  absl::StatusOr<PolicyContext> ctx = OpenPolicy(*config, policy_name);
  if (embedded) std::remove(config->c_str());
  if (!ctx.ok()) return Fail(ctx.status());

  // One round trip first: a Redis that is down is an exit 3 up front, not a
  // table of errors.
  const std::string token = lock::internal::NewOwnerToken();
  const std::string run = token.substr(token.size() - 8);
  const std::string base = absl::StrCat("lockctl-bench:", run);
  {
    absl::StatusOr<std::unique_ptr<lock::RedisLock>> probe =
        ctx->locker->NewLock(policy_name, base + ":probe");
    if (!probe.ok()) return Fail(probe.status());
    if (absl::Status s = (*probe)->Inspect().status(); !s.ok()) return Fail(s);
  }

  const bool json = absl::GetFlag(FLAGS_json);
  const bool progress = !json && StderrIsTty();
  if (!json) {
    std::cout << "lockctl bench: policy " << policy_name << " on "
              << ctx->Where() << (embedded ? " (throwaway redis-server)" : "")
              << ", " << threads << " threads, " << seconds
              << "s per scenario\n"
              << std::flush;
  }
  std::vector<std::string> own_keys;
  for (int t = 0; t < threads; ++t)
    own_keys.push_back(absl::StrCat(base, ":t", t));
  const std::vector<std::string> shared_key = {base + ":handoff"};

  std::vector<Result> results;
  results.push_back(RunScenario(*ctx->locker, policy_name, "uncontended",
                                own_keys, threads, seconds, progress));
  const lock::PolicyStats middle = lock::GetStats().per_policy[policy_name];
  results.push_back(RunScenario(*ctx->locker, policy_name, "handoff",
                                shared_key, threads, seconds, progress));
  const lock::PolicyStats after = lock::GetStats().per_policy[policy_name];

  // Fence records outlive the bench by fencing_retention; its own are
  // removed, one DEL per key (on a cluster each key has a slot of its own),
  // on every master (Redlock).
  std::vector<std::string> bench_keys = own_keys;
  bench_keys.push_back(shared_key[0]);
  for (const std::string& k : bench_keys) {
    const std::string fence(lock::internal::LockKeys(ctx->policy->key_prefix, k).fence());
    for (size_t home = 0; home < ctx->reach->homes(); ++home) {
      (void)ctx->reach->Command(home, fence, {"DEL", fence});
    }
  }

  const int64_t notify =
      after.waits_woken_by_notify - middle.waits_woken_by_notify;
  const int64_t timer =
      after.waits_woken_by_timer - middle.waits_woken_by_timer;
  if (json) {
    for (const Result& r : results) {
      nlohmann::json line = {{"scenario", r.scenario},
                             {"policy", policy_name},
                             {"redis", ctx->Where()},
                             {"threads", r.threads},
                             {"seconds", r.seconds},
                             {"pairs", r.pairs},
                             {"pairs_per_s", std::round(r.Rate() * 10) / 10},
                             {"p50_ms", r.Quantile(0.50) * 1e3},
                             {"p99_ms", r.Quantile(0.99) * 1e3},
                             {"busy", r.busy},
                             {"errors", r.errors}};
      if (r.scenario == "handoff") {
        line["waits_woken_by_notify"] = notify;
        line["waits_woken_by_timer"] = timer;
      }
      std::cout << line.dump() << "\n";
    }
  } else {
    std::vector<std::vector<std::string>> rows = {{"SCENARIO", "THREADS",
                                                   "PAIRS", "PAIRS/S", "P50",
                                                   "P99", "BUSY", "ERRORS"}};
    for (const Result& r : results) {
      rows.push_back({r.scenario, absl::StrCat(r.threads),
                      absl::StrCat(r.pairs), absl::StrFormat("%.0f", r.Rate()),
                      FormatSeconds(r.Quantile(0.5)),
                      FormatSeconds(r.Quantile(0.99)), absl::StrCat(r.busy),
                      absl::StrCat(r.errors)});
    }
    std::cout << "\n" << RenderTable(rows);
    std::cout << "\nhandoff waits: " << notify
              << " woken by the release notification, " << timer
              << " by the backoff timer\n";
  }
  int64_t pairs = 0;
  for (const Result& r : results) {
    pairs += r.pairs;
    if (!r.first_status.ok()) {
      std::cerr << "lockctl: " << r.scenario << ": " << r.errors
                << " failed pairs; first: " << r.first_status.message() << "\n";
    }
  }
  for (const Result& r : results) {
    if (r.pairs == 0 && !r.first_status.ok())
      return ExitCodeFor(r.first_status);
  }
  return pairs > 0 ? kExitOk : kExitRedis;
}

}  // namespace

Command BenchCommand() {
  return {
      .name = "bench",
      .usage = R"text(
usage: lockctl bench [--policy P] [--seconds S] [--threads N]
                     [--config FILE|DIR] [--json]
)text",
      .about = R"text(
Runs two scenarios against the policy's Redis, S seconds each:
  uncontended  each thread acquires and releases its own key in a loop
  handoff      all threads contend for one key, handing it over
and prints pairs (acquire + release) per second and the p50/p99 latency
of a pair (for handoff: including the wait). A progress bar shows on a
terminal. Keys are "lockctl-bench:<random>:..." under the policy's
prefix; their fencing counters are deleted afterwards. --json prints one
JSON object per scenario, one per line.

Without --config and LOCK_CONFIG, starts a throwaway redis-server and a
built-in policy "bench" (ttl 10s, wait with notify).
)text",
      .flags = {Opt(FLAGS_policy), Opt(FLAGS_seconds), Opt(FLAGS_threads),
                Opt(FLAGS_config), Opt(FLAGS_json)},
      .exit_codes = R"text(
Exit codes: 0 done, 1 bad configuration or unknown policy, 2 usage
error, 3 Redis unreachable or failing (also when every pair failed).
)text",
      .run = Bench,
  };
}

}  // namespace lockctl
