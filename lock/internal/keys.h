// The one place that knows how a lock is laid out in Redis.
//
// For policy key prefix P and lock key K every key shares the hash tag {P K},
// so all of them live in one cluster slot and one script can touch them all:
//   {P K}                 owner hash: owner token, hold count, fence of this hold
//   {P K}:fence           last fencing token issued; expires fencing_retention
//                         after the last fresh acquisition (tokens follow the
//                         server clock, so they still only go up)
//   {P K}:cancel:<token>  marker refusing a late acquire whose reply was lost
//   {P K}:released        pub/sub channel announcing releases to waiters
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

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_KEYS_H_
