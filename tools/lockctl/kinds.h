// lockctl's view of the kinds beyond the mutex (semaphore, read_write,
// fair): one primitive's state as its inspect script reads it, rendered for
// `status` and `list`, and the holds and places in it that `release` can
// give back. Every read and write is one of the library's scripts, built by
// lock/internal/primitive_calls.h on the layout of lock/internal/keys.h.
#ifndef TOOLS_LOCKCTL_KINDS_H_
#define TOOLS_LOCKCTL_KINDS_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lock/internal/primitive_calls.h"
#include "nlohmann/json.hpp"
#include "policy/policy.h"
#include "tools/lockctl/cli.h"

namespace lockctl {

// One Redis key of a lock of prefix P and key K, e.g. {P K}:sem:holders.
using RedisKeyOf =
    std::function<std::string(absl::string_view prefix, absl::string_view key)>;

// The keys that exist while a lock of `kind` holds or queues anything: `list`
// scans for each of them (the mutex's owner hash, a semaphore's holders, a
// read_write lock's writer, readers and writer claims, a fair lock's owner
// and queue).
std::vector<RedisKeyOf> PresenceKeys(policy::LockKind kind);

// A primitive of a non-mutex kind. Only the state of `kind` is filled.
struct PrimitiveView {
  std::string policy;
  std::string key;        // the caller's key, without prefix
  std::string redis_key;  // the hash tag {P K} all of its keys share
  std::string addr;       // the master that answered
  policy::LockKind kind = policy::LockKind::kSemaphore;
  int permits = 0;  // the policy's, for a semaphore
  lock::internal::SemaphoreState sem;
  lock::internal::ReadWriteState rw;
  lock::internal::FairState fair;
};

// Reads the lock `key` of the context's policy (not a mutex) on the master
// holding it. kInvalidArgument for an invalid key; kUnimplemented on a
// Redlock target (the library serves only mutexes there).
absl::StatusOr<PrimitiveView> InspectPrimitive(const PolicyContext& ctx,
                                               const std::string& key);

// Something held or waiting in it (a lock `list` shows).
bool IsActive(const PrimitiveView& v);

// `list`'s one line: "3/8 permits", "writer <token>", "2 readers, 1 writer
// waiting", "held by <token>, 4 queued".
std::string Summary(const PrimitiveView& v);

// `status`'s table and JSON object.
std::string StatusText(const PrimitiveView& v, const std::string& where);
nlohmann::json PrimitiveJson(const PrimitiveView& v);

// One token in a primitive: a hold (a permit, a reader, the writer, the fair
// owner) or a place (a waiting writer's claim, a fair waiter).
struct Participant {
  enum Role { kPermit, kReader, kWriter, kWaitingWriter, kOwner, kWaiter };
  Role role = kPermit;
  std::string token;
  int64_t ms_left = 0;  // of its lease, claim or place
  int64_t hold_count = 0;  // exclusive holds
  int64_t fence = 0;       // exclusive holds
  int place = 0;           // fair waiters, 1 = next

  bool holds() const { return role != kWaitingWriter && role != kWaiter; }
};
// "permit", "reader", "writer", "waiting writer", "owner", "waiter".
std::string RoleName(Participant::Role role);

// Every hold and place, holds first.
std::vector<Participant> Participants(const PrimitiveView& v);

// "writer host:1:ab (fencing token 7, reentry count 1, 29.9s left)".
std::string Describe(const Participant& p);
nlohmann::json ParticipantJson(const Participant& p);

// Gives back what `p` holds, or takes it out of the line, owner-checked by
// its token. Returns false when a hold was no longer there (released or
// expired since it was read); a place is gone either way. A fair owner's
// release tells the next in line, as the library's release does.
absl::StatusOr<bool> ReleaseParticipant(const PolicyContext& ctx,
                                        const std::string& key,
                                        const Participant& p);

}  // namespace lockctl

#endif  // TOOLS_LOCKCTL_KINDS_H_
