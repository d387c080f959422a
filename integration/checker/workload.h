// What the coordinator and the workers agree on: the policy, the names of
// keys, resources and history files of a run, the policy file, and time.
#ifndef INTEGRATION_CHECKER_WORKLOAD_H_
#define INTEGRATION_CHECKER_WORKLOAD_H_

#include <cstdint>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace lock::checker::driver {

int64_t SteadyNs();
void SleepMs(int64_t ms);

// The one policy every worker locks with.
inline constexpr char kPolicy[] = "reliability";

// A semaphore scenario's number of permits.
inline constexpr int kPermits = 3;

// The i-th lock key ("k<i>").
std::string KeyName(int i);
// The policy's key_prefix in run `run`.
std::string KeyPrefix(const std::string& run);
// The hash a section on lock key `key` reads and writes (value, fence).
std::string ResourceKey(const std::string& run, const std::string& key);
// The lock's owner hash in Redis (lock/internal/keys.h).
std::string OwnerKey(const std::string& run, const std::string& key);
// A KEYS pattern matching the owner hashes of run `run`, and only them.
std::string OwnerKeyPattern(const std::string& run);
// KEYS patterns matching what holds or waits for a lock of kind `kind` in
// run `run` (lock/internal/keys.h): none of them may be left at the end.
std::vector<std::string> HoldKeyPatterns(const std::string& run,
                                         const std::string& kind);
// Where worker process `process` writes its history.
std::string HistoryPath(const std::string& dir, int process);

// `target`: the policy-config redis target, {"addrs": [...]} for one
// server or a fleet's PolicyTargetJson() (sentinel, cluster).
// `kind`: the policy's kind (a semaphore gets kPermits).
std::string PolicyJson(nlohmann::json target, const std::string& run,
                       int ttl_ms, int script_timeout_ms,
                       const std::string& kind);

}  // namespace lock::checker::driver

#endif  // INTEGRATION_CHECKER_WORKLOAD_H_
