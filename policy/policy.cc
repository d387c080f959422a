#include "policy/policy.h"

namespace policy {
namespace {

// The *FromName functions invert the *Name switch over the kAll* array, so
// each enum's spelling is written down exactly once.
template <typename Enum, size_t N>
std::optional<Enum> FromName(const std::array<Enum, N>& all,
                             std::string_view (*name_of)(Enum),
                             std::string_view name) {
  for (Enum value : all) {
    if (name_of(value) == name) return value;
  }
  return std::nullopt;
}

}  // namespace

std::string_view OnBusyName(OnBusy on_busy) {
  switch (on_busy) {
    case OnBusy::kWait:
      return "wait";
    case OnBusy::kSkip:
      return "skip";
    case OnBusy::kFail:
      return "fail";
  }
  return "unknown";
}

std::string_view OnRenewalFailureName(OnRenewalFailure on_failure) {
  switch (on_failure) {
    case OnRenewalFailure::kSignal:
      return "signal";
    case OnRenewalFailure::kIgnore:
      return "ignore";
  }
  return "unknown";
}

std::string_view RedisModeName(RedisMode mode) {
  switch (mode) {
    case RedisMode::kStandalone:
      return "standalone";
    case RedisMode::kSentinel:
      return "sentinel";
    case RedisMode::kCluster:
      return "cluster";
    case RedisMode::kRedlock:
      return "redlock";
  }
  return "unknown";
}

std::string_view LockKindName(LockKind kind) {
  switch (kind) {
    case LockKind::kMutex:
      return "mutex";
    case LockKind::kReadWrite:
      return "read_write";
    case LockKind::kSemaphore:
      return "semaphore";
    case LockKind::kFair:
      return "fair";
  }
  return "unknown";
}

std::optional<OnBusy> OnBusyFromName(std::string_view name) {
  return FromName(kAllOnBusy, &OnBusyName, name);
}

std::optional<OnRenewalFailure> OnRenewalFailureFromName(
    std::string_view name) {
  return FromName(kAllOnRenewalFailure, &OnRenewalFailureName, name);
}

std::optional<RedisMode> RedisModeFromName(std::string_view name) {
  return FromName(kAllRedisModes, &RedisModeName, name);
}

std::optional<LockKind> LockKindFromName(std::string_view name) {
  return FromName(kAllLockKinds, &LockKindName, name);
}

int RedlockQuorum(int masters) { return masters / 2 + 1; }

int RedlockQuorum(const RedisTarget& target) {
  return RedlockQuorum(static_cast<int>(target.addrs.size()));
}

// ---------------------------------------------------------------------------
// Snapshot.

Snapshot::Snapshot(std::vector<Policy> policies,
                   std::vector<RedisTarget> targets,
                   std::vector<std::string> sources)
    : sources_(std::move(sources)) {
  for (Policy& p : policies) {
    std::string name = p.name;
    policies_.insert_or_assign(std::move(name), std::move(p));
  }
  for (RedisTarget& t : targets) {
    std::string name = t.name;
    targets_.insert_or_assign(std::move(name), std::move(t));
  }
}

const Policy* Snapshot::FindPolicy(std::string_view name) const {
  auto it = policies_.find(name);
  return it == policies_.end() ? nullptr : &it->second;
}

const RedisTarget* Snapshot::FindTarget(std::string_view name) const {
  auto it = targets_.find(name);
  return it == targets_.end() ? nullptr : &it->second;
}

std::vector<std::string> Snapshot::PolicyNames() const {
  std::vector<std::string> names;
  for (const auto& [name, unused] : policies_) names.push_back(name);
  return names;
}

std::vector<std::string> Snapshot::TargetNames() const {
  std::vector<std::string> names;
  for (const auto& [name, unused] : targets_) names.push_back(name);
  return names;
}

}  // namespace policy
