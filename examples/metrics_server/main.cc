// A process that serves its lock statistics to Prometheus with
// prometheus-cpp: lock::RegisterMetrics (//lock:prometheus) puts the lock_*
// families in the process's prometheus::Registry, and prometheus::Exposer
// serves that registry on /metrics, next to the process's own metrics (here
// metrics_server_jobs_total). Worker threads meanwhile take locks in a loop:
// a contended "report" mutex and an "export-slots" semaphore.
//
//   bazel run //examples/metrics_server -- --port 9464
//   curl -s localhost:9464/metrics | grep lock_acquired_total
//
// It starts an embedded redis-server (or uses --redis), prints
// "serving /metrics on 127.0.0.1:<port>" once the exposer listens (--port 0,
// the default, takes a free port), and runs for --seconds (0: until killed).
#include <atomic>
#include <csignal>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/common/demo.h"
#include "lock/lock.h"
#include "lock/prometheus.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/registry.h"

ABSL_FLAG(int, port, 0, "port of /metrics on 127.0.0.1 (0: a free one)");
ABSL_FLAG(int, workers, 4, "threads taking locks");
// Whole numbers rather than absl::Duration: abseil reads a Duration flag
// under a sequence lock whose fences GCC's ThreadSanitizer refuses to build.
ABSL_FLAG(int, seconds, 0, "how long to run, in seconds (0: until SIGINT or SIGTERM)");
ABSL_FLAG(int, refresh_ms, 1000,
          "how often the lock_* families are brought up to date, in milliseconds");

namespace {

constexpr char kProgram[] = "metrics_server";

std::atomic<bool> stop{false};

void Stop(int) { stop.store(true); }

// One worker: reports on a few shared keys (they contend, so some wait), and
// an export whenever a slot is free (skipped otherwise).
void Work(int worker, prometheus::Counter& jobs) {
  for (int i = 0; !stop.load(); ++i) {
    const std::string key = absl::StrCat("day-", i % 3);
    absl::Status s = lock::With("report", key, [] {
      absl::SleepFor(absl::Milliseconds(2));
      return absl::OkStatus();
    });
    if (!s.ok()) std::cerr << kProgram << ": worker " << worker << ": " << s << "\n";
    s = lock::With("export-slots", "nightly", [] {
      absl::SleepFor(absl::Milliseconds(5));
      return absl::OkStatus();
    });
    if (!s.ok() && !lock::IsSkipped(s)) {
      std::cerr << kProgram << ": worker " << worker << ": " << s << "\n";
    }
    jobs.Increment();
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  auto env = demo::Environment::Prepare(kProgram, "examples/metrics_server/policies.json",
                                        absl::GetFlag(FLAGS_config), absl::GetFlag(FLAGS_redis));
  if (absl::Status s = lock::Init(env->worker_config()); !s.ok()) {
    std::cerr << kProgram << ": " << s << "\n";
    return 1;
  }

  // The registry outlives the registration, which outlives the exposer
  // serving it (destroyed in the reverse order).
  auto registry = std::make_shared<prometheus::Registry>();
  absl::StatusOr<lock::MetricsRegistration> metrics =
      lock::RegisterMetrics(*registry, {.refresh_period = absl::Milliseconds(absl::GetFlag(FLAGS_refresh_ms))});
  if (!metrics.ok()) {
    std::cerr << kProgram << ": " << metrics.status() << "\n";
    return 1;
  }
  prometheus::Counter& jobs = prometheus::BuildCounter()
                                  .Name("metrics_server_jobs_total")
                                  .Help("Jobs the workers ran (the application's own metric).")
                                  .Register(*registry)
                                  .Add({});
  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(
        absl::StrCat("127.0.0.1:", absl::GetFlag(FLAGS_port)));
  } catch (const std::exception& e) {
    std::cerr << kProgram << ": cannot serve on port " << absl::GetFlag(FLAGS_port) << ": "
              << e.what() << "\n";
    return 1;
  }
  exposer->RegisterCollectable(registry);
  std::cout << kProgram << ": serving /metrics on 127.0.0.1:"
            << exposer->GetListeningPorts().at(0) << ", Redis " << env->Describe()
            << std::endl;

  std::signal(SIGINT, Stop);
  std::signal(SIGTERM, Stop);
  std::vector<std::thread> workers;
  for (int w = 0; w < absl::GetFlag(FLAGS_workers); ++w) {
    workers.emplace_back(Work, w, std::ref(jobs));
  }
  const int run_for = absl::GetFlag(FLAGS_seconds);
  const absl::Time end = absl::Now() + absl::Seconds(run_for);
  while (!stop.load() && (run_for == 0 || absl::Now() < end)) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  stop.store(true);
  for (std::thread& t : workers) t.join();
  exposer.reset();
  lock::Shutdown();
  std::cout << kProgram << ": stopped" << std::endl;
  return 0;
}
