// lockctl stats: reading a statistics dump that a process wrote.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tools/lockctl/cli.h"
#include "tools/lockctl/commands.h"
#include "tools/lockctl/stats_dump.h"

namespace lockctl {
namespace {

constexpr char kStatsHelp[] =
    "usage: lockctl stats FILE [--json]\n"
    "\n"
    "Pretty-prints lock statistics written by a process: the JSON of\n"
    "lock::StatsJson() or the Prometheus text of lock::StatsPrometheusText()\n"
    "(a saved /metrics page); the format is detected from the content. One\n"
    "table per policy: acquisitions by outcome, waits (woken by notify or by\n"
    "timer), renewals, losses, and latency quantiles estimated from the\n"
    "histograms (interpolated within buckets, like histogram_quantile).\n"
    "FILE \"-\" reads stdin. Needs no Redis.\n"
    "\n"
    "  --json  the same as JSON: counters under the library's metric names,\n"
    "          p50/p90/p99 per histogram\n"
    "\n"
    "Exit codes: 0 shown, 1 unreadable or not a stats dump, 2 usage error.\n";

}  // namespace

int Stats(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(argv, {.flags = {"json"}});
  if (!args.ok())
    return UsageError("stats", std::string(args.status().message()));
  if (args->help) {
    std::cout << kStatsHelp;
    return kExitOk;
  }
  if (args->positional.size() != 1)
    return UsageError("stats", "stats needs one FILE");
  const std::string& path = args->positional[0];
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
  if (args->Has("json")) {
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

}  // namespace lockctl
