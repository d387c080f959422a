// lockctl stats: reading a statistics dump that a process wrote.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "tools/lockctl/cli.h"
#include "tools/lockctl/commands.h"
#include "tools/lockctl/stats_dump.h"

namespace lockctl {
namespace {

int Stats(const std::vector<std::string>& positional) {
  if (positional.size() != 1)
    return UsageError("stats", "stats needs one FILE");
  const std::string& path = positional[0];
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(UserPath(path));
    if (!in) {
      std::cerr << "lockctl: cannot read " << path << "\n";
      return kExitRefused;
    }
    text << in.rdbuf();
  }
  absl::StatusOr<StatsDump> dump = ParseStatsDump(text.str());
  if (!dump.ok()) {
    std::cerr << "lockctl: " << path << ": " << dump.status().message() << "\n";
    return kExitRefused;
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << StatsDumpToJson(*dump).dump(2) << "\n";
    return kExitOk;
  }
  std::cout << "lock statistics from " << path << " ("
            << (dump->format == DumpFormat::kJson ? "lock::StatsJson"
                                                  : "Prometheus text")
            << ")\n\n"
            << RenderStatsTables(*dump);
  return kExitOk;
}

}  // namespace

Command StatsCommand() {
  return {
      .name = "stats",
      .usage = "usage: lockctl stats FILE [--json]\n",
      .about = R"text(
Pretty-prints lock statistics written by a process: the JSON of
lock::StatsJson() or the Prometheus text of lock::StatsPrometheusText()
(a saved /metrics page); the format is detected from the content. One
table per policy: acquisitions by outcome, waits (woken by notify or by
timer), renewals, losses, and latency quantiles estimated from the
histograms (interpolated within buckets, like histogram_quantile).
FILE "-" reads stdin. Needs no Redis. --json prints the same as JSON:
counters under the library's metric names, p50/p90/p99 per histogram.
)text",
      .flags = {Opt(FLAGS_json)},
      .exit_codes =
          "Exit codes: 0 shown, 1 unreadable or not a stats dump, 2 usage "
          "error.\n",
      .run = Stats,
  };
}

}  // namespace lockctl
