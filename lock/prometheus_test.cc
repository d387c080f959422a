// lock::RegisterMetrics (issue 17) against a real redis-server: the
// families in a prometheus::Registry show what lock::GetStats says, under
// the documented names, labels, help texts and types; they follow by
// themselves on the refresh period; a registry gets them once, and gets
// them back after the handle is gone.
#include "lock/prometheus.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/lock.h"
#include "lock/stats.h"
#include "lock/testing/locker_from_json.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using harness::Eventually;
using ::testing::HasSubstr;
using ::util::testing::IsOk;
using ::util::testing::StatusIs;

constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"] } },
  "policies": {
    "prom-mutex": { "key_prefix": "pm:", "on_busy": "fail" },
    "prom-skip": { "key_prefix": "pm:", "on_busy": "skip" },
    "prom-sem": { "kind": "semaphore", "permits": 2, "key_prefix": "ps:", "on_busy": "fail" }
  }
})json";

// One sample per series: "name{label=\"value\",...}" (labels sorted, as
// prometheus-cpp keeps them) -> value.
using Samples = std::map<std::string, double>;

std::string Le(double bound) {
  return std::isinf(bound) ? "+Inf" : absl::StrFormat("%g", bound);
}

std::string Series(const std::string& name, std::vector<std::pair<std::string, std::string>> labels) {
  std::sort(labels.begin(), labels.end());
  std::vector<std::string> parts;
  for (const auto& [k, v] : labels) parts.push_back(absl::StrCat(k, "=\"", v, "\""));
  return absl::StrCat(name, "{", absl::StrJoin(parts, ","), "}");
}

// What the registry holds, for the lock_* families only.
Samples FromRegistry(const prometheus::Registry& registry) {
  Samples out;
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    if (!absl::StartsWith(f.name, "lock_")) continue;
    for (const prometheus::ClientMetric& m : f.metric) {
      std::vector<std::pair<std::string, std::string>> labels;
      for (const auto& l : m.label) labels.emplace_back(l.name, l.value);
      switch (f.type) {
        case prometheus::MetricType::Counter:
          out[Series(f.name, labels)] = m.counter.value;
          break;
        case prometheus::MetricType::Gauge:
          out[Series(f.name, labels)] = m.gauge.value;
          break;
        case prometheus::MetricType::Histogram:
          for (const auto& b : m.histogram.bucket) {
            auto with_le = labels;
            with_le.emplace_back("le", Le(b.upper_bound));
            out[Series(f.name + "_bucket", with_le)] = static_cast<double>(b.cumulative_count);
          }
          out[Series(f.name + "_sum", labels)] = m.histogram.sample_sum;
          out[Series(f.name + "_count", labels)] = static_cast<double>(m.histogram.sample_count);
          break;
        default:
          ADD_FAILURE() << f.name << ": unexpected type";
      }
    }
  }
  return out;
}

// What GetStats says, under the names the README documents (written out
// here, not taken from the library's table: they are the contract).
Samples FromStats(const Stats& s) {
  Samples out;
  for (const auto& [policy, p] : s.per_policy) {
    const std::vector<std::pair<std::string, std::string>> label = {{"policy", policy}};
    const std::pair<const char*, int64_t> numbers[] = {
        {"lock_acquired_total", p.acquired},
        {"lock_busy_total", p.busy},
        {"lock_skipped_total", p.skipped},
        {"lock_acquire_errors_total", p.errors},
        {"lock_released_total", p.released},
        {"lock_active", p.active},
        {"lock_waiting", p.waiting},
        {"lock_lost_total", p.lost},
        {"lock_waits_woken_by_notify_total", p.waits_woken_by_notify},
        {"lock_waits_woken_by_timer_total", p.waits_woken_by_timer},
        {"lock_renewals_total", p.renewals},
        {"lock_renewal_errors_total", p.renewal_errors},
        {"lock_skipped_renewals_total", p.skipped_renewals},
    };
    for (const auto& [name, value] : numbers) out[Series(name, label)] = static_cast<double>(value);
    const std::pair<const char*, const HistogramSnapshot*> histograms[] = {
        {"lock_acquire_wait_seconds", &p.acquire_wait},
        {"lock_hold_seconds", &p.hold_time},
        {"lock_script_call_seconds", &p.script_call},
        {"lock_renewal_seconds", &p.renewal_latency},
    };
    for (const auto& [name, h] : histograms) {
      int64_t cumulative = 0;
      for (size_t i = 0; i < h->buckets.size(); ++i) {
        cumulative += h->buckets[i];
        const double bound =
            i < HistogramSnapshot::kBounds.size() ? HistogramSnapshot::kBounds[i] : INFINITY;
        out[Series(absl::StrCat(name, "_bucket"), {{"policy", policy}, {"le", Le(bound)}})] =
            static_cast<double>(cumulative);
      }
      out[Series(absl::StrCat(name, "_sum"), label)] = h->sum_seconds;
      out[Series(absl::StrCat(name, "_count"), label)] = static_cast<double>(h->count);
    }
    out[Series("lock_policy_info", {{"policy", policy}, {"kind", p.kind}})] = 1;
  }
  const std::pair<const char*, int64_t> process[] = {
      {"lock_renewal_queue_length", s.worker_queue_len},
      {"lock_renewal_queue_capacity", s.worker_queue_cap},
      {"lock_renewal_round_trips_total", s.round_trips},
      {"lock_config_reloads_total", s.config_reloads},
      {"lock_config_reload_errors_total", s.config_reload_errors},
  };
  for (const auto& [name, value] : process) out[Series(name, {})] = static_cast<double>(value);
  return out;
}

// Same series, same values (sums of seconds to rounding).
void ExpectSameSamples(const Samples& got, const Samples& want) {
  std::vector<std::string> got_names, want_names;
  for (const auto& [k, v] : got) got_names.push_back(k);
  for (const auto& [k, v] : want) want_names.push_back(k);
  ASSERT_EQ(got_names, want_names);
  for (const auto& [k, v] : want) {
    EXPECT_NEAR(got.at(k), v, 1e-9 * std::max(1.0, std::fabs(v))) << k;
  }
}

class PrometheusTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    auto locker =
        LockerFromJson(absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}}), "prom.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }

  // Locks taken, refused as busy and skipped, on a mutex and a semaphore.
  void TakeLocks(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_THAT(locker_->With("prom-mutex", absl::StrCat("k", i), [] { return absl::OkStatus(); }),
                  IsOk());
      ASSERT_THAT(locker_->With("prom-sem", "pool", [] { return absl::OkStatus(); }), IsOk());
    }
    auto holder = locker_->NewLock("prom-mutex", "held");
    ASSERT_THAT(holder, IsOk());
    ASSERT_THAT((*holder)->Acquire(), IsOk());
    EXPECT_FALSE(locker_->With("prom-mutex", "held", [] { return absl::OkStatus(); }).ok());
    EXPECT_FALSE(locker_->With("prom-skip", "held", [] { return absl::OkStatus(); }).ok());
    ASSERT_THAT((*holder)->Release(), IsOk());
  }

  double Acquired(const prometheus::Registry& registry, const std::string& policy) {
    const Samples s = FromRegistry(registry);
    auto it = s.find(Series("lock_acquired_total", {{"policy", policy}}));
    return it == s.end() ? -1 : it->second;
  }

  std::unique_ptr<Locker> locker_;
};

TEST_F(PrometheusTest, FamiliesShowGetStatsUnderTheTextsNamesHelpAndTypes) {
  prometheus::Registry registry;
  TakeLocks(3);
  auto metrics = RegisterMetrics(registry, {.refresh_period = absl::ZeroDuration()});
  ASSERT_THAT(metrics, IsOk());
  ExpectSameSamples(FromRegistry(registry), FromStats(GetStats()));

  // More of everything, then a refresh: counters grow by the difference,
  // histograms by bucket, and new series appear.
  TakeLocks(5);
  ASSERT_THAT(locker_->With("prom-mutex", "late-key", [] { return absl::OkStatus(); }), IsOk());
  ASSERT_THAT(metrics->Refresh(), IsOk());
  const Stats stats = GetStats();
  ExpectSameSamples(FromRegistry(registry), FromStats(stats));
  EXPECT_GE(stats.per_policy.at("prom-mutex").acquired, 9);
  EXPECT_GE(stats.per_policy.at("prom-mutex").busy, 2);
  EXPECT_GE(stats.per_policy.at("prom-skip").skipped, 2);
  EXPECT_GE(stats.per_policy.at("prom-mutex").hold_time.count, 9);
  const Samples got = FromRegistry(registry);
  EXPECT_EQ(got.at(Series("lock_policy_info", {{"policy", "prom-sem"}, {"kind", "semaphore"}})), 1);

  // Help texts and types are those of the text exposition, family by family.
  std::map<std::string, std::string> help, type;
  for (absl::string_view line : absl::StrSplit(StatsPrometheusText(), '\n')) {
    std::pair<std::string, std::string> name_text = absl::StrSplit(line.substr(std::min<size_t>(7, line.size())), absl::MaxSplits(' ', 1));
    if (absl::StartsWith(line, "# HELP ")) help[name_text.first] = name_text.second;
    if (absl::StartsWith(line, "# TYPE ")) type[name_text.first] = name_text.second;
  }
  const std::map<prometheus::MetricType, std::string> type_name = {
      {prometheus::MetricType::Counter, "counter"},
      {prometheus::MetricType::Gauge, "gauge"},
      {prometheus::MetricType::Histogram, "histogram"}};
  int families = 0;
  for (const prometheus::MetricFamily& f : registry.Collect()) {
    ++families;
    EXPECT_EQ(f.help, help[f.name]) << f.name;
    EXPECT_EQ(type_name.at(f.type), type[f.name]) << f.name;
  }
  EXPECT_EQ(families, static_cast<int>(help.size()));
  EXPECT_EQ(families, 13 + 4 + 1 + 5);
}

TEST_F(PrometheusTest, FollowsTheStatisticsOnItsOwn) {
  prometheus::Registry registry;
  auto metrics = RegisterMetrics(registry, {.refresh_period = absl::Milliseconds(20)});
  ASSERT_THAT(metrics, IsOk());
  TakeLocks(2);
  const double want = static_cast<double>(GetStats().per_policy["prom-mutex"].acquired);
  EXPECT_TRUE(Eventually([&] { return Acquired(registry, "prom-mutex") == want; }))
      << Acquired(registry, "prom-mutex") << " != " << want;
}

// A policy edited from mutex to semaphore on a hot reload: the next refresh
// shows it once, under its new kind; the old lock_policy_info series is gone
// rather than left beside it (two kinds for one policy would double every
// join on the info metric).
TEST_F(PrometheusTest, APolicyWhoseKindChangesOnReloadKeepsOneInfoSeries) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/prom-reload-", getpid(), ".json");
  auto write = [&](const char* kind_fields) {
    const std::string tmp = path + ".tmp";
    std::ofstream(tmp) << absl::StrCat(R"({ "redis": { "default": { "addrs": [")", server().addr(),
                                       R"("] } }, "policies": { "prom-morph": { "key_prefix": "pr:")",
                                       kind_fields, " } } }");
    ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);  // at once, as editors do
  };
  auto take = [] { return With("prom-morph", "k", [] { return absl::OkStatus(); }); };
  const std::string as_mutex = Series("lock_policy_info", {{"policy", "prom-morph"}, {"kind", "mutex"}});
  const std::string as_semaphore =
      Series("lock_policy_info", {{"policy", "prom-morph"}, {"kind", "semaphore"}});

  write("");
  ASSERT_THAT(Init(path, {.watch_interval = absl::Milliseconds(10)}), IsOk());
  absl::Cleanup shutdown = [] { Shutdown(); };
  ASSERT_THAT(take(), IsOk());
  prometheus::Registry registry;
  auto metrics = RegisterMetrics(registry, {.refresh_period = absl::ZeroDuration()});
  ASSERT_THAT(metrics, IsOk());
  Samples got = FromRegistry(registry);
  EXPECT_EQ(got.count(as_mutex), 1u);
  EXPECT_EQ(got.count(as_semaphore), 0u);

  const int64_t reloads = GetStats().config_reloads;
  write(R"(, "kind": "semaphore", "permits": 3)");
  ASSERT_TRUE(Eventually([&] { return GetStats().config_reloads == reloads + 1; }))
      << "the edit was not reloaded";
  ASSERT_THAT(take(), IsOk());
  ASSERT_THAT(metrics->Refresh(), IsOk());
  got = FromRegistry(registry);
  EXPECT_EQ(got.count(as_mutex), 0u) << "the mutex series stayed";
  EXPECT_EQ(got.count(as_semaphore), 1u);
  ExpectSameSamples(got, FromStats(GetStats()));
}

TEST_F(PrometheusTest, ARegistryHasOneRegistrationAndGetsItBackAfterIt) {
  prometheus::Registry registry;
  {
    auto first = RegisterMetrics(registry);
    ASSERT_THAT(first, IsOk());
    EXPECT_THAT(RegisterMetrics(registry).status(),
                StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("live lock::MetricsRegistration")));
    // Another registry is another matter.
    prometheus::Registry other;
    EXPECT_THAT(RegisterMetrics(other), IsOk());
    // Assigning over a handle unregisters what it had.
    auto second = RegisterMetrics(other);
    ASSERT_THAT(second, IsOk());
    *first = *std::move(second);
    EXPECT_TRUE(FromRegistry(registry).empty());
    EXPECT_FALSE(FromRegistry(other).empty());
    MetricsRegistration moved = *std::move(first);
    EXPECT_THAT(first->Refresh(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                           HasSubstr("moved from")));
  }
  EXPECT_TRUE(registry.Collect().empty());
  TakeLocks(1);
  auto again = RegisterMetrics(registry);
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(Acquired(registry, "prom-mutex"),
            static_cast<double>(GetStats().per_policy["prom-mutex"].acquired));
}

TEST_F(PrometheusTest, TheApplicationsOwnMetricOfALockNameIsRefused) {
  prometheus::Registry registry;
  prometheus::BuildCounter().Name("lock_acquired_total").Help("mine").Register(registry).Add({}).Increment();
  EXPECT_THAT(RegisterMetrics(registry).status(),
              StatusIs(absl::StatusCode::kAlreadyExists,
                       HasSubstr("already has a metric family named lock_acquired_total")));
  ASSERT_EQ(registry.Collect().size(), 1u);  // only the application's
}

TEST_F(PrometheusTest, AThrowingRegistryRefusalLeavesNothingBehind) {
  // An empty family is not collected, so only prometheus-cpp itself sees
  // the name taken: a registry built with Throw throws, and what the
  // registration had added goes.
  prometheus::Registry registry(prometheus::Registry::InsertBehavior::Throw);
  prometheus::BuildGauge().Name("lock_renewal_queue_length").Help("mine").Register(registry);
  EXPECT_THAT(RegisterMetrics(registry).status(),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("refused a lock_* family")));
  prometheus::BuildCounter().Name("lock_acquired_total").Help("mine").Register(registry).Add({});
  EXPECT_EQ(registry.Collect().size(), 1u);  // lock_acquired_total is free again
}

TEST_F(PrometheusTest, NegativeRefreshPeriodIsRefused) {
  prometheus::Registry registry;
  EXPECT_THAT(RegisterMetrics(registry, {.refresh_period = absl::Seconds(-1)}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("refresh_period -1s")));
  EXPECT_TRUE(registry.Collect().empty());
}

}  // namespace
}  // namespace lock
