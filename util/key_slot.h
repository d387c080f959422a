// Redis Cluster's hash slot of a key, computed without a server: the answer
// CLUSTER KEYSLOT gives. Shared by the engine's cluster routing
// (lock/redis/topology.cc) and the harness's RedisFleet.
#ifndef UTIL_KEY_SLOT_H_
#define UTIL_KEY_SLOT_H_

#include "absl/strings/string_view.h"

namespace util {

// How many hash slots a Redis Cluster has.
inline constexpr int kClusterSlots = 16384;

// CRC16 (XMODEM) of `key`, or of its {hash tag} (the bytes between the first
// '{' and the next '}', when not empty), mod kClusterSlots.
int KeySlot(absl::string_view key);

}  // namespace util

#endif  // UTIL_KEY_SLOT_H_
