// What lock::With costs before and around its Redis round trips: policy
// lookup in the registry snapshot, key validation and key building, owner
// token generation, and Locker::NewLock as a whole (all of them together,
// plus the backend lookup and the RedisLock itself). No Redis is touched:
// connections are opened lazily and nothing here acquires.
//
// A plain timed loop: several repetitions, the best one reported (noise on
// a shared machine only ever adds time), the median alongside.
#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lock/internal/keys.h"
#include "lock/internal/token.h"
#include "lock/lock.h"
#include "policy/registry.h"
#include "tools/bench/common.h"

namespace bench {
namespace {

template <typename T>
void Keep(T&& v) {
  asm volatile("" : : "r"(&v) : "memory");
}

template <typename Fn>
void Measure(const std::string& what, Fn fn) {
  constexpr int kReps = 7;
  std::vector<double> ns;
  for (int rep = 0; rep < kReps; ++rep) {
    int64_t calls = 0;
    const Clock::time_point start = Clock::now();
    Clock::time_point now;
    do {
      for (int i = 0; i < 256; ++i) fn();
      calls += 256;
      now = Clock::now();
    } while (now - start < std::chrono::milliseconds(150));
    ns.push_back(std::chrono::duration<double, std::nano>(now - start).count() / calls);
  }
  Emit({{"scenario", "overhead"},
        {"what", what},
        {"ns_per_call_best", Round3(*std::min_element(ns.begin(), ns.end()))},
        {"ns_per_call_median", Round3(Percentile(ns, 0.5))}});
}

}  // namespace

void Overhead(const Flags&) {
  // 32 policies, like a service with a fair number of lock kinds.
  std::string json = R"({"redis": {"default": {"addrs": ["127.0.0.1:1"]}}, "policies": {)";
  for (int i = 0; i < 32; ++i) {
    absl::StrAppend(&json, i ? "," : "", "\"policy-", i, "\": {\"key_prefix\": \"svc:", i,
                    ":\", \"ttl\": \"30s\"}");
  }
  json += "}}";
  auto registry = policy::Registry::FromJson(json);
  if (!registry.ok()) {
    std::cerr << "bench: " << registry.status() << "\n";
    std::exit(1);
  }
  std::shared_ptr<policy::Registry> reg = *std::move(registry);
  auto locker = *lock::Locker::Create(reg);
  const std::string key = "order-1234567";

  Measure("registry_snapshot_find_policy", [&] {
    std::shared_ptr<const policy::Snapshot> s = reg->snapshot();
    Keep(s->FindPolicy("policy-17"));
  });
  Measure("registry_find_policy_shared", [&] { Keep(reg->FindPolicy("policy-17")); });
  Measure("validate_key_and_build_keys", [&] {
    Keep(lock::internal::ValidateKey(key));
    lock::internal::LockKeys keys("svc:17:", key);
    Keep(keys);
  });
  Measure("owner_token", [&] { Keep(lock::internal::NewOwnerToken()); });
  Measure("locker_new_lock", [&] {
    auto lk = locker->NewLock("policy-17", key);
    if (!lk.ok()) std::abort();
    Keep(lk);
  });
}

}  // namespace bench
