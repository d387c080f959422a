// lockctl validate and explain: checking and reading policy files offline.
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "policy/config.h"
#include "policy/registry.h"
#include "tools/lockctl/cli.h"
#include "tools/lockctl/commands.h"

namespace lockctl {
namespace {

constexpr char kValidateHelp[] =
    "usage: lockctl validate FILE|DIR...\n"
    "\n"
    "Checks each path: a file, or a directory whose *.json files form one\n"
    "configuration. Prints every error as FILE: JSON-PATH: MESSAGE.\n"
    "Needs no Redis.\n"
    "\n"
    "Exit codes: 0 all valid, 1 any invalid, 2 usage error.\n";

constexpr char kExplainHelp[] =
    "usage: lockctl explain POLICY [--config FILE|DIR]\n"
    "\n"
    "Prints the policy after defaults and extends are applied, and the\n"
    "redis target it uses (never the password), as JSON. Needs no Redis.\n"
    "\"kind\" says in words what its kind (mutex, read_write, semaphore, fair)\n"
    "means: what holding is, which holds get a fencing token, and the kind's\n"
    "own rules (permits, writer preference, the fair queue).\n"
    "\n"
    "  --config FILE|DIR  policy configuration (default: $LOCK_CONFIG)\n"
    "\n"
    "Exit codes: 0 shown, 1 invalid configuration or unknown policy,\n"
    "2 usage error.\n";

absl::StatusOr<std::shared_ptr<const policy::Snapshot>> Load(
    const std::string& path) {
  auto sources = policy::ReadConfigSources(path);
  if (!sources.ok()) return sources.status();
  return policy::ParseConfig(*sources);
}

void PrintErrors(const absl::Status& s) {
  for (absl::string_view line : absl::StrSplit(s.message(), '\n')) {
    std::cerr << "  " << line << "\n";
  }
}

}  // namespace

int Validate(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(argv, {});
  if (!args.ok())
    return UsageError("validate", std::string(args.status().message()));
  if (args->help) {
    std::cout << kValidateHelp;
    return kExitOk;
  }
  if (args->positional.empty()) {
    return UsageError("validate", "validate needs at least one FILE or DIR");
  }
  int failed = 0;
  for (const std::string& path : args->positional) {
    auto snapshot = Load(UserPath(path));
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
  return failed == 0 ? kExitOk : kExitRefused;
}

int Explain(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(argv, {.values = {"config"}});
  if (!args.ok())
    return UsageError("explain", std::string(args.status().message()));
  if (args->help) {
    std::cout << kExplainHelp;
    return kExitOk;
  }
  if (args->positional.size() != 1) {
    return UsageError("explain", "explain needs one POLICY name");
  }
  const std::string& name = args->positional[0];
  absl::StatusOr<std::string> config = ConfigPath(*args);
  if (!config.ok())
    return UsageError("explain", std::string(config.status().message()));
  auto snapshot = Load(*config);
  if (!snapshot.ok()) {
    std::cerr << "invalid: " << *config << "\n";
    PrintErrors(snapshot.status());
    return kExitRefused;
  }
  const policy::Policy* p = (*snapshot)->FindPolicy(name);
  if (p == nullptr) {
    std::cerr << "lockctl: unknown policy \"" << name << "\" in " << *config
              << "; known:";
    for (const std::string& n : (*snapshot)->PolicyNames())
      std::cerr << " " << n;
    std::cerr << "\n";
    return kExitRefused;
  }
  nlohmann::json out = {{"policy", name},
                        {"kind", policy::ExplainKind(*p)},
                        {"resolved", policy::ExplainPolicy(*p)}};
  if (const policy::RedisTarget* t = (*snapshot)->FindTarget(p->redis)) {
    out["redis_target"] = policy::ExplainTarget(*t);
    // Valid, so no error; but it should not go unnoticed. On stderr, so the
    // JSON on stdout stays machine-readable.
    if (t->tls.enabled && !t->tls.verify_peer) {
      std::cerr << "lockctl: warning: redis target \"" << t->name
                << "\" has tls.verify_peer false: server certificates are not "
                   "verified, anyone on the network path can pose as Redis\n";
    }
  }
  std::cout << out.dump(2) << "\n";
  return kExitOk;
}

}  // namespace lockctl
