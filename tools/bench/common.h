// Shared pieces of the benchmark scenarios: the command line, JSON output, raw
// hiredis helpers and the interleaved A/B runner that every same-run comparison
// uses.
#ifndef TOOLS_BENCH_COMMON_H_
#define TOOLS_BENCH_COMMON_H_

#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "lock/internal/keys.h"
#include "lock/internal/primitive_calls.h"
#include "lock/redis/reply.h"
#include "nlohmann/json.hpp"
#include "policy/policy.h"

namespace bench {

using Clock = std::chrono::steady_clock;

// The command line (its flags, defaults and help are in common.cc).
struct Flags {
  std::vector<std::string> scenarios;
  // Measured time of one point (one thread count, one K, ...).
  double seconds = 0;
  // Length of one A or B phase of an interleaved comparison.
  double phase_ms = 0;
  std::vector<int> threads, waiters, hold_ms, renewal_locks;
  double renewal_seconds = 0;
  // Lease of the renewal scenario's locks: each is renewed when 30% is left
  // (default policy threshold), i.e. every 0.7 * ttl.
  int renewal_ttl_s = 0;
  std::vector<int> redlock_masters, cluster_threads;
  int iterations = 0;  // --scenario=pairs (for callgrind)
  std::string redis;   // empty: start an embedded server
};

// Parses the command line; a bad flag exits (util/flags.h).
Flags ParseFlags(int argc, char** argv);
bool Wants(const Flags& f, const std::string& scenario);

void Emit(const nlohmann::json& line);
double Round3(double v);
double Percentile(std::vector<double> v, double q);
double Mean(const std::vector<double>& v);

// Bare hiredis: the floor the library is compared with.
struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
ContextPtr RawConnect(const std::string& addr);
// A prepared command: argv pointers and lengths built once, sent many times.
class RawCommand {
 public:
  explicit RawCommand(std::vector<std::string> args);
  lock::redis::ReplyPtr Send(redisContext* c) const;
  // Queues the command and writes it out without reading the reply.
  bool Write(redisContext* c) const;

 private:
  std::vector<std::string> args_;
  std::vector<const char*> argv_;
  std::vector<size_t> lens_;
};

// SCRIPT LOAD of every script of the library (each kind's), so that EVALSHA
// finds them.
void RawLoadScripts(redisContext* c);
// The EVALSHA argv the library sends to acquire the lock `keys` for `token`
// (ttl 30 s, hold count 1, fence retention one day; `fencing` off as on
// Redlock masters), and to release it.
std::vector<std::string> RawAcquireArgs(const lock::internal::LockKeys& keys,
                                        const std::string& token, bool fencing);
std::vector<std::string> RawReleaseArgs(const lock::internal::LockKeys& keys,
                                        const std::string& token);

// The EVALSHA argv of one of a kind's script calls, as the library sends it.
std::vector<std::string> RawEvalshaArgs(const lock::internal::PrimitiveCall& call);

// One connection sending an acquire and a release EVALSHA back to back: the
// floor an acquire+release pair of the library is compared with. Both
// replies are checked: the acquire must answer {1, a, b} (held), the
// release 1 (released).
class RawPair {
 public:
  RawPair(const std::string& addr, std::vector<std::string> acquire,
          std::vector<std::string> release);
  bool Run() const;

 private:
  ContextPtr ctx_;
  RawCommand acquire_, release_;
};

// One thread's raw acquire and release of `prefix` + `key`, with the
// arguments the library sends (same key length, same token length, ttl,
// count, fencing flag and fence retention).
std::unique_ptr<RawPair> MutexRawPair(const std::string& addr, const std::string& prefix,
                                      const std::string& key, const std::string& token);

// Script calls (EVAL, EVALSHA and their _RO forms) the server has run so
// far, from INFO commandstats. Commands a script makes are not counted.
int64_t ScriptCalls(redisContext* c);

// Round trip of PING on its own connection, in microseconds.
std::vector<double> PingRttUs(const std::string& addr, int n);

// The baseline of a contended run, sampled alongside it: PING round trips
// (microseconds) on a connection of its own, every 2 ms, from construction
// until Stop().
class PingSampler {
 public:
  explicit PingSampler(const std::string& addr);
  ~PingSampler();
  std::vector<double> Stop();

 private:
  std::atomic<bool> stop_{false};
  std::vector<double> rtt_us_;
  std::thread thread_;
};

std::shared_ptr<policy::Policy> BenchPolicy(const std::string& prefix);

// Process CPU time (user + system) in seconds.
double CpuSeconds();
// CPU time of the calling thread in seconds.
double ThreadCpuSeconds();
// CPU time of another process (e.g. a redis-server) in seconds; 0 if unknown.
double ProcessCpuSeconds(int pid);
int64_t RssBytes();
// Bytes the allocator has handed out and not got back (all arenas).
int64_t HeapBytes();

// One side of an interleaved comparison: latencies (us) of the operations
// that started and ended inside one of that side's phases.
struct Side {
  std::vector<double> latency_us;
  // Closed-loop throughput by Little's law: threads / mean latency.
  double per_s = 0;
  double p50_us = 0, p99_us = 0, mean_us = 0;
};
struct AbResult {
  Side a, b;
  int phases = 0;
};

// Runs `threads` threads for about `seconds`, all of them switching together
// between op `a` and op `b` every `phase_ms`, so that a burst of noise on a
// shared machine lands on both sides alike. An op returns false on failure,
// which aborts the benchmark (a wrong result is no result).
using Op = std::function<bool(int thread)>;
AbResult Interleave(int threads, double seconds, double phase_ms, const Op& a,
                    const Op& b);

// The fields every library-versus-raw row reports (b the library, a raw):
// pairs/s, their ratio, p50/p99 and counts of each side, phases; `scenario`
// and `threads` first. Rows add their own fields and targets.
nlohmann::json AbFields(const std::string& scenario, int threads, const AbResult& r);

// K threads contending for one key, each through its own RedisLock with
// wake-on-release notifications: hold it for `hold`, release, then stay
// away for `outside`, and, with `step_back`, also until another thread has
// taken it (otherwise a mutex's releaser, already running, wins again and
// nothing is handed off).
struct ContendOptions {
  std::shared_ptr<const policy::Policy> policy;  // ContendedPolicy()
  int threads = 2;
  double seconds = 6;
  std::chrono::microseconds hold{0};
  std::chrono::microseconds outside{0};
  bool step_back = false;
};
struct ContendResult {
  // From a holder starting its release to another thread holding the lock.
  // Only meaningful for exclusive kinds (one holder at a time).
  std::vector<double> handoff_ms;
  // PING round trips on a connection of their own, every 2 ms of the run.
  std::vector<double> rtt_us;
  int64_t acquisitions = 0;
  double held_s = 0;     // time inside, summed over the threads
  double elapsed_s = 0;  // wall time until every thread stopped
  int64_t woken_by_notify = 0, woken_by_timer = 0;
  // CPU this process used over the run, in cores (1 = one core busy).
  double client_cores = 0;
  // Script calls the server ran from start to stop, including the waiters'
  // last acquisitions after the stop.
  int64_t script_calls = 0;
};
ContendResult Contend(const std::string& addr, const ContendOptions& o);
// A policy for Contend: keys under "bench:<name>:", waits that never give up
// within a run.
std::shared_ptr<policy::Policy> ContendedPolicy(const std::string& name);

// The scenarios.
void Uncontended(const Flags& f, const std::string& addr);
void Handoff(const Flags& f, const std::string& addr);
void Renewal(const Flags& f, const std::string& addr, int server_pid);
void Redlock(const Flags& f);
void Cluster(const Flags& f);
void Overhead(const Flags& f);
void Pairs(const Flags& f, const std::string& addr);
void Tls(const Flags& f);  // starts its own TLS server
void Kinds(const Flags& f, const std::string& addr);
void Async(const Flags& f, const std::string& addr);
void Peer();  // reads its job from stdin (peer.cc)

}  // namespace bench

#endif  // TOOLS_BENCH_COMMON_H_
