// check: verifies a recorded lock history (see checker.h for the rules).
//
//   check [--final=final.json] [--json] history-0.jsonl history-1.jsonl ...
//
// final.json maps each lock key to its resource's final state in Redis:
//   {"k1": {"value": 12, "fence": 40}, "k2": null}   (null: no resource)
// The driver writes it next to the histories. Prints a summary (or the
// report as JSON with --json). Exit codes: 0 no violation, 1 violations,
// 2 usage or unreadable input; a flag abseil rejects exits 1 with an
// "ERROR: ... flag" line before any check.
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "integration/checker/checker.h"
#include "integration/checker/history.h"
#include "nlohmann/json.hpp"
#include "util/flags.h"

ABSL_FLAG(std::string, final, "",
          "final.json: each lock key's resource as left in Redis");
ABSL_FLAG(bool, json, false, "print the report as JSON instead of a summary");

namespace {

int InputError(const std::string& why) {
  std::cerr << "check: " << why << "\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> files =
      util::ParseFlags(argc, argv,
                       "verifies recorded lock histories.\n"
                       "  check [--final=final.json] [--json] HISTORY.jsonl...",
                       std::numeric_limits<size_t>::max());
  const std::string final_path = absl::GetFlag(FLAGS_final);
  if (files.empty()) util::UsageError("no history files");
  std::map<std::string, lock::checker::FinalState> final_state;
  if (!final_path.empty()) {
    std::ifstream in(final_path);
    std::stringstream text;
    text << in.rdbuf();
    nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
    if (!in || j.is_discarded() || !j.is_object()) {
      return InputError("cannot read " + final_path + " as a JSON object");
    }
    for (const auto& [key, v] : j.items()) {
      lock::checker::FinalState s;
      if (v.is_object() && v.contains("value") && v["value"].is_number_integer() &&
          v.contains("fence") && v["fence"].is_number_integer()) {
        s = {true, v["value"].get<int64_t>(), v["fence"].get<int64_t>()};
      }
      final_state[key] = s;
    }
  }
  absl::StatusOr<lock::checker::History> history =
      lock::checker::ReadHistory(files);
  if (!history.ok()) return InputError(std::string(history.status().message()));
  lock::checker::Report report = lock::checker::Check(*history, final_state);
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << report.ToJson().dump(2) << "\n";
  } else {
    std::cout << report.Summary();
  }
  return report.ok() ? 0 : 1;
}
