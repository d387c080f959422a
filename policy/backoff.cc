#include "policy/backoff.h"

#include <algorithm>
#include <cmath>

namespace policy {

absl::Duration BackoffDelay(const RetryPolicy& retry, int retry_index,
                            double unit_random) {
  if (retry.initial_delay <= absl::ZeroDuration()) return absl::ZeroDuration();
  // pow() returns +inf for large indexes and Duration * double saturates at
  // InfiniteDuration, so the min() below caps any index at max_delay.
  const double growth = std::pow(retry.multiplier, std::max(retry_index, 0));
  const absl::Duration grown = std::isfinite(growth)
                                   ? retry.initial_delay * growth
                                   : absl::InfiniteDuration();
  const absl::Duration base = std::min(grown, retry.max_delay);
  if (base <= absl::ZeroDuration()) return absl::ZeroDuration();

  const double u = std::clamp(unit_random, 0.0, 1.0);
  const double scale = 1.0 + retry.jitter * (2.0 * u - 1.0);
  return std::max(base * scale, absl::ZeroDuration());
}

}  // namespace policy
