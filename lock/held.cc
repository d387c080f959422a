// Held, and running a critical section under a hold (see held.h).
#include "lock/internal/held.h"

#include <exception>
#include <optional>
#include <stop_token>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lock/errors.h"
#include "lock/internal/hold_state.h"
#include "util/strings.h"

namespace lock {

using util::ToAbsl;

namespace internal {

// The keys of a WithAll beyond what Held keeps for the first one.
struct HeldSet {
  struct RequestStop {
    std::stop_source* source;
    void operator()() const noexcept { source->request_stop(); }
  };

  explicit HeldSet(std::vector<HeldPart> taken) : parts(std::move(taken)), links(parts.size()) {
    // A key lost before its link exists runs the callback at once.
    for (size_t i = 0; i < parts.size(); ++i) {
      links[i].emplace(parts[i].hold->stop.get_token(), RequestStop{&stop});
    }
  }

  const std::vector<HeldPart> parts;  // the caller's order, each key once
  // Requested by the first key whose own stop is requested (a loss under
  // on_failure "signal"). Declared before `links`, which point at it and are
  // destroyed first.
  std::stop_source stop;
  std::vector<std::optional<std::stop_callback<RequestStop>>> links;
};

Held HeldAccess::Make(RedisLock* lock, std::shared_ptr<HoldState> hold) {
  return Held(lock, std::move(hold), nullptr);
}

Held HeldAccess::Make(std::vector<HeldPart> parts) {
  RedisLock* first = parts.front().lock;
  std::shared_ptr<HoldState> first_hold = parts.front().hold;
  return Held(first, std::move(first_hold), std::make_unique<HeldSet>(std::move(parts)));
}

const HoldState* HeldAccess::Lost(const Held& held) {
  if (held.set_ == nullptr) return held.hold_->lost.load() ? held.hold_.get() : nullptr;
  for (const HeldPart& part : held.set_->parts) {
    if (part.hold->lost.load()) return part.hold.get();
  }
  return nullptr;
}

size_t HeldAccess::Size(const Held& held) {
  return held.set_ == nullptr ? 1 : held.set_->parts.size();
}

}  // namespace internal

Held::Held(RedisLock* lock, std::shared_ptr<internal::HoldState> hold,
           std::unique_ptr<internal::HeldSet> set)
    : lock_(lock), hold_(std::move(hold)), set_(std::move(set)) {}
Held::~Held() = default;
const std::string& Held::key() const { return hold_->key; }
const std::string& Held::owner_token() const { return hold_->token; }
int64_t Held::fencing_token() const { return hold_->fence; }

std::vector<std::string> Held::keys() const {
  if (set_ == nullptr) return {hold_->key};
  std::vector<std::string> keys;
  keys.reserve(set_->parts.size());
  for (const internal::HeldPart& part : set_->parts) keys.push_back(part.hold->key);
  return keys;
}

int64_t Held::fencing_token(std::string_view key) const {
  if (set_ == nullptr) return hold_->key == key ? hold_->fence : 0;
  for (const internal::HeldPart& part : set_->parts) {
    if (part.hold->key == key) return part.hold->fence;
  }
  return 0;
}

bool Held::lost() const { return internal::HeldAccess::Lost(*this) != nullptr; }

std::stop_token Held::stop_token() const {
  return set_ == nullptr ? hold_->stop.get_token() : set_->stop.get_token();
}

absl::Status Held::Extend(absl::Duration ttl) {
  if (set_ == nullptr) return lock_->Renew(ttl);
  absl::Status first;
  for (const internal::HeldPart& part : set_->parts) first.Update(part.lock->Renew(ttl));
  return first;
}

namespace internal {

// The locks the calling thread holds in an enclosing With or WithAll,
// innermost last. With takes a fresh lock instance (a new owner), so a
// nested With on a key the thread already holds would wait for itself until
// wait.timeout and then report IsBusy. Keyed by the Redis key itself on its
// target, so two policies that share a target and key_prefix are caught
// too; other keys and other threads are real contenders and behave as
// always.
namespace {

struct HeldHere {
  const void* locker;  // the Locker's state
  const RedisLock* lock;  // alive while registered (HeldHereScope)
};
thread_local std::vector<HeldHere> t_held_here;

// Whether two (policy, key) pairs are the same Redis key {prefix key} on the
// same target, without building either key.
bool SameRedisKey(const policy::Policy& pa, std::string_view ka, const policy::Policy& pb,
                  std::string_view kb) {
  // Each kind has Redis keys of its own (lock/internal/keys.h).
  if (pa.redis != pb.redis || pa.kind != pb.kind ||
      pa.key_prefix.size() + ka.size() != pb.key_prefix.size() + kb.size()) {
    return false;
  }
  return absl::StrCat(pa.key_prefix, ToAbsl(ka)) == absl::StrCat(pb.key_prefix, ToAbsl(kb));
}

}  // namespace

absl::Status CheckNotHeldHere(const void* locker, const policy::Policy& wanted,
                              std::string_view key) {
  for (const HeldHere& h : t_held_here) {
    if (h.locker == locker && SameRedisKey(h.lock->policy(), h.lock->key(), wanted, key)) {
      const std::string& held_policy = h.lock->policy().name;
      return SelfDeadlockError(absl::StrCat(
          "the calling thread already holds lock \"", h.lock->key(), "\" under policy \"",
          held_policy, "\" in an enclosing With or WithAll; a nested With or WithAll on "
          "the same key",
          wanted.name == held_policy
              ? ""
              : absl::StrCat(" (policy \"", wanted.name,
                             "\" shares its redis target and key_prefix)"),
          " would take it as another owner and wait for itself. Use the "
          "enclosing hold, or a RedisLock (NewLock) whose Acquire re-enters "
          "per instance"));
    }
  }
  return absl::OkStatus();
}

absl::Status ReleaseAll(std::span<RedisLock* const> taken) {
  absl::Status first;
  for (auto it = taken.rbegin(); it != taken.rend(); ++it) first.Update((*it)->Release());
  return first;
}

absl::Status LostWhileHeldError(const HoldState& lost, size_t keys, std::string_view during) {
  return LostError(absl::StrCat(
      "lock \"", lost.key, "\" (policy ", lost.policy->name, ")",
      keys == 1 ? "" : absl::StrCat(", one of the ", keys, " keys of a WithAll,"),
      " was lost while ", ToAbsl(during), ": its lease expired or "
      "another owner took it, so writes made under fencing token ",
      lost.fence, " may be unsafe"));
}

absl::Status RunHeld(std::span<RedisLock* const> taken, Held& held,
                     const std::function<absl::Status(Held&)>& fn) {
  for (RedisLock* lock : taken) {
    if (!lock->policy().renewal.enabled) continue;
    absl::Status renewing = lock->EnableAutoRenew();
    if (!renewing.ok()) {
      ReleaseAll(taken).IgnoreError();  // else the lease expires after its ttl
      return renewing;
    }
  }
  absl::Status result;
  std::exception_ptr thrown;
  try {
    result = fn(held);
  } catch (...) {
    thrown = std::current_exception();
  }
  absl::Status released = ReleaseAll(taken);
  if (thrown) std::rethrow_exception(thrown);
  if (!result.ok()) return result;
  if (const HoldState* lost = HeldAccess::Lost(held)) {
    return LostWhileHeldError(*lost, HeldAccess::Size(held), "the critical section ran");
  }
  if (!released.ok()) {
    return absl::Status(
        released.code(),
        absl::StrCat("the critical section completed, but ", released.message(),
                     "; the lock expires by itself after its ttl"));
  }
  return absl::OkStatus();
}

HeldHereScope::HeldHereScope(const void* locker, std::span<RedisLock* const> locks)
    : count_(locks.size()) {
  for (const RedisLock* lock : locks) t_held_here.push_back(HeldHere{locker, lock});
}

HeldHereScope::~HeldHereScope() { t_held_here.resize(t_held_here.size() - count_); }

}  // namespace internal
}  // namespace lock
