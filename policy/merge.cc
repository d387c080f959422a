// Pass 2 of parsing (see config.cc), for whole sources: each source's
// targets, defaults and policies are read and merged into one view, with
// the rules that span a target's fields and those between sources.
#include <string>
#include <utility>
#include <vector>

#include "policy/config.h"
#include "policy/internal/merged.h"
#include "policy/internal/tls_files.h"

namespace policy::internal {
namespace {

using nlohmann::json;

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
                 Show(object[std::string(field)]));
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
                 Show(object[std::string(field)]));
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
                   Show(object["addrs"]));
      }
      require(!t.sentinels.empty(), "sentinels", "at least 1 sentinel address");
      require(!t.master_name.empty(), "master_name",
              "the name of the monitored master");
      break;
    case RedisMode::kCluster:
      require(!t.addrs.empty(), "addrs", "at least 1 seed address");
      if (t.db != 0) {
        errors.Add(at / "db", "must be 0 in mode \"cluster\"", ShowInt(t.db));
      }
      break;
    case RedisMode::kRedlock:
      require(t.addrs.size() >= 2, "addrs",
              "at least 2 independent masters (an odd number >= 3 is "
              "recommended: quorum is n/2+1)");
      // The engine never sends WAIT to Redlock masters: accepting these
      // would promise replica durability that nothing provides.
      for (std::string_view field :
           {"min_replicas_ack", "replica_ack_timeout"}) {
        if (object.contains(field)) {
          errors.Add(at / field,
                     "is not used with mode \"redlock\": its masters are "
                     "independent and not waited on for replicas; the quorum "
                     "of masters is what makes a grant survive a lost node",
                     Show(object[std::string(field)]));
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
               ShowString(t.username));
  }
}

// The entries of a "redis" or "policies" object: calls
// read_entry(name, body, its path) for each one whose name is new, after
// reporting bad names and names another source defined too. `kind` is
// "redis target" or "policy"; `entries` ("target" or "policy") and `plural`
// name them in the message for a value that is not an object.
template <typename Map, typename ReadEntry>
void ReadEntries(const json& value, const Where& at, std::string_view kind,
                 std::string_view entries, std::string_view plural,
                 const Map& existing, ErrorList& errors, ReadEntry read_entry) {
  if (!value.is_object()) {
    errors.Add(at,
               Cat("must be an object mapping ", entries, " names to ", plural),
               Show(value));
    return;
  }
  for (const auto& [name, body] : value.items()) {
    const Where entry = at / name;
    if (std::string problem = CheckName(name); !problem.empty()) {
      errors.Add(entry, problem, ShowString(name));
    }
    if (auto other = existing.find(name); other != existing.end()) {
      errors.Add(entry, Cat(kind, " ", Quoted(name), " is defined in both ",
                            other->second.at.source, " and ", at.source));
      continue;
    }
    read_entry(name, body, entry);
  }
}

void ReadTargets(const json& value, const Where& at, ErrorList& errors,
                 Merged* merged) {
  ReadEntries(
      value, at, "redis target", "target", "targets", merged->targets, errors,
      [&](const std::string& name, const json& body, const Where& entry) {
        const size_t errors_before = errors.size();
        RedisTarget target;
        target.name = name;
        ReadObject(body, entry, TargetFields(), errors, &target);
        if (body.is_object()) {
          CheckTargetMode(body, target, entry, errors);
        }
        // The struct rules and the files only for a target that read
        // cleanly: a field left at its default by a reported mistake would
        // be blamed a second time (a cert_file of the wrong type as "key_file
        // needs cert_file").
        if (errors.size() == errors_before) {
          CheckTargetTlsAndAuth(target, entry, errors);
          if (target.tls.enabled) {
            LoadTlsFiles(merged->directory, entry / "tls", errors, &target.tls,
                         &merged->files);
          }
        }
        merged->targets.emplace(name, TargetEntry{std::move(target), entry});
      });
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
               Show(value["extends"]));
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
  ReadEntries(
      value, at, "policy", "policy", "policies", merged->policies, errors,
      [&](const std::string& name, const json& body, const Where& entry) {
        const size_t errors_before = errors.size();
        Policy scratch;
        ReadObject(body, entry, PolicyFields(), errors, &scratch);
        merged->policies.emplace(
            name, PolicyEntry{.body = &body,
                              .at = entry,
                              .extends = scratch.extends,
                              .clean = errors.size() == errors_before});
      });
}

}  // namespace

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

}  // namespace policy::internal

namespace policy {

const std::vector<std::string_view>& TopLevelFieldNames() {
  return internal::NamesOnce(internal::TopLevelFields());
}

}  // namespace policy
