#include "lock/redis_lock.h"

#include <utility>

#include "lock/internal/lock_core.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace lock {

RedisLock::RedisLock(std::unique_ptr<internal::LockCore> core) : core_(std::move(core)) {}
RedisLock::~RedisLock() = default;

absl::Status RedisLock::Acquire() { return core_->Acquire(); }
absl::Status RedisLock::Acquire(const CallOptions& call) { return core_->Acquire(call); }
absl::StatusOr<bool> RedisLock::TryAcquire() { return core_->TryAcquire(); }
absl::Status RedisLock::Release() { return core_->Release(); }
absl::Status RedisLock::Renew(absl::Duration ttl) { return core_->Renew(ttl); }
absl::Status RedisLock::EnableAutoRenew() { return core_->EnableAutoRenew(); }
absl::StatusOr<bool> RedisLock::IsLocked() { return core_->IsLocked(); }
absl::Status RedisLock::ReleaseOwnedBy(std::string_view owner_token) {
  return core_->ReleaseOwnedBy(util::ToAbsl(owner_token));
}
absl::Status RedisLock::ReleaseLevelOwnedBy(std::string_view owner_token) {
  return core_->ReleaseLevelOwnedBy(util::ToAbsl(owner_token));
}
absl::StatusOr<LockState> RedisLock::Inspect() { return core_->Inspect(); }

const std::string& RedisLock::key() const { return core_->key(); }
const policy::Policy& RedisLock::policy() const { return core_->policy(); }
int64_t RedisLock::fencing_token() const { return core_->fencing_token(); }
absl::Duration RedisLock::remaining() const { return core_->remaining(); }
int RedisLock::hold_count() const { return core_->hold_count(); }
std::string RedisLock::owner_token() const { return core_->owner_token(); }

namespace internal {

std::unique_ptr<RedisLock> LockAccess::Wrap(std::unique_ptr<LockCore> core) {
  return std::unique_ptr<RedisLock>(new RedisLock(std::move(core)));
}

LockCore& LockAccess::Core(const RedisLock& lock) { return *lock.core_; }

absl::StatusOr<std::unique_ptr<RedisLock>> NewRedisLock(
    std::shared_ptr<const Backend> backend,
    std::shared_ptr<const policy::Policy> policy, std::string_view key, Access access) {
  ASSIGN_OR_RETURN(std::unique_ptr<LockCore> core,
                   LockCore::Create(std::move(backend), std::move(policy),
                                    util::ToAbsl(key), access));
  return LockAccess::Wrap(std::move(core));
}

absl::StatusOr<std::unique_ptr<RedisLock>> NewRedisLock(
    std::shared_ptr<redis::ConnectionPool> pool,
    std::shared_ptr<const policy::Policy> policy, std::string_view key,
    std::shared_ptr<ReleaseNotifier> notifier) {
  ASSIGN_OR_RETURN(std::unique_ptr<LockCore> core,
                   LockCore::Create(std::move(pool), std::move(policy),
                                    util::ToAbsl(key), std::move(notifier)));
  return LockAccess::Wrap(std::move(core));
}

}  // namespace internal
}  // namespace lock
