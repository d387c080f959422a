#include "tools/lockctl/cli.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <utility>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "lock/internal/keys.h"
#include "util/status_macros.h"

ABSL_FLAG(std::string, config, "",
          "FILE|DIR: policy configuration (default: $LOCK_CONFIG)");
ABSL_FLAG(bool, json, false, "JSON for scripts instead of text");

namespace lockctl {

namespace {

// The command's flag named `name` (dashes read as underscores), or null.
// From abseil's registry, whose handles may be set (the ones a Command
// lists are read-only).
absl::CommandLineFlag* FindFlag(const Command& command, std::string name) {
  std::replace(name.begin(), name.end(), '-', '_');
  for (const absl::CommandLineFlag* f : command.flags) {
    if (f->Name() == name) return absl::FindCommandLineFlag(name);
  }
  return nullptr;
}

// The usage error about `value`, which `flag` (typed as --`name`) could not
// parse: what its values look like, or for a type not named here abseil's
// own `why`.
absl::Status BadValue(const absl::CommandLineFlag& flag,
                      const std::string& name, const std::string& value,
                      const std::string& why) {
  std::string kind;
  if (flag.IsOfType<bool>()) {
    kind = "true or false";
  } else if (flag.IsOfType<int>() || flag.IsOfType<std::optional<int>>()) {
    kind = "a whole number";
  } else if (flag.IsOfType<double>()) {
    kind = "a number";
  } else {
    return absl::InvalidArgumentError(absl::StrCat("--", name, ": ", why));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--", name, " needs ", kind, ", got \"", value, "\""));
}

// "FILE|DIR" and "policy configuration" from a flag's help
// "FILE|DIR: policy configuration"; a bool flag takes no value.
std::pair<std::string, std::string> ValueNameAndHelp(
    const absl::CommandLineFlag& f) {
  const std::string help = f.Help();
  const size_t colon = help.find(": ");
  if (f.IsOfType<bool>() || colon == std::string::npos) return {"", help};
  return {help.substr(0, colon), help.substr(colon + 2)};
}

// `text` in lines of at most `width` characters, every line after the
// first indented by `indent` spaces.
std::string Wrap(const std::string& text, size_t indent, size_t width) {
  std::string out;
  size_t line = indent;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (line > indent && line + 1 + word.size() > width) {
      absl::StrAppend(&out, "\n", std::string(indent, ' '));
      line = indent;
    } else if (line > indent) {
      out += ' ';
      ++line;
    }
    absl::StrAppend(&out, word);
    line += word.size();
  }
  return out;
}

}  // namespace

absl::StatusOr<CommandLine> ParseCommandLine(
    const Command& command, const std::vector<std::string>& argv) {
  CommandLine out;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& a = argv[i];
    // Single-dash arguments are positional: "-" is stdin for stats.
    if (!absl::StartsWith(a, "--") && a != "-h") {
      out.positional.push_back(a);
      continue;
    }
    if (a == "--") {
      out.positional.insert(out.positional.end(), argv.begin() + i + 1,
                            argv.end());
      break;
    }
    if (a == "--help" || a == "-h") {
      out.help = true;
      continue;
    }
    const size_t eq = a.find('=');
    const std::string name = a.substr(2, eq == std::string::npos ? eq : eq - 2);
    std::optional<std::string> value;
    if (eq != std::string::npos) value = a.substr(eq + 1);

    absl::CommandLineFlag* flag = FindFlag(command, name);
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      // --nojson (abseil's spelling) or --no-json: a bool flag's false.
      absl::CommandLineFlag* negated = FindFlag(
          command, std::string(absl::StripPrefix(name.substr(2), "-")));
      if (negated != nullptr && negated->IsOfType<bool>()) {
        if (value.has_value()) {
          return absl::InvalidArgumentError(
              absl::StrCat("--", name, " takes no value"));
        }
        flag = negated;
        value = "false";
      }
    }
    if (flag == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          command.name, " has no option \"", a.substr(0, eq), "\""));
    }
    if (!value.has_value()) {
      if (flag->IsOfType<bool>()) {
        value = "true";
      } else if (i + 1 < argv.size()) {
        value = argv[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " needs a value"));
      }
    }
    if (std::string why; !flag->ParseFrom(*value, &why)) {
      return BadValue(*flag, name, *value, why);
    }
  }
  return out;
}

std::string HelpText(const Command& command) {
  // "--name VALUE" and its help, per flag.
  std::vector<std::pair<std::string, std::string>> rows;
  size_t width = 0;
  for (const absl::CommandLineFlag* f : command.flags) {
    auto [value_name, help] = ValueNameAndHelp(*f);
    std::string option = absl::StrCat("--", f->Name());
    if (!value_name.empty()) absl::StrAppend(&option, " ", value_name);
    const std::string def = f->DefaultValue();
    if (!def.empty() && !(f->IsOfType<bool>() && def == "false")) {
      absl::StrAppend(
          &help, f->IsOfType<std::string>() ? " (default \"" : " (default ",
          def, f->IsOfType<std::string>() ? "\")" : ")");
    }
    width = std::max(width, option.size());
    rows.emplace_back(std::move(option), std::move(help));
  }
  std::string out = absl::StrCat(absl::StripPrefix(command.usage, "\n"), "\n",
                                 absl::StripPrefix(command.about, "\n"));
  if (!rows.empty()) out += "\n";
  for (const auto& [option, help] : rows) {
    const size_t indent = 2 + width + 2;
    absl::StrAppend(&out, "  ", option,
                    std::string(width - option.size() + 2, ' '),
                    Wrap(help, indent, 79), "\n");
  }
  absl::StrAppend(&out, "\n", absl::StripPrefix(command.exit_codes, "\n"));
  return out;
}

int RunCommand(const Command& command, const std::vector<std::string>& argv) {
  absl::StatusOr<CommandLine> line = ParseCommandLine(command, argv);
  if (!line.ok()) {
    return UsageError(command.name, std::string(line.status().message()));
  }
  if (line->help) {
    std::cout << HelpText(command);
    return kExitOk;
  }
  return command.run(line->positional);
}

absl::Status CheckFlag(const absl::CommandLineFlag& flag, bool ok,
                       const std::string& what) {
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "--", flag.Name(), " needs ", what, ", got ", flag.CurrentValue()));
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

absl::StatusOr<std::string> ConfigPath() {
  if (std::string c = absl::GetFlag(FLAGS_config); !c.empty()) {
    return UserPath(c);
  }
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

absl::StatusOr<PolicyContext> OpenPolicy(const std::string& config_path,
                                         const std::string& policy_name) {
  PolicyContext ctx;
  ctx.config_path = config_path;
  absl::StatusOr<std::shared_ptr<policy::Registry>> registry =
      LoadRegistry(config_path);
  if (!registry.ok()) return registry.status();
  ctx.registry = *registry;
  ctx.policy = ctx.registry->FindPolicy(policy_name);
  if (ctx.policy == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "unknown policy \"", policy_name, "\" in ", config_path, "; known: ",
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
