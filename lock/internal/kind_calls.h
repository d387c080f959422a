// What differs between the policy kinds other than the mutex, for the
// engine (LockCore): which script each operation runs on which keys, how a
// busy answer reads, how waiters are woken, and where re-entry levels are
// counted. The mutex keeps its own allocation-free path in LockCore (the
// hot path of the library); every other kind goes through one of these.
//
//   semaphore        one permit of `permits`: a member of {P K}:sem:holders
//   read_write read  a shared hold: a member of {P K}:rw:readers
//   read_write write the exclusive hold: the owner hash {P K}:rw:writer
//   fair             the exclusive hold of {P K}:fair:owner, granted in the
//                    order of {P K}:fair:queue
//
// The scripts and their arguments are primitive_calls.h's; the key layout
// is keys.h's.
#ifndef LOCK_INTERNAL_KIND_CALLS_H_
#define LOCK_INTERNAL_KIND_CALLS_H_

#include <cstdint>
#include <memory>
#include <string>

#include <hiredis/hiredis.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lock/internal/hold_state.h"
#include "lock/internal/notifier.h"
#include "lock/internal/primitive_calls.h"
#include "lock/redis_lock.h"
#include "lock/scripts/embedded.h"
#include "policy/policy.h"

namespace lock::internal {

// An exclusive hold (a mutex, a read_write lock's writer, a fair lock's
// owner) as RedisLock::Inspect reports it.
LockState OwnerLockState(const OwnerState& owner);

class KindCalls {
 public:
  // Null for a mutex. kInvalidArgument for kRead / kWrite on a policy that
  // is not read_write. `policy` and `key` are valid (the caller checked).
  static absl::StatusOr<std::unique_ptr<const KindCalls>> For(const policy::Policy& policy,
                                                             absl::string_view key,
                                                             Access access);
  virtual ~KindCalls() = default;

  // Takes (or re-enters, `hold_count` > 1) the hold for `token`. A busy
  // exclusive acquire leaves a trace that keeps the caller's turn (a
  // writer's claim, a place in the fair queue) for `ttl_ms`: it is
  // refreshed by the next attempt and withdrawn by Cancel.
  virtual PrimitiveCall Acquire(absl::string_view token, int64_t ttl_ms,
                                int hold_count) const = 0;
  // Releases down to `hold_count_after` levels (0 = the whole hold; always
  // 0 when !levels_in_redis()). Answers 1 (or 2: handed on) when released,
  // 0 when `token` did not hold it.
  virtual PrimitiveCall Release(absl::string_view token, int hold_count_after) const = 0;
  // Undoes an acquire whose reply was lost, or withdraws a waiter's trace,
  // leaving a cancel marker for `marker_ms`. Answers 1 when a hold was
  // given back.
  virtual PrimitiveCall Cancel(absl::string_view token, int64_t marker_ms) const = 0;
  virtual PrimitiveCall Inspect() const = 0;
  // The inspect reply as a LockState; `mine` / `mine_count`: the
  // inspecting instance's hold ("" / 0 when none).
  virtual absl::StatusOr<LockState> ParseInspect(const redisReply& reply,
                                                 absl::string_view mine,
                                                 int mine_count) const = 0;

  // Where the hold's lease lives, and whether it is a ZSET score
  // (lease_extend.lua) or the expiry of an owner hash (extend.lua).
  virtual const std::string& lease_key() const = 0;
  virtual bool lease_in_zset() const = 0;
  virtual const std::string& channel() const = 0;
  // The channel a waiter holding `token` listens on: the release channel,
  // or for a kind whose releases address one waiter, that waiter's
  // process's own (FairKeys::WaiterChannel).
  virtual std::string wait_channel(absl::string_view) const { return channel(); }
  // Whether re-entry levels are kept in Redis (an owner hash's count) or
  // by the instance only (one ZSET entry per shared hold).
  virtual bool levels_in_redis() const = 0;
  // Whether a busy attempt leaves a trace to withdraw when giving up.
  virtual bool busy_leaves_trace() const { return false; }
  // Whether the hold is exclusive (a fencing token is issued).
  virtual bool exclusive() const = 0;
  virtual ReleaseNotifier::WakeMode wake() const = 0;
  // Why the lock was busy, from an acquire's {0, a, b} reply.
  virtual std::string BusyText(absl::string_view key, const policy::Policy& policy,
                               int64_t ms_left, int64_t b) const = 0;
  // The acquire script's name, for reply errors.
  virtual absl::string_view acquire_name() const = 0;
};

// The call that gives back the whole hold `token` has of a non-mutex
// kind (lock::Shutdown, which keeps no instance); null script for a mutex.
PrimitiveCall FinalReleaseOf(const policy::Policy& policy, absl::string_view key,
                             Access access, absl::string_view token);

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_KIND_CALLS_H_
