#include "policy/validate.h"

#include <algorithm>

namespace policy {

absl::Duration DefaultScriptTimeout(const Policy& p) {
  // The built-in 600ms fits leases of 4s and more. A shorter lease (the Go
  // library accepts lock.Lock(ctx, key, time.Second, fn)) gets half of its
  // renewal window (or of the lease, without renewal): a renewal call then
  // always ends before the lease does. Only an explicit script_timeout that
  // contradicts the lease is an error.
  const absl::Duration window =
      p.renewal.enabled ? p.ttl * p.renewal.threshold : p.ttl;
  const absl::Duration fitted = absl::Trunc(window / 2, absl::Milliseconds(1));
  return std::clamp(fitted, absl::Milliseconds(1), Policy().script_timeout);
}

}  // namespace policy
