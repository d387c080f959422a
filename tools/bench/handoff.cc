// Contended handoff: K waiters on one key, each holding it for hold_ms. The
// latency from a holder starting its release to the next (other) waiter
// holding the lock, against the PING round trip measured at the same time
// on another connection.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "tools/bench/common.h"

namespace bench {

void Handoff(const Flags& f, const std::string& addr) {
  for (int hold_ms : f.hold_ms) {
    for (int k : f.waiters) {
      const ContendResult r =
          Contend(addr, {.policy = ContendedPolicy(absl::StrCat("handoff-", k, "-", hold_ms)),
                         .threads = k,
                         .seconds = f.seconds,
                         .hold = std::chrono::milliseconds(hold_ms),
                         .step_back = true});
      const double p50 = Percentile(r.handoff_ms, 0.5), p99 = Percentile(r.handoff_ms, 0.99);
      const double rtt_p50 = Percentile(r.rtt_us, 0.5) / 1000;
      const double rtt_p99 = Percentile(r.rtt_us, 0.99) / 1000;
      Emit({{"scenario", "handoff"},
            {"waiters", k},
            {"hold_ms", hold_ms},
            {"handoffs", r.handoff_ms.size()},
            {"acquisitions_per_s", Round3(r.acquisitions / r.elapsed_s)},
            {"handoff_p50_ms", Round3(p50)},
            {"handoff_p99_ms", Round3(p99)},
            {"rtt_p50_ms", Round3(rtt_p50)},
            {"rtt_p99_ms", Round3(rtt_p99)},
            {"p50_over_rtt", Round3(p50 / rtt_p50)},
            {"idle_fraction", Round3(std::max(0.0, 1 - r.held_s / r.elapsed_s))},
            {"woken_by_notify", r.woken_by_notify},
            {"woken_by_timer", r.woken_by_timer},
            {"target_p50_le_2rtt", p50 <= 2 * rtt_p50},
            {"target_p99_le_5ms", p99 <= 5.0}});
    }
  }
}

}  // namespace bench
