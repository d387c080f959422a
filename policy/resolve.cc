// Pass 3 of parsing (see config.cc): each policy is rebuilt by overlaying, on
// a default Policy, the "defaults" objects and the extends chain (base first)
// with the readers of pass 2, and then checked as a whole by the rules that
// ResolvePolicy applies to structs (rules.h).
#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "policy/internal/merged.h"
#include "policy/internal/rules.h"
#include "policy/validate.h"

namespace policy::internal {
namespace {

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
      std::string message = ExtendsCycleMessage(&cycle);
      if (reported_cycles->insert(message).second) {
        const PolicyEntry& first = merged.policies.find(cycle.front())->second;
        errors.Add(first.at / "extends", message, ShowString(first.extends));
      }
      return std::nullopt;
    }
    names.push_back(it->first);
    chain.push_back(&it->second);
    if (it->second.extends.empty()) return chain;
    current = it->second.extends;
  }
}

}  // namespace

std::vector<Policy> ResolvePolicies(const Merged& merged, ErrorList& errors) {
  const std::vector<std::string_view> known = KeysOf(merged.policies);
  for (const auto& [name, entry] : merged.policies) {
    if (!entry.extends.empty() && !merged.policies.contains(entry.extends)) {
      errors.Add(entry.at / "extends",
                 UnknownPolicyMessage(entry.extends, known),
                 ShowString(entry.extends));
    }
  }
  const std::vector<std::string_view> targets = KeysOf(merged.targets);
  std::vector<Policy> resolved;
  std::set<std::string> reported_cycles;
  for (const auto& [name, entry] : merged.policies) {
    std::optional<std::vector<const PolicyEntry*>> chain =
        ExtendsChain(merged, name, &reported_cycles, errors);
    if (!chain) continue;
    // The objects to overlay, lowest precedence first.
    std::vector<std::pair<const nlohmann::json*, const Where*>> layers;
    for (const DefaultsEntry& d : merged.defaults) {
      layers.emplace_back(d.body, &d.at);
    }
    bool clean = merged.defaults_clean;
    for (auto link = chain->rbegin(); link != chain->rend(); ++link) {
      layers.emplace_back((*link)->body, &(*link)->at);
      clean &= (*link)->clean;
    }
    Policy p;
    // Their errors were reported in pass 2.
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
      if (body->is_object())
        script_timeout_set |= body->contains("script_timeout");
    }
    p.name = name;
    p.extends = entry.extends;
    if (!script_timeout_set) p.script_timeout = DefaultScriptTimeout(p);
    if (redis_readable) CheckTargetReference(p, targets, entry.at, errors);
    // Rules over several fields only for policies whose objects were all
    // clean, so that one mistake does not cascade into several reports.
    if (clean) CheckCrossFieldRules(p, script_timeout_set, entry.at, errors);
    resolved.push_back(std::move(p));
  }
  return resolved;
}

}  // namespace policy::internal
