// The lock statistics (lock::GetStats) as prometheus-cpp metric families in
// the application's own registry, next to its other metrics. Optional:
// `deps = ["//lock:prometheus"]` links prometheus-cpp (Debian's
// prometheus-cpp-dev); without it, lock::StatsPrometheusText() (stats.h)
// renders the same metrics as text.
//
//   auto registry = std::make_shared<prometheus::Registry>();
//   absl::StatusOr<lock::MetricsRegistration> metrics =
//       lock::RegisterMetrics(*registry);
//   if (!metrics.ok()) return metrics.status();
//   prometheus::Exposer exposer("0.0.0.0:9464");
//   exposer.RegisterCollectable(registry);   // serves /metrics
//
// The families are those of StatsPrometheusText, with the same names, help
// texts, types, labels and bucket bounds (README "Statistics" lists them):
// lock_*_total counters and lock_active / lock_waiting gauges labelled
// {policy}, lock_*_seconds histograms labelled {policy} with buckets
// HistogramSnapshot::kBounds, lock_policy_info{policy,kind} 1, and the
// process-wide lock_renewal_queue_length, lock_renewal_queue_capacity,
// lock_renewal_round_trips_total, lock_config_reloads_total and
// lock_config_reload_errors_total.
//
// prometheus-cpp's Registry holds only its own families, and its counters
// can only grow, so the registration copies GetStats into them: once when
// registered, then every MetricsOptions::refresh_period on the library's
// timer thread, and whenever the caller calls Refresh(). A scrape therefore
// shows figures at most about one refresh_period old (1 s by default);
// Refresh() just before Collect() gives exact ones.
#ifndef LOCK_PROMETHEUS_H_
#define LOCK_PROMETHEUS_H_

#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace lock {

struct MetricsOptions {
  // How often the library copies GetStats into the families. Zero: never on
  // its own; the caller calls Refresh() (before each scrape, say).
  absl::Duration refresh_period = absl::Seconds(1);
};

// The lock_* families registered in one prometheus::Registry, kept in step
// with GetStats while this handle lives. Destroying (or assigning over) it
// stops the refreshes and removes the families from the registry, after
// which RegisterMetrics may be called on that registry again.
//
// The registry must outlive the handle: destroy the handle first (declare it
// after the registry). prometheus-cpp offers no way to notice a destroyed
// registry, so the other order is undefined behaviour, as it is for any
// prometheus::Family reference.
//
// lock::Shutdown does not stop the refreshes (the statistics outlive it and
// keep their last values). In a fork() child the parent's handle is inert:
// Refresh() answers kFailedPrecondition, and destroying it leaves the
// registry as it is.
class MetricsRegistration {
 public:
  MetricsRegistration(MetricsRegistration&& other) noexcept = default;
  MetricsRegistration& operator=(MetricsRegistration&& other) noexcept;
  ~MetricsRegistration();

  // Copies GetStats into the families now. kFailedPrecondition on a
  // moved-from handle or in a fork() child.
  absl::Status Refresh();

 private:
  struct State;  // prometheus.cc
  friend absl::StatusOr<MetricsRegistration> RegisterMetrics(prometheus::Registry&,
                                                            MetricsOptions);
  explicit MetricsRegistration(std::shared_ptr<State> state);
  void Unregister();
  std::shared_ptr<State> state_;
};

// Registers the lock_* families in `registry` and fills them from GetStats.
// kAlreadyExists when the registry already holds one of their names (a live
// registration of this registry, or the application's own metric of that
// name), naming it; nothing is registered then. kInvalidArgument for a
// negative refresh_period.
[[nodiscard]] absl::StatusOr<MetricsRegistration> RegisterMetrics(
    prometheus::Registry& registry, MetricsOptions options = {});

}  // namespace lock

#endif  // LOCK_PROMETHEUS_H_
