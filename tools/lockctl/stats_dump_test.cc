#include "tools/lockctl/stats_dump.h"

#include <string>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lock/internal/counters.h"
#include "lock/stats.h"
#include "util/status_matchers.h"

namespace lockctl {
namespace {

using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using ::testing::HasSubstr;

// Fills the process-wide counters of two policies with known values, the way
// the library's lock path would.
void FillCounters() {
  static bool done = false;
  if (done) return;
  done = true;
  lock::internal::PolicyCounters& a =
      lock::internal::CountersFor("order-close");
  a.acquired = 40;
  a.busy = 3;
  a.skipped = 0;
  a.errors = 1;
  a.released = 39;
  a.active = 1;
  a.waiting = 2;
  a.lost = 2;
  a.waits_woken_by_notify = 25;
  a.waits_woken_by_timer = 5;
  a.renewals = 7;
  a.renewal_errors = 1;
  for (int i = 0; i < 90; ++i) a.acquire_wait.Observe(absl::Microseconds(300));
  for (int i = 0; i < 10; ++i) a.acquire_wait.Observe(absl::Milliseconds(40));
  a.hold_time.Observe(absl::Seconds(3));
  a.script_call.Observe(absl::Microseconds(150));
  lock::internal::PolicyCounters& b =
      lock::internal::CountersFor("nightly \"report\"");
  b.skipped = 4;
  b.acquired = 1;
  b.kind = 2;  // policy::LockKind::kSemaphore
  for (int i = 0; i < 3; ++i) lock::internal::AddConfigReload(true);
  lock::internal::AddConfigReload(false);
}

void ExpectMatchesLibrary(const StatsDump& d) {
  const lock::Stats s = lock::GetStats();
  EXPECT_EQ(d.config_reloads, 3);
  EXPECT_EQ(d.config_reload_errors, 1);
  EXPECT_EQ(d.config_reloads, s.config_reloads);
  ASSERT_EQ(d.per_policy.count("order-close"), 1u);
  ASSERT_EQ(d.per_policy.count("nightly \"report\""), 1u);
  EXPECT_EQ(d.per_policy.at("nightly \"report\"").kind, "semaphore");
  EXPECT_EQ(d.per_policy.at("order-close").kind, "mutex");
  for (const auto& [name, want] : s.per_policy) {
    const lock::PolicyStats& got = d.per_policy.at(name);
    EXPECT_EQ(got.kind, want.kind) << name;
    EXPECT_EQ(got.acquired, want.acquired) << name;
    EXPECT_EQ(got.busy, want.busy) << name;
    EXPECT_EQ(got.skipped, want.skipped) << name;
    EXPECT_EQ(got.errors, want.errors) << name;
    EXPECT_EQ(got.released, want.released) << name;
    EXPECT_EQ(got.active, want.active) << name;
    EXPECT_EQ(got.waiting, want.waiting) << name;
    EXPECT_EQ(got.lost, want.lost) << name;
    EXPECT_EQ(got.waits_woken_by_notify, want.waits_woken_by_notify) << name;
    EXPECT_EQ(got.waits_woken_by_timer, want.waits_woken_by_timer) << name;
    EXPECT_EQ(got.renewals, want.renewals) << name;
    EXPECT_EQ(got.renewal_errors, want.renewal_errors) << name;
    EXPECT_EQ(got.acquire_wait.buckets, want.acquire_wait.buckets) << name;
    EXPECT_EQ(got.acquire_wait.count, want.acquire_wait.count) << name;
    EXPECT_NEAR(got.acquire_wait.sum_seconds, want.acquire_wait.sum_seconds,
                1e-6);
    EXPECT_EQ(got.hold_time.buckets, want.hold_time.buckets) << name;
    EXPECT_EQ(got.script_call.buckets, want.script_call.buckets) << name;
  }
}

TEST(StatsDumpTest, ReadsTheLibrarysJson) {
  FillCounters();
  absl::StatusOr<StatsDump> d = ParseStatsDump(lock::StatsJson());
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->format, DumpFormat::kJson);
  ExpectMatchesLibrary(*d);
}

TEST(StatsDumpTest, ReadsTheLibrarysPrometheusText) {
  FillCounters();
  absl::StatusOr<StatsDump> d = ParseStatsDump(lock::StatsPrometheusText());
  ASSERT_THAT(d, IsOk());
  EXPECT_EQ(d->format, DumpFormat::kPrometheus);
  ExpectMatchesLibrary(*d);
}

TEST(StatsDumpTest, BothFormatsRenderTheSameTables) {
  FillCounters();
  absl::StatusOr<StatsDump> j = ParseStatsDump(lock::StatsJson());
  absl::StatusOr<StatsDump> p = ParseStatsDump(lock::StatsPrometheusText());
  ASSERT_THAT(j, IsOk());
  ASSERT_THAT(p, IsOk());
  EXPECT_EQ(RenderStatsTables(*j), RenderStatsTables(*p));
  EXPECT_THAT(RenderStatsTables(*j), HasSubstr("policy order-close\n"));
  EXPECT_THAT(RenderStatsTables(*j), HasSubstr("edits refused"));
}

TEST(StatsDumpTest, MergesDumps) {
  FillCounters();
  absl::StatusOr<StatsDump> d = ParseStatsDump(lock::StatsJson());
  ASSERT_THAT(d, IsOk());
  StatsDump sum;
  AddDump(sum, *d);
  AddDump(sum, *d);
  const lock::PolicyStats& p = sum.per_policy.at("order-close");
  EXPECT_EQ(p.acquired, 2 * d->per_policy.at("order-close").acquired);
  EXPECT_EQ(p.acquire_wait.count,
            2 * d->per_policy.at("order-close").acquire_wait.count);
}

TEST(StatsDumpTest, QuantilesInterpolateWithinBuckets) {
  lock::HistogramSnapshot h;
  // 100 observations in (0.25ms, 0.5ms]: the median is halfway through.
  h.buckets[2] = 100;
  h.count = 100;
  EXPECT_NEAR(EstimateQuantile(h, 0.5), 0.000375, 1e-9);
  EXPECT_NEAR(EstimateQuantile(h, 1.0), 0.0005, 1e-9);
  h.buckets.back() = 100;  // beyond the last bound
  EXPECT_DOUBLE_EQ(EstimateQuantile(h, 0.99), 10);
  EXPECT_EQ(EstimateQuantile(lock::HistogramSnapshot{}, 0.5), 0);
}

TEST(StatsDumpTest, DerivesRetriesFromScriptCalls) {
  lock::PolicyStats s;
  s.acquired = 10;  // 10 releases and 10 first attempts...
  s.busy = 2;       // ...plus 2 first attempts that gave up
  s.script_call.count = 10 + 12 + 5;
  EXPECT_EQ(DerivedRetries(s), 5);
}

TEST(StatsDumpTest, RejectsWhatIsNotADump) {
  EXPECT_THAT(ParseStatsDump(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      ParseStatsDump("hello"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("neither")));
  EXPECT_THAT(
      ParseStatsDump("{\"x\": 1}"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/policies")));
  EXPECT_THAT(
      ParseStatsDump("lock_acquired_total{policy=\"a\"} many\n"),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
}

TEST(StatsDumpTest, FormatsSeconds) {
  EXPECT_EQ(FormatSeconds(0), "0");
  EXPECT_EQ(FormatSeconds(0.000375), "375us");
  EXPECT_EQ(FormatSeconds(0.00125), "1.25ms");
  EXPECT_EQ(FormatSeconds(0.0421), "42.1ms");
  EXPECT_EQ(FormatSeconds(2.5), "2.50s");
}

}  // namespace
}  // namespace lockctl
