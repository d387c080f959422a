#include "lock/stats.h"

#include <mutex>
#include <utility>

#include "absl/container/node_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lock/internal/counters.h"
#include "lock/internal/fork.h"
#include "lock/internal/metric_defs.h"
#include "nlohmann/json.hpp"
#include "policy/policy.h"

namespace lock {
namespace internal {
namespace {

struct Registry {
  std::mutex mu;
  // node_hash_map: counters never move, so handed-out references stay valid.
  absl::node_hash_map<std::string, PolicyCounters> counters;
  std::shared_ptr<LockCallback> callback;
  // Lets the lock path skip the mutex when no callback is set (the usual case).
  std::atomic<bool> has_callback{false};
  std::atomic<int64_t> queue_len{0}, queue_cap{0}, round_trips{0};
  std::atomic<int64_t> config_reloads{0}, config_reload_errors{0};
};

Registry& Global() {
  static Registry* r = new Registry;
  return *r;
}

}  // namespace

void Histogram::Observe(absl::Duration d) {
  const double s = absl::ToDoubleSeconds(d);
  size_t i = 0;
  while (i < HistogramSnapshot::kBounds.size() && s > HistogramSnapshot::kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(absl::ToInt64Nanoseconds(d), std::memory_order_relaxed);
}

HistogramSnapshot Histogram::Snapshot() const {
  HistogramSnapshot out;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    out.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
  }
  out.count = count_.load(std::memory_order_relaxed);
  out.sum_seconds = sum_ns_.load(std::memory_order_relaxed) / 1e9;
  return out;
}

PolicyCounters& CountersFor(std::string_view policy) {
  Registry& r = Global();
  std::lock_guard<std::mutex> lock(r.mu);
  return r.counters[std::string(policy)];
}

std::shared_ptr<LockCallback> Callback() {
  Registry& r = Global();
  if (!r.has_callback.load(std::memory_order_acquire)) return nullptr;
  std::lock_guard<std::mutex> lock(r.mu);
  return r.callback;
}

void SetRenewalQueue(int64_t len, int64_t cap) {
  Global().queue_len.store(len, std::memory_order_relaxed);
  Global().queue_cap.store(cap, std::memory_order_relaxed);
}

void AddRenewalRoundTrip() {
  Global().round_trips.fetch_add(1, std::memory_order_relaxed);
}

void AddConfigReload(bool ok) {
  (ok ? Global().config_reloads : Global().config_reload_errors)
      .fetch_add(1, std::memory_order_relaxed);
}

// Held only briefly, never across a Redis call.
void StatsForkPrepare() { Global().mu.lock(); }
void StatsForkParent() { Global().mu.unlock(); }
void StatsForkChild() { Global().mu.unlock(); }

}  // namespace internal

double HistogramSnapshot::QuantileUpperBound(double q) const {
  if (count == 0) return 0;
  const double want = q * count;
  int64_t seen = 0;
  for (size_t i = 0; i < kBounds.size(); ++i) {
    seen += buckets[i];
    if (seen >= want) return kBounds[i];
  }
  return kBounds.back() * 2;  // beyond the last bound
}

void SetCallback(std::shared_ptr<LockCallback> callback) {
  auto& r = internal::Global();
  std::lock_guard<std::mutex> lock(r.mu);
  r.has_callback.store(callback != nullptr, std::memory_order_release);
  r.callback = std::move(callback);
}

Stats GetStats() {
  auto& r = internal::Global();
  Stats out;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    for (const auto& [name, c] : r.counters) {
      PolicyStats p;
      p.kind = std::string(
          policy::LockKindName(static_cast<policy::LockKind>(c.kind.load())));
      p.acquired = c.acquired.load();
      p.busy = c.busy.load();
      p.skipped = c.skipped.load();
      p.errors = c.errors.load();
      p.released = c.released.load();
      p.active = c.active.load();
      p.waiting = c.waiting.load();
      p.lost = c.lost.load();
      p.waits_woken_by_notify = c.waits_woken_by_notify.load();
      p.waits_woken_by_timer = c.waits_woken_by_timer.load();
      p.renewals = c.renewals.load();
      p.renewal_errors = c.renewal_errors.load();
      p.skipped_renewals = c.skipped_renewals.load();
      p.acquire_wait = c.acquire_wait.Snapshot();
      p.hold_time = c.hold_time.Snapshot();
      p.script_call = c.script_call.Snapshot();
      p.renewal_latency = c.renewal_latency.Snapshot();
      out.per_policy.emplace(name, std::move(p));
    }
  }
  for (const auto& [name, p] : out.per_policy) {
    out.total_locks += p.acquired;
    out.active_locks += p.active;
    out.renewal_count += p.renewals;
    out.renewal_errors += p.renewal_errors;
    out.skipped_renewals += p.skipped_renewals;
    out.renew_latency_ns +=
        static_cast<int64_t>(p.renewal_latency.sum_seconds * 1e9);
    out.renew_latency_count += p.renewal_latency.count;
  }
  out.worker_queue_len = r.queue_len.load();
  out.worker_queue_cap = r.queue_cap.load();
  out.round_trips = r.round_trips.load();
  out.config_reloads = r.config_reloads.load();
  out.config_reload_errors = r.config_reload_errors.load();
  return out;
}

namespace {

// Prometheus label values escape backslash, quote and newline.
std::string LabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string Bound(double b) { return absl::StrFormat("%g", b); }

}  // namespace

std::string StatsPrometheusText() {
  using internal::MetricTypeName;
  const Stats s = GetStats();
  std::string out;
  auto header = [&out](const char* name, const char* help, const char* type) {
    absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
  };
  for (const auto& c : internal::kPolicyMetrics) {
    header(c.name, c.help, MetricTypeName(c.type));
    for (const auto& [policy, p] : s.per_policy) {
      absl::StrAppend(&out, c.name, "{policy=\"", LabelValue(policy), "\"} ",
                      p.*(c.field), "\n");
    }
  }
  for (const internal::HistogramDef& h : internal::kHistograms) {
    header(h.name, h.help, "histogram");
    for (const auto& [policy, p] : s.per_policy) {
      const HistogramSnapshot& hs = p.*(h.field);
      const std::string label = LabelValue(policy);
      int64_t cumulative = 0;
      for (size_t i = 0; i < HistogramSnapshot::kBounds.size(); ++i) {
        cumulative += hs.buckets[i];
        absl::StrAppend(&out, h.name, "_bucket{policy=\"", label, "\",le=\"",
                        Bound(HistogramSnapshot::kBounds[i]), "\"} ", cumulative, "\n");
      }
      absl::StrAppend(&out, h.name, "_bucket{policy=\"", label, "\",le=\"+Inf\"} ",
                      hs.count, "\n", h.name, "_sum{policy=\"", label, "\"} ",
                      absl::StrFormat("%.9g", hs.sum_seconds), "\n", h.name,
                      "_count{policy=\"", label, "\"} ", hs.count, "\n");
    }
  }
  header(internal::kPolicyInfoName, internal::kPolicyInfoHelp, "gauge");
  for (const auto& [policy, p] : s.per_policy) {
    absl::StrAppend(&out, internal::kPolicyInfoName, "{policy=\"", LabelValue(policy),
                    "\",kind=\"", p.kind, "\"} 1\n");
  }
  for (const auto& c : internal::kProcessMetrics) {
    header(c.name, c.help, MetricTypeName(c.type));
    absl::StrAppend(&out, c.name, " ", s.*(c.field), "\n");
  }
  return out;
}

std::string StatsJson() {
  const Stats s = GetStats();
  auto histogram = [](const HistogramSnapshot& h) {
    nlohmann::json buckets = nlohmann::json::array();
    for (size_t i = 0; i < HistogramSnapshot::kBounds.size(); ++i) {
      buckets.push_back({HistogramSnapshot::kBounds[i], h.buckets[i]});
    }
    buckets.push_back({"+Inf", h.buckets.back()});
    return nlohmann::json{{"count", h.count},
                          {"sum_seconds", h.sum_seconds},
                          {"p50_le", h.QuantileUpperBound(0.5)},
                          {"p99_le", h.QuantileUpperBound(0.99)},
                          {"buckets", buckets}};
  };
  nlohmann::json policies = nlohmann::json::object();
  for (const auto& [name, p] : s.per_policy) {
    nlohmann::json j;
    j["kind"] = p.kind;
    for (const auto& c : internal::kPolicyMetrics) j[c.name] = p.*(c.field);
    for (const internal::HistogramDef& h : internal::kHistograms) j[h.name] = histogram(p.*(h.field));
    policies[name] = j;
  }
  nlohmann::json out = {{"total_locks", s.total_locks},
                        {"active_locks", s.active_locks},
                        {"renewal_count", s.renewal_count},
                        {"renewal_errors", s.renewal_errors},
                        {"skipped_renewals", s.skipped_renewals},
                        {"renew_latency_ns", s.renew_latency_ns},
                        {"renew_latency_count", s.renew_latency_count},
                        {"worker_queue_len", s.worker_queue_len},
                        {"worker_queue_cap", s.worker_queue_cap},
                        {"renewal_round_trips", s.round_trips},
                        {"config_reloads", s.config_reloads},
                        {"config_reload_errors", s.config_reload_errors},
                        {"policies", policies}};
  return out.dump(2);
}

}  // namespace lock
