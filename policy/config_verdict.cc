// config_verdict: the policy parser's verdict on each configuration file
// given, one JSON line per file, for //policy:schema_test to hold against the
// JSON Schema validator's:
//
//   config_verdict a.json b.json
//   {"file": "a.json", "accepted": true, "explained": {...}}
//   {"file": "b.json", "accepted": false, "error": "..."}
//
// "explained" is ExplainSnapshot() of what was accepted: the parser's own
// rendering must pass the schema too. Exit status 0 unless a file cannot be
// read; rejecting a file is a verdict, not a failure.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "nlohmann/json.hpp"
#include "policy/config.h"

int main(int argc, char** argv) {
  int status = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string path = argv[i];
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) {
      std::cerr << "config_verdict: cannot read " << path << "\n";
      status = 2;
      continue;
    }
    nlohmann::json line = {{"file", path}};
    auto snapshot = policy::ParseConfig(text.str(), path);
    line["accepted"] = snapshot.ok();
    if (snapshot.ok()) {
      line["explained"] = policy::ExplainSnapshot(**snapshot);
    } else {
      line["error"] = snapshot.status().ToString();
    }
    std::cout << line.dump() << "\n";
  }
  return status;
}
