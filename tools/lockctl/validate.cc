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

int Validate(const std::vector<std::string>& positional) {
  if (positional.empty()) {
    return UsageError("validate", "validate needs at least one FILE or DIR");
  }
  int failed = 0;
  for (const std::string& path : positional) {
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

int Explain(const std::vector<std::string>& positional) {
  if (positional.size() != 1) {
    return UsageError("explain", "explain needs one POLICY name");
  }
  const std::string& name = positional[0];
  absl::StatusOr<std::string> config = ConfigPath();
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

}  // namespace

Command ValidateCommand() {
  return {
      .name = "validate",
      .usage = "usage: lockctl validate FILE|DIR...\n",
      .about = R"text(
Checks each path: a file, or a directory whose *.json files form one
configuration. Prints every error as FILE: JSON-PATH: MESSAGE.
Needs no Redis.
)text",
      .exit_codes = "Exit codes: 0 all valid, 1 any invalid, 2 usage error.\n",
      .run = Validate,
  };
}

Command ExplainCommand() {
  return {
      .name = "explain",
      .usage = "usage: lockctl explain POLICY [--config FILE|DIR]\n",
      .about = R"text(
Prints the policy after defaults and extends are applied, and the
redis target it uses (never the password), as JSON. Needs no Redis.
"kind" says in words what its kind (mutex, read_write, semaphore, fair)
means: what holding is, which holds get a fencing token, and the kind's
own rules (permits, writer preference, the fair queue).
)text",
      .flags = {Opt(FLAGS_config)},
      .exit_codes =
          R"text(Exit codes: 0 shown, 1 invalid configuration or unknown policy,
2 usage error.
)text",
      .run = Explain,
  };
}

}  // namespace lockctl
