// The calls of issue 15's primitives, typed: which script each operation
// runs, its KEYS and ARGV in the order the script reads them (see the
// comment at the top of each lock/scripts/*.lua), and the replies parsed.
// The key layout itself is keys.h's; this is the one place that knows each
// script's argument order, for the engine and the tests alike.
//
//   const SemaphoreKeys keys(policy.key_prefix, key);
//   PrimitiveCall call = SemAcquire(keys, token, /*ttl_ms=*/30000, 1, policy.permits);
//   ASSIGN_OR_RETURN(auto reply, topology.Run(*call.script, call.KeyViews(),
//                                             call.ArgViews(), options));
//   ASSIGN_OR_RETURN(AcquireReply r, ParseAcquireReply(*reply.reply, "sem_acquire"));
//
// Durations are whole milliseconds, as the scripts take them; the caller
// makes sure they are >= 1 (policy::LeaseDuration does for a ttl).
#ifndef LOCK_INTERNAL_PRIMITIVE_CALLS_H_
#define LOCK_INTERNAL_PRIMITIVE_CALLS_H_

#include <cstdint>
#include <string>
#include <vector>

#include <hiredis/hiredis.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lock/internal/keys.h"
#include "lock/scripts/embedded.h"

namespace lock::internal {

// One script call with its words owned.
struct PrimitiveCall {
  const scripts::EmbeddedScript* script = nullptr;
  std::vector<std::string> keys;
  std::vector<std::string> args;

  // Views for Topology::Run / RunScript; valid while this call lives.
  std::vector<absl::string_view> KeyViews() const;
  std::vector<absl::string_view> ArgViews() const;
};

// What an exclusive hold (the write side, fair) passes for its fencing
// token: the policy's `fencing` and `fencing_retention`.
struct ExclusiveOptions {
  bool fencing = true;
  int64_t fence_retention_ms = 24 * 3600 * 1000;
};

// --- mutex ---
// The engine builds its own mutex calls on the hot path (no allocation per
// call); these are for tools that read or clean up one master at a time.
PrimitiveCall MutexInspect(const LockKeys& keys);
// release.lua for every level at once: the key is deleted (never kept for
// hold_at_least) and waiters are told, as RedisLock::ReleaseOwnedBy does.
PrimitiveCall MutexRelease(const LockKeys& keys, absl::string_view token);

// --- semaphore ---
PrimitiveCall SemAcquire(const SemaphoreKeys& keys, absl::string_view token,
                         int64_t ttl_ms, int hold_count, int permits);
PrimitiveCall SemRelease(const SemaphoreKeys& keys, absl::string_view token);
PrimitiveCall SemExtend(const SemaphoreKeys& keys, absl::string_view token,
                        int64_t lease_ms, bool renew);
PrimitiveCall SemCancel(const SemaphoreKeys& keys, absl::string_view token,
                        int64_t marker_ms);
PrimitiveCall SemInspect(const SemaphoreKeys& keys);

// --- read_write ---
PrimitiveCall RwReadAcquire(const ReadWriteKeys& keys, absl::string_view token,
                            int64_t ttl_ms, int hold_count);
PrimitiveCall RwWriteAcquire(const ReadWriteKeys& keys, absl::string_view token,
                             int64_t ttl_ms, int hold_count, int64_t claim_ms,
                             const ExclusiveOptions& exclusive = {});
PrimitiveCall RwReadRelease(const ReadWriteKeys& keys, absl::string_view token);
// release.lua on the writer hash; `hold_count_after` 0 = the last level.
PrimitiveCall RwWriteRelease(const ReadWriteKeys& keys, absl::string_view token,
                             int hold_count_after);
PrimitiveCall RwReadExtend(const ReadWriteKeys& keys, absl::string_view token,
                           int64_t lease_ms, bool renew);
// extend.lua on the writer hash.
PrimitiveCall RwWriteExtend(const ReadWriteKeys& keys, absl::string_view token,
                            int64_t lease_ms, bool renew);
// A waiting writer keeps its claim between attempts.
PrimitiveCall RwClaimExtend(const ReadWriteKeys& keys, absl::string_view token,
                            int64_t claim_ms);
PrimitiveCall RwCancel(const ReadWriteKeys& keys, absl::string_view token,
                       int64_t marker_ms);
PrimitiveCall RwInspect(const ReadWriteKeys& keys);

// --- fair ---
PrimitiveCall FairAcquire(const FairKeys& keys, absl::string_view token,
                          int64_t ttl_ms, int hold_count, int64_t queue_lease_ms,
                          const ExclusiveOptions& exclusive = {});
// `handoff`: the head becomes the owner inside the release (fair_release.lua).
PrimitiveCall FairRelease(const FairKeys& keys, absl::string_view token,
                          int hold_count_after, bool handoff = false,
                          const ExclusiveOptions& exclusive = {});
// extend.lua on the owner hash.
PrimitiveCall FairExtend(const FairKeys& keys, absl::string_view token,
                         int64_t lease_ms, bool renew);
// A waiter keeps its place between attempts.
PrimitiveCall FairPlaceExtend(const FairKeys& keys, absl::string_view token,
                              int64_t queue_lease_ms);
PrimitiveCall FairCancel(const FairKeys& keys, absl::string_view token,
                         int64_t marker_ms);
PrimitiveCall FairInspect(const FairKeys& keys);

// --- replies ---

// What every acquire script answers: {status, a, b}.
struct AcquireReply {
  enum Status : int {
    kHeld = 1,
    kBusy = 0,
    kCancelled = -1,  // this token's acquire was cancelled (a lost reply)
    kGone = -2,       // re-entry of a hold that no longer exists
  };
  Status status = kBusy;
  // kHeld: the fencing token (0 for shared holds or fencing off).
  // kBusy: ms worth waiting (a lease, claim or queue place left).
  int64_t a = 0;
  // kHeld: the lease left in ms. kBusy: sem_acquire the permits in use;
  // rw_*_acquire why (kWriterHolds, kWriterWaits, kReadersHold); fair_acquire
  // the place in line (1 = next).
  int64_t b = 0;

  static constexpr int64_t kWriterHolds = 1;
  static constexpr int64_t kWriterWaits = 2;
  static constexpr int64_t kReadersHold = 3;
};
absl::StatusOr<AcquireReply> ParseAcquireReply(const redisReply& reply,
                                               absl::string_view what);

// Release, extend and cancel scripts answer an integer.
absl::StatusOr<int64_t> ParseIntegerReply(const redisReply& reply,
                                          absl::string_view what);

// A lease among several: a permit, a read hold, a claim, a queue place.
struct Lease {
  std::string token;
  int64_t ms_left = 0;
  friend bool operator==(const Lease&, const Lease&) = default;
};

// An owner hash (the write side, the fair holder), as inspect.lua reads one.
struct OwnerState {
  std::string owner;  // "" when free
  int64_t pttl_ms = -2;
  int64_t hold_count = 0;
  int64_t fence = 0;       // of this hold
  int64_t last_fence = 0;  // last issued for the resource
};

// inspect.lua's reply; the engine's RedisLock::Inspect reads it too.
absl::StatusOr<OwnerState> ParseMutexInspect(const redisReply& reply);

struct SemaphoreState {
  int64_t in_use = 0;
  std::vector<Lease> holders;  // soonest lease first
};
absl::StatusOr<SemaphoreState> ParseSemInspect(const redisReply& reply);

struct ReadWriteState {
  OwnerState writer;
  std::vector<Lease> readers;
  std::vector<Lease> waiting_writers;
};
absl::StatusOr<ReadWriteState> ParseRwInspect(const redisReply& reply);

struct FairState {
  OwnerState owner;
  std::vector<Lease> queue;  // in order
};
absl::StatusOr<FairState> ParseFairInspect(const redisReply& reply);

// A fair release's message: the next waiter's token, and the fencing token
// when the lock was handed to it ("<token> <fence>"). Empty token: nobody
// waits.
struct FairReleaseMessage {
  std::string next;
  bool handed_off = false;
  int64_t fence = 0;
};
absl::StatusOr<FairReleaseMessage> ParseFairReleaseMessage(absl::string_view message);

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_PRIMITIVE_CALLS_H_
