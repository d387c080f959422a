#include "policy/internal/rules.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"

namespace policy::internal {

// ---------------------------------------------------------------------------
// Durations and numbers.

namespace {

std::string CheckFinite(absl::Duration d) {
  return d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()
             ? "must be finite"
             : "";
}

}  // namespace

std::string NonNegativeDuration(absl::Duration d) {
  if (std::string problem = CheckFinite(d); !problem.empty()) return problem;
  return d < absl::ZeroDuration() ? "must be >= 0" : "";
}

std::string PositiveDuration(absl::Duration d) {
  if (std::string problem = CheckFinite(d); !problem.empty()) return problem;
  return d <= absl::ZeroDuration() ? "must be > 0" : "";
}

std::string LeaseDuration(absl::Duration ttl) {
  if (std::string problem = PositiveDuration(ttl); !problem.empty()) {
    return problem;
  }
  // The engine sends the lease as PEXPIRE milliseconds: under 1ms it would be
  // 0 (the key deleted, yet counted as renewed), and a remainder would make
  // the local validity outlast Redis' lease.
  if (ttl < absl::Milliseconds(1)) {
    return "must be at least 1ms (Redis keeps leases in whole milliseconds)";
  }
  if (ttl % absl::Milliseconds(1) != absl::ZeroDuration()) {
    return "must be a whole number of milliseconds (Redis keeps leases in "
           "whole milliseconds)";
  }
  return "";
}

std::string Range::Describe() const {
  if (std::isinf(max)) {
    return Cat("must be ", min_exclusive ? "> " : ">= ", min);
  }
  return Cat("must be in ", min_exclusive ? "(" : "[", min, ", ", max,
             max_exclusive ? ")" : "]");
}

std::string CheckRange(double x, const Range& range) {
  return range.Contains(x) ? "" : range.Describe();
}

std::string CheckEnumName(std::string_view name,
                          const std::vector<std::string_view>& names) {
  if (std::find(names.begin(), names.end(), name) != names.end()) return "";
  return Cat("must be one of ", QuotedList(names), DidYouMean(name, names));
}

// ---------------------------------------------------------------------------
// Names and addresses.

std::string CheckName(std::string_view name) {
  const bool ok =
      !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
      });
  return ok ? "" : "names must be non-empty and use only A-Z a-z 0-9 . _ -";
}

std::string CheckKeyPrefix(std::string_view prefix) {
  constexpr size_t kMaxKeyPrefix = 128;
  if (prefix.size() > kMaxKeyPrefix) return "must be at most 128 bytes";
  for (char c : prefix) {
    if (c < 0x20 || c > 0x7e) return "must be printable ASCII";
    if (c == '{' || c == '}') return "must not contain '{' or '}'";
  }
  return "";
}

std::string CheckEnvName(std::string_view name) {
  const bool ok =
      name.empty() || (!absl::ascii_isdigit(name[0]) &&
                       std::all_of(name.begin(), name.end(), [](char c) {
                         return absl::ascii_isalnum(c) || c == '_';
                       }));
  return ok ? ""
            : "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)";
}

std::string CheckAddress(std::string_view addr) {
  constexpr std::string_view kExpected =
      "must be \"host:port\" (port 1..65535), \"[ipv6]:port\" or "
      "\"unix:/path\"";
  if (addr.starts_with("unix:")) {
    return addr.size() > 6 && addr[5] == '/' ? "" : std::string(kExpected);
  }
  const size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) return std::string(kExpected);
  std::string_view host = addr.substr(0, colon);
  std::string_view port = addr.substr(colon + 1);
  bool host_ok;
  if (host.starts_with("[")) {
    host_ok = host.size() > 2 && host.back() == ']' &&
              std::all_of(host.begin() + 1, host.end() - 1, [](char c) {
                return absl::ascii_isxdigit(c) || c == ':' || c == '.';
              });
  } else {
    host_ok =
        !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
          return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
        });
  }
  int port_number = 0;
  const bool port_ok =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), absl::ascii_isdigit) &&
      std::from_chars(port.data(), port.data() + port.size(), port_number).ec ==
          std::errc() &&
      port_number >= 1 && port_number <= 65535;
  return host_ok && port_ok ? "" : std::string(kExpected);
}

// ---------------------------------------------------------------------------
// Whole policies.

void CheckKindRules(const Policy& p, const Where& at, ErrorList& errors) {
  const bool semaphore = p.kind == LockKind::kSemaphore;
  if (semaphore && p.permits == 0) {
    errors.Add(at / "kind",
               Cat("kind \"semaphore\" needs \"permits\": how many holders "
                   "at once, 1..",
                   kMaxPermits),
               ShowString(LockKindName(p.kind)));
  }
  if (!semaphore && p.permits != 0) {
    errors.Add(at / "permits",
               Cat("is only used with kind \"semaphore\", not ",
                   Quoted(LockKindName(p.kind))),
               ShowInt(p.permits));
  }
  // Run-once jobs keep a mutex's key after release; a permit, a read hold or
  // a place in a queue kept after release has no meaning of its own yet.
  if (p.kind != LockKind::kMutex &&
      p.hold_at_least != absl::ZeroDuration()) {
    errors.Add(at / "hold_at_least",
               Cat("is only used with kind \"mutex\", not ",
                   Quoted(LockKindName(p.kind))),
               ShowDuration(p.hold_at_least));
  }
}

void CheckCrossFieldRules(const Policy& p, bool script_timeout_set,
                          const Where& at, ErrorList& errors) {
  const std::string derived =
      script_timeout_set
          ? ""
          : "; script_timeout is not set: derived from the ttl, at least 1ms "
            "(the lease is too short for it: lengthen the ttl or disable "
            "renewal)";
  CheckKindRules(p, at, errors);
  if (p.retry.initial_delay > p.retry.max_delay) {
    errors.Add(at / "retry" / "initial_delay",
               Cat("must be <= retry.max_delay (",
                   FormatConfigDuration(p.retry.max_delay), ")"),
               ShowDuration(p.retry.initial_delay));
  }
  if (p.fencing && p.fencing_retention <= p.ttl) {
    errors.Add(at / "fencing_retention",
               Cat("must be > ttl (", FormatConfigDuration(p.ttl),
                   "): the fence record must outlive the lease it fences"),
               ShowDuration(p.fencing_retention));
  }
  if (p.script_timeout >= p.ttl) {
    errors.Add(at / "script_timeout",
               Cat("must be < ttl (", FormatConfigDuration(p.ttl),
                   "): a call may not outlive the lease it acquires", derived),
               ShowDuration(p.script_timeout));
  } else if (p.renewal.enabled &&
             p.ttl * p.renewal.threshold <= p.script_timeout) {
    errors.Add(at / "renewal" / "threshold",
               Cat("renewal would start only ",
                   FormatConfigDuration(p.ttl * p.renewal.threshold),
                   " before expiry, less than script_timeout ",
                   FormatConfigDuration(p.script_timeout), " (ttl ",
                   FormatConfigDuration(p.ttl), " * threshold ",
                   p.renewal.threshold, ")", derived),
               ShowNumber(p.renewal.threshold));
  }
}

void CheckTargetReference(const Policy& p,
                          const std::vector<std::string_view>& known,
                          const Where& at, ErrorList& errors) {
  if (std::find(known.begin(), known.end(), p.redis) != known.end()) return;
  errors.Add(
      at / "redis",
      Cat("unknown redis target ", Quoted(p.redis),
          p.redis == "default" ? " (the default when \"redis\" is not set)"
                               : "",
          DidYouMean(p.redis, known), "; ",
          known.empty() ? "no targets are defined under \"redis\""
                        : Cat("known targets: ", QuotedList(known))),
      ShowString(p.redis));
}

// ---------------------------------------------------------------------------
// Targets.

void CheckTargetTlsAndAuth(const RedisTarget& t, const Where& at,
                           ErrorList& errors) {
  const bool sentinel = t.mode == RedisMode::kSentinel;
  for (const auto& [field, value] :
       {std::pair<std::string_view, const std::string&>{"sentinel_username",
                                                        t.sentinel_username},
        {"sentinel_password_env", t.sentinel_password_env}}) {
    if (!sentinel && !value.empty()) {
      errors.Add(at / field,
                 Cat("is only used with mode \"sentinel\", not ",
                     Quoted(RedisModeName(t.mode)),
                     ": the data nodes are authenticated by \"username\" and "
                     "\"password_env\""),
                 ShowString(value));
    }
  }
  if (sentinel && !t.sentinel_username.empty() &&
      t.sentinel_password_env.empty()) {
    errors.Add(at / "sentinel_username",
               "needs \"sentinel_password_env\": AUTH with a user needs a "
               "password",
               ShowString(t.sentinel_username));
  }

  // A disabled block is kept as written and checked for nothing more: it is
  // how TLS is switched off without deleting its settings.
  if (!t.tls.enabled) return;
  const Where tls = at / "tls";
  // A certificate without its key (or the reverse) cannot authenticate:
  // mutual TLS needs both, server-only TLS neither. A target built in code
  // may carry the PEM texts without file names.
  const bool has_cert = !t.tls.cert_file.empty() || !t.tls.cert_pem.empty();
  const bool has_key = !t.tls.key_file.empty() || !t.tls.key_pem.empty();
  if (has_cert != has_key) {
    errors.Add(tls / (has_cert ? "cert_file" : "key_file"),
               has_cert ? "needs \"key_file\": a client certificate is "
                          "presented with its private key (both or neither)"
                        : "needs \"cert_file\": a private key is used with "
                          "its client certificate (both or neither)",
               ShowString(has_cert ? t.tls.cert_file : t.tls.key_file));
  }
  // Redis serves TLS only on TCP ports; a unix socket is local and plain.
  for (const auto& [field, list] :
       {std::pair<std::string_view, const std::vector<std::string>&>{
            "addrs", t.addrs},
        {"sentinels", t.sentinels}}) {
    for (size_t i = 0; i < list.size(); ++i) {
      if (list[i].starts_with("unix:")) {
        errors.Add(at / field / i,
                   "is a unix socket, but \"tls\" is enabled: Redis serves "
                   "TLS only on TCP (use a host:port address, or set "
                   "\"tls\": {\"enabled\": false})",
                   ShowString(list[i]));
      }
    }
  }
}

std::string UnknownPolicyMessage(std::string_view name,
                                 const std::vector<std::string_view>& known) {
  return Cat("unknown policy ", Quoted(name), DidYouMean(name, known),
             "; known policies: ", QuotedList(known));
}

std::string ExtendsCycleMessage(std::vector<std::string_view>* cycle) {
  // Start at the smallest name, so every way into the cycle reads the same.
  std::rotate(cycle->begin(), std::min_element(cycle->begin(), cycle->end()),
              cycle->end());
  return Cat(
      "extends cycle: ",
      absl::StrJoin(std::vector<std::string>(cycle->begin(), cycle->end()),
                    " -> "),
      " -> ", cycle->front());
}

}  // namespace policy::internal
