// The policy kinds other than the mutex (issue 15), on the same server in
// the same run:
//   - uncontended read and semaphore acquire+release pairs on one thread
//     against bare hiredis sending the very same two EVALSHA per pair
//     (interleaved, as section 1), and the script calls one pair costs;
//   - a fair lock handed on among 32 waiters: release-to-next-holder latency
//     against the PING round trip, and script calls per handoff;
//   - semaphore utilisation: 32 contenders for 8 permits, each holding one
//     1 ms and asking again at once;
//   - fair and mutex utilisation: 8 threads, each holding the lock 1 ms and
//     then spending 1 ms away from it.
#include <algorithm>
#include <memory>
#include <string>

#include "lock/internal/keys.h"
#include "lock/internal/lock_core.h"
#include "lock/internal/primitive_calls.h"
#include "lock/internal/token.h"
#include "lock/redis/pool.h"
#include "lock/redis/topology.h"
#include "lock/redis_lock.h"
#include "tools/bench/common.h"

namespace bench {
namespace {

using lock::internal::PrimitiveCall;

constexpr int kPermits = 8;
// What the library passes for a default policy: ttl 30 s, one level.
constexpr int64_t kTtlMs = 30000;
// Library pairs counted for the script calls per pair (not timed).
constexpr int kCountedPairs = 1000;

// `lib` against `raw` on one thread, interleaved; then the script calls the
// server ran for kCountedPairs of the library's pairs alone.
void UncontendedPairs(const Flags& f, const std::string& addr, const std::string& row,
                      lock::RedisLock& lib, const RawPair& raw) {
  const auto lib_pair = [&](int) { return lib.Acquire().ok() && lib.Release().ok(); };
  const AbResult r =
      Interleave(1, f.seconds, f.phase_ms, [&](int) { return raw.Run(); }, lib_pair);
  auto admin = RawConnect(addr);
  const int64_t before = ScriptCalls(admin.get());
  for (int i = 0; i < kCountedPairs; ++i) {
    if (!lib_pair(0)) std::abort();
  }
  const double calls = static_cast<double>(ScriptCalls(admin.get()) - before) / kCountedPairs;
  const double ratio = r.b.per_s / r.a.per_s;
  nlohmann::json line = AbFields("kinds", 1, r);
  line["row"] = row;
  line["script_calls_per_pair"] = Round3(calls);
  line["target_ratio"] = 0.9;
  line["target_met"] = ratio >= 0.9;
  line["target_calls_met"] = calls <= 2.0;
  Emit(line);
}

void UncontendedKinds(const Flags& f, const std::string& addr) {
  // A token of the library's own length, so both sides send the same bytes.
  const std::string token = lock::internal::NewOwnerToken();
  auto pool = std::make_shared<lock::redis::ConnectionPool>(
      lock::redis::PoolOptions{.connection = {.addr = addr}, .max_size = 1});
  // The backend Locker builds for a standalone target, for the read side
  // (Locker::NewReadLock's lock), which the pool factory does not offer.
  auto backend = std::make_shared<lock::internal::Backend>();
  backend->homes.push_back(std::make_shared<lock::redis::StandaloneTopology>(pool));
  {
    auto policy = BenchPolicy("bench:lib:");
    policy->kind = policy::LockKind::kReadWrite;
    auto lib = *lock::internal::NewRedisLock(backend, policy, "k0", lock::internal::Access::kRead);
    const lock::internal::ReadWriteKeys keys("bench:raw:", "k0");
    const RawPair raw(addr, RawEvalshaArgs(lock::internal::RwReadAcquire(keys, token, kTtlMs, 1)),
                      RawEvalshaArgs(lock::internal::RwReadRelease(keys, token)));
    UncontendedPairs(f, addr, "read_uncontended", *lib, raw);
  }
  {
    auto policy = BenchPolicy("bench:lib:");
    policy->kind = policy::LockKind::kSemaphore;
    policy->permits = kPermits;
    auto lib = *lock::internal::NewRedisLock(pool, policy, "k0");
    const lock::internal::SemaphoreKeys keys("bench:raw:", "k0");
    const RawPair raw(
        addr, RawEvalshaArgs(lock::internal::SemAcquire(keys, token, kTtlMs, 1, kPermits)),
        RawEvalshaArgs(lock::internal::SemRelease(keys, token)));
    UncontendedPairs(f, addr, "semaphore_uncontended", *lib, raw);
  }
}

std::shared_ptr<policy::Policy> KindPolicy(const std::string& name, policy::LockKind kind) {
  auto p = ContendedPolicy(name);
  p->kind = kind;
  if (kind == policy::LockKind::kSemaphore) p->permits = kPermits;
  return p;
}

nlohmann::json ContendedLine(const std::string& row, const ContendOptions& o,
                             const ContendResult& r) {
  return {{"scenario", "kinds"},
          {"row", row},
          {"threads", o.threads},
          {"hold_ms", Round3(o.hold.count() / 1000.0)},
          {"outside_ms", Round3(o.outside.count() / 1000.0)},
          {"seconds", Round3(r.elapsed_s)},
          {"acquisitions", r.acquisitions},
          {"acquisitions_per_s", Round3(r.acquisitions / r.elapsed_s)},
          {"script_calls", r.script_calls},
          {"script_calls_per_acquisition",
           Round3(static_cast<double>(r.script_calls) / std::max<int64_t>(1, r.acquisitions))},
          {"woken_by_notify", r.woken_by_notify},
          {"woken_by_timer", r.woken_by_timer},
          {"client_cores", Round3(r.client_cores)}};
}

// 32 waiters in line for a fair lock, each holding it 1 ms and queueing
// again at once: a release names the head, which takes the lock in one call.
void FairHandoff(const Flags& f, const std::string& addr) {
  const ContendOptions o{.policy = KindPolicy("kinds-fair-handoff", policy::LockKind::kFair),
                         .threads = 32,
                         .seconds = f.seconds,
                         .hold = std::chrono::milliseconds(1)};
  const ContendResult r = Contend(addr, o);
  nlohmann::json line = ContendedLine("fair_handoff", o, r);
  const double p50 = Percentile(r.handoff_ms, 0.5), p99 = Percentile(r.handoff_ms, 0.99);
  const double rtt_p50 = Percentile(r.rtt_us, 0.5) / 1000;
  const double calls = line["script_calls_per_acquisition"].get<double>();
  line.update({{"handoffs", r.handoff_ms.size()},
               {"handoff_p50_ms", Round3(p50)},
               {"handoff_p99_ms", Round3(p99)},
               {"rtt_p50_ms", Round3(rtt_p50)},
               {"rtt_p99_ms", Round3(Percentile(r.rtt_us, 0.99) / 1000)},
               {"p50_over_rtt", Round3(p50 / rtt_p50)},
               {"target_p50_le_2rtt", p50 <= 2 * rtt_p50},
               {"target_calls_le_4", calls <= 4}});
  Emit(line);
}

// 32 contenders for 8 permits, each holding one 1 ms and asking again at
// once: the share of permit-time in use.
void SemaphoreUtilisation(const Flags& f, const std::string& addr) {
  const ContendOptions o{.policy = KindPolicy("kinds-sem-util", policy::LockKind::kSemaphore),
                         .threads = 32,
                         .seconds = f.seconds,
                         .hold = std::chrono::milliseconds(1)};
  const ContendResult r = Contend(addr, o);
  nlohmann::json line = ContendedLine("semaphore_utilisation", o, r);
  const double u = r.held_s / (kPermits * r.elapsed_s);
  line.update({{"permits", kPermits}, {"utilisation", Round3(u)}, {"target_met", u >= 0.8}});
  Emit(line);
}

// 8 threads each holding the lock 1 ms, then 1 ms away from it: the share
// of the run in which someone holds it. The mutex runs the same loop right
// after the fair lock, as its reference.
void ExclusiveUtilisation(const Flags& f, const std::string& addr) {
  for (policy::LockKind kind : {policy::LockKind::kFair, policy::LockKind::kMutex}) {
    const std::string name = kind == policy::LockKind::kFair ? "fair" : "mutex";
    const ContendOptions o{.policy = KindPolicy("kinds-" + name + "-util", kind),
                           .threads = 8,
                           .seconds = f.seconds,
                           .hold = std::chrono::milliseconds(1),
                           .outside = std::chrono::milliseconds(1)};
    const ContendResult r = Contend(addr, o);
    nlohmann::json line = ContendedLine(name + "_utilisation", o, r);
    const double u = r.held_s / r.elapsed_s;
    line.update({{"utilisation", Round3(u)},
                 {"handoff_p50_ms", Round3(Percentile(r.handoff_ms, 0.5))},
                 {"rtt_p50_ms", Round3(Percentile(r.rtt_us, 0.5) / 1000)}});
    if (kind == policy::LockKind::kFair) line["target_met"] = u >= 0.9;
    Emit(line);
  }
}

}  // namespace

void Kinds(const Flags& f, const std::string& addr) {
  UncontendedKinds(f, addr);
  FairHandoff(f, addr);
  SemaphoreUtilisation(f, addr);
  ExclusiveUtilisation(f, addr);
}

}  // namespace bench
