// Uncontended acquire+release pairs: every thread locks its own key through
// RedisLock, against bare hiredis sending the very same two EVALSHA round
// trips per pair on as many connections as there are threads.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lock/internal/keys.h"
#include "lock/internal/lock_core.h"
#include "lock/internal/token.h"
#include "lock/redis/pool.h"
#include "lock/redis_lock.h"
#include "tools/bench/common.h"

namespace bench {
namespace {

// The raw side's key prefix; the library's side uses "bench:lib:".
constexpr char kRawPrefix[] = "bench:raw:";

// Separate functions so that callgrind can count each side on its own
// (--toggle-collect=bench::RawPairs / bench::LibPairs).
[[gnu::noinline]] bool RawPairs(const RawPair& raw, int n) {
  bool ok = true;
  for (int i = 0; i < n; ++i) ok &= raw.Run();
  return ok;
}

[[gnu::noinline]] bool LibPairs(lock::RedisLock& lk, int n) {
  bool ok = true;
  for (int i = 0; i < n; ++i) ok &= lk.Acquire().ok() && lk.Release().ok();
  return ok;
}

}  // namespace

void Uncontended(const Flags& f, const std::string& addr) {
  // A token of the library's own length, so both sides send the same bytes.
  const std::string token = lock::internal::NewOwnerToken();
  for (int threads : f.threads) {
    std::vector<std::unique_ptr<RawPair>> raw;
    for (int t = 0; t < threads; ++t) {
      raw.push_back(MutexRawPair(addr, kRawPrefix, absl::StrCat("k", t), token));
    }
    auto pool = std::make_shared<lock::redis::ConnectionPool>(
        lock::redis::PoolOptions{.connection = {.addr = addr}, .max_size = threads});
    auto policy = BenchPolicy("bench:lib:");
    std::vector<std::unique_ptr<lock::RedisLock>> locks;
    for (int t = 0; t < threads; ++t) {
      locks.push_back(*lock::internal::NewRedisLock(pool, policy, absl::StrCat("k", t)));
    }
    const AbResult r = Interleave(
        threads, f.seconds, f.phase_ms, [&](int t) { return raw[t]->Run(); },
        [&](int t) { return locks[t]->Acquire().ok() && locks[t]->Release().ok(); });
    const double ratio = r.b.per_s / r.a.per_s;
    nlohmann::json line = AbFields("uncontended", threads, r);
    line["connections"] = threads;
    if (threads == 1 || threads == 16) {
      const double target = threads == 1 ? 0.95 : 0.9;
      line["target_ratio"] = target;
      line["target_met"] = ratio >= target;
    }
    Emit(line);
  }
}

// A fixed number of single-threaded pairs on each side: client CPU time per
// pair (this thread only), and a fixed workload for instruction counts under
// callgrind (whose timing means nothing).
void Pairs(const Flags& f, const std::string& addr) {
  const std::string token = lock::internal::NewOwnerToken();
  const std::unique_ptr<RawPair> raw = MutexRawPair(addr, kRawPrefix, "k0", token);
  auto pool = std::make_shared<lock::redis::ConnectionPool>(
      lock::redis::PoolOptions{.connection = {.addr = addr}, .max_size = 1});
  auto lk = *lock::internal::NewRedisLock(pool, BenchPolicy("bench:lib:"), "k0");
  // Warm up both (connections, script cache, thread-locals) outside the count.
  if (!RawPairs(*raw, 10) || !LibPairs(*lk, 10)) std::abort();
  double raw_cpu = 0, lib_cpu = 0, raw_wall = 0, lib_wall = 0;
  bool ok = true;
  // Alternating blocks, so that both sides see the same machine.
  constexpr int kBlocks = 10;
  for (int b = 0; b < kBlocks; ++b) {
    const int n = f.iterations / kBlocks + (b < f.iterations % kBlocks ? 1 : 0);
    double c0 = ThreadCpuSeconds();
    Clock::time_point t0 = Clock::now();
    ok &= RawPairs(*raw, n);
    raw_cpu += ThreadCpuSeconds() - c0;
    raw_wall += std::chrono::duration<double>(Clock::now() - t0).count();
    c0 = ThreadCpuSeconds();
    t0 = Clock::now();
    ok &= LibPairs(*lk, n);
    lib_cpu += ThreadCpuSeconds() - c0;
    lib_wall += std::chrono::duration<double>(Clock::now() - t0).count();
  }
  const double n = f.iterations;
  Emit({{"scenario", "pairs"},
        {"iterations", f.iterations},
        {"ok", ok},
        {"lib_cpu_us_per_pair", Round3(lib_cpu / n * 1e6)},
        {"raw_cpu_us_per_pair", Round3(raw_cpu / n * 1e6)},
        {"lib_wall_us_per_pair", Round3(lib_wall / n * 1e6)},
        {"raw_wall_us_per_pair", Round3(raw_wall / n * 1e6)}});
}

}  // namespace bench
