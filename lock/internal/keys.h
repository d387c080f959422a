// The one place that knows how a lock is laid out in Redis.
//
// For policy key prefix P and lock key K every key of every kind shares the
// hash tag {P K}, so a primitive lives in one cluster slot and one script can
// touch all of its keys. Each kind has keys of its own (a policy edited from
// one kind to another never meets a key of the wrong type); the fence record
// and the cancel markers are shared.
//
// Every kind:
//   {P K}:fence           last fencing token issued for an exclusive hold of
//                         the resource (mutex, read_write's writer, fair);
//                         expires fencing_retention after the last fresh
//                         acquisition (tokens follow the server clock, so
//                         they still only go up)
//   {P K}:cancel:<token>  marker refusing a late acquire whose reply was lost
//
// mutex (LockKeys):
//   {P K}                 owner hash: owner token, hold count, fence of this hold
//   {P K}:released        pub/sub channel announcing releases to waiters
//
// read_write (ReadWriteKeys), writer preference:
//   {P K}:rw:writer       the writer's owner hash, laid out as the mutex's
//                         (extend.lua and release.lua serve the write side)
//   {P K}:rw:readers      ZSET reader token -> end of its lease (ms, server
//                         clock); the key expires with the last lease
//   {P K}:rw:writers_waiting  ZSET token -> end of a waiting writer's claim:
//                         while one is live no new reader is admitted, so a
//                         stream of readers cannot starve writers; a writer
//                         that stops trying loses its claim after that time
//   {P K}:rw:released     channel: the write release, the last read release,
//                         and the last claim withdrawn
//
// semaphore (SemaphoreKeys):
//   {P K}:sem:holders     ZSET holder token -> end of its lease (ms, server
//                         clock): a permit whose holder died returns exactly
//                         when its lease ends, never earlier. Granted while
//                         fewer than `permits` live entries exist, so holders
//                         above a lowered `permits` keep theirs until release
//                         or expiry and nothing is granted until below it.
//   {P K}:sem:released    channel: a permit came back
//
// fair (FairKeys), a mutex granted in request order:
//   {P K}:fair:owner      owner hash, laid out as the mutex's (extend.lua
//                         extends the holder)
//   {P K}:fair:queue      ZSET waiter token -> ticket (tail + 1 on enqueue):
//                         the order
//   {P K}:fair:timeouts   ZSET waiter token -> end of its place in the queue
//                         (ms, server clock); a waiter that stops retrying or
//                         extending leaves the queue then
//   {P K}:fair:released   channel; "" when a release leaves nobody in line
//   {P K}:fair:released:<host>:<pid>
//                         channel of one process's waiters: a release
//                         publishes there the token of the one waiter that
//                         may now take the lock (the head), so that only
//                         its process wakes
#ifndef LOCK_INTERNAL_KEYS_H_
#define LOCK_INTERNAL_KEYS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lock::internal {

inline constexpr size_t kMaxKeyLength = 255;

// OK when `key` is 1..255 printable ASCII bytes without '{' or '}' (braces
// would change the hash tag and split a lock's keys across cluster slots).
// `what` names the value in the error, e.g. "lock key" or "key_prefix".
absl::Status ValidateKey(absl::string_view key,
                         absl::string_view what = "lock key");

class LockKeys {
 public:
  // `prefix` and `key` must be valid; the caller validated them.
  LockKeys(absl::string_view prefix, absl::string_view key);

  absl::string_view owner() const { return absl::string_view(keys_.data(), owner_len_); }
  absl::string_view fence() const { return absl::string_view(keys_.data(), fence_len_); }
  absl::string_view channel() const { return absl::string_view(keys_).substr(fence_len_); }
  std::string CancelMarker(absl::string_view token) const;

 private:
  // "{P K}:fence{P K}:released", one allocation: the owner key and the fence
  // key are its prefixes, the channel its tail. A lock keeps its LockKeys
  // while held, and 100,000 held locks are a use case (memory per lock).
  std::string keys_;
  uint32_t owner_len_;
  uint32_t fence_len_;
};

// The keys of a read_write primitive (see the layout above).
class ReadWriteKeys {
 public:
  ReadWriteKeys(absl::string_view prefix, absl::string_view key);

  const std::string& writer() const { return writer_; }
  const std::string& readers() const { return readers_; }
  const std::string& writers_waiting() const { return writers_waiting_; }
  const std::string& fence() const { return fence_; }
  const std::string& channel() const { return channel_; }
  std::string CancelMarker(absl::string_view token) const;

 private:
  std::string tag_;  // "{P K}"
  std::string writer_, readers_, writers_waiting_, fence_, channel_;
};

// The keys of a semaphore (see the layout above).
class SemaphoreKeys {
 public:
  SemaphoreKeys(absl::string_view prefix, absl::string_view key);

  const std::string& holders() const { return holders_; }
  const std::string& channel() const { return channel_; }
  std::string CancelMarker(absl::string_view token) const;

 private:
  std::string tag_;
  std::string holders_, channel_;
};

// The keys of a fair lock (see the layout above).
class FairKeys {
 public:
  FairKeys(absl::string_view prefix, absl::string_view key);

  const std::string& owner() const { return owner_; }
  const std::string& queue() const { return queue_; }
  const std::string& timeouts() const { return timeouts_; }
  const std::string& fence() const { return fence_; }
  const std::string& channel() const { return channel_; }
  // Where the waiter holding `token` is told it is next: channel() plus
  // ':' and the token up to its last ':' ("<host>:<pid>", NewOwnerToken),
  // as _fair_tell.lua derives it; channel() for a token without ':'.
  std::string WaiterChannel(absl::string_view token) const;
  std::string CancelMarker(absl::string_view token) const;

 private:
  std::string tag_;
  std::string owner_, queue_, timeouts_, fence_, channel_;
};

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_KEYS_H_
