// Lock statistics and event callbacks, process-wide.
//
//   lock::Stats s = lock::GetStats();
//   std::cout << s.per_policy["order-close"].acquired;
//   http_response.body = lock::StatsPrometheusText();   // for a /metrics page
//
//   class Alerts : public lock::LockCallback {
//     void OnLost(std::string_view policy, std::string_view key,
//                 const absl::Status& why) override { Page(key, why); }
//   };
//   lock::SetCallback(std::make_shared<Alerts>());
//
// Counters are updated with relaxed atomics on the lock path; reading them is
// a consistent-enough snapshot for monitoring, not a transaction.
#ifndef LOCK_STATS_H_
#define LOCK_STATS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace lock {

// Events of every lock in the process. Called synchronously on the thread
// that saw the event (a caller of With, or a renewal worker): keep them quick
// and never call back into the lock library from them.
class LockCallback {
 public:
  virtual ~LockCallback() = default;
  virtual void OnAcquired(std::string_view /*policy*/, std::string_view /*key*/,
                          absl::Duration /*waited*/) {}
  virtual void OnAcquireFailed(std::string_view /*policy*/, std::string_view /*key*/,
                               const absl::Status& /*why*/) {}
  virtual void OnReleased(std::string_view /*policy*/, std::string_view /*key*/,
                          absl::Duration /*held_for*/) {}
  virtual void OnRenewed(std::string_view /*policy*/, std::string_view /*key*/,
                         absl::Duration /*ttl*/) {}
  virtual void OnRenewalFailed(std::string_view /*policy*/, std::string_view /*key*/,
                               const absl::Status& /*why*/) {}
  virtual void OnLost(std::string_view /*policy*/, std::string_view /*key*/,
                      const absl::Status& /*why*/) {}
};

// Replaces the process-wide callback; nullptr removes it.
void SetCallback(std::shared_ptr<LockCallback> callback);

// A latency distribution: fixed buckets (upper bounds in seconds, as
// Prometheus expects), plus count and sum.
struct HistogramSnapshot {
  static constexpr std::array<double, 16> kBounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
  std::array<int64_t, kBounds.size() + 1> buckets{};  // last one: +Inf
  int64_t count = 0;
  double sum_seconds = 0;
  // Upper bound of the bucket holding quantile q (0..1); 0 when empty.
  double QuantileUpperBound(double q) const;
};

struct PolicyStats {
  // The policy's kind ("mutex", "read_write", "semaphore", "fair"): what
  // its counters count (holds, permits, read or write holds).
  std::string kind = "mutex";
  // Acquisitions by outcome.
  int64_t acquired = 0;
  int64_t busy = 0;
  int64_t skipped = 0;
  int64_t errors = 0;        // Redis unreachable, timeouts, bad replies
  int64_t released = 0;
  int64_t active = 0;        // held right now
  // Acquires between two attempts right now (waiting for a release or
  // their next attempt): the process's queue behind held locks.
  int64_t waiting = 0;
  int64_t lost = 0;          // expired or taken over while held
  // Waiting (on_busy = wait): how each sleep between attempts ended. By a
  // release notification, or else by the backoff timer (a sleep cut short
  // by the subscriber connection dropping counts here: the waiter goes back
  // to its timer, and no release ended it).
  int64_t waits_woken_by_notify = 0;
  int64_t waits_woken_by_timer = 0;
  // Auto-renewal.
  int64_t renewals = 0;
  int64_t renewal_errors = 0;    // failed renewal calls (each retry counts)
  int64_t skipped_renewals = 0;  // dropped because the worker queue was full
  HistogramSnapshot acquire_wait;  // from first attempt to held
  HistogramSnapshot hold_time;     // from acquired to released
  HistogramSnapshot script_call;   // every Redis script call
  HistogramSnapshot renewal_latency;
};

struct Stats {
  // Totals over all policies, named as in the Go library.
  int64_t total_locks = 0;      // acquisitions ever made
  int64_t active_locks = 0;     // held right now
  int64_t renewal_count = 0;
  int64_t renewal_errors = 0;
  int64_t skipped_renewals = 0;
  int64_t renew_latency_ns = 0;     // sum over all renewals
  int64_t renew_latency_count = 0;
  int64_t worker_queue_len = 0;     // renewal batches waiting for a worker
  int64_t worker_queue_cap = 0;
  int64_t round_trips = 0;          // renewal pipelines sent (one per batch)
  // Hot reload (lock::Init watching its files): changed configurations
  // swapped in, and edits refused because they did not validate (the
  // working policies stayed).
  int64_t config_reloads = 0;
  int64_t config_reload_errors = 0;
  std::map<std::string, PolicyStats> per_policy;
};

Stats GetStats();
// Prometheus text exposition format: lock_* metrics with a policy label,
// and lock_policy_info{policy,kind} 1 to aggregate them by kind.
std::string StatsPrometheusText();
// The same as JSON (also what `lockctl stats` reads).
std::string StatsJson();

}  // namespace lock

#endif  // LOCK_STATS_H_
