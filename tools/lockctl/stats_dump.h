// Reading lock statistics back from what a process wrote out.
//
//   absl::StatusOr<lockctl::StatsDump> d = lockctl::ParseStatsDump(text);
//   for (const auto& [policy, s] : d->per_policy) {
//     std::cout << policy << " acquired " << s.acquired << " p99 wait "
//               << lockctl::FormatSeconds(
//                      lockctl::EstimateQuantile(s.acquire_wait, 0.99));
//   }
//
// Accepts both formats the library produces: lock::StatsJson() and
// lock::StatsPrometheusText() (detected by content), and turns either into
// the library's own lock::PolicyStats, so that `lockctl stats` and the
// examples' summaries read, merge and print statistics one way.
#ifndef TOOLS_LOCKCTL_STATS_DUMP_H_
#define TOOLS_LOCKCTL_STATS_DUMP_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "lock/stats.h"
#include "nlohmann/json.hpp"

namespace lockctl {

enum class DumpFormat { kJson, kPrometheus };

struct StatsDump {
  DumpFormat format = DumpFormat::kJson;
  std::map<std::string, lock::PolicyStats> per_policy;
  // Process-wide renewal figures (absent from a dump: 0).
  int64_t renewal_queue_len = 0;
  int64_t renewal_queue_cap = 0;
  int64_t renewal_round_trips = 0;
  // Hot reload (lock::Init watching its files): swapped in / refused.
  int64_t config_reloads = 0;
  int64_t config_reload_errors = 0;
};

// Parses a dump in either format. kInvalidArgument naming the line (or JSON
// path) when the text is neither, or a known metric has a malformed value.
// Unknown metrics are ignored, so newer library versions stay readable.
absl::StatusOr<StatsDump> ParseStatsDump(std::string_view text);

// Adds `from` into `into`: counters and histogram buckets are summed, so
// dumps of several processes merge into fleet totals. `active` is summed
// too (locks held right now across the processes).
void AddPolicyStats(lock::PolicyStats& into, const lock::PolicyStats& from);
void AddDump(StatsDump& into, const StatsDump& from);

// Quantile q (0..1) in seconds, interpolated linearly inside the bucket
// that holds it, as Prometheus' histogram_quantile() does. 0 when empty;
// the largest finite bound when q falls in the +Inf bucket.
double EstimateQuantile(const lock::HistogramSnapshot& h, double q);

// Acquisition attempts after the first one of each Acquire, derived from the
// counters: every RedisLock script call is an attempt, a release, an extend
// or an inspect. Exact for processes that only use lock::With (one release
// call per acquisition, no Extend/Inspect), after their locks are released;
// an estimate otherwise (never negative).
int64_t DerivedRetries(const lock::PolicyStats& s);

// "850us", "1.25ms", "2.3s": three significant digits.
std::string FormatSeconds(double seconds);

// One section per policy: counters and latency quantiles, aligned.
std::string RenderStatsTables(const StatsDump& dump);

// The dump as JSON for scripts: {"format":..., "policies": {name: {...}}},
// counters under the library's metric names plus p50/p90/p99 estimates.
nlohmann::json StatsDumpToJson(const StatsDump& dump);

}  // namespace lockctl

#endif  // TOOLS_LOCKCTL_STATS_DUMP_H_
