// What a critical section holds, for With and WithAll (lock.cc): the Held it
// sees over one lock or a set, the calling thread's record of the keys it
// holds (so that a nested With on one of them fails at once instead of
// waiting for itself), and running fn under a hold with every lock released
// on every path.
#ifndef LOCK_INTERNAL_HELD_H_
#define LOCK_INTERNAL_HELD_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "lock/lock.h"
#include "lock/redis_lock.h"
#include "policy/policy.h"

namespace lock::internal {

// One key of a WithAll's hold.
struct HeldPart {
  RedisLock* lock;
  std::shared_ptr<HoldState> hold;
};

// Builds and reads a Held (its constructor and state are not public).
struct HeldAccess {
  static Held Make(RedisLock* lock, std::shared_ptr<HoldState> hold);
  // `parts` in the caller's order, each key once, at least one.
  static Held Make(std::vector<HeldPart> parts);
  // The first lost hold in the caller's order; null when none is.
  static const HoldState* Lost(const Held& held);
  // How many keys the Held covers.
  static size_t Size(const Held& held);
};

// IsSelfDeadlock when the calling thread holds `key` under `wanted` (the
// same Redis key on the same target, through any policy) in an enclosing
// With or WithAll of the Locker whose state is `locker`.
absl::Status CheckNotHeldHere(const void* locker, const policy::Policy& wanted,
                              std::string_view key);

// Registers locks as held by this thread for the life of the scope.
class HeldHereScope {
 public:
  HeldHereScope(const void* locker, std::span<RedisLock* const> locks);
  ~HeldHereScope();
  HeldHereScope(const HeldHereScope&) = delete;
  HeldHereScope& operator=(const HeldHereScope&) = delete;

 private:
  const size_t count_;
};

// Releases the locks of one hold, given in the order they were taken, in
// reverse; the first error.
absl::Status ReleaseAll(std::span<RedisLock* const> taken);

// IsLost for a hold (of `keys` keys) found lost while `during` went on.
absl::Status LostWhileHeldError(const HoldState& lost, size_t keys, std::string_view during);

// Runs `fn` with `held` while every lock of `taken` (the locks behind it, in
// the order taken) is held, and releases them all on every path: fn's error
// first, then IsLost naming a lost key, then the release result; an
// exception is rethrown after the release.
absl::Status RunHeld(std::span<RedisLock* const> taken, Held& held,
                     const std::function<absl::Status(Held&)>& fn);

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_HELD_H_
