// Live statistics counters behind lock::GetStats (stats.h): what the engine
// increments on every operation. Not part of the public surface.
#ifndef LOCK_INTERNAL_COUNTERS_H_
#define LOCK_INTERNAL_COUNTERS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/time/time.h"
#include "lock/stats.h"

namespace lock {
namespace internal {

class Histogram {
 public:
  void Observe(absl::Duration d);
  HistogramSnapshot Snapshot() const;

 private:
  std::array<std::atomic<int64_t>, HistogramSnapshot::kBounds.size() + 1>
      buckets_{};
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> sum_ns_{0};
};

// Live counters of one policy; never freed, so pointers stay valid.
struct PolicyCounters {
  std::atomic<int64_t> acquired{0}, busy{0}, skipped{0}, errors{0},
      released{0}, active{0}, waiting{0}, lost{0}, waits_woken_by_notify{0},
      waits_woken_by_timer{0}, renewals{0}, renewal_errors{0},
      skipped_renewals{0};
  // The kind (policy::LockKind) of the policy's last lock built: statistics
  // are per policy, and a policy is of one kind (a reload may change it).
  std::atomic<int> kind{0};
  Histogram acquire_wait, hold_time, script_call, renewal_latency;
};

PolicyCounters& CountersFor(std::string_view policy);

// Counts one event (relaxed: statistics need no ordering).
inline void Count(std::atomic<int64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
}
std::shared_ptr<LockCallback> Callback();  // nullptr when none
void SetRenewalQueue(int64_t len, int64_t cap);
void AddRenewalRoundTrip();
// One reload attempt of a watched configuration: swapped in, or refused.
void AddConfigReload(bool ok);

}  // namespace internal
}  // namespace lock

#endif  // LOCK_INTERNAL_COUNTERS_H_
