#include "lock/lease.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "lock/errors.h"
#include "lock/internal/async.h"
#include "lock/internal/held.h"
#include "lock/internal/hold_state.h"
#include "lock/internal/lock_core.h"

namespace lock {
namespace {
const std::string& Empty() {
  static const std::string* empty = new std::string;
  return *empty;
}
}  // namespace

Lease::Lease(std::unique_ptr<RedisLock> lock, std::shared_ptr<internal::HoldState> hold,
             Executor executor)
    : lock_(std::move(lock)), hold_(std::move(hold)), executor_(std::move(executor)) {}

Lease::Lease(Lease&& other) noexcept = default;

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    lock_.reset();  // releases, as the destructor would
    lock_ = std::move(other.lock_);
    hold_ = std::move(other.hold_);
    executor_ = std::move(other.executor_);
  }
  return *this;
}

// The RedisLock's destructor releases what it still holds.
Lease::~Lease() = default;

const std::string& Lease::key() const { return hold_ ? hold_->key : Empty(); }
const std::string& Lease::owner_token() const { return hold_ ? hold_->token : Empty(); }
int64_t Lease::fencing_token() const { return hold_ ? hold_->fence : 0; }
bool Lease::lost() const { return hold_ != nullptr && hold_->lost.load(); }
std::stop_token Lease::stop_token() const {
  return hold_ ? hold_->stop.get_token() : std::stop_token();
}

absl::Duration Lease::remaining() const { return lock_ ? lock_->remaining() : absl::ZeroDuration(); }

absl::Status Lease::Extend(absl::Duration ttl) {
  if (lock_ == nullptr) return absl::FailedPreconditionError("Extend of an empty lease");
  return lock_->Renew(ttl);
}

absl::Status Lease::Release() {
  if (lock_ == nullptr) {
    return absl::FailedPreconditionError("Release of an empty lease (released or moved from)");
  }
  std::unique_ptr<RedisLock> lock = std::move(lock_);
  const absl::Status released = lock->Release();
  if (hold_->lost.load()) return internal::LostWhileHeldError(*hold_, 1, "the lease was held");
  return released;
}

void Lease::ReleaseAsync(std::function<void(absl::Status)> done) {
  if (lock_ == nullptr) {
    internal::Complete(executor_, std::move(done),
                       absl::FailedPreconditionError(
                           "ReleaseAsync of an empty lease (released or moved from)"));
    return;
  }
  auto self = std::make_shared<Lease>(std::move(*this));
  internal::AsyncRuntime::Get().Post(
      [self, done = std::move(done)]() mutable {
        internal::Complete(self->executor_, std::move(done), self->Release(),
                           /*on_library_thread=*/true);
      });
}

namespace internal {

::lock::Lease LeaseAccess::Make(std::unique_ptr<RedisLock> lock, Executor executor) {
  std::shared_ptr<HoldState> hold = LockAccess::Core(*lock).hold();
  return ::lock::Lease(std::move(lock), std::move(hold), std::move(executor));
}

}  // namespace internal
}  // namespace lock
