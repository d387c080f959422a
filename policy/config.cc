// How a configuration becomes a Snapshot, in three passes:
//
//  1. Syntax: a SAX pass finds malformed JSON (with line/column) and duplicate
//     object keys, which the DOM parser would silently collapse to the last
//     one (a copy-pasted policy would vanish without a word).
//  2. Fields: every JSON object of every source is read exactly once through
//     a field table (one per object kind). Readers type- and range-check
//     single values and report errors at the value's JSON pointer. The same
//     tables answer *FieldNames() for the schema test.
//  3. Resolution: each policy is rebuilt by overlaying, on a default Policy,
//     the "defaults" objects and the extends chain (base first) with the same
//     readers. Their errors were reported in pass 2, so this pass reads into a
//     throwaway ErrorList. Rules over several resolved fields run only for
//     policies whose objects were all clean, and the target reference only
//     when the winning "redis" value was readable, so one mistake does not
//     cascade into several reports.
#include "policy/config.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace policy {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------
// Strings.

// Debian's abseil is built with its own string_view type
// (ABSL_OPTION_USE_STD_STRING_VIEW is 0), which absl::StrCat does not accept;
// the public API uses std::string_view. Cat() bridges the two.
template <typename T>
decltype(auto) ToAlphaNum(const T& value) {
  if constexpr (std::is_convertible_v<const T&, std::string_view> &&
                !std::is_convertible_v<const T&, absl::string_view>) {
    const std::string_view view = value;
    return absl::string_view(view.data(), view.size());
  } else {
    return (value);
  }
}

template <typename... Args>
std::string Cat(const Args&... args) {
  return absl::StrCat(ToAlphaNum(args)...);
}

// ---------------------------------------------------------------------------
// Locations and errors.

// RFC 6901: '~' and '/' inside a key are escaped.
std::string PointerToken(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

// A JSON value's position: the source's name and a JSON pointer.
struct Where {
  std::string_view source;
  std::string path;  // "" is the document root.

  Where operator/(std::string_view key) const {
    return {source, Cat(path, "/", PointerToken(key))};
  }
  Where operator/(size_t index) const {
    return {source, Cat(path, "/", index)};
  }
};

// Renders a bad value for an error message. Long values are cut: the path
// already says where to look.
std::string Render(const json& value) {
  constexpr size_t kMaxLength = 80;
  std::string s = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > kMaxLength) {
    size_t cut = kMaxLength - 3;
    // Back up to a UTF-8 character boundary: status messages stay valid text.
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    s.resize(cut);
    s += "...";
  }
  return s;
}

std::string Quoted(std::string_view s) { return Cat("\"", s, "\""); }

// The one error collector: every problem found anywhere becomes one line.
class ErrorList {
 public:
  void Add(const Where& at, std::string_view message) {
    lines_.push_back(
        Cat(at.source, ": ", at.path.empty() ? "/" : at.path, ": ", message));
  }
  void Add(const Where& at, std::string_view message, const json& got) {
    Add(at, Cat(message, ", got ", Render(got)));
  }
  // For problems that have no JSON path (the text is not JSON at all).
  void AddSourceError(std::string_view source, std::string_view message) {
    lines_.push_back(Cat(source, ": ", message));
  }

  size_t size() const { return lines_.size(); }

  absl::Status ToStatus() const {
    if (lines_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(lines_, "\n"));
  }

 private:
  std::vector<std::string> lines_;
};

// ---------------------------------------------------------------------------
// "Did you mean" and name lists.

// Optimal-string-alignment distance, case-insensitive, so that a swapped pair
// of letters ("tlt") counts as one edit.
size_t EditDistance(std::string_view a, std::string_view b) {
  const std::string x = absl::AsciiStrToLower(std::string(a));
  const std::string y = absl::AsciiStrToLower(std::string(b));
  std::vector<std::vector<size_t>> d(x.size() + 1,
                                     std::vector<size_t>(y.size() + 1));
  for (size_t i = 0; i <= x.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= y.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= x.size(); ++i) {
    for (size_t j = 1; j <= y.size(); ++j) {
      const size_t cost = x[i - 1] == y[j - 1] ? 0 : 1;
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[x.size()][y.size()];
}

// The closest candidate if it is close enough to be a plausible typo (about
// one edit per three letters), else one that starts with `got` (a shortened
// name such as "pool" for "pool_size").
std::optional<std::string_view> ClosestMatch(
    std::string_view got, const std::vector<std::string_view>& candidates) {
  std::optional<std::string_view> best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (std::string_view candidate : candidates) {
    const size_t distance = EditDistance(got, candidate);
    const size_t allowed = std::max<size_t>(1, candidate.size() / 3);
    if (distance <= allowed && distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (best) return best;
  constexpr size_t kMinPrefix = 3;
  for (std::string_view candidate : candidates) {
    if (got.size() >= kMinPrefix && candidate.starts_with(got)) {
      return candidate;
    }
  }
  return std::nullopt;
}

// ` (did you mean "ttl"?)` or "".
std::string DidYouMean(std::string_view got,
                       const std::vector<std::string_view>& candidates) {
  std::optional<std::string_view> match = ClosestMatch(got, candidates);
  return match ? Cat(" (did you mean ", Quoted(*match), "?)") : "";
}

// `"a", "b", "c"`, shortened when long: the point is a hint, not a dump.
std::string QuotedList(const std::vector<std::string_view>& names) {
  constexpr size_t kMaxNames = 20;
  std::vector<std::string> quoted;
  for (size_t i = 0; i < names.size() && i < kMaxNames; ++i) {
    quoted.push_back(Quoted(names[i]));
  }
  if (names.size() > kMaxNames) {
    quoted.push_back(Cat("... (", names.size() - kMaxNames, " more)"));
  }
  return absl::StrJoin(quoted, ", ");
}

template <typename Map>
std::vector<std::string_view> KeysOf(const Map& map) {
  std::vector<std::string_view> keys;
  for (const auto& entry : map) keys.push_back(entry.first);
  return keys;
}

// ---------------------------------------------------------------------------
// Single-value readers. Each writes *out only when the value is valid.

std::string FormatConfigDuration(absl::Duration d) {
  // absl renders zero as "0"; "0s" reads better next to "30s".
  return d == absl::ZeroDuration() ? "0s" : absl::FormatDuration(d);
}

enum class DurationBound { kNonNegative, kPositive };

// The one duration reader: durations are JSON strings with a unit.
bool ReadDuration(const json& value, const Where& at, DurationBound bound,
                  ErrorList& errors, absl::Duration* out) {
  if (!value.is_string()) {
    errors.Add(at, "durations are strings with a unit, e.g. \"250ms\"", value);
    return false;
  }
  absl::Duration d;
  if (!absl::ParseDuration(value.get_ref<const std::string&>(), &d)) {
    errors.Add(at,
               "not a duration: use a number with a unit (ns, us, ms, s, m, "
               "h), e.g. \"250ms\"",
               value);
    return false;
  }
  if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) {
    errors.Add(at, "must be finite", value);
    return false;
  }
  if (bound == DurationBound::kPositive && d <= absl::ZeroDuration()) {
    errors.Add(at, "must be > 0", value);
    return false;
  }
  if (bound == DurationBound::kNonNegative && d < absl::ZeroDuration()) {
    errors.Add(at, "must be >= 0", value);
    return false;
  }
  *out = d;
  return true;
}

// An interval of allowed numbers.
struct Range {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  bool max_exclusive = false;

  bool Contains(double x) const {
    return (min_exclusive ? x > min : x >= min) &&
           (max_exclusive ? x < max : x <= max);
  }
  std::string Describe() const {
    if (std::isinf(max)) {
      return Cat("must be ", min_exclusive ? "> " : ">= ", min);
    }
    return Cat("must be in ", min_exclusive ? "(" : "[", min, ", ", max,
               max_exclusive ? ")" : "]");
  }
};

bool ReadNumber(const json& value, const Where& at, const Range& range,
                ErrorList& errors, double* out) {
  if (!value.is_number()) {
    errors.Add(at, "must be a number", value);
    return false;
  }
  const double x = value.get<double>();
  if (!range.Contains(x)) {
    errors.Add(at, range.Describe(), value);
    return false;
  }
  *out = x;
  return true;
}

// JSON Schema calls 3.0 an integer too, so a whole float is accepted.
bool ReadInt(const json& value, const Where& at, const Range& range,
             ErrorList& errors, int* out) {
  if (value.is_number() &&
      value.get<double>() != std::trunc(value.get<double>())) {
    errors.Add(at, "must be an integer", value);
    return false;
  }
  double x;
  if (!ReadNumber(value, at, range, errors, &x)) return false;
  if (x > std::numeric_limits<int>::max() ||
      x < std::numeric_limits<int>::min()) {
    errors.Add(at, "is out of range", value);
    return false;
  }
  *out = static_cast<int>(x);
  return true;
}

bool ReadBool(const json& value, const Where& at, ErrorList& errors,
              bool* out) {
  if (!value.is_boolean()) {
    errors.Add(at, "must be true or false", value);
    return false;
  }
  *out = value.get<bool>();
  return true;
}

bool ReadString(const json& value, const Where& at, ErrorList& errors,
                std::string* out) {
  if (!value.is_string()) {
    errors.Add(at, "must be a string", value);
    return false;
  }
  *out = value.get<std::string>();
  return true;
}

// Reads an array of strings, running `check` on each element; `check`
// returns an error message or "".
bool ReadStringList(const json& value, const Where& at, ErrorList& errors,
                    std::string (*check)(std::string_view),
                    std::vector<std::string>* out) {
  if (!value.is_array()) {
    errors.Add(at, "must be an array of strings", value);
    return false;
  }
  std::vector<std::string> items;
  bool ok = true;
  for (size_t i = 0; i < value.size(); ++i) {
    std::string item;
    if (!ReadString(value[i], at / i, errors, &item)) {
      ok = false;
      continue;
    }
    if (std::string problem = check(item); !problem.empty()) {
      errors.Add(at / i, problem, value[i]);
      ok = false;
      continue;
    }
    if (std::find(items.begin(), items.end(), item) != items.end()) {
      errors.Add(at / i, "duplicate entry", value[i]);
      ok = false;
      continue;
    }
    items.push_back(std::move(item));
  }
  if (ok) *out = std::move(items);
  return ok;
}

template <typename Enum, size_t N>
bool ReadEnum(const json& value, const Where& at,
              const std::array<Enum, N>& all, std::string_view (*name_of)(Enum),
              ErrorList& errors, Enum* out) {
  std::vector<std::string_view> names;
  for (Enum e : all) names.push_back(name_of(e));
  if (value.is_string()) {
    const std::string& s = value.get_ref<const std::string&>();
    for (Enum e : all) {
      if (name_of(e) == s) {
        *out = e;
        return true;
      }
    }
    errors.Add(at,
               Cat("must be one of ", QuotedList(names), DidYouMean(s, names)),
               value);
    return false;
  }
  errors.Add(at, Cat("must be one of ", QuotedList(names)), value);
  return false;
}

// ---------------------------------------------------------------------------
// Format rules for names and addresses. Each returns "" or what is wrong.

std::string CheckName(std::string_view name) {
  const bool ok =
      !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '.' || c == '_' || c == '-';
      });
  return ok ? "" : "names must be non-empty and use only A-Z a-z 0-9 . _ -";
}

// Key prefixes end up inside the hash tag "{prefix key}" (docs/DESIGN.md section
// 4), so braces would break slot routing.
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
// Field tables: one per kind of JSON object. Reading an object overlays the
// fields it contains onto *out and leaves the others untouched, which is what
// makes defaults and extends a plain sequence of reads.

template <typename T>
struct Field {
  std::string_view name;
  void (*read)(const json& value, const Where& at, ErrorList& errors, T* out);
};

template <typename T>
std::vector<std::string_view> NamesOf(const std::vector<Field<T>>& fields) {
  std::vector<std::string_view> names;
  for (const Field<T>& f : fields) names.push_back(f.name);
  return names;
}

std::string UnknownFieldMessage(std::string_view key,
                                const std::vector<std::string_view>& known) {
  if (key == "password") {
    return "unknown field \"password\": secrets are not read from the "
           "configuration; put the password in an environment variable and "
           "name it in \"password_env\"";
  }
  if (std::optional<std::string_view> match = ClosestMatch(key, known)) {
    return Cat("unknown field ", Quoted(key), ", did you mean ", Quoted(*match),
               "?");
  }
  return Cat("unknown field ", Quoted(key), "; expected one of ",
             QuotedList(known));
}

template <typename T>
void ReadObject(const json& object, const Where& at,
                const std::vector<Field<T>>& fields, ErrorList& errors,
                T* out) {
  if (!object.is_object()) {
    errors.Add(at, "must be an object", object);
    return;
  }
  for (const auto& [key, value] : object.items()) {
    auto field =
        std::find_if(fields.begin(), fields.end(),
                     [&key = key](const Field<T>& f) { return f.name == key; });
    if (field == fields.end()) {
      errors.Add(at / key, UnknownFieldMessage(key, NamesOf(fields)));
      continue;
    }
    field->read(value, at / key, errors, out);
  }
}

const std::vector<Field<WaitPolicy>>& WaitFields() {
  static const auto* fields = new std::vector<Field<WaitPolicy>>{
      {"timeout",
       [](const json& v, const Where& at, ErrorList& e, WaitPolicy* w) {
         ReadDuration(v, at, DurationBound::kNonNegative, e, &w->timeout);
       }},
      {"notify", [](const json& v, const Where& at, ErrorList& e,
                    WaitPolicy* w) { ReadBool(v, at, e, &w->notify); }},
  };
  return *fields;
}

const std::vector<Field<RetryPolicy>>& RetryFields() {
  static const auto* fields = new std::vector<Field<RetryPolicy>>{
      {"max_attempts",
       [](const json& v, const Where& at, ErrorList& e, RetryPolicy* r) {
         ReadInt(v, at, Range{.min = 1}, e, &r->max_attempts);
       }},
      {"initial_delay",
       [](const json& v, const Where& at, ErrorList& e, RetryPolicy* r) {
         ReadDuration(v, at, DurationBound::kNonNegative, e, &r->initial_delay);
       }},
      {"max_delay",
       [](const json& v, const Where& at, ErrorList& e, RetryPolicy* r) {
         ReadDuration(v, at, DurationBound::kNonNegative, e, &r->max_delay);
       }},
      {"multiplier",
       [](const json& v, const Where& at, ErrorList& e, RetryPolicy* r) {
         ReadNumber(v, at, Range{.min = 1}, e, &r->multiplier);
       }},
      {"jitter",
       [](const json& v, const Where& at, ErrorList& e, RetryPolicy* r) {
         ReadNumber(v, at, Range{.min = 0, .max = 1}, e, &r->jitter);
       }},
  };
  return *fields;
}

const std::vector<Field<RenewalPolicy>>& RenewalFields() {
  static const auto* fields = new std::vector<Field<RenewalPolicy>>{
      {"enabled", [](const json& v, const Where& at, ErrorList& e,
                     RenewalPolicy* r) { ReadBool(v, at, e, &r->enabled); }},
      {"threshold",
       [](const json& v, const Where& at, ErrorList& e, RenewalPolicy* r) {
         ReadNumber(v, at,
                    Range{.min = 0,
                          .max = 1,
                          .min_exclusive = true,
                          .max_exclusive = true},
                    e, &r->threshold);
       }},
      {"on_failure",
       [](const json& v, const Where& at, ErrorList& e, RenewalPolicy* r) {
         ReadEnum(v, at, kAllOnRenewalFailure, &OnRenewalFailureName, e,
                  &r->on_failure);
       }},
  };
  return *fields;
}

const std::vector<Field<Policy>>& PolicyFields() {
  static const auto* fields = new std::vector<Field<Policy>>{
      {"redis", [](const json& v, const Where& at, ErrorList& e,
                   Policy* p) { ReadString(v, at, e, &p->redis); }},
      {"key_prefix",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         std::string prefix;
         if (!ReadString(v, at, e, &prefix)) return;
         if (std::string problem = CheckKeyPrefix(prefix); !problem.empty()) {
           e.Add(at, problem, v);
           return;
         }
         p->key_prefix = std::move(prefix);
       }},
      {"ttl",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         absl::Duration ttl;
         if (!ReadDuration(v, at, DurationBound::kPositive, e, &ttl)) return;
         // The engine sends the lease as PEXPIRE milliseconds: under 1ms it
         // would be 0 (the key deleted, yet counted as renewed), and a
         // remainder would make the local validity outlast Redis' lease.
         if (ttl < absl::Milliseconds(1)) {
           e.Add(at,
                 "must be at least 1ms (Redis keeps leases in whole "
                 "milliseconds)",
                 v);
           return;
         }
         if (ttl % absl::Milliseconds(1) != absl::ZeroDuration()) {
           e.Add(at,
                 "must be a whole number of milliseconds (Redis keeps leases "
                 "in whole milliseconds)",
                 v);
           return;
         }
         p->ttl = ttl;
       }},
      {"on_busy",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadEnum(v, at, kAllOnBusy, &OnBusyName, e, &p->on_busy);
       }},
      {"wait", [](const json& v, const Where& at, ErrorList& e,
                  Policy* p) { ReadObject(v, at, WaitFields(), e, &p->wait); }},
      {"retry",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadObject(v, at, RetryFields(), e, &p->retry);
       }},
      {"renewal",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadObject(v, at, RenewalFields(), e, &p->renewal);
       }},
      {"script_timeout",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadDuration(v, at, DurationBound::kPositive, e, &p->script_timeout);
       }},
      {"fencing", [](const json& v, const Where& at, ErrorList& e,
                     Policy* p) { ReadBool(v, at, e, &p->fencing); }},
      {"fencing_retention",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadDuration(v, at, DurationBound::kPositive, e, &p->fencing_retention);
       }},
      {"reentrant", [](const json& v, const Where& at, ErrorList& e,
                       Policy* p) { ReadBool(v, at, e, &p->reentrant); }},
      {"hold_at_least",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadDuration(v, at, DurationBound::kNonNegative, e, &p->hold_at_least);
       }},
      {"extends",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         std::string base;
         if (!ReadString(v, at, e, &base)) return;
         if (base.empty()) {
           e.Add(at, "must name a policy", v);
           return;
         }
         p->extends = std::move(base);
       }},
  };
  return *fields;
}

const std::vector<Field<RedisTarget>>& TargetFields() {
  static const auto* fields = new std::vector<Field<RedisTarget>>{
      {"mode",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadEnum(v, at, kAllRedisModes, &RedisModeName, e, &t->mode);
       }},
      {"addrs",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadStringList(v, at, e, &CheckAddress, &t->addrs);
       }},
      {"db",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadInt(v, at, Range{.min = 0}, e, &t->db);
       }},
      {"username", [](const json& v, const Where& at, ErrorList& e,
                      RedisTarget* t) { ReadString(v, at, e, &t->username); }},
      {"password_env",
       // Targets are read once, so this is the one place the environment is
       // consulted. Errors name the variable, never its value.
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         std::string name;
         if (!ReadString(v, at, e, &name)) return;
         if (std::string problem = CheckEnvName(name); !problem.empty()) {
           e.Add(at, problem, v);
           return;
         }
         t->password_env = name;
         if (name.empty()) return;
         const char* password = std::getenv(name.c_str());
         if (password == nullptr) {
           e.Add(at, Cat("environment variable ", name, " is not set"), v);
         } else if (*password == '\0') {
           e.Add(at, Cat("environment variable ", name, " is empty"), v);
         } else {
           t->password = password;
         }
       }},
      {"connect_timeout",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadDuration(v, at, DurationBound::kPositive, e, &t->connect_timeout);
       }},
      {"pool_size",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadInt(v, at, Range{.min = 1, .max = 1024}, e, &t->pool_size);
       }},
      {"sentinels",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadStringList(v, at, e, &CheckAddress, &t->sentinels);
       }},
      {"master_name",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadString(v, at, e, &t->master_name);
       }},
      {"drift_factor",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadNumber(v, at, Range{.min = 0, .max = 0.1}, e, &t->drift_factor);
       }},
      {"min_replicas_ack",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadInt(v, at, Range{.min = 0}, e, &t->min_replicas_ack);
       }},
      {"replica_ack_timeout",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadDuration(v, at, DurationBound::kPositive, e,
                      &t->replica_ack_timeout);
       }},
  };
  return *fields;
}

// Rules that depend on the target's mode. `object` tells which fields were
// written explicitly.
void CheckTargetMode(const json& object, const RedisTarget& t, const Where& at,
                     ErrorList& errors) {
  if (const auto mode = object.find("mode");
      mode != object.end() &&
      !(mode->is_string() &&
        RedisModeFromName(mode->get_ref<const std::string&>()))) {
    return;  // The bad mode is reported; its rules would only add noise.
  }
  const std::string mode_name = Quoted(RedisModeName(t.mode));
  auto require = [&](bool ok, std::string_view field, std::string_view what) {
    if (ok) return;
    if (object.contains(field)) {
      errors.Add(at / field, Cat("mode ", mode_name, " needs ", what),
                 object[std::string(field)]);
    } else {
      errors.Add(at,
                 Cat("mode ", mode_name, " needs ", Quoted(field), ": ", what));
    }
  };
  auto only_in = [&](RedisMode mode, std::string_view field) {
    if (t.mode != mode && object.contains(field)) {
      errors.Add(at / field,
                 Cat("is only used with mode ", Quoted(RedisModeName(mode)),
                     ", not ", mode_name),
                 object[std::string(field)]);
    }
  };
  switch (t.mode) {
    case RedisMode::kStandalone:
      require(t.addrs.size() == 1, "addrs", "exactly 1 address");
      break;
    case RedisMode::kSentinel:
      if (object.contains("addrs")) {
        errors.Add(at / "addrs",
                   "is not used with mode \"sentinel\" (the master is "
                   "discovered): list the sentinels in \"sentinels\"",
                   object["addrs"]);
      }
      require(!t.sentinels.empty(), "sentinels", "at least 1 sentinel address");
      require(!t.master_name.empty(), "master_name",
              "the name of the monitored master");
      break;
    case RedisMode::kCluster:
      require(!t.addrs.empty(), "addrs", "at least 1 seed address");
      if (t.db != 0) {
        errors.Add(at / "db", "must be 0 in mode \"cluster\"", t.db);
      }
      break;
    case RedisMode::kRedlock:
      require(t.addrs.size() >= 2, "addrs",
              "at least 2 independent masters (an odd number >= 3 is "
              "recommended: quorum is n/2+1)");
      // The engine never sends WAIT to Redlock masters: accepting these
      // would promise replica durability that nothing provides.
      for (std::string_view field : {"min_replicas_ack", "replica_ack_timeout"}) {
        if (object.contains(field)) {
          errors.Add(at / field,
                     "is not used with mode \"redlock\": its masters are "
                     "independent and not waited on for replicas; the quorum "
                     "of masters is what makes a grant survive a lost node",
                     object[std::string(field)]);
        }
      }
      break;
  }
  only_in(RedisMode::kSentinel, "sentinels");
  only_in(RedisMode::kSentinel, "master_name");
  only_in(RedisMode::kRedlock, "drift_factor");
  if (!t.username.empty() && t.password_env.empty()) {
    errors.Add(at / "username",
               "needs \"password_env\": AUTH with a user needs a password",
               t.username);
  }
}

// ---------------------------------------------------------------------------
// Pass 1: syntax.

// Finds the first syntax error and every duplicate object key, with paths.
class SyntaxChecker : public nlohmann::json_sax<json> {
 public:
  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override {
    return Value();
  }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override {
    stack_.push_back(Frame{.is_object = true});
    return true;
  }
  bool key(string_t& key) override {
    Frame& frame = stack_.back();
    if (!frame.keys.insert(key).second) {
      duplicates_.push_back(Cat(ParentPath(), "/", PointerToken(key)));
    }
    frame.key = key;
    return true;
  }
  bool end_object() override { return End(); }
  bool start_array(std::size_t) override {
    stack_.push_back(Frame{.is_object = false});
    return true;
  }
  bool end_array() override { return End(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::json::exception& e) override {
    // what() is "[json.exception.parse_error.101] parse error at line 3,
    // column 5: syntax error ..."; keep the part after "parse error ".
    std::string_view what = e.what();
    constexpr std::string_view kMarker = "parse error ";
    if (size_t at = what.find(kMarker); at != std::string_view::npos) {
      what.remove_prefix(at + kMarker.size());
    }
    syntax_error_ = Cat("malformed JSON ", what, " (byte ", position, ")");
    return false;
  }

  const std::string& syntax_error() const { return syntax_error_; }
  const std::vector<std::string>& duplicates() const { return duplicates_; }

 private:
  struct Frame {
    bool is_object = false;
    std::set<std::string> keys = {};  // objects: keys seen so far
    std::string key = {};             // objects: the current key
    size_t index = 0;                 // arrays: the current element
  };

  // The path of the innermost open container.
  std::string ParentPath() const {
    std::string path;
    for (size_t i = 0; i + 1 < stack_.size(); ++i) {
      const Frame& f = stack_[i];
      path += Cat("/", f.is_object ? PointerToken(f.key) : Cat(f.index));
    }
    return path;
  }
  bool Value() {
    if (!stack_.empty() && !stack_.back().is_object) ++stack_.back().index;
    return true;
  }
  bool End() {
    stack_.pop_back();
    return Value();
  }

  std::vector<Frame> stack_;
  std::vector<std::string> duplicates_;
  std::string syntax_error_;
};

// ---------------------------------------------------------------------------
// Pass 2: reading every source into one merged view.

struct PolicyEntry {
  const json* body;
  Where at;
  std::string extends;  // the policy's own extends, "" if none or invalid
  bool clean;           // no errors in this object
};

struct TargetEntry {
  RedisTarget target;
  Where at;
};

struct DefaultsEntry {
  const json* body;
  Where at;
};

struct Merged {
  std::vector<DefaultsEntry> defaults;
  bool defaults_clean = true;
  // Which source set each defaults field (JSON pointer below "defaults").
  std::map<std::string, std::string_view> defaults_fields;
  std::map<std::string, PolicyEntry, std::less<>> policies;
  std::map<std::string, TargetEntry, std::less<>> targets;
};

// A name of a "redis" or "policies" entry; reports bad and duplicate names.
// `kind` is "policy" or "redis target".
template <typename Map>
bool CheckEntryName(const std::string& name, const Where& at,
                    std::string_view kind, const Map& existing,
                    ErrorList& errors) {
  if (std::string problem = CheckName(name); !problem.empty()) {
    errors.Add(at, problem, name);
  }
  if (auto other = existing.find(name); other != existing.end()) {
    errors.Add(at, Cat(kind, " ", Quoted(name), " is defined in both ",
                       other->second.at.source, " and ", at.source));
    return false;
  }
  return true;
}

void ReadTargets(const json& value, const Where& at, ErrorList& errors,
                 Merged* merged) {
  if (!value.is_object()) {
    errors.Add(at, "must be an object mapping target names to targets", value);
    return;
  }
  for (const auto& [name, body] : value.items()) {
    const Where entry = at / name;
    if (!CheckEntryName(name, entry, "redis target", merged->targets, errors)) {
      continue;
    }
    RedisTarget target;
    target.name = name;
    ReadObject(body, entry, TargetFields(), errors, &target);
    if (body.is_object()) CheckTargetMode(body, target, entry, errors);
    merged->targets.emplace(name, TargetEntry{std::move(target), entry});
  }
}

void ReadDefaults(const json& value, const Where& at, ErrorList& errors,
                  Merged* merged) {
  const size_t errors_before = errors.size();
  Policy scratch;
  ReadObject(value, at, PolicyFields(), errors, &scratch);
  if (!value.is_object()) {
    merged->defaults_clean = false;
    return;
  }
  if (value.contains("extends")) {
    errors.Add(at / "extends",
               "is not allowed in \"defaults\": inheritance is per policy",
               value["extends"]);
  }
  // Several sources may each contribute defaults, but not the same field.
  for (const auto& [key, field] : value.items()) {
    std::vector<std::string> leaves;
    if (field.is_object()) {
      for (const auto& [sub_key, unused] : field.items()) {
        leaves.push_back(
            Cat("/", PointerToken(key), "/", PointerToken(sub_key)));
      }
    } else {
      leaves.push_back(Cat("/", PointerToken(key)));
    }
    for (const std::string& leaf : leaves) {
      auto [it, inserted] = merged->defaults_fields.emplace(leaf, at.source);
      if (!inserted) {
        errors.Add({at.source, at.path + leaf},
                   Cat("defaults field is set in both ", it->second, " and ",
                       at.source));
      }
    }
  }
  merged->defaults_clean &= errors.size() == errors_before;
  merged->defaults.push_back({&value, at});
}

void ReadPolicies(const json& value, const Where& at, ErrorList& errors,
                  Merged* merged) {
  if (!value.is_object()) {
    errors.Add(at, "must be an object mapping policy names to policies", value);
    return;
  }
  for (const auto& [name, body] : value.items()) {
    const Where entry = at / name;
    if (!CheckEntryName(name, entry, "policy", merged->policies, errors)) {
      continue;
    }
    const size_t errors_before = errors.size();
    Policy scratch;
    ReadObject(body, entry, PolicyFields(), errors, &scratch);
    merged->policies.emplace(
        name, PolicyEntry{.body = &body,
                          .at = entry,
                          .extends = scratch.extends,
                          .clean = errors.size() == errors_before});
  }
}

const std::vector<Field<Merged>>& TopLevelFields() {
  static const auto* fields = new std::vector<Field<Merged>>{
      {"$schema",
       [](const json& v, const Where& at, ErrorList& e, Merged*) {
         std::string ignored;
         ReadString(v, at, e, &ignored);
       }},
      {"redis", &ReadTargets},
      {"defaults", &ReadDefaults},
      {"policies", &ReadPolicies},
  };
  return *fields;
}

// ---------------------------------------------------------------------------
// Pass 3: resolution.

// The extends chain of `name`, the policy itself first; nullopt when it runs
// into an unknown policy (reported by the caller) or a cycle (reported here,
// once per cycle however many policies lead into it).
std::optional<std::vector<const PolicyEntry*>> ExtendsChain(
    const Merged& merged, std::string_view name,
    std::set<std::string>* reported_cycles, ErrorList& errors) {
  std::vector<const PolicyEntry*> chain;
  std::vector<std::string_view> names;
  std::string_view current = name;
  while (true) {
    auto it = merged.policies.find(current);
    if (it == merged.policies.end()) return std::nullopt;
    if (auto seen = std::find(names.begin(), names.end(), current);
        seen != names.end()) {
      std::vector<std::string_view> cycle(seen, names.end());
      std::rotate(cycle.begin(), std::min_element(cycle.begin(), cycle.end()),
                  cycle.end());
      const std::string text =
          Cat(absl::StrJoin(
                  std::vector<std::string>(cycle.begin(), cycle.end()), " -> "),
              " -> ", cycle.front());
      if (reported_cycles->insert(text).second) {
        const PolicyEntry& first = merged.policies.find(cycle.front())->second;
        errors.Add(first.at / "extends", Cat("extends cycle: ", text),
                   first.extends);
      }
      return std::nullopt;
    }
    names.push_back(it->first);
    chain.push_back(&it->second);
    if (it->second.extends.empty()) return chain;
    current = it->second.extends;
  }
}

// The resolved policy's target must exist.
void CheckTargetReference(const Policy& p, const Where& at,
                          const Merged& merged, ErrorList& errors) {
  if (!merged.targets.contains(p.redis)) {
    const std::vector<std::string_view> known = KeysOf(merged.targets);
    errors.Add(
        at / "redis",
        Cat("unknown redis target ", Quoted(p.redis),
            p.redis == "default" ? " (the default when \"redis\" is not set)"
                                 : "",
            DidYouMean(p.redis, known), "; ",
            known.empty() ? "no targets are defined under \"redis\""
                          : Cat("known targets: ", QuotedList(known))),
        p.redis);
  }
}

}  // namespace

absl::Duration DefaultScriptTimeout(const Policy& p) {
  // The built-in 600ms fits leases of 4s and more. A shorter lease (the Go
  // library accepts lock.Lock(ctx, key, time.Second, fn)) gets half of its
  // renewal window (or of the lease, without renewal): a renewal call then
  // always ends before the lease does. Only an explicit script_timeout that
  // contradicts the lease is an error.
  const absl::Duration window =
      p.renewal.enabled ? p.ttl * p.renewal.threshold : p.ttl;
  const absl::Duration fitted =
      absl::Trunc(window / 2, absl::Milliseconds(1));
  return std::clamp(fitted, absl::Milliseconds(1), Policy().script_timeout);
}

namespace {

// Rules that tie several resolved fields together.
// `script_timeout_set`: false when script_timeout was derived from the ttl
// (DefaultScriptTimeout), so an error can say why it has that value.
void CheckCrossFieldRules(const Policy& p, bool script_timeout_set,
                          const Where& at, ErrorList& errors) {
  const std::string derived =
      script_timeout_set
          ? ""
          : "; script_timeout is not set: derived from the ttl, at least 1ms "
            "(the lease is too short for it: lengthen the ttl or disable "
            "renewal)";
  if (p.retry.initial_delay > p.retry.max_delay) {
    errors.Add(at / "retry" / "initial_delay",
               Cat("must be <= retry.max_delay (",
                   FormatConfigDuration(p.retry.max_delay), ")"),
               FormatConfigDuration(p.retry.initial_delay));
  }
  if (p.fencing && p.fencing_retention <= p.ttl) {
    errors.Add(at / "fencing_retention",
               Cat("must be > ttl (", FormatConfigDuration(p.ttl),
                   "): the fence record must outlive the lease it fences"),
               FormatConfigDuration(p.fencing_retention));
  }
  if (p.script_timeout >= p.ttl) {
    errors.Add(at / "script_timeout",
               Cat("must be < ttl (", FormatConfigDuration(p.ttl),
                   "): a call may not outlive the lease it acquires", derived),
               FormatConfigDuration(p.script_timeout));
  } else if (p.renewal.enabled &&
             p.ttl * p.renewal.threshold <= p.script_timeout) {
    errors.Add(at / "renewal" / "threshold",
               Cat("renewal would start only ",
                   FormatConfigDuration(p.ttl * p.renewal.threshold),
                   " before expiry, less than script_timeout ",
                   FormatConfigDuration(p.script_timeout), " (ttl ",
                   FormatConfigDuration(p.ttl), " * threshold ",
                   p.renewal.threshold, ")", derived),
               p.renewal.threshold);
  }
}

std::vector<Policy> ResolvePolicies(const Merged& merged, ErrorList& errors) {
  const std::vector<std::string_view> known = KeysOf(merged.policies);
  for (const auto& [name, entry] : merged.policies) {
    if (!entry.extends.empty() && !merged.policies.contains(entry.extends)) {
      errors.Add(entry.at / "extends",
                 Cat("unknown policy ", Quoted(entry.extends),
                     DidYouMean(entry.extends, known),
                     "; known policies: ", QuotedList(known)),
                 entry.extends);
    }
  }
  std::vector<Policy> resolved;
  std::set<std::string> reported_cycles;
  for (const auto& [name, entry] : merged.policies) {
    std::optional<std::vector<const PolicyEntry*>> chain =
        ExtendsChain(merged, name, &reported_cycles, errors);
    if (!chain) continue;
    // The objects to overlay, lowest precedence first.
    std::vector<std::pair<const json*, const Where*>> layers;
    for (const DefaultsEntry& d : merged.defaults) {
      layers.emplace_back(d.body, &d.at);
    }
    bool clean = merged.defaults_clean;
    for (auto link = chain->rbegin(); link != chain->rend(); ++link) {
      layers.emplace_back((*link)->body, &(*link)->at);
      clean &= (*link)->clean;
    }
    Policy p;
    ErrorList reported_in_pass_2;
    // Whether the winning "redis" value was readable: the reference check
    // needs only that, not a clean policy.
    bool redis_readable = true;
    bool script_timeout_set = false;
    for (const auto& [body, at] : layers) {
      ReadObject(*body, *at, PolicyFields(), reported_in_pass_2, &p);
      if (const auto redis = body->find("redis"); redis != body->end()) {
        redis_readable = redis->is_string();
      }
      if (body->is_object()) script_timeout_set |= body->contains("script_timeout");
    }
    p.name = name;
    p.extends = entry.extends;
    if (!script_timeout_set) p.script_timeout = DefaultScriptTimeout(p);
    if (redis_readable) CheckTargetReference(p, entry.at, merged, errors);
    if (clean) CheckCrossFieldRules(p, script_timeout_set, entry.at, errors);
    resolved.push_back(std::move(p));
  }
  return resolved;
}

}  // namespace

// ---------------------------------------------------------------------------
// Parsing.

absl::StatusOr<std::shared_ptr<const Snapshot>> ParseConfig(
    std::string_view json, std::string_view source_name) {
  const ConfigSource source{std::string(source_name), std::string(json)};
  return ParseConfig(absl::MakeConstSpan(&source, 1));
}

absl::StatusOr<std::shared_ptr<const Snapshot>> ParseConfig(
    absl::Span<const ConfigSource> sources) {
  ErrorList errors;
  Merged merged;
  // Entries of `merged` point into these documents: reserve so that they
  // never move.
  std::vector<nlohmann::json> documents;
  documents.reserve(sources.size());
  bool all_parsed = true;
  for (const ConfigSource& source : sources) {
    SyntaxChecker checker;
    if (!nlohmann::json::sax_parse(source.text, &checker)) {
      errors.AddSourceError(source.name, checker.syntax_error());
      all_parsed = false;
      continue;
    }
    for (const std::string& path : checker.duplicates()) {
      errors.Add({source.name, path},
                 "duplicate key: JSON would silently keep only the last one");
    }
    documents.push_back(nlohmann::json::parse(source.text, nullptr,
                                              /*allow_exceptions=*/false));
    // Cannot fail once the SAX pass accepted the text; checked so that a
    // disagreement between the two parsers is an error, not a crash.
    if (documents.back().is_discarded()) {
      errors.AddSourceError(source.name, "malformed JSON");
      all_parsed = false;
      continue;
    }
    ReadObject(documents.back(), Where{source.name, ""}, TopLevelFields(),
               errors, &merged);
  }
  // Cross-source references are meaningless when a source could not be read.
  std::vector<Policy> policies;
  if (all_parsed) policies = ResolvePolicies(merged, errors);
  if (absl::Status status = errors.ToStatus(); !status.ok()) return status;

  std::vector<RedisTarget> targets;
  for (auto& [name, entry] : merged.targets) targets.push_back(entry.target);
  std::vector<std::string> names;
  for (const ConfigSource& source : sources) names.push_back(source.name);
  return std::make_shared<const Snapshot>(std::move(policies),
                                          std::move(targets), std::move(names));
}

// ---------------------------------------------------------------------------
// Explain.

nlohmann::json ExplainPolicy(const Policy& p) {
  nlohmann::json out = {
      {"redis", p.redis},
      {"key_prefix", p.key_prefix},
      {"ttl", FormatConfigDuration(p.ttl)},
      {"on_busy", OnBusyName(p.on_busy)},
      {"wait",
       {{"timeout", FormatConfigDuration(p.wait.timeout)},
        {"notify", p.wait.notify}}},
      {"retry",
       {{"max_attempts", p.retry.max_attempts},
        {"initial_delay", FormatConfigDuration(p.retry.initial_delay)},
        {"max_delay", FormatConfigDuration(p.retry.max_delay)},
        {"multiplier", p.retry.multiplier},
        {"jitter", p.retry.jitter}}},
      {"renewal",
       {{"enabled", p.renewal.enabled},
        {"threshold", p.renewal.threshold},
        {"on_failure", OnRenewalFailureName(p.renewal.on_failure)}}},
      {"script_timeout", FormatConfigDuration(p.script_timeout)},
      {"fencing", p.fencing},
      {"fencing_retention", FormatConfigDuration(p.fencing_retention)},
      {"reentrant", p.reentrant},
      {"hold_at_least", FormatConfigDuration(p.hold_at_least)},
  };
  if (!p.extends.empty()) out["extends"] = p.extends;
  return out;
}

nlohmann::json ExplainTarget(const RedisTarget& t) {
  // Built field by field on purpose: t.password must never be rendered.
  nlohmann::json out = {
      {"mode", RedisModeName(t.mode)},
      {"db", t.db},
      {"username", t.username},
      {"password_env", t.password_env},
      {"connect_timeout", FormatConfigDuration(t.connect_timeout)},
      {"pool_size", t.pool_size},
  };
  // Mode-specific fields only where the parser accepts them.
  if (t.mode != RedisMode::kRedlock) {
    out["min_replicas_ack"] = t.min_replicas_ack;
    out["replica_ack_timeout"] = FormatConfigDuration(t.replica_ack_timeout);
  }
  if (t.mode == RedisMode::kSentinel) {
    out["sentinels"] = t.sentinels;
    out["master_name"] = t.master_name;
  } else {
    out["addrs"] = t.addrs;
  }
  if (t.mode == RedisMode::kRedlock) out["drift_factor"] = t.drift_factor;
  return out;
}

nlohmann::json ExplainSnapshot(const Snapshot& snapshot) {
  nlohmann::json out = {{"redis", nlohmann::json::object()},
                        {"policies", nlohmann::json::object()}};
  for (const std::string& name : snapshot.TargetNames()) {
    out["redis"][name] = ExplainTarget(*snapshot.FindTarget(name));
  }
  for (const std::string& name : snapshot.PolicyNames()) {
    out["policies"][name] = ExplainPolicy(*snapshot.FindPolicy(name));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Field names.

const std::vector<std::string_view>& TopLevelFieldNames() {
  static const auto* names =
      new std::vector<std::string_view>(NamesOf(TopLevelFields()));
  return *names;
}
const std::vector<std::string_view>& TargetFieldNames() {
  static const auto* names =
      new std::vector<std::string_view>(NamesOf(TargetFields()));
  return *names;
}
const std::vector<std::string_view>& PolicyFieldNames() {
  static const auto* names =
      new std::vector<std::string_view>(NamesOf(PolicyFields()));
  return *names;
}
const std::vector<std::string_view>& WaitFieldNames() {
  static const auto* names =
      new std::vector<std::string_view>(NamesOf(WaitFields()));
  return *names;
}
const std::vector<std::string_view>& RetryFieldNames() {
  static const auto* names =
      new std::vector<std::string_view>(NamesOf(RetryFields()));
  return *names;
}
const std::vector<std::string_view>& RenewalFieldNames() {
  static const auto* names =
      new std::vector<std::string_view>(NamesOf(RenewalFields()));
  return *names;
}

}  // namespace policy
