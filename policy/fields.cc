// Pass 2 of parsing (see config.cc), for single values and single objects:
// the typed readers and the field table of each kind of JSON object. The
// same tables answer *FieldNames() for the schema test.
#include "policy/internal/fields.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <utility>

#include "policy/config.h"

namespace policy::internal {

using nlohmann::json;

Shown Show(const json& value) {
  return Shorten(value.dump(-1, ' ', false, json::error_handler_t::replace));
}

// ---------------------------------------------------------------------------
// Single-value readers.

// The one duration reader: durations are JSON strings with a unit.
bool ReadDuration(const json& value, const Where& at, DurationRule rule,
                  ErrorList& errors, absl::Duration* out) {
  if (!value.is_string()) {
    errors.Add(at, "durations are strings with a unit, e.g. \"250ms\"",
               Show(value));
    return false;
  }
  absl::Duration d;
  if (!absl::ParseDuration(value.get_ref<const std::string&>(), &d)) {
    errors.Add(at,
               "not a duration: use a number with a unit (ns, us, ms, s, m, "
               "h), e.g. \"250ms\"",
               Show(value));
    return false;
  }
  if (std::string problem = rule(d); !problem.empty()) {
    errors.Add(at, problem, Show(value));
    return false;
  }
  *out = d;
  return true;
}

namespace {

bool ReadNumber(const json& value, const Where& at, const Range& range,
                ErrorList& errors, double* out) {
  if (!value.is_number()) {
    errors.Add(at, "must be a number", Show(value));
    return false;
  }
  const double x = value.get<double>();
  if (std::string problem = CheckRange(x, range); !problem.empty()) {
    errors.Add(at, problem, Show(value));
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
    errors.Add(at, "must be an integer", Show(value));
    return false;
  }
  double x;
  if (!ReadNumber(value, at, range, errors, &x)) return false;
  if (x > std::numeric_limits<int>::max() ||
      x < std::numeric_limits<int>::min()) {
    errors.Add(at, "is out of range", Show(value));
    return false;
  }
  *out = static_cast<int>(x);
  return true;
}

bool ReadBool(const json& value, const Where& at, ErrorList& errors,
              bool* out) {
  if (!value.is_boolean()) {
    errors.Add(at, "must be true or false", Show(value));
    return false;
  }
  *out = value.get<bool>();
  return true;
}

// A string that must also pass `rule`.
bool ReadCheckedString(const json& value, const Where& at,
                       std::string (*rule)(std::string_view), ErrorList& errors,
                       std::string* out) {
  std::string s;
  if (!ReadString(value, at, errors, &s)) return false;
  if (std::string problem = rule(s); !problem.empty()) {
    errors.Add(at, problem, Show(value));
    return false;
  }
  *out = std::move(s);
  return true;
}

// Reads an array of distinct strings, each of which must pass `rule`.
bool ReadStringList(const json& value, const Where& at, ErrorList& errors,
                    std::string (*rule)(std::string_view),
                    std::vector<std::string>* out) {
  if (!value.is_array()) {
    errors.Add(at, "must be an array of strings", Show(value));
    return false;
  }
  std::vector<std::string> items;
  bool ok = true;
  for (size_t i = 0; i < value.size(); ++i) {
    std::string item;
    if (!ReadCheckedString(value[i], at / i, rule, errors, &item)) {
      ok = false;
      continue;
    }
    if (std::find(items.begin(), items.end(), item) != items.end()) {
      errors.Add(at / i, "duplicate entry", Show(value[i]));
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
  const std::vector<std::string_view> names = EnumNames(all, name_of);
  if (!value.is_string()) {
    errors.Add(at, Cat("must be one of ", QuotedList(names)), Show(value));
    return false;
  }
  const std::string& s = value.get_ref<const std::string&>();
  if (std::string problem = CheckEnumName(s, names); !problem.empty()) {
    errors.Add(at, problem, Show(value));
    return false;
  }
  *out = *std::find_if(all.begin(), all.end(),
                       [&](Enum e) { return name_of(e) == s; });
  return true;
}

}  // namespace

bool ReadString(const json& value, const Where& at, ErrorList& errors,
                std::string* out) {
  if (!value.is_string()) {
    errors.Add(at, "must be a string", Show(value));
    return false;
  }
  *out = value.get<std::string>();
  return true;
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

// ---------------------------------------------------------------------------
// Field tables. A policy's rules (rules.h) are the ones ResolvePolicy checks
// on a struct (validate.cc).

namespace {

const std::vector<Field<WaitPolicy>>& WaitFields() {
  static const auto* fields = new std::vector<Field<WaitPolicy>>{
      {"timeout",
       [](const json& v, const Where& at, ErrorList& e, WaitPolicy* w) {
         ReadDuration(v, at, &NonNegativeDuration, e, &w->timeout);
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
         ReadInt(v, at, kMaxAttemptsRange, e, &r->max_attempts);
       }},
      {"initial_delay",
       [](const json& v, const Where& at, ErrorList& e, RetryPolicy* r) {
         ReadDuration(v, at, &NonNegativeDuration, e, &r->initial_delay);
       }},
      {"max_delay",
       [](const json& v, const Where& at, ErrorList& e, RetryPolicy* r) {
         ReadDuration(v, at, &NonNegativeDuration, e, &r->max_delay);
       }},
      {"multiplier",
       [](const json& v, const Where& at, ErrorList& e, RetryPolicy* r) {
         ReadNumber(v, at, kMultiplierRange, e, &r->multiplier);
       }},
      {"jitter",
       [](const json& v, const Where& at, ErrorList& e, RetryPolicy* r) {
         ReadNumber(v, at, kJitterRange, e, &r->jitter);
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
         ReadNumber(v, at, kThresholdRange, e, &r->threshold);
       }},
      {"on_failure",
       [](const json& v, const Where& at, ErrorList& e, RenewalPolicy* r) {
         ReadEnum(v, at, kAllOnRenewalFailure, &OnRenewalFailureName, e,
                  &r->on_failure);
       }},
  };
  return *fields;
}

// Targets are read once, so this is the one place the environment is
// consulted (for password_env and sentinel_password_env). Errors name the
// variable, never its value.
void ReadPasswordEnv(const json& v, const Where& at, ErrorList& e,
                     std::string* env, std::string* password) {
  std::string name;
  if (!ReadCheckedString(v, at, &CheckEnvName, e, &name)) return;
  *env = name;
  if (name.empty()) return;
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) {
    e.Add(at, Cat("environment variable ", name, " is not set"), Show(v));
  } else if (*value == '\0') {
    e.Add(at, Cat("environment variable ", name, " is empty"), Show(v));
  } else {
    *password = value;
  }
}

// A file path of the "tls" block; "" = not given. JSON can spell a NUL
// byte, a path cannot: open() would silently use the part before it.
void ReadTlsPath(const json& v, const Where& at, ErrorList& e,
                 std::string* out) {
  std::string path;
  if (!ReadString(v, at, e, &path)) return;
  if (path.find('\0') != std::string::npos) {
    e.Add(at, "must not contain a NUL character", Show(v));
    return;
  }
  *out = std::move(path);
}

}  // namespace

const std::vector<Field<TlsOptions>>& TlsFields() {
  static const auto* fields = new std::vector<Field<TlsOptions>>{
      {"enabled", [](const json& v, const Where& at, ErrorList& e,
                     TlsOptions* t) { ReadBool(v, at, e, &t->enabled); }},
      {"ca_file", [](const json& v, const Where& at, ErrorList& e,
                     TlsOptions* t) { ReadTlsPath(v, at, e, &t->ca_file); }},
      {"cert_file",
       [](const json& v, const Where& at, ErrorList& e, TlsOptions* t) {
         ReadTlsPath(v, at, e, &t->cert_file);
       }},
      {"key_file", [](const json& v, const Where& at, ErrorList& e,
                      TlsOptions* t) { ReadTlsPath(v, at, e, &t->key_file); }},
      {"server_name",
       [](const json& v, const Where& at, ErrorList& e, TlsOptions* t) {
         ReadString(v, at, e, &t->server_name);
       }},
      {"verify_peer", [](const json& v, const Where& at, ErrorList& e,
                         TlsOptions* t) { ReadBool(v, at, e, &t->verify_peer); }},
  };
  return *fields;
}

const std::vector<Field<Policy>>& PolicyFields() {
  static const auto* fields = new std::vector<Field<Policy>>{
      {"redis", [](const json& v, const Where& at, ErrorList& e,
                   Policy* p) { ReadString(v, at, e, &p->redis); }},
      {"key_prefix",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadCheckedString(v, at, &CheckKeyPrefix, e, &p->key_prefix);
       }},
      {"kind",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadEnum(v, at, kAllLockKinds, &LockKindName, e, &p->kind);
       }},
      {"permits",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadInt(v, at, kPermitsRange, e, &p->permits);
       }},
      {"ttl",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadDuration(v, at, &LeaseDuration, e, &p->ttl);
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
         ReadDuration(v, at, &PositiveDuration, e, &p->script_timeout);
       }},
      {"fencing", [](const json& v, const Where& at, ErrorList& e,
                     Policy* p) { ReadBool(v, at, e, &p->fencing); }},
      {"fencing_retention",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadDuration(v, at, &PositiveDuration, e, &p->fencing_retention);
       }},
      {"reentrant", [](const json& v, const Where& at, ErrorList& e,
                       Policy* p) { ReadBool(v, at, e, &p->reentrant); }},
      {"hold_at_least",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         ReadDuration(v, at, &NonNegativeDuration, e, &p->hold_at_least);
       }},
      {"extends",
       [](const json& v, const Where& at, ErrorList& e, Policy* p) {
         std::string base;
         if (!ReadString(v, at, e, &base)) return;
         if (base.empty()) {
           e.Add(at, "must name a policy", Show(v));
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
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadPasswordEnv(v, at, e, &t->password_env, &t->password);
       }},
      {"connect_timeout",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadDuration(v, at, &PositiveDuration, e, &t->connect_timeout);
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
      {"sentinel_username",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadString(v, at, e, &t->sentinel_username);
       }},
      {"sentinel_password_env",
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         ReadPasswordEnv(v, at, e, &t->sentinel_password_env,
                         &t->sentinel_password);
       }},
      {"tls",
       // The block's presence is what turns TLS on; "enabled": false inside
       // it turns it off again while keeping the settings. Its files are
       // read afterwards (LoadTlsFiles, merge.cc), once the whole target is
       // known to be clean.
       [](const json& v, const Where& at, ErrorList& e, RedisTarget* t) {
         if (v.is_object()) t->tls.enabled = true;
         ReadObject(v, at, TlsFields(), e, &t->tls);
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
         ReadDuration(v, at, &PositiveDuration, e, &t->replica_ack_timeout);
       }},
  };
  return *fields;
}

}  // namespace policy::internal

// ---------------------------------------------------------------------------
// Field names (config.h).

namespace policy {

const std::vector<std::string_view>& TargetFieldNames() {
  return internal::NamesOnce(internal::TargetFields());
}
const std::vector<std::string_view>& PolicyFieldNames() {
  return internal::NamesOnce(internal::PolicyFields());
}
const std::vector<std::string_view>& WaitFieldNames() {
  return internal::NamesOnce(internal::WaitFields());
}
const std::vector<std::string_view>& RetryFieldNames() {
  return internal::NamesOnce(internal::RetryFields());
}
const std::vector<std::string_view>& RenewalFieldNames() {
  return internal::NamesOnce(internal::RenewalFields());
}
const std::vector<std::string_view>& TlsFieldNames() {
  return internal::NamesOnce(internal::TlsFields());
}

}  // namespace policy
