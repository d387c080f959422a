#include "integration/checker/driver_flags.h"

#include <cstdlib>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace lock::checker::driver {

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "driver: " << why << "\n"
            << "usage: driver --scenario=NAME [--short|--long] [--out=DIR]\n"
               "              [--summary=FILE] [--processes=P --threads=T "
               "--keys=K --seconds=S]\n"
               "              [--ttl_ms=N --script_timeout_ms=N] [--keep]\n"
               "       driver --list\n";
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    auto int_flag = [&](absl::string_view name, int* out) {
      if (!absl::ConsumePrefix(&a, name)) return false;
      if (!absl::SimpleAtoi(a, out)) Usage(absl::StrCat("bad ", name, a));
      return true;
    };
    auto str_flag = [&](absl::string_view name, std::string* out) {
      if (!absl::ConsumePrefix(&a, name)) return false;
      *out = std::string(a);
      return true;
    };
    if (a == "--short" || a == "--long") {
      f.mode = std::string(a.substr(2));
    } else if (a == "--list") {
      f.list = true;
    } else if (a == "--keep") {
      f.keep = true;
    } else if (str_flag("--scenario=", &f.scenario) ||
               int_flag("--processes=", &f.processes) ||
               int_flag("--threads=", &f.threads) ||
               int_flag("--keys=", &f.keys) ||
               int_flag("--seconds=", &f.seconds) ||
               int_flag("--ttl_ms=", &f.ttl_ms) ||
               int_flag("--script_timeout_ms=", &f.script_timeout_ms) ||
               str_flag("--out=", &f.out) || str_flag("--summary=", &f.summary) ||
               int_flag("--worker=", &f.worker) ||
               str_flag("--config=", &f.config) || str_flag("--run=", &f.run) ||
               int_flag("--notify_fd=", &f.notify_fd) ||
               int_flag("--victim_after_ms=", &f.victim_after_ms) ||
               int_flag("--victim_hold_ms=", &f.victim_hold_ms) ||
               int_flag("--victim_extend_ms=", &f.victim_extend_ms) ||
               str_flag("--netns=", &f.netns)) {
      continue;
    } else {
      Usage(absl::StrCat("unknown argument \"", a, "\""));
    }
  }
  return f;
}

}  // namespace lock::checker::driver
