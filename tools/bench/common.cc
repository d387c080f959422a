#include "tools/bench/common.h"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <latch>
#include <mutex>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "lock/internal/lock_core.h"
#include "lock/internal/notifier.h"
#include "lock/redis/pool.h"
#include "lock/redis_lock.h"
#include "lock/scripts/embedded.h"
#include "lock/stats.h"
#include "util/flags.h"
#include "util/proc.h"

ABSL_FLAG(std::vector<std::string>, scenario, {"all"},
          "comma-separated scenarios: all (every one but pairs and peer), uncontended, "
          "handoff, kinds, async, renewal, redlock, cluster, tls, overhead, "
          "pairs, peer");
ABSL_FLAG(double, seconds, 6,
          "measured time of one point (one thread count, one K, ...)");
ABSL_FLAG(double, phase_ms, 100,
          "length of one A or B phase of an interleaved comparison");
ABSL_FLAG(util::IntList, threads, util::IntList({1, 4, 16, 64}),
          "thread counts of the uncontended scenario");
ABSL_FLAG(util::IntList, waiters, util::IntList({2, 8, 32}),
          "waiter counts K of the handoff scenario");
ABSL_FLAG(util::IntList, hold_ms, util::IntList({0, 1}),
          "hold times of the handoff scenario");
ABSL_FLAG(util::IntList, renewal_locks, util::IntList({10000, 100000}),
          "held lock counts of the renewal scenario");
ABSL_FLAG(double, renewal_seconds, 60, "measured time of one renewal point");
ABSL_FLAG(int, renewal_ttl_s, 5,
          "lease of the renewal scenario's locks, in seconds");
ABSL_FLAG(util::IntList, redlock_masters, util::IntList({3, 5}),
          "master counts of the redlock scenario");
ABSL_FLAG(util::IntList, cluster_threads, util::IntList({1, 16}),
          "thread counts of the cluster scenario");
ABSL_FLAG(int, iterations, 2000, "pairs of --scenario=pairs (for callgrind)");
ABSL_FLAG(std::string, redis, "",
          "host:port of a Redis to use; empty: start an embedded one");

namespace bench {

Flags ParseFlags(int argc, char** argv) {
  util::ParseFlags(
      argc, argv,
      "benchmarks of the lock library, one JSON line per result.\n"
      "  bench [--scenario=all] [--seconds=6] ... (flag names take - or _)");
  Flags f;
  f.scenarios = absl::GetFlag(FLAGS_scenario);
  f.seconds = absl::GetFlag(FLAGS_seconds);
  f.phase_ms = absl::GetFlag(FLAGS_phase_ms);
  if (f.phase_ms <= 0) util::UsageError("--phase_ms must be > 0");
  f.threads = absl::GetFlag(FLAGS_threads).values;
  f.waiters = absl::GetFlag(FLAGS_waiters).values;
  f.hold_ms = absl::GetFlag(FLAGS_hold_ms).values;
  f.renewal_locks = absl::GetFlag(FLAGS_renewal_locks).values;
  f.renewal_seconds = absl::GetFlag(FLAGS_renewal_seconds);
  f.renewal_ttl_s = util::FlagAtLeast(FLAGS_renewal_ttl_s, 1);
  f.redlock_masters = absl::GetFlag(FLAGS_redlock_masters).values;
  f.cluster_threads = absl::GetFlag(FLAGS_cluster_threads).values;
  f.iterations = util::FlagAtLeast(FLAGS_iterations, 1);
  f.redis = absl::GetFlag(FLAGS_redis);
  return f;
}

bool Wants(const Flags& f, const std::string& scenario) {
  for (const std::string& s : f.scenarios) {
    // "pairs" is a tool for callgrind and "peer" a worker of
    // tools/bench/peers/run.py: neither is part of "all".
    if (s == scenario || (s == "all" && scenario != "pairs" && scenario != "peer")) return true;
  }
  return false;
}

void Emit(const nlohmann::json& line) { std::cout << line.dump() << std::endl; }

double Round3(double v) { return std::round(v * 1000) / 1000; }

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

double Mean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double sum = 0;
  for (double x : v) sum += x;
  return sum / v.size();
}

ContextPtr RawConnect(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  ContextPtr c(
      redisConnect(addr.substr(0, colon).c_str(), std::atoi(addr.c_str() + colon + 1)));
  if (c == nullptr || c->err) {
    std::cerr << "bench: cannot connect to " << addr << "\n";
    std::exit(1);
  }
  return c;
}

RawCommand::RawCommand(std::vector<std::string> args) : args_(std::move(args)) {
  for (const std::string& a : args_) {
    argv_.push_back(a.data());
    lens_.push_back(a.size());
  }
}

lock::redis::ReplyPtr RawCommand::Send(redisContext* c) const {
  return lock::redis::ReplyPtr(static_cast<redisReply*>(redisCommandArgv(
      c, static_cast<int>(argv_.size()), const_cast<const char**>(argv_.data()),
      lens_.data())));
}

bool RawCommand::Write(redisContext* c) const {
  if (redisAppendCommandArgv(c, static_cast<int>(argv_.size()),
                             const_cast<const char**>(argv_.data()), lens_.data()) != REDIS_OK) {
    return false;
  }
  int done = 0;
  while (!done) {
    if (redisBufferWrite(c, &done) != REDIS_OK) return false;
  }
  return true;
}

void RawLoadScripts(redisContext* c) {
  namespace s = lock::scripts;
  for (const s::EmbeddedScript* script :
       {&s::k_acquire, &s::k_release, &s::k_sem_acquire, &s::k_sem_release,
        &s::k_rw_read_acquire, &s::k_rw_read_release, &s::k_rw_write_acquire,
        &s::k_fair_acquire, &s::k_fair_release}) {
    RawCommand({"SCRIPT", "LOAD", std::string(script->body)}).Send(c);
  }
}

std::vector<std::string> RawEvalshaArgs(const lock::internal::PrimitiveCall& call) {
  std::vector<std::string> argv = {"EVALSHA", std::string(call.script->sha1),
                                   std::to_string(call.keys.size())};
  argv.insert(argv.end(), call.keys.begin(), call.keys.end());
  argv.insert(argv.end(), call.args.begin(), call.args.end());
  return argv;
}

RawPair::RawPair(const std::string& addr, std::vector<std::string> acquire,
                 std::vector<std::string> release)
    : ctx_(RawConnect(addr)), acquire_(std::move(acquire)), release_(std::move(release)) {
  RawLoadScripts(ctx_.get());
}

bool RawPair::Run() const {
  lock::redis::ReplyPtr a = acquire_.Send(ctx_.get());
  lock::redis::ReplyPtr r = release_.Send(ctx_.get());
  return a != nullptr && r != nullptr && a->type == REDIS_REPLY_ARRAY && a->elements == 3 &&
         a->element[0]->integer == 1 && r->type == REDIS_REPLY_INTEGER && r->integer == 1;
}

std::unique_ptr<RawPair> MutexRawPair(const std::string& addr, const std::string& prefix,
                                      const std::string& key, const std::string& token) {
  const lock::internal::LockKeys keys(prefix, key);
  return std::make_unique<RawPair>(addr, RawAcquireArgs(keys, token, /*fencing=*/true),
                                   RawReleaseArgs(keys, token));
}

int64_t ScriptCalls(redisContext* c) {
  lock::redis::ReplyPtr info = RawCommand({"INFO", "commandstats"}).Send(c);
  if (info == nullptr || info->type != REDIS_REPLY_STRING) {
    std::cerr << "bench: INFO commandstats failed\n";
    std::exit(1);
  }
  // Lines such as "cmdstat_evalsha:calls=12,usec=...".
  int64_t calls = 0;
  for (absl::string_view line :
       absl::StrSplit(absl::string_view(info->str, info->len), "\r\n")) {
    if (!absl::ConsumePrefix(&line, "cmdstat_eval")) continue;
    const size_t at = line.find(":calls=");
    if (at == absl::string_view::npos) continue;
    line.remove_prefix(at + 7);
    int64_t n = 0;
    if (absl::SimpleAtoi(line.substr(0, line.find(',')), &n)) calls += n;
  }
  return calls;
}

std::vector<std::string> RawAcquireArgs(const lock::internal::LockKeys& keys,
                                        const std::string& token, bool fencing) {
  return {"EVALSHA", std::string(lock::scripts::k_acquire.sha1), "3",
          std::string(keys.owner()), std::string(keys.fence()), keys.CancelMarker(token),
          token, "30000", "1", fencing ? "1" : "0", "86400000"};
}

std::vector<std::string> RawReleaseArgs(const lock::internal::LockKeys& keys,
                                        const std::string& token) {
  return {"EVALSHA", std::string(lock::scripts::k_release.sha1), "1",
          std::string(keys.owner()), token, "0", std::string(keys.channel()), "0"};
}

std::vector<double> PingRttUs(const std::string& addr, int n) {
  auto c = RawConnect(addr);
  const RawCommand ping({"PING"});
  std::vector<double> us;
  for (int i = 0; i < n; ++i) {
    const Clock::time_point t = Clock::now();
    ping.Send(c.get());
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
  }
  return us;
}

PingSampler::PingSampler(const std::string& addr)
    : thread_([this, c = RawConnect(addr)] {
        const RawCommand ping({"PING"});
        while (!stop_.load()) {
          const Clock::time_point t = Clock::now();
          ping.Send(c.get());
          rtt_us_.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
      }) {}

PingSampler::~PingSampler() { Stop(); }

std::vector<double> PingSampler::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  return rtt_us_;
}

std::shared_ptr<policy::Policy> BenchPolicy(const std::string& prefix) {
  auto p = std::make_shared<policy::Policy>();
  p->name = "bench";
  p->key_prefix = prefix;
  return p;
}

std::shared_ptr<policy::Policy> ContendedPolicy(const std::string& name) {
  auto p = BenchPolicy(absl::StrCat("bench:", name, ":"));
  // Statistics are per policy name: each run reads its own.
  p->name = absl::StrCat("bench-", name);
  p->wait.timeout = absl::Seconds(60);
  p->retry.max_attempts = 1 << 30;
  return p;
}

ContendResult Contend(const std::string& addr, const ContendOptions& o) {
  const int k = o.threads;
  lock::redis::ConnectionOptions conn{.addr = addr};
  auto pool = std::make_shared<lock::redis::ConnectionPool>(
      lock::redis::PoolOptions{.connection = conn, .max_size = k + 2});
  auto notifier = std::make_shared<lock::internal::ReleaseNotifier>(conn);
  std::mutex mu;
  std::condition_variable taken;  // someone acquired
  int64_t last_release_ns = 0;    // when the last holder began releasing
  int last_holder = -1;
  ContendResult r;
  double held_ns = 0;
  std::atomic<bool> stop{false};

  PingSampler pings(addr);

  auto admin = RawConnect(addr);
  const int64_t scripts_before = ScriptCalls(admin.get());
  lock::Stats stats_before = lock::GetStats();
  const double cpu_before = CpuSeconds();
  std::vector<std::thread> threads;
  const Clock::time_point start = Clock::now();
  for (int t = 0; t < k; ++t) {
    threads.emplace_back([&, t] {
      auto lk = *lock::internal::NewRedisLock(pool, o.policy, "one", notifier);
      while (!stop.load()) {
        if (!lk->Acquire().ok()) continue;
        const int64_t got = Clock::now().time_since_epoch().count();
        {
          std::lock_guard<std::mutex> l(mu);
          if (last_holder >= 0 && last_holder != t) {
            r.handoff_ms.push_back((got - last_release_ns) / 1e6);
          }
          last_holder = t;
          ++r.acquisitions;
        }
        taken.notify_all();
        if (o.hold.count() > 0) std::this_thread::sleep_for(o.hold);
        const int64_t rel = Clock::now().time_since_epoch().count();
        {
          std::lock_guard<std::mutex> l(mu);
          last_release_ns = rel;
          held_ns += rel - got;
        }
        (void)lk->Release();
        if (o.outside.count() > 0) std::this_thread::sleep_for(o.outside);
        if (o.step_back) {
          std::unique_lock<std::mutex> l(mu);
          taken.wait_for(l, std::chrono::milliseconds(100),
                         [&] { return last_holder != t || stop.load(); });
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop = true;
  taken.notify_all();
  for (auto& th : threads) th.join();
  r.elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  r.client_cores = (CpuSeconds() - cpu_before) / r.elapsed_s;
  r.rtt_us = pings.Stop();
  r.script_calls = ScriptCalls(admin.get()) - scripts_before;
  lock::Stats stats_after = lock::GetStats();
  lock::PolicyStats& ps0 = stats_before.per_policy[o.policy->name];
  const lock::PolicyStats& ps = stats_after.per_policy[o.policy->name];
  r.woken_by_notify = ps.waits_woken_by_notify - ps0.waits_woken_by_notify;
  r.woken_by_timer = ps.waits_woken_by_timer - ps0.waits_woken_by_timer;
  r.held_s = held_ns / 1e9;
  return r;
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double ThreadCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double ProcessCpuSeconds(int pid) {
  if (pid <= 0) return 0;
  const std::vector<std::string> fields = util::ProcStatFields(pid);
  // utime and stime: fields 14 and 15 of proc(5), [11] and [12] here.
  double ticks = 0;
  for (size_t i = 11; i <= 12 && i < fields.size(); ++i) ticks += std::atof(fields[i].c_str());
  return ticks / sysconf(_SC_CLK_TCK);
}

int64_t RssBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

int64_t HeapBytes() {
  const struct mallinfo2 m = mallinfo2();
  return static_cast<int64_t>(m.uordblks + m.hblkhd);
}

nlohmann::json AbFields(const std::string& scenario, int threads, const AbResult& r) {
  return {{"scenario", scenario},
          {"threads", threads},
          {"lib_pairs_per_s", static_cast<int64_t>(r.b.per_s)},
          {"raw_pairs_per_s", static_cast<int64_t>(r.a.per_s)},
          {"ratio", Round3(r.b.per_s / r.a.per_s)},
          {"lib_p50_us", Round3(r.b.p50_us)},
          {"raw_p50_us", Round3(r.a.p50_us)},
          {"lib_p99_us", Round3(r.b.p99_us)},
          {"raw_p99_us", Round3(r.a.p99_us)},
          {"lib_pairs", r.b.latency_us.size()},
          {"raw_pairs", r.a.latency_us.size()},
          {"phases", r.phases}};
}

AbResult Interleave(int threads, double seconds, double phase_ms, const Op& a,
                    const Op& b) {
  std::atomic<int> phase{-1};  // -1: warming up; even: a; odd: b
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat[2];
  lat[0].resize(threads);
  lat[1].resize(threads);
  std::latch warm(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      // Connections are opened lazily: open them before anything is timed.
      for (int i = 0; i < 3; ++i) {
        if (!a(t) || !b(t)) {
          std::cerr << "bench: operation failed while warming up\n";
          std::abort();
        }
      }
      warm.count_down();
      while (phase.load() < 0) std::this_thread::yield();
      while (!stop.load(std::memory_order_relaxed)) {
        const int p = phase.load(std::memory_order_acquire);
        const int side = p & 1;
        const Clock::time_point t0 = Clock::now();
        const bool ok = side == 0 ? a(t) : b(t);
        const Clock::time_point t1 = Clock::now();
        if (!ok) {
          std::cerr << "bench: operation failed\n";
          std::abort();
        }
        // An op that straddles a switch belongs to neither side.
        if (phase.load(std::memory_order_acquire) == p && !stop.load()) {
          lat[side][t].push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        }
      }
    });
  }
  warm.wait();
  const int phases = std::max(2, 2 * static_cast<int>(std::lround(seconds * 1000 / phase_ms / 2)));
  for (int p = 0; p < phases; ++p) {
    phase.store(p, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(phase_ms));
  }
  stop = true;
  for (auto& th : pool) th.join();
  AbResult out;
  out.phases = phases;
  for (int side = 0; side < 2; ++side) {
    Side& s = side == 0 ? out.a : out.b;
    for (auto& v : lat[side]) s.latency_us.insert(s.latency_us.end(), v.begin(), v.end());
    s.mean_us = Mean(s.latency_us);
    s.p50_us = Percentile(s.latency_us, 0.5);
    s.p99_us = Percentile(s.latency_us, 0.99);
    s.per_s = s.mean_us > 0 ? threads * 1e6 / s.mean_us : 0;
  }
  return out;
}

}  // namespace bench
