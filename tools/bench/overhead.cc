// What lock::With costs before and around its Redis round trips: policy
// lookup in the registry snapshot, key validation and key building, owner
// token generation, and Locker::NewLock as a whole (all of them together,
// plus the backend lookup and the RedisLock itself). No Redis is touched:
// connections are opened lazily and nothing here acquires.
//
// Timed by Google Benchmark: 7 repetitions of at least 150 ms each, the best
// one reported (noise on a shared machine only ever adds time), the median
// alongside, as the same JSON lines as every other scenario.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lock/internal/keys.h"
#include "lock/internal/token.h"
#include "lock/lock.h"
#include "policy/registry.h"
#include "tools/bench/common.h"

namespace bench {
namespace {

constexpr int kRepetitions = 7;
constexpr double kMinSecondsPerRepetition = 0.15;

// Emits one line per benchmark, in the order they ran, from its "min" and
// "median" aggregates (ns per iteration of real time); prints nothing else.
class JsonLinesReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }

  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.error_occurred) {
        std::cerr << "bench: " << run.benchmark_name() << ": "
                  << run.error_message << "\n";
        std::exit(1);
      }
      if (run.run_type != Run::RT_Aggregate) continue;
      const std::string& what = run.run_name.function_name;
      if (!ns_.contains(what)) order_.push_back(what);
      ns_[what][run.aggregate_name] = run.GetAdjustedRealTime();
    }
  }

  void Finalize() override {
    for (const std::string& what : order_) {
      const std::map<std::string, double>& stats = ns_.at(what);
      Emit({{"scenario", "overhead"},
            {"what", what},
            {"ns_per_call_best", Round3(stats.at("min"))},
            {"ns_per_call_median", Round3(stats.at("median"))}});
    }
  }

 private:
  std::vector<std::string> order_;  // as registered
  std::map<std::string, std::map<std::string, double>> ns_;
};

template <typename Fn>
void Register(const std::string& what, Fn fn) {
  benchmark::RegisterBenchmark(what.c_str(),
                               [fn](benchmark::State& state) {
                                 for (auto _ : state) fn();
                               })
      ->Repetitions(kRepetitions)
      ->MinTime(kMinSecondsPerRepetition)
      ->ComputeStatistics("min", [](const std::vector<double>& v) {
        return *std::min_element(v.begin(), v.end());
      });
}

}  // namespace

void Overhead(const Flags&) {
  // 32 policies, like a service with a fair number of lock kinds.
  std::string json = R"({"redis": {"default": {"addrs": ["127.0.0.1:1"]}}, "policies": {)";
  for (int i = 0; i < 32; ++i) {
    absl::StrAppend(&json, i ? "," : "", "\"policy-", i, "\": {\"key_prefix\": \"svc:", i,
                    ":\", \"ttl\": \"30s\"}");
  }
  json += "}}";
  auto registry = policy::Registry::FromJson(json);
  if (!registry.ok()) {
    std::cerr << "bench: " << registry.status() << "\n";
    std::exit(1);
  }
  std::shared_ptr<policy::Registry> reg = *std::move(registry);
  auto locker = *lock::Locker::Create(reg);
  const std::string key = "order-1234567";

  Register("registry_snapshot_find_policy", [&] {
    std::shared_ptr<const policy::Snapshot> s = reg->snapshot();
    benchmark::DoNotOptimize(s->FindPolicy("policy-17"));
  });
  Register("registry_find_policy_shared",
           [&] { benchmark::DoNotOptimize(reg->FindPolicy("policy-17")); });
  Register("validate_key_and_build_keys", [&] {
    benchmark::DoNotOptimize(lock::internal::ValidateKey(key));
    lock::internal::LockKeys keys("svc:17:", key);
    benchmark::DoNotOptimize(keys);
  });
  Register("owner_token",
           [&] { benchmark::DoNotOptimize(lock::internal::NewOwnerToken()); });
  Register("locker_new_lock", [&] {
    auto lk = locker->NewLock("policy-17", key);
    if (!lk.ok()) std::abort();
    benchmark::DoNotOptimize(lk);
  });
  JsonLinesReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::ClearRegisteredBenchmarks();
}

}  // namespace bench
