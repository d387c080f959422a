// The driver's command line: the coordinator's flags (scenario, mode, sizes)
// and those it passes to the workers it starts (this binary again, with
// --worker). `driver --help` lists them.
#ifndef INTEGRATION_CHECKER_DRIVER_FLAGS_H_
#define INTEGRATION_CHECKER_DRIVER_FLAGS_H_

#include <string>

namespace lock::checker::driver {

struct Flags {
  std::string scenario;
  std::string mode = "short";  // short | long
  int processes = 0, threads = 0, keys = 0;  // 0: the mode's default
  int seconds = 0;
  int ttl_ms = 1000;
  int script_timeout_ms = 200;
  std::string out;
  std::string summary;
  bool list = false;
  bool keep = false;  // keep the output directory
  // Worker side.
  int worker = -1;
  std::string config;
  std::string run;
  int notify_fd = -1;
  int victim_after_ms = -1;
  int victim_hold_ms = 0;
  // The victim sets its lease to this (Held::Extend) before holding on.
  int victim_extend_ms = 0;
  std::string netns;
};

// The command line (abseil flags, defined in driver_flags.cc). A malformed
// or unknown flag exits (util/flags.h).
Flags ParseFlags(int argc, char** argv);

}  // namespace lock::checker::driver

#endif  // INTEGRATION_CHECKER_DRIVER_FLAGS_H_
