// The lock_* metrics: names, help texts, types and the Stats field each one
// reads. One table for every exposition of the statistics (the text of
// lock::StatsPrometheusText, the families of lock::RegisterMetrics, the keys
// of lock::StatsJson), so that they cannot drift apart: Prometheus queries
// and dashboards written against one work against the others.
#ifndef LOCK_INTERNAL_METRIC_DEFS_H_
#define LOCK_INTERNAL_METRIC_DEFS_H_

#include <cstdint>

#include "lock/stats.h"

namespace lock::internal {

enum class MetricType { kCounter, kGauge };

inline const char* MetricTypeName(MetricType t) {
  return t == MetricType::kCounter ? "counter" : "gauge";
}

// A number of `Of`: PolicyStats (labelled {policy}) or Stats (no label).
template <typename Of>
struct MetricDef {
  const char* name;
  const char* help;
  int64_t Of::*field;
  MetricType type;
};

// Per policy, label {policy="<name>"}.
inline constexpr MetricDef<PolicyStats> kPolicyMetrics[] = {
    {"lock_acquired_total", "Locks acquired.", &PolicyStats::acquired, MetricType::kCounter},
    {"lock_busy_total", "Acquisitions that found the lock held by another owner and gave up.",
     &PolicyStats::busy, MetricType::kCounter},
    {"lock_skipped_total", "Acquisitions skipped because the lock was held (on_busy=skip).",
     &PolicyStats::skipped, MetricType::kCounter},
    {"lock_acquire_errors_total",
     "Acquisitions that failed with an error (Redis unreachable, timeout).", &PolicyStats::errors,
     MetricType::kCounter},
    {"lock_released_total", "Locks released.", &PolicyStats::released, MetricType::kCounter},
    {"lock_active", "Locks held right now.", &PolicyStats::active, MetricType::kGauge},
    {"lock_waiting",
     "Acquisitions waiting between attempts (for a release or their next attempt) right now.",
     &PolicyStats::waiting, MetricType::kGauge},
    {"lock_lost_total", "Locks lost while held (expired or taken over).", &PolicyStats::lost,
     MetricType::kCounter},
    {"lock_waits_woken_by_notify_total", "Waits ended by a release notification.",
     &PolicyStats::waits_woken_by_notify, MetricType::kCounter},
    {"lock_waits_woken_by_timer_total",
     "Waits ended by the backoff timer (or cut short by the subscriber connection dropping).",
     &PolicyStats::waits_woken_by_timer, MetricType::kCounter},
    {"lock_renewals_total", "Successful lease renewals.", &PolicyStats::renewals,
     MetricType::kCounter},
    {"lock_renewal_errors_total", "Failed renewal calls.", &PolicyStats::renewal_errors,
     MetricType::kCounter},
    {"lock_skipped_renewals_total", "Renewals dropped because the worker queue was full.",
     &PolicyStats::skipped_renewals, MetricType::kCounter},
};

// Per policy, label {policy="<name>"} (and le="<bound>" on the buckets,
// HistogramSnapshot::kBounds in seconds, then +Inf).
struct HistogramDef {
  const char* name;
  const char* help;
  HistogramSnapshot PolicyStats::*field;
};

inline constexpr HistogramDef kHistograms[] = {
    {"lock_acquire_wait_seconds", "Time from the first attempt until the lock was held.",
     &PolicyStats::acquire_wait},
    {"lock_hold_seconds", "Time a lock was held.", &PolicyStats::hold_time},
    {"lock_script_call_seconds", "Latency of Redis script calls.", &PolicyStats::script_call},
    {"lock_renewal_seconds", "Latency of lease renewals.", &PolicyStats::renewal_latency},
};

// A gauge of value 1 per policy, labels {policy, kind}: joined on policy, it
// sums the other metrics by kind.
inline constexpr char kPolicyInfoName[] = "lock_policy_info";
inline constexpr char kPolicyInfoHelp[] =
    "The kind of each policy (1), to sum its metrics by kind.";

// Process-wide, no label.
inline constexpr MetricDef<Stats> kProcessMetrics[] = {
    {"lock_renewal_queue_length", "Renewal batches waiting for a worker.",
     &Stats::worker_queue_len, MetricType::kGauge},
    {"lock_renewal_queue_capacity", "Capacity of the renewal worker queue.",
     &Stats::worker_queue_cap, MetricType::kGauge},
    {"lock_renewal_round_trips_total", "Renewal pipelines sent to Redis.", &Stats::round_trips,
     MetricType::kCounter},
    {"lock_config_reloads_total", "Changed configurations swapped in by hot reload.",
     &Stats::config_reloads, MetricType::kCounter},
    {"lock_config_reload_errors_total",
     "Configuration edits refused by hot reload (the working policies stayed).",
     &Stats::config_reload_errors, MetricType::kCounter},
};

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_METRIC_DEFS_H_
