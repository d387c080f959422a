// lockctl: operator tool for lock policies.
//
//   lockctl validate FILE|DIR...          check policy files; all errors listed
//   lockctl explain POLICY [--config P]   the resolved policy, as JSON
//
// Exit codes: 0 success; 1 the configuration is invalid or the policy is
// unknown; 2 usage error. --config defaults to $LOCK_CONFIG.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "policy/config.h"
#include "policy/registry.h"

namespace {

constexpr char kUsage[] =
    "usage: lockctl <command> [args]\n"
    "\n"
    "commands:\n"
    "  validate FILE|DIR...         check policy files (a directory's *.json are\n"
    "                               merged); prints every error, exits 1 if any\n"
    "  explain POLICY [--config P]  print the fully resolved policy (defaults and\n"
    "                               extends applied) and its redis target as JSON\n"
    "\n"
    "--config defaults to $LOCK_CONFIG. Exit codes: 0 ok, 1 invalid\n"
    "configuration or unknown policy, 2 usage error.\n";

int UsageError(const std::string& why) {
  std::cerr << "lockctl: " << why << "\n\n" << kUsage;
  return 2;
}

bool WantsHelp(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

absl::StatusOr<std::shared_ptr<const policy::Snapshot>> Load(const std::string& path) {
  auto sources = policy::ReadConfigSources(path);
  if (!sources.ok()) return sources.status();
  return policy::ParseConfig(*sources);
}

void PrintErrors(const absl::Status& s) {
  for (absl::string_view line : absl::StrSplit(s.message(), '\n')) {
    std::cerr << "  " << line << "\n";
  }
}

int Validate(const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::cout << "usage: lockctl validate FILE|DIR...\n\n"
                 "Checks each path: a file, or a directory whose *.json files form one\n"
                 "configuration. Prints every error as FILE: JSON-PATH: MESSAGE.\n"
                 "Exit 0 when all are valid, 1 otherwise.\n";
    return 0;
  }
  if (args.empty()) return UsageError("validate needs at least one FILE or DIR");
  int failed = 0;
  for (const std::string& path : args) {
    auto snapshot = Load(path);
    if (!snapshot.ok()) {
      std::cerr << "invalid: " << path << "\n";
      PrintErrors(snapshot.status());
      ++failed;
      continue;
    }
    std::cout << "ok: " << path << " (" << (*snapshot)->PolicyNames().size()
              << " policies, " << (*snapshot)->TargetNames().size()
              << " redis targets)\n";
  }
  return failed == 0 ? 0 : 1;
}

int Explain(const std::vector<std::string>& args) {
  if (WantsHelp(args)) {
    std::cout << "usage: lockctl explain POLICY [--config FILE|DIR]\n\n"
                 "Prints the policy after defaults and extends are applied, and the\n"
                 "redis target it uses (never the password), as JSON.\n"
                 "Exit 1 when the configuration is invalid or the policy unknown.\n";
    return 0;
  }
  std::string config, name;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      config = args[++i];
    } else if (args[i].rfind("--config=", 0) == 0) {
      config = args[i].substr(9);
    } else if (name.empty() && args[i][0] != '-') {
      name = args[i];
    } else {
      return UsageError("explain: unexpected argument \"" + args[i] + "\"");
    }
  }
  if (name.empty()) return UsageError("explain needs a POLICY name");
  if (config.empty()) {
    const char* env = std::getenv("LOCK_CONFIG");
    if (env == nullptr || *env == '\0') {
      return UsageError("explain needs --config FILE or LOCK_CONFIG");
    }
    config = env;
  }
  auto snapshot = Load(config);
  if (!snapshot.ok()) {
    std::cerr << "invalid: " << config << "\n";
    PrintErrors(snapshot.status());
    return 1;
  }
  const policy::Policy* p = (*snapshot)->FindPolicy(name);
  if (p == nullptr) {
    std::cerr << "lockctl: unknown policy \"" << name << "\" in " << config
              << "; known:";
    for (const std::string& n : (*snapshot)->PolicyNames()) std::cerr << " " << n;
    std::cerr << "\n";
    return 1;
  }
  nlohmann::json out = {{"policy", name}, {"resolved", policy::ExplainPolicy(*p)}};
  if (const policy::RedisTarget* t = (*snapshot)->FindTarget(p->redis)) {
    out["redis_target"] = policy::ExplainTarget(*t);
  }
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return UsageError("missing command");
  const std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (command == "validate") return Validate(args);
  if (command == "explain") return Explain(args);
  return UsageError("unknown command \"" + command + "\"");
}
