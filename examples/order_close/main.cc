// The demo: an order service whose workers close a shared set of orders
// concurrently, each close protected by lock::With("order-close", ...).
//
//   bazel run //examples/order_close                  # embedded redis-server
//   bazel run //examples/order_close -- --redis=127.0.0.1:6379
//   LOCK_CONFIG=/etc/locks.json bazel run //examples/order_close
//
// W worker processes × T threads walk the orders in roughly the same order,
// so they collide on the same orders all the time. Closing an order is a
// deliberately non-atomic read-modify-write in Redis (read status, read the
// close count, write both back), safe only under the lock; each close also
// records its fencing token. While they run, the coordinator shows orders
// closed, lock calls, busy waits and retries per second, from the lock
// statistics every worker publishes (lock::StatsJson()). At the end it
// verifies that every order was closed exactly once, that no two critical
// sections on one order ever overlapped, that fencing tokens strictly
// increased per order, and that the library's own statistics agree with what
// the workers saw; it prints the summary and the lock statistics per policy
// and exits 1 if any check fails.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "examples/common/demo.h"
#include "examples/common/redis_data.h"
#include "lock/lock.h"
#include "nlohmann/json.hpp"
#include "tools/lockctl/stats_dump.h"
#include "util/flags.h"

ABSL_FLAG(int, workers, 4, "worker processes");
ABSL_FLAG(int, threads, 4, "threads per worker");
ABSL_FLAG(int, orders, 500, "orders to close");

namespace {

using demo::Clock;
using demo::ReplyPtr;

constexpr char kProgram[] = "order_close";
constexpr char kPolicy[] = "order-close";
constexpr char kUsage[] =
    "order_close [--workers N] [--threads N] [--orders N] [--redis host:port]\n"
    "                   [--config policies.json]";

struct Keys {
  std::string run;
  std::string Order(int i) const {
    return absl::StrCat("demo:", run, ":order:", i);
  }
  std::string Fences(int i) const { return Order(i) + ":fences"; }
  std::string Inside(int i) const { return Order(i) + ":inside"; }
  std::string Counter(absl::string_view name) const {
    return absl::StrCat("demo:", run, ":", name);
  }
  std::string Worker(int w) const {
    return absl::StrCat("demo:", run, ":worker:", w);
  }
  std::string Stats() const { return Counter("lockstats"); }
  std::string LockKey(int i) const { return absl::StrCat(run, ":", i); }
};

// ---- worker process ---------------------------------------------------------

struct ThreadStats {
  int64_t calls = 0, closed = 0, already_closed = 0, busy = 0, errors = 0;
  std::vector<int64_t> latency_us;       // whole lock::With call
  std::vector<int64_t> acquire_wait_us;  // call -> critical section entered
};

ThreadStats RunThread(int worker, int orders, const Keys& k,
                      const policy::RedisTarget& target, int thread_index) {
  ThreadStats st;
  auto data = demo::Data::Connect(kProgram, target);
  // Everyone walks the orders front to back, shuffled only within small
  // windows: like workers draining one queue, they collide constantly.
  std::vector<int> order(orders);
  for (int i = 0; i < orders; ++i) order[i] = i;
  std::mt19937 rng(worker * 1000 + thread_index);
  for (int i = 0; i < orders; i += 8) {
    std::shuffle(order.begin() + i, order.begin() + std::min(i + 8, orders),
                 rng);
  }
  const std::string me = absl::StrCat("w", worker, "t", thread_index);
  for (int id : order) {
    const Clock::time_point t0 = Clock::now();
    bool closed_now = false;
    absl::Status s = lock::With(kPolicy, k.LockKey(id), [&](lock::Held& held) {
      st.acquire_wait_us.push_back(
          std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() -
                                                                t0)
              .count());
      demo::Data& c = *data;
      // Overlap detector: only one critical section per order may be inside.
      if (c.Cmd({"SET", k.Inside(id), "1", "NX", "PX", "60000"})->type ==
          REDIS_REPLY_NIL) {
        c.Cmd({"INCR", k.Counter("overlaps")});
      }
      const std::string fence = absl::StrCat(held.fencing_token());
      c.Cmd({"RPUSH", k.Fences(id), fence});
      if (c.Str({"HGET", k.Order(id), "status"}) == "open") {
        // Non-atomic read-modify-write: two holders at once would both see
        // "open" and the close count would not come out as exactly 1.
        const int64_t closes = c.Int({"HGET", k.Order(id), "closes"});
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        const std::string next = absl::StrCat(closes + 1);
        c.Cmd({"HSET", k.Order(id), "status", "closed", "closes", next,
               "closed_by", me, "fence", fence});
        c.Cmd({"INCR", k.Counter("closed")});
        closed_now = true;
      }
      c.Cmd({"DEL", k.Inside(id)});
      return absl::OkStatus();
    });
    st.latency_us.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0)
            .count());
    ++st.calls;
    data->Cmd({"INCR", k.Counter("calls")});
    if (s.ok()) {
      ++(closed_now ? st.closed : st.already_closed);
    } else if (lock::IsBusy(s)) {
      ++st.busy;
    } else {
      if (st.errors++ < 3)
        std::cerr << "order_close [" << me << "]: " << s << "\n";
    }
  }
  return st;
}

int RunWorker() {
  const int worker = demo::WorkerNumber();
  const int threads = util::FlagAtLeast(FLAGS_threads, 1);
  const int orders = util::FlagAtLeast(FLAGS_orders, 1);
  const std::string config = absl::GetFlag(FLAGS_config);
  if (absl::Status s = lock::Init(config); !s.ok()) {
    std::cerr << "order_close worker: " << s << "\n";
    return 1;
  }
  const policy::RedisTarget target = demo::LoadTarget(kProgram, config);
  Keys k{absl::GetFlag(FLAGS_run)};
  demo::StatsPublisher publisher(kProgram, target, k.Stats(),
                                 absl::StrCat("worker-", worker),
                                 absl::Milliseconds(200));
  std::vector<ThreadStats> stats(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back(
        [&, t] { stats[t] = RunThread(worker, orders, k, target, t); });
  }
  for (auto& t : pool) t.join();
  publisher.Stop();  // final statistics, before Shutdown touches them
  nlohmann::json out = {{"calls", 0},
                        {"closed", 0},
                        {"already_closed", 0},
                        {"busy", 0},
                        {"errors", 0},
                        {"latency_us", nlohmann::json::array()},
                        {"acquire_wait_us", nlohmann::json::array()}};
  for (const ThreadStats& s : stats) {
    out["calls"] = out["calls"].get<int64_t>() + s.calls;
    out["closed"] = out["closed"].get<int64_t>() + s.closed;
    out["already_closed"] =
        out["already_closed"].get<int64_t>() + s.already_closed;
    out["busy"] = out["busy"].get<int64_t>() + s.busy;
    out["errors"] = out["errors"].get<int64_t>() + s.errors;
    for (int64_t l : s.latency_us) out["latency_us"].push_back(l);
    for (int64_t l : s.acquire_wait_us) out["acquire_wait_us"].push_back(l);
  }
  demo::Data::Connect(kProgram, target)
      ->Cmd({"SET", k.Worker(worker), out.dump()});
  lock::Shutdown();
  return 0;
}

// ---- coordinator ------------------------------------------------------------

struct Rates {
  int64_t calls = 0, waits = 0, retries = 0, closed = 0;
};

Rates Sample(demo::Data& data, const Keys& k) {
  Rates r;
  r.closed = data.Int({"GET", k.Counter("closed")});
  r.calls = data.Int({"GET", k.Counter("calls")});
  const lockctl::StatsDump d = demo::CollectStats(data, k.Stats());
  for (const auto& [name, p] : d.per_policy) {
    r.waits += p.waits_woken_by_notify + p.waits_woken_by_timer;
    r.retries += lockctl::DerivedRetries(p);
  }
  return r;
}

int RunCoordinator() {
  const int workers = util::FlagAtLeast(FLAGS_workers, 1);
  const int threads = util::FlagAtLeast(FLAGS_threads, 1);
  const int orders = util::FlagAtLeast(FLAGS_orders, 1);
  auto env = demo::Environment::Prepare(
      kProgram, "examples/order_close/policies.json",
      absl::GetFlag(FLAGS_config), absl::GetFlag(FLAGS_redis));

  // Seed the orders under a fresh run id, so a real Redis is never mixed up.
  Keys k{demo::NewRunId()};
  auto data = demo::Data::Connect(kProgram, env->target());
  for (int i = 0; i < orders; ++i) {
    data->Cmd({"HSET", k.Order(i), "status", "open", "closes", "0"});
  }
  std::cout << "order_close: " << workers << " worker processes x " << threads
            << " threads closing " << orders << " orders on redis "
            << env->Describe() << ", run " << k.run << "\n";

  const Clock::time_point start = Clock::now();
  std::vector<pid_t> pids;
  for (int w = 0; w < workers; ++w) {
    pids.push_back(demo::SpawnSelf(
        {kProgram, absl::StrCat("--worker=", w),
         absl::StrCat("--threads=", threads), absl::StrCat("--orders=", orders),
         "--config=" + env->worker_config(), "--run=" + k.run}));
  }
  // Live progress: per second, from the counters and the workers' lock stats.
  const bool tty = isatty(STDOUT_FILENO);
  Rates last;
  Clock::time_point last_at = start;
  size_t running = pids.size();
  int worker_failures = 0;
  Clock::time_point finished = start;
  while (running > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 250 : 1000));
    for (pid_t& pid : pids) {
      int status = 0;
      if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        --running;
        finished = Clock::now();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++worker_failures;
      }
    }
    if (running == 0) break;
    const Clock::time_point now = Clock::now();
    const Rates r = Sample(*data, k);
    const double dt = std::chrono::duration<double>(now - last_at).count();
    const std::string line = absl::StrFormat(
        "  %5.1fs  closed %d/%d (%.0f/s)  lock calls %.0f/s  busy waits %.0f/s "
        " "
        "retries %.0f/s",
        std::chrono::duration<double>(now - start).count(), r.closed, orders,
        (r.closed - last.closed) / dt, (r.calls - last.calls) / dt,
        (r.waits - last.waits) / dt, (r.retries - last.retries) / dt);
    std::cout << (tty ? "\r\033[K" : "") << line << (tty ? "" : "\n")
              << std::flush;
    last = r;
    last_at = now;
  }
  const double elapsed =
      std::chrono::duration<double>(finished - start).count();
  {
    // The whole run's averages, so even a run shorter than one progress
    // interval shows its rates.
    const Rates r = Sample(*data, k);
    std::cout << (tty ? "\r\033[K" : "")
              << absl::StrFormat(
                     "  %5.1fs  closed %d/%d (%.0f/s)  lock calls %.0f/s  busy "
                     "waits %.0f/s  "
                     "retries %.0f/s  (whole run)\n",
                     elapsed, r.closed, orders, r.closed / elapsed,
                     r.calls / elapsed, r.waits / elapsed, r.retries / elapsed);
  }

  // Verify.
  int64_t not_closed = 0, double_closed = 0, fence_violations = 0;
  for (int i = 0; i < orders; ++i) {
    if (data->Str({"HGET", k.Order(i), "status"}) != "closed") ++not_closed;
    if (data->Int({"HGET", k.Order(i), "closes"}) > 1) ++double_closed;
    ReplyPtr fences = data->Cmd({"LRANGE", k.Fences(i), "0", "-1"});
    int64_t prev = 0;
    for (size_t j = 0; j < fences->elements; ++j) {
      const int64_t v = demo::IntOf(*fences->element[j]);
      if (v <= prev) ++fence_violations;
      prev = v;
    }
  }
  const int64_t overlaps = data->Int({"GET", k.Counter("overlaps")});
  int64_t calls = 0, closed = 0, already = 0, busy = 0, errors = 0;
  std::vector<int64_t> lat, wait;
  for (int w = 0; w < workers; ++w) {
    const std::string text = data->Str({"GET", k.Worker(w)});
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) continue;
    calls += j["calls"].get<int64_t>();
    closed += j["closed"].get<int64_t>();
    already += j["already_closed"].get<int64_t>();
    busy += j["busy"].get<int64_t>();
    errors += j["errors"].get<int64_t>();
    for (const auto& l : j["latency_us"]) lat.push_back(l.get<int64_t>());
    for (const auto& l : j["acquire_wait_us"]) wait.push_back(l.get<int64_t>());
  }
  const lockctl::StatsDump stats = demo::CollectStats(*data, k.Stats());
  const lock::PolicyStats lib = stats.per_policy.count(kPolicy)
                                    ? stats.per_policy.at(kPolicy)
                                    : lock::PolicyStats{};

  // Clean up this run's keys (a real Redis keeps nothing of the demo).
  for (int i = 0; i < orders; ++i) {
    const std::string lock_fence =
        absl::StrCat("{order:close:", k.LockKey(i), "}:fence");
    data->Cmd({"DEL", k.Order(i), k.Fences(i), k.Inside(i), lock_fence});
  }
  data->Cmd({"DEL", k.Counter("closed"), k.Counter("calls"),
             k.Counter("overlaps"), k.Stats()});
  for (int w = 0; w < workers; ++w) data->Cmd({"DEL", k.Worker(w)});

  // The library counted on its side what the workers saw on theirs.
  const bool stats_agree = lib.acquired == calls - busy - errors &&
                           lib.busy == busy && lib.released == lib.acquired &&
                           lib.lost == 0;
  const bool ok = not_closed == 0 && double_closed == 0 && overlaps == 0 &&
                  fence_violations == 0 && closed == orders &&
                  worker_failures == 0 && errors == 0 && stats_agree;
  auto ms = [](int64_t us) { return absl::StrFormat("%.2f ms", us / 1000.0); };
  std::cout << "\nverification\n";
  demo::Row("orders closed exactly once",
            absl::StrCat(orders - not_closed - double_closed, "/", orders),
            not_closed == 0 && double_closed == 0);
  demo::Row("orders closed twice", absl::StrCat(double_closed),
            double_closed == 0);
  demo::Row("overlapping critical sections", absl::StrCat(overlaps),
            overlaps == 0);
  demo::Row("fencing tokens out of order", absl::StrCat(fence_violations),
            fence_violations == 0);
  demo::Row("worker processes failed", absl::StrCat(worker_failures),
            worker_failures == 0);
  demo::Row("lock stats agree with the calls",
            absl::StrCat(lib.acquired, " acquired"), stats_agree);
  std::cout << "\nlock calls (policy " << kPolicy << ")\n";
  demo::Row("lock::With calls", absl::StrCat(calls));
  demo::Row("  closed the order", absl::StrCat(closed), closed == orders);
  demo::Row("  found it already closed", absl::StrCat(already));
  demo::Row("  busy (gave up waiting)", absl::StrCat(busy));
  demo::Row("  errors", absl::StrCat(errors), errors == 0);
  demo::Row("throughput", absl::StrFormat("%.0f calls/s", calls / elapsed));
  demo::Row("acquire wait p50 (measured)", ms(demo::Percentile(wait, 0.50)));
  demo::Row("acquire wait p90 (measured)", ms(demo::Percentile(wait, 0.90)));
  demo::Row("acquire wait p99 (measured)", ms(demo::Percentile(wait, 0.99)));
  demo::Row("acquire wait max (measured)", ms(demo::Percentile(wait, 1.0)));
  demo::Row("With latency p50", ms(demo::Percentile(lat, 0.50)));
  demo::Row("With latency p99", ms(demo::Percentile(lat, 0.99)));
  demo::Row("With latency max", ms(demo::Percentile(lat, 1.0)));
  demo::Row("elapsed", absl::StrFormat("%.1f s", elapsed));
  demo::PrintLockStats(
      stats,
      absl::StrCat("lock statistics per policy (lock::GetStats() of the ",
                   workers, " workers, summed)"));
  std::cout << "\n"
            << (ok ? "PASS" : "FAIL") << ": every order closed exactly once, "
            << "no overlapping holders, fences strictly increasing\n";
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  util::ParseFlags(argc, argv, kUsage);
  if (!absl::GetFlag(FLAGS_worker).empty()) return RunWorker();
  return RunCoordinator();
}
