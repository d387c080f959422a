#include "tools/lockctl/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lock/internal/keys.h"
#include "util/status_macros.h"

namespace lockctl {

std::optional<std::string> Args::Value(const std::string& name) const {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<Args> ParseArgs(const std::vector<std::string>& argv,
                               const ArgSpec& spec) {
  Args out;
  bool options_done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    if (options_done || a.size() < 2 || a[0] != '-' ||
        (a[1] != '-' && a != "-h")) {
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    if (a == "--help" || a == "-h") {
      out.help = true;
      continue;
    }
    std::string name = a.substr(2);
    std::optional<std::string> inline_value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (spec.values.count(name) > 0) {
      if (inline_value) {
        out.values[name] = *inline_value;
      } else if (i + 1 < argv.size()) {
        out.values[name] = argv[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value"));
      }
    } else if (spec.flags.count(name) > 0) {
      if (inline_value) {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " takes no value"));
      }
      out.flags.insert(name);
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown option \"", a, "\""));
    }
  }
  return out;
}

int UsageError(const std::string& command, const std::string& why) {
  std::cerr << "lockctl: " << why << "\n"
            << "run `lockctl " << (command.empty() ? "" : command + " ")
            << "--help` for usage\n";
  return kExitUsage;
}

std::string UserPath(const std::string& path) {
  const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
  if (path.empty() || path[0] == '/' || path == "-" || wd == nullptr ||
      *wd == '\0') {
    return path;
  }
  return absl::StrCat(wd, "/", path);
}

absl::StatusOr<std::string> ConfigPath(const Args& args) {
  if (auto c = args.Value("config")) return UserPath(*c);
  const char* env = std::getenv("LOCK_CONFIG");
  if (env != nullptr && *env != '\0') return UserPath(env);
  return absl::InvalidArgumentError("needs --config FILE|DIR or LOCK_CONFIG");
}

absl::StatusOr<std::shared_ptr<policy::Registry>> LoadRegistry(
    const std::string& path) {
  absl::StatusOr<std::unique_ptr<policy::Registry>> r =
      policy::Registry::Load(path);
  if (!r.ok()) {
    // Whatever went wrong (missing, unreadable, invalid), it is about the
    // configuration, never about Redis: exit 1, not 3.
    return absl::InvalidArgumentError(absl::StrCat(
        "configuration ", path, " is not usable:\n", r.status().message()));
  }
  return std::shared_ptr<policy::Registry>(*std::move(r));
}

absl::StatusOr<PolicyContext> OpenPolicy(const Args& args,
                                         const std::string& policy_name) {
  PolicyContext ctx;
  absl::StatusOr<std::string> path = ConfigPath(args);
  if (!path.ok()) return path.status();
  ctx.config_path = *path;
  absl::StatusOr<std::shared_ptr<policy::Registry>> registry =
      LoadRegistry(*path);
  if (!registry.ok()) return registry.status();
  ctx.registry = *registry;
  ctx.policy = ctx.registry->FindPolicy(policy_name);
  if (ctx.policy == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "unknown policy \"", policy_name, "\" in ", *path, "; known: ",
        absl::StrJoin(ctx.registry->snapshot()->PolicyNames(), ", ")));
  }
  ctx.target = ctx.registry->FindTarget(ctx.policy->redis);
  if (ctx.target == nullptr) {
    return absl::NotFoundError(absl::StrCat("policy \"", policy_name,
                                            "\" names unknown redis target \"",
                                            ctx.policy->redis, "\""));
  }
  absl::StatusOr<std::unique_ptr<lock::Locker>> locker =
      lock::Locker::Create(ctx.registry);
  if (!locker.ok()) return locker.status();
  ctx.locker = *std::move(locker);
  // Tools wait longer than a lock operation would: an operator's read of a
  // loaded Redis is worth a second.
  absl::StatusOr<std::unique_ptr<Reach>> reach =
      Reach::For(*ctx.target, std::max(ctx.policy->script_timeout, absl::Seconds(1)));
  if (!reach.ok()) return reach.status();
  ctx.reach = *std::move(reach);
  return ctx;
}

int ExitCodeFor(const absl::Status& s) {
  if (s.ok()) return kExitOk;
  if (lock::IsNotHeld(s)) return kExitRefused;
  switch (s.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kFailedPrecondition:  // an error reply
    case absl::StatusCode::kInternal:            // an unexpected reply
      return kExitRedis;
    default:
      return kExitRefused;
  }
}

int Fail(const absl::Status& s) {
  const int code = ExitCodeFor(s);
  bool first = true;
  for (absl::string_view line : absl::StrSplit(s.message(), '\n')) {
    std::cerr << (first ? "lockctl: " : "  ") << line << "\n";
    first = false;
  }
  if (code == kExitRedis) {
    std::cerr << "lockctl: could not talk to Redis; check that it runs at the "
                 "address of the policy's redis target, and its credentials "
                 "(exit "
              << kExitRedis << ")\n";
  }
  return code;
}

OwnerParts SplitOwner(const std::string& token) {
  OwnerParts p;
  // host:pid:32hex; parsed from the right, the host is whatever is left.
  const size_t last = token.rfind(':');
  if (last == std::string::npos || last == 0) return p;
  const size_t mid = token.rfind(':', last - 1);
  if (mid == std::string::npos || mid == 0) return p;
  const std::string pid = token.substr(mid + 1, last - mid - 1);
  const std::string random = token.substr(last + 1);
  const bool pid_ok =
      !pid.empty() && std::all_of(pid.begin(), pid.end(), [](char c) {
        return absl::ascii_isdigit(static_cast<unsigned char>(c));
      });
  const bool random_ok =
      random.size() == 32 &&
      std::all_of(random.begin(), random.end(), [](char c) {
        return absl::ascii_isxdigit(static_cast<unsigned char>(c));
      });
  if (!pid_ok || !random_ok) return p;
  p.host = token.substr(0, mid);
  p.pid = pid;
  p.random = random;
  return p;
}

std::string FormatTtl(absl::Duration d) {
  if (d <= absl::ZeroDuration()) return "0s";
  if (d < absl::Seconds(1))
    return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(1)));
  return absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(100)));
}

std::string StateName(const lock::LockState& st) {
  if (!st.held) return "free";
  if (st.hold_count == 0) return "released (kept for hold_at_least)";
  return "held";
}

nlohmann::json LockViewJson(const LockView& v) {
  const lock::LockState& st = v.state;
  nlohmann::json j = {
      {"policy", v.policy},
      {"key", v.key},
      {"redis_key", v.redis_key},
      {"state", st.held ? (st.hold_count == 0 ? "kept" : "held") : "free"},
      {"held", st.held && st.hold_count > 0},
      {"last_fencing_token", st.last_fencing_token}};
  if (st.held) {
    const OwnerParts o = SplitOwner(st.owner_token);
    j["owner"] = st.owner_token;
    j["owner_host"] = o.host;
    j["owner_pid"] = o.pid.empty() ? nlohmann::json(nullptr)
                                   : nlohmann::json(std::atoll(o.pid.c_str()));
    j["ttl_ms"] = absl::ToInt64Milliseconds(st.remaining);
    j["hold_count"] = st.hold_count;
    j["fencing_token"] = st.fencing_token;
  }
  return j;
}

std::string RenderTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& r : rows) {
    if (width.size() < r.size()) width.resize(r.size(), 0);
    for (size_t i = 0; i < r.size(); ++i)
      width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line.append(width[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

bool StdoutIsTty() { return isatty(STDOUT_FILENO) == 1; }
bool StderrIsTty() { return isatty(STDERR_FILENO) == 1; }
bool StdinIsTty() { return isatty(STDIN_FILENO) == 1; }

}  // namespace lockctl
