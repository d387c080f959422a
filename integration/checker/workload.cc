#include "integration/checker/workload.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "lock/internal/keys.h"

namespace lock::checker::driver {

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SleepMs(int64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::string KeyName(int i) { return absl::StrCat("k", i); }
std::string KeyPrefix(const std::string& run) { return absl::StrCat("rel:", run, ":"); }
std::string ResourceKey(const std::string& run, const std::string& key) {
  return absl::StrCat("res:", run, ":", key);
}
std::string HistoryPath(const std::string& dir, int process) {
  return absl::StrCat(dir, "/history-", process, ".jsonl");
}

std::string OwnerKey(const std::string& run, const std::string& key) {
  return std::string(internal::LockKeys(KeyPrefix(run), key).owner());
}

// The owner key with the glob "*" for the lock key: fence counters and
// cancel markers have a suffix after it, so they do not match.
std::string OwnerKeyPattern(const std::string& run) { return OwnerKey(run, "*"); }

std::vector<std::string> HoldKeyPatterns(const std::string& run,
                                         const std::string& kind) {
  const std::string prefix = KeyPrefix(run);
  if (kind == "semaphore") return {internal::SemaphoreKeys(prefix, "*").holders()};
  if (kind == "read_write") {
    const internal::ReadWriteKeys k(prefix, "*");
    return {k.writer(), k.readers()};
  }
  if (kind == "fair") {
    const internal::FairKeys k(prefix, "*");
    return {k.owner(), k.queue()};
  }
  return {OwnerKeyPattern(run)};
}

std::string PolicyJson(nlohmann::json target, const std::string& run,
                       int ttl_ms, int script_timeout_ms,
                       const std::string& kind) {
  target["connect_timeout"] = "300ms";
  target["pool_size"] = 8;
  nlohmann::json j = {
      {"redis", {{"default", target}}},
      {"policies",
       {{kPolicy,
         {{"key_prefix", KeyPrefix(run)},
          {"ttl", absl::StrCat(ttl_ms, "ms")},
          {"script_timeout", absl::StrCat(script_timeout_ms, "ms")},
          {"on_busy", "wait"},
          {"wait", {{"timeout", absl::StrCat(3 * ttl_ms, "ms")}, {"notify", true}}},
          {"retry", {{"initial_delay", "5ms"}, {"max_delay", "100ms"},
                     {"multiplier", 2.0}, {"jitter", 0.5}}},
          {"renewal", {{"enabled", true}, {"threshold", 0.5},
                       {"on_failure", "signal"}}},
          {"fencing", true}}}}}};
  nlohmann::json& policy = j["policies"][kPolicy];
  policy["kind"] = kind;
  if (kind == "semaphore") policy["permits"] = kPermits;
  return j.dump(2);
}

}  // namespace lock::checker::driver
