// What the example programs share: where they run (policy file, Redis,
// embedded redis-server), worker processes, their own data in Redis (through
// their own client, redis_data.h), and collecting each worker's lock
// statistics for the summary.
//
//   ABSL_FLAG(int, workers, 3, "worker processes");
//   ...
//   util::ParseFlags(argc, argv, kUsage);
//   auto env = demo::Environment::Prepare("inventory",
//                                         "examples/inventory/policies.json",
//                                         absl::GetFlag(FLAGS_config),
//                                         absl::GetFlag(FLAGS_redis));
//   pid_t w = demo::SpawnSelf({"inventory", "--worker=0", "--config=" +
//   env->worker_config()});
//   ...
//   lockctl::StatsDump all = demo::CollectStats(*data, stats_key);
//   demo::PrintLockStats(all);
//
// Examples are programs, not libraries: on an unexpected Redis error they
// print it and exit 1 rather than propagate it.
#ifndef EXAMPLES_COMMON_DEMO_H_
#define EXAMPLES_COMMON_DEMO_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "examples/common/redis_data.h"
#include "integration/harness/redis_server.h"
#include "policy/policy.h"
#include "tools/lockctl/stats_dump.h"

// Flags every example has (defined in demo.cc): where it runs (--config,
// --redis: see Environment), and what a coordinator passes to the workers it
// starts (--worker: which one, empty in the coordinator; --run: the run's id).
ABSL_DECLARE_FLAG(std::string, config);
ABSL_DECLARE_FLAG(std::string, redis);
ABSL_DECLARE_FLAG(std::string, worker);
ABSL_DECLARE_FLAG(std::string, run);

namespace demo {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t);

// The worker's number from --worker; a usage error (exit 2) unless it is a
// whole number >= 0.
int WorkerNumber();

// Where an example runs. The policy file is --config, else $LOCK_CONFIG,
// else the one shipped with the example. Redis is --redis, else (with a
// user-given file) the file's "default" target, else an embedded
// redis-server started for the run. Workers read worker_config(): a private
// copy of the file pointing at the Redis in use, deleted with this object.
class Environment {
 public:
  static std::unique_ptr<Environment> Prepare(const std::string& program,
                                              const std::string& shipped_config,
                                              const std::string& config_flag,
                                              const std::string& redis_flag);
  ~Environment();

  const std::string& worker_config() const { return worker_config_; }
  const policy::RedisTarget& target() const { return *target_; }
  const std::string& addr() const { return target_->addrs[0]; }
  bool embedded() const { return embedded_ != nullptr; }
  // "127.0.0.1:4242 (embedded)" for the banner.
  std::string Describe() const;

 private:
  Environment() = default;
  std::string worker_config_;
  std::shared_ptr<const policy::RedisTarget> target_;
  std::unique_ptr<lock::harness::RedisServer> embedded_;
};

// The target "default" of a policy file (for workers, which get the file
// from the coordinator). Exits 1 if the file is not valid.
policy::RedisTarget LoadTarget(const std::string& program,
                               const std::string& config);

// Starts this same program with `args` (args[0] is its name). Exits 1 if it
// cannot.
pid_t SpawnSelf(const std::vector<std::string>& args);

// Waits for every pid; returns how many did not exit 0.
int WaitAll(std::vector<pid_t>& pids);

// 8 hex digits from std::random_device, fresh per run: namespaces a run's
// keys in a shared Redis.
std::string NewRunId();

// Exact percentile of `v` (reorders it); 0 when empty.
int64_t Percentile(std::vector<int64_t>& v, double q);

// Publishes this process's lock statistics (lock::StatsJson()) to the hash
// `key`, field `field`, every `interval` and once more on Stop(), so the
// coordinator sees live and final figures of every worker.
class StatsPublisher {
 public:
  StatsPublisher(const std::string& program, const policy::RedisTarget& target,
                 std::string key, std::string field, absl::Duration interval);
  ~StatsPublisher();  // Stop()
  void Stop();

 private:
  void PublishOnce(Data& data);
  std::string key_, field_;
  std::unique_ptr<Data> data_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// Every worker's published statistics, summed.
lockctl::StatsDump CollectStats(Data& data, const std::string& key);

// The summary table: per policy, the counters the examples discuss and the
// acquire-wait quantiles of the library's histogram.
void PrintLockStats(const lockctl::StatsDump& dump, const std::string& title);

// One aligned "name  value  [FAIL]" line of a summary.
void Row(absl::string_view name, const std::string& value, bool good = true);

}  // namespace demo

#endif  // EXAMPLES_COMMON_DEMO_H_
