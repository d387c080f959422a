#include "lock/prometheus.h"

#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lock/internal/async_runtime.h"
#include "lock/internal/metric_defs.h"
#include "lock/internal/process.h"
#include "lock/stats.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace lock {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;

// Registries with a live registration. A second registration of one would
// not fail on its own: the registry's default (Merge) hands back the
// existing families, and two refreshers would then both add every delta.
struct LiveRegistries {
  std::mutex mu;
  std::set<const prometheus::Registry*> registries;  // guarded by mu
};

LiveRegistries& Live() {
  static auto* live = new LiveRegistries;
  return *live;
}

const std::vector<double>& BucketBounds() {
  static const auto* bounds = new std::vector<double>(HistogramSnapshot::kBounds.begin(),
                                                      HistogramSnapshot::kBounds.end());
  return *bounds;
}

// One series of a NumberFamily.
struct NumberSeries {
  Counter* counter = nullptr;  // exactly one of the two
  Gauge* gauge = nullptr;

  // Brings the series to `value`. A prometheus-cpp counter can only be
  // incremented: it grows by what it lacks (the statistics' counters never
  // decrease).
  void Show(int64_t value) const {
    if (gauge != nullptr) {
      gauge->Set(static_cast<double>(value));
      return;
    }
    const double lacking = static_cast<double>(value) - counter->Value();
    if (lacking > 0) counter->Increment(lacking);
  }
};

// A family of counters or of gauges (the tables' MetricType).
class NumberFamily {
 public:
  NumberFamily(prometheus::Registry& registry, const char* name, const char* help,
               internal::MetricType type) {
    if (type == internal::MetricType::kCounter) {
      counter_ = &prometheus::BuildCounter().Name(name).Help(help).Register(registry);
    } else {
      gauge_ = &prometheus::BuildGauge().Name(name).Help(help).Register(registry);
    }
  }

  NumberSeries Add(const Labels& labels) const {
    if (gauge_ != nullptr) return {.gauge = &gauge_->Add(labels)};
    return {.counter = &counter_->Add(labels)};
  }

  void RemoveFrom(prometheus::Registry& registry) const {
    if (gauge_ != nullptr) {
      registry.Remove(*gauge_);
    } else {
      registry.Remove(*counter_);
    }
  }

 private:
  Family<Counter>* counter_ = nullptr;  // exactly one of the two
  Family<Gauge>* gauge_ = nullptr;
};

// Adds to `h` what it lacks of `want`, bucket by bucket (prometheus-cpp
// reports cumulative buckets; the snapshot holds each bucket's own count).
void CatchUp(Histogram& h, const HistogramSnapshot& want) {
  const prometheus::ClientMetric::Histogram have = h.Collect().histogram;
  std::vector<double> lacking(want.buckets.size());
  uint64_t below = 0;
  for (size_t i = 0; i < lacking.size(); ++i) {
    const uint64_t cumulative = have.bucket[i].cumulative_count;
    lacking[i] = static_cast<double>(want.buckets[i]) - static_cast<double>(cumulative - below);
    below = cumulative;
  }
  h.ObserveMultiple(lacking, want.sum_seconds - have.sample_sum);
}

// The names the registration registers; RegisterMetrics refuses a registry
// holding any of them.
std::set<std::string> FamilyNames() {
  std::set<std::string> names = {internal::kPolicyInfoName};
  for (const auto& m : internal::kPolicyMetrics) names.insert(m.name);
  for (const auto& h : internal::kHistograms) names.insert(h.name);
  for (const auto& m : internal::kProcessMetrics) names.insert(m.name);
  return names;
}

}  // namespace

struct MetricsRegistration::State {
  // The series of one policy.
  struct PolicySeries {
    std::vector<NumberSeries> numbers;   // parallel to kPolicyMetrics
    std::vector<Histogram*> histograms;  // parallel to kHistograms
    std::string kind;                    // shown by `info`
    Gauge* info = nullptr;
  };

  State(prometheus::Registry& r, absl::Duration p) : registry(r), period(p) {}

  // Registers every family. Throws what prometheus-cpp throws (a name taken
  // in a registry built with InsertBehavior::Throw); the families built so
  // far stay listed for RemoveFamilies.
  void Build() {
    for (const auto& m : internal::kPolicyMetrics) {
      policy_numbers.emplace_back(registry, m.name, m.help, m.type);
    }
    for (const auto& h : internal::kHistograms) {
      histograms.push_back(&prometheus::BuildHistogram().Name(h.name).Help(h.help).Register(registry));
    }
    policy_info = &prometheus::BuildGauge()
                       .Name(internal::kPolicyInfoName)
                       .Help(internal::kPolicyInfoHelp)
                       .Register(registry);
    for (const auto& m : internal::kProcessMetrics) {
      process_numbers.emplace_back(registry, m.name, m.help, m.type);
      process_series.push_back(process_numbers.back().Add({}));
    }
  }

  void RemoveFamilies() {
    for (const NumberFamily& f : policy_numbers) f.RemoveFrom(registry);
    for (Family<Histogram>* f : histograms) registry.Remove(*f);
    if (policy_info != nullptr) registry.Remove(*policy_info);
    for (const NumberFamily& f : process_numbers) f.RemoveFrom(registry);
    policy_numbers.clear();
    histograms.clear();
    policy_info = nullptr;
    process_numbers.clear();
    process_series.clear();
    series.clear();
  }

  void RefreshLocked() {
    const Stats st = GetStats();
    for (const auto& [policy, p] : st.per_policy) {
      const PolicySeries& ps = SeriesOf(policy, p.kind);
      for (size_t i = 0; i < ps.numbers.size(); ++i) {
        ps.numbers[i].Show(p.*(internal::kPolicyMetrics[i].field));
      }
      for (size_t i = 0; i < ps.histograms.size(); ++i) {
        CatchUp(*ps.histograms[i], p.*(internal::kHistograms[i].field));
      }
    }
    for (size_t i = 0; i < process_series.size(); ++i) {
      process_series[i].Show(st.*(internal::kProcessMetrics[i].field));
    }
  }

  // A policy's series, added when it first shows up. A hot reload may
  // change its kind: the old lock_policy_info series goes.
  const PolicySeries& SeriesOf(const std::string& policy, const std::string& kind) {
    auto [it, added] = series.try_emplace(policy);
    PolicySeries& ps = it->second;
    const Labels labels = {{"policy", policy}};
    if (added) {
      for (const NumberFamily& f : policy_numbers) ps.numbers.push_back(f.Add(labels));
      for (Family<Histogram>* f : histograms) ps.histograms.push_back(&f->Add(labels, BucketBounds()));
    }
    if (ps.info == nullptr || ps.kind != kind) {
      if (ps.info != nullptr) policy_info->Remove(ps.info);
      ps.kind = kind;
      ps.info = &policy_info->Add({{"policy", policy}, {"kind", kind}});
      ps.info->Set(1);
    }
    return ps;
  }

  // The next refresh on the library's timer, unless the caller refreshes.
  // The task holds the state weakly: once the handle is gone it does nothing.
  void ScheduleLocked(std::weak_ptr<State> self) {
    if (period == absl::ZeroDuration() || period == absl::InfiniteDuration()) return;
    timer = internal::AsyncRuntime::Get().After(
        internal::AsyncRuntime::Clock::now() + absl::ToChronoNanoseconds(period), [self] {
          const std::shared_ptr<State> state = self.lock();
          if (state == nullptr) return;
          std::lock_guard<std::mutex> lock(state->mu);
          if (!state->registered) return;
          state->RefreshLocked();
          state->ScheduleLocked(self);
        });
  }

  prometheus::Registry& registry;
  const absl::Duration period;
  const pid_t built_by = internal::ProcessId();
  // One refresh at a time (each reads a family's value, then adds to it),
  // and none once unregistered.
  std::mutex mu;
  bool registered = false;                 // guarded by mu
  internal::AsyncRuntime::TimerId timer;  // guarded by mu
  // Built once by Build, read-only after it (the families lock themselves).
  std::vector<NumberFamily> policy_numbers;  // parallel to kPolicyMetrics
  std::vector<Family<Histogram>*> histograms;  // parallel to kHistograms
  Family<Gauge>* policy_info = nullptr;
  std::vector<NumberFamily> process_numbers;  // parallel to kProcessMetrics
  std::vector<NumberSeries> process_series;   // parallel to kProcessMetrics
  std::map<std::string, PolicySeries> series;  // by policy; guarded by mu
};

MetricsRegistration::MetricsRegistration(std::shared_ptr<State> state)
    : state_(std::move(state)) {}

MetricsRegistration& MetricsRegistration::operator=(MetricsRegistration&& other) noexcept {
  if (this != &other) {
    Unregister();
    state_ = std::move(other.state_);
  }
  return *this;
}

MetricsRegistration::~MetricsRegistration() { Unregister(); }

void MetricsRegistration::Unregister() {
  const std::shared_ptr<State> state = std::move(state_);
  // A fork() child leaves the registry alone: its mutexes, and ours, may
  // have been held by parent threads that do not exist there.
  if (state == nullptr || internal::ForkedSince(state->built_by)) return;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    state->registered = false;
    internal::AsyncRuntime::Get().Cancel(state->timer);
    state->RemoveFamilies();
  }
  LiveRegistries& live = Live();
  std::lock_guard<std::mutex> lock(live.mu);
  live.registries.erase(&state->registry);
}

absl::Status MetricsRegistration::Refresh() {
  if (state_ == nullptr) {
    return absl::FailedPreconditionError(
        "lock::MetricsRegistration::Refresh: the handle was moved from");
  }
  if (internal::ForkedSince(state_->built_by)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lock::MetricsRegistration::Refresh: registered by process ", state_->built_by,
        ", used in its fork() child ", internal::ProcessId(),
        ": call lock::RegisterMetrics again in the child"));
  }
  std::lock_guard<std::mutex> lock(state_->mu);
  state_->RefreshLocked();
  return absl::OkStatus();
}

absl::StatusOr<MetricsRegistration> RegisterMetrics(prometheus::Registry& registry,
                                                    MetricsOptions options) {
  if (options.refresh_period < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("lock::RegisterMetrics: refresh_period ",
                     absl::FormatDuration(options.refresh_period),
                     " is negative (zero: only the caller's Refresh() updates the metrics)"));
  }
  LiveRegistries& live = Live();
  std::lock_guard<std::mutex> lock(live.mu);
  if (live.registries.count(&registry) > 0) {
    return absl::AlreadyExistsError(
        "lock::RegisterMetrics: this prometheus::Registry already has the lock_* metrics of a "
        "live lock::MetricsRegistration (destroy that one first)");
  }
  const std::set<std::string> ours = FamilyNames();
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (ours.count(f.name) > 0) {
      return absl::AlreadyExistsError(absl::StrCat(
          "lock::RegisterMetrics: the prometheus::Registry already has a metric family named ",
          f.name, " (the lock_* names are the library's)"));
    }
  }
  auto state = std::make_shared<MetricsRegistration::State>(registry, options.refresh_period);
  try {
    state->Build();
  } catch (const std::exception& e) {
    state->RemoveFamilies();
    return absl::AlreadyExistsError(absl::StrCat(
        "lock::RegisterMetrics: prometheus-cpp refused a lock_* family: ", e.what()));
  }
  live.registries.insert(&registry);
  {
    std::lock_guard<std::mutex> state_lock(state->mu);
    state->registered = true;
    state->RefreshLocked();
    state->ScheduleLocked(state);
  }
  return MetricsRegistration(std::move(state));
}

}  // namespace lock
