#include "lock/lock.h"

#include <cstdlib>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lock/internal/keys.h"
#include "lock/internal/renewal.h"
#include "lock/internal/status_macros.h"
#include "lock/internal/strings.h"
#include "lock/redis/script.h"
#include "lock/scripts/embedded.h"
#include "absl/strings/numbers.h"
#include "policy/config.h"

namespace lock {

using internal::ToAbsl;

// ---- Locker ----------------------------------------------------------------

namespace {
absl::Status ValidateOptions(const LockOptions& options,
                             const policy::Snapshot& snapshot);
}  // namespace

absl::Status CheckTargetsSupported(const policy::Snapshot& snapshot) {
  std::vector<std::string> problems;
  for (const std::string& name : snapshot.TargetNames()) {
    const policy::RedisTarget* t = snapshot.FindTarget(name);
    if (t->mode != policy::RedisMode::kStandalone) {
      problems.push_back(absl::StrCat(
          "redis target \"", name, "\": mode \"",
          ToAbsl(policy::RedisModeName(t->mode)),
          "\" is not supported by this build (supported: standalone)"));
    }
  }
  if (problems.empty()) return absl::OkStatus();
  return absl::UnimplementedError(absl::StrJoin(problems, "\n"));
}

Locker::Locker(std::shared_ptr<policy::Registry> registry)
    : registry_(std::move(registry)) {}

Locker::~Locker() = default;

absl::StatusOr<std::unique_ptr<Locker>> Locker::Create(
    std::shared_ptr<policy::Registry> registry) {
  RETURN_IF_ERROR(CheckTargetsSupported(*registry->snapshot()));
  return std::unique_ptr<Locker>(new Locker(std::move(registry)));
}

absl::StatusOr<std::shared_ptr<const policy::Policy>> Locker::FindPolicy(
    const std::shared_ptr<const policy::Snapshot>& snapshot,
    std::string_view name) const {
  const policy::Policy* p = snapshot->FindPolicy(name);
  if (p == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("unknown lock policy \"", ToAbsl(name), "\"; known: ",
                     absl::StrJoin(snapshot->PolicyNames(), ", ")));
  }
  // Shares the snapshot's lifetime: a reload never changes a policy that a
  // lock already uses.
  return std::shared_ptr<const policy::Policy>(snapshot, p);
}

absl::StatusOr<Locker::Endpoint> Locker::EndpointFor(
    const policy::RedisTarget& target) {
  if (target.mode != policy::RedisMode::kStandalone || target.addrs.empty()) {
    return absl::UnimplementedError(absl::StrCat(
        "redis target \"", target.name, "\": mode \"",
        ToAbsl(policy::RedisModeName(target.mode)), "\" is not supported"));
  }
  std::lock_guard<std::mutex> lock(endpoints_mu_);
  auto it = endpoints_.find(target.name);
  if (it != endpoints_.end() && it->second.target == target) return it->second;
  // New or changed by a reload: locks still using the old pool keep it.
  const redis::ConnectionOptions connection{.addr = target.addrs[0],
                                            .connect_timeout = target.connect_timeout,
                                            .username = target.username,
                                            .password = target.password,
                                            .db = target.db};
  Endpoint e{target,
             std::make_shared<redis::ConnectionPool>(redis::PoolOptions{
                 .connection = connection, .max_size = target.pool_size}),
             std::make_shared<internal::ReleaseNotifier>(connection)};
  endpoints_[target.name] = e;
  return e;
}

absl::StatusOr<std::unique_ptr<RedisLock>> Locker::MakeLock(
    std::shared_ptr<const policy::Policy> policy,
    const policy::Snapshot& snapshot, std::string_view key) {
  const policy::RedisTarget* target = snapshot.FindTarget(policy->redis);
  if (target == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "policy \"", policy->name, "\" names redis target \"", policy->redis,
        "\", which is not configured; known: ",
        absl::StrJoin(snapshot.TargetNames(), ", ")));
  }
  ASSIGN_OR_RETURN(Endpoint e, EndpointFor(*target));
  return RedisLock::Create(std::move(e.pool), std::move(policy), ToAbsl(key),
                           std::move(e.notifier));
}

absl::StatusOr<std::unique_ptr<RedisLock>> Locker::NewLock(
    std::string_view policy, std::string_view key) {
  std::shared_ptr<const policy::Snapshot> snapshot = registry_->snapshot();
  ASSIGN_OR_RETURN(auto p, FindPolicy(snapshot, policy));
  return MakeLock(std::move(p), *snapshot, key);
}

namespace {
absl::Status ValidateOptions(const LockOptions& options,
                             const policy::Snapshot& snapshot) {
  // Options given in code pass through the very checks a policy file gets:
  // rendered as one, parsed and validated.
  nlohmann::json config = {
      {"policies", {{"options", policy::ExplainPolicy(options)}}}};
  if (const policy::RedisTarget* t = snapshot.FindTarget(options.redis)) {
    config["redis"][options.redis] = policy::ExplainTarget(*t);
  }
  return policy::ParseConfig(config.dump(), "LockOptions").status();
}
}  // namespace

absl::StatusOr<std::unique_ptr<RedisLock>> Locker::NewLock(
    std::string_view key, const LockOptions& options) {
  std::shared_ptr<const policy::Snapshot> snapshot = registry_->snapshot();
  RETURN_IF_ERROR(ValidateOptions(options, *snapshot));
  auto p = std::make_shared<policy::Policy>(options);
  if (p->name.empty()) p->name = "(options)";
  return MakeLock(std::move(p), *snapshot, key);
}

absl::Status Locker::RunHeld(RedisLock& lock,
                             const std::function<absl::Status(Held&)>& fn) {
  if (lock.policy().renewal.enabled) RETURN_IF_ERROR(lock.EnableAutoRenew());
  Held held(&lock, lock.hold());
  absl::Status result;
  std::exception_ptr thrown;
  try {
    result = fn(held);
  } catch (...) {
    thrown = std::current_exception();
  }
  absl::Status released = lock.Release();
  if (thrown) std::rethrow_exception(thrown);
  if (!result.ok()) return result;
  if (held.lost()) {
    return LostError(absl::StrCat(
        "lock \"", held.key(), "\" (policy ", lock.policy().name,
        ") was lost while the critical section ran: its lease expired or "
        "another owner took it, so writes made under fencing token ",
        held.fencing_token(), " may be unsafe"));
  }
  if (!released.ok()) {
    return absl::Status(
        released.code(),
        absl::StrCat("the critical section completed, but ", released.message(),
                     "; the lock expires by itself after its ttl"));
  }
  return absl::OkStatus();
}

absl::Status Locker::With(std::string_view policy, std::string_view key,
                          const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::unique_ptr<RedisLock> lock, NewLock(policy, key));
  RETURN_IF_ERROR(lock->Acquire());
  return RunHeld(*lock, fn);
}

absl::Status Locker::With(std::string_view policy, std::string_view key,
                          const std::function<absl::Status()>& fn) {
  return With(policy, key, [&fn](Held&) { return fn(); });
}

absl::Status Locker::WithOptions(std::string_view key,
                                 const LockOptions& options,
                                 const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::unique_ptr<RedisLock> lock, NewLock(key, options));
  RETURN_IF_ERROR(lock->Acquire());
  return RunHeld(*lock, fn);
}

absl::Status Locker::UnlockByValue(std::string_view policy,
                                   std::string_view key,
                                   std::string_view owner_token) {
  ASSIGN_OR_RETURN(std::unique_ptr<RedisLock> lock, NewLock(policy, key));
  return lock->ReleaseOwnedBy(ToAbsl(owner_token));
}

absl::Status Locker::FencedSet(std::string_view policy,
                               std::string_view resource_key,
                               std::string_view value, int64_t fencing_token) {
  std::shared_ptr<const policy::Snapshot> snapshot = registry_->snapshot();
  ASSIGN_OR_RETURN(auto p, FindPolicy(snapshot, policy));
  const policy::RedisTarget* target = snapshot->FindTarget(p->redis);
  if (target == nullptr) {
    return absl::NotFoundError(absl::StrCat("policy \"", p->name,
                                            "\" names unknown redis target \"",
                                            p->redis, "\""));
  }
  ASSIGN_OR_RETURN(Endpoint e, EndpointFor(*target));
  ASSIGN_OR_RETURN(redis::PooledConnection conn, e.pool->Borrow(p->script_timeout));
  char token[24];
  char* end = absl::numbers_internal::FastIntToBuffer(fencing_token, token);
  const absl::string_view keys[] = {ToAbsl(resource_key)};
  const absl::string_view args[] = {ToAbsl(value), absl::string_view(token, end - token)};
  ASSIGN_OR_RETURN(redis::ReplyPtr reply,
                   redis::RunScript(*conn, scripts::k_fenced_set, keys, args,
                                    p->script_timeout));
  const redisReply& r = *reply;
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 ||
      r.element[0]->type != REDIS_REPLY_INTEGER ||
      r.element[1]->type != REDIS_REPLY_INTEGER) {
    return absl::InternalError("fenced_set: unexpected reply shape");
  }
  if (r.element[0]->integer == 1) return absl::OkStatus();
  return StaleFenceError(absl::StrCat(
      "write to \"", ToAbsl(resource_key), "\" refused: fencing token ",
      fencing_token, " is older than ", r.element[1]->integer,
      ", already written by a later holder"));
}

// ---- Process-wide layer ----------------------------------------------------

namespace {

std::mutex g_mu;
std::shared_ptr<Locker> g_locker;  // guarded by g_mu

absl::Status Install(absl::StatusOr<std::unique_ptr<policy::Registry>> registry) {
  if (!registry.ok()) return registry.status();
  ASSIGN_OR_RETURN(std::unique_ptr<Locker> locker,
                   Locker::Create(std::shared_ptr<policy::Registry>(
                       *std::move(registry))));
  InitWith(std::move(locker));
  return absl::OkStatus();
}

}  // namespace

absl::Status Init(const std::string& config_path) {
  return Install(policy::Registry::Load(config_path));
}

absl::Status InitFromJson(std::string_view json) {
  return Install(policy::Registry::FromJson(json));
}

void InitWith(std::shared_ptr<Locker> locker) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_locker = std::move(locker);
}

void Shutdown(absl::Duration deadline) {
  internal::RenewalManager::Global().Shutdown(deadline);
  std::shared_ptr<Locker> old;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    old = std::move(g_locker);
  }
}

absl::StatusOr<std::shared_ptr<Locker>> Default() {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_locker != nullptr) return g_locker;
  }
  const char* path = std::getenv("LOCK_CONFIG");
  if (path == nullptr || *path == '\0') {
    return absl::FailedPreconditionError(
        "the lock library has no policies: call lock::Init(path) or "
        "lock::InitFromJson(json), or set LOCK_CONFIG to a policy file");
  }
  absl::Status s = Init(path);
  if (!s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("LOCK_CONFIG=", path, ": ", s.message()));
  }
  std::lock_guard<std::mutex> lock(g_mu);
  return g_locker;
}

absl::Status With(std::string_view policy, std::string_view key,
                  const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->With(policy, key, fn);
}

absl::Status With(std::string_view policy, std::string_view key,
                  const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->With(policy, key, fn);
}

absl::Status LockWithOptions(std::string_view key, const LockOptions& options,
                             const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithOptions(key, options, [&fn](Held&) { return fn(); });
}

absl::Status Lock(std::string_view key, absl::Duration ttl,
                  const std::function<absl::Status()>& fn) {
  LockOptions options;
  options.ttl = ttl;
  return LockWithOptions(key, options, fn);
}

absl::Status LockWithRetry(std::string_view key, absl::Duration ttl,
                           const std::function<absl::Status()>& fn,
                           const RetryStrategy& strategy) {
  LockOptions options;
  options.ttl = ttl;
  options.retry.max_attempts = strategy.max_attempts;
  options.retry.initial_delay = strategy.delay;
  options.retry.max_delay = strategy.delay;
  options.retry.multiplier = 1.0;
  options.wait.timeout = absl::Hours(24);  // the attempts bound the wait
  return LockWithOptions(key, options, fn);
}

absl::Status LockWithToken(std::string_view key, absl::Duration ttl,
                           const std::function<absl::Status(int64_t)>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  LockOptions options;
  options.ttl = ttl;
  return locker->WithOptions(
      key, options, [&fn](Held& held) { return fn(held.fencing_token()); });
}

absl::StatusOr<std::unique_ptr<RedisLock>> NewLock(std::string_view key,
                                                   const LockOptions& options) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->NewLock(key, options);
}

absl::Status FencedSet(std::string_view policy, std::string_view resource_key,
                       std::string_view value, int64_t fencing_token) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->FencedSet(policy, resource_key, value, fencing_token);
}

absl::Status UnlockByValue(std::string_view key, std::string_view owner_token) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  ASSIGN_OR_RETURN(std::unique_ptr<RedisLock> lock,
                   locker->NewLock(key, LockOptions{}));
  return lock->ReleaseOwnedBy(ToAbsl(owner_token));
}

}  // namespace lock
