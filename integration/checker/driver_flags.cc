#include "integration/checker/driver_flags.h"

#include "absl/flags/flag.h"
#include "util/flags.h"

ABSL_FLAG(std::string, scenario, "", "the fault scenario to run (see --list)");
ABSL_FLAG(bool, short, false,
          "short run (the default): 3 processes x 3 threads, 8 s");
ABSL_FLAG(bool, long, false, "the soak: 4 processes x 4 threads, 60 s");
ABSL_FLAG(int, processes, 0, "worker processes (>= 2); 0: the mode's default");
ABSL_FLAG(int, threads, 0, "threads per worker (>= 1); 0: the mode's default");
ABSL_FLAG(int, keys, 0, "lock keys; 0: the scenario's or the mode's default");
ABSL_FLAG(int, seconds, 0, "run time (>= 4); 0: the mode's default");
ABSL_FLAG(int, ttl_ms, 1000, "lease of the workload's locks");
ABSL_FLAG(int, script_timeout_ms, 200, "the workload's script timeout");
ABSL_FLAG(std::string, out, "", "directory for histories and logs");
ABSL_FLAG(std::string, summary, "",
          "append the scenario's JSON summary line to this file");
ABSL_FLAG(bool, list, false, "print the scenario names, one per line");
ABSL_FLAG(bool, keep, false, "keep the output directory");
// Set by the coordinator on the workers it starts.
ABSL_FLAG(int, worker, -1, "internal: run as this worker process");
ABSL_FLAG(std::string, config, "", "internal: the worker's policy file");
ABSL_FLAG(std::string, run, "", "internal: the run's id");
ABSL_FLAG(int, notify_fd, -1, "internal: the victim's pipe to the coordinator");
ABSL_FLAG(int, victim_after_ms, -1,
          "internal: when the victim enters its section");
ABSL_FLAG(int, victim_hold_ms, 0, "internal: how long the victim stays inside");
ABSL_FLAG(int, victim_extend_ms, 0,
          "internal: the lease the victim extends to");
ABSL_FLAG(std::string, netns, "", "internal: network namespace of the worker");

namespace lock::checker::driver {

Flags ParseFlags(int argc, char** argv) {
  util::ParseFlags(argc, argv,
                   "runs a lock workload under one injected fault and checks "
                   "its history.\n"
                   "  driver --scenario=NAME [--short|--long] [--out=DIR] "
                   "[--summary=FILE] [--processes=P --threads=T --keys=K "
                   "--seconds=S] [--ttl_ms=N --script_timeout_ms=N] [--keep]\n"
                   "  driver --list");
  if (absl::GetFlag(FLAGS_short) && absl::GetFlag(FLAGS_long)) {
    util::UsageError("--short and --long exclude each other");
  }
  Flags f;
  f.scenario = absl::GetFlag(FLAGS_scenario);
  f.mode = absl::GetFlag(FLAGS_long) ? "long" : "short";
  f.processes = absl::GetFlag(FLAGS_processes);
  f.threads = absl::GetFlag(FLAGS_threads);
  f.keys = absl::GetFlag(FLAGS_keys);
  f.seconds = absl::GetFlag(FLAGS_seconds);
  f.ttl_ms = util::FlagAtLeast(FLAGS_ttl_ms, 1);
  f.script_timeout_ms = util::FlagAtLeast(FLAGS_script_timeout_ms, 1);
  f.out = absl::GetFlag(FLAGS_out);
  f.summary = absl::GetFlag(FLAGS_summary);
  f.list = absl::GetFlag(FLAGS_list);
  f.keep = absl::GetFlag(FLAGS_keep);
  f.worker = absl::GetFlag(FLAGS_worker);
  f.config = absl::GetFlag(FLAGS_config);
  f.run = absl::GetFlag(FLAGS_run);
  f.notify_fd = absl::GetFlag(FLAGS_notify_fd);
  f.victim_after_ms = absl::GetFlag(FLAGS_victim_after_ms);
  f.victim_hold_ms = absl::GetFlag(FLAGS_victim_hold_ms);
  f.victim_extend_ms = absl::GetFlag(FLAGS_victim_extend_ms);
  f.netns = absl::GetFlag(FLAGS_netns);
  return f;
}

}  // namespace lock::checker::driver
