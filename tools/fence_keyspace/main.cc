// fence_keyspace: lock N distinct keys once each, then watch Redis forget them.
//
//   bazel run -c opt //tools/fence_keyspace -- --keys 1000000 --threads 8
//
// Before issue 11 every key ever locked left a `{P K}:fence` counter behind
// forever. Now the owner hash expires with its lease and the fence record
// `fencing_retention` after the last acquisition, so once that window has
// passed DBSIZE must be 0. The program goes through the public API only
// (lock::Locker::With, several threads), starts its own redis-server unless
// --redis host:port is given (then it needs an empty database), and prints
// one JSON line per phase. Exit status 1 when keys are left behind.
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "integration/harness/redis_server.h"
#include "lock/lock.h"
#include "nlohmann/json.hpp"
#include "policy/registry.h"
#include "util/flags.h"

ABSL_FLAG(int64_t, keys, 1'000'000, "distinct keys to lock, once each");
ABSL_FLAG(int, threads, 8, "threads (and pooled connections) locking them");
ABSL_FLAG(std::string, ttl, "2s", "the policy's ttl");
// Generous: on a busy 2-core host a 100ms deadline timed out a few of a
// million calls while Redis grew its keyspace.
ABSL_FLAG(std::string, script_timeout, "500ms", "the policy's script_timeout");
ABSL_FLAG(std::string, retention, "3s", "the policy's fencing_retention");
ABSL_FLAG(std::string, redis, "",
          "host:port of a Redis with an empty database; empty: start an "
          "embedded one");

namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  int64_t keys;
  int threads;
  std::string ttl, script_timeout, retention;  // checked by the policy loader
  std::string redis;  // empty: start an embedded server
};

Flags ParseFlags(int argc, char** argv) {
  util::ParseFlags(argc, argv,
                   "locks N distinct keys once each, then watches Redis "
                   "forget them.\n"
                   "  fence_keyspace [--keys N] [--threads N] [--ttl D] "
                   "[--script_timeout D] [--retention D] [--redis host:port]");
  return {.keys = util::FlagAtLeast(FLAGS_keys, 1),
          .threads = util::FlagAtLeast(FLAGS_threads, 1),
          .ttl = absl::GetFlag(FLAGS_ttl),
          .script_timeout = absl::GetFlag(FLAGS_script_timeout),
          .retention = absl::GetFlag(FLAGS_retention),
          .redis = absl::GetFlag(FLAGS_redis)};
}

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// DBSIZE on its own connection; -1 when Redis cannot be asked.
int64_t DbSize(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(addr.substr(colon + 1), &port)) {
    return -1;
  }
  redisContext* c = redisConnect(addr.substr(0, colon).c_str(), port);
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    return -1;
  }
  auto* r = static_cast<redisReply*>(redisCommand(c, "DBSIZE"));
  const int64_t n = r != nullptr && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  if (r) freeReplyObject(r);
  redisFree(c);
  return n;
}

void Emit(const nlohmann::json& line) { std::cout << line.dump() << std::endl; }

}  // namespace

int main(int argc, char** argv) {
  const Flags f = ParseFlags(argc, argv);
  std::unique_ptr<lock::harness::RedisServer> server;
  std::string addr = f.redis;
  if (addr.empty()) {
    auto started = lock::harness::RedisServer::Start({.name = "keyspace-redis"});
    if (!started.ok()) {
      std::cerr << "fence_keyspace: " << started.status() << "\n";
      return 1;
    }
    server = *std::move(started);
    addr = server->addr();
  }
  if (const int64_t n = DbSize(addr); n != 0) {
    std::cerr << "fence_keyspace: want an empty database on " << addr
              << ", DBSIZE is " << n << "\n";
    return 1;
  }
  // Renewal off: every hold is released at once, and renewal would only
  // add timers. The release deletes the owner hash; the fence records stay
  // until their retention runs out -- that is what this run is about.
  const std::string config = absl::StrReplaceAll(
      R"json({
  "redis": { "default": { "addrs": ["ADDR"], "pool_size": POOL } },
  "policies": {
    "keyspace": { "key_prefix": "ks:", "ttl": "TTL", "script_timeout": "TIMEOUT",
                  "renewal": { "enabled": false }, "on_busy": "fail",
                  "fencing": true, "fencing_retention": "RETENTION" }
  }
})json",
      {{"ADDR", addr},
       {"POOL", absl::StrCat(f.threads)},
       {"TTL", f.ttl},
       {"TIMEOUT", f.script_timeout},
       {"RETENTION", f.retention}});
  auto registry = policy::Registry::FromJson(config, "fence_keyspace");
  if (!registry.ok()) {
    std::cerr << "fence_keyspace: " << registry.status() << "\n";
    return 2;
  }
  const absl::Duration retention =
      (*registry)->snapshot()->FindPolicy("keyspace")->fencing_retention;
  auto locker = lock::Locker::Create(std::shared_ptr<policy::Registry>(*std::move(registry)));
  if (!locker.ok()) {
    std::cerr << "fence_keyspace: " << locker.status() << "\n";
    return 1;
  }

  std::atomic<int64_t> next{0}, errors{0};
  std::atomic<int64_t> last_token{0};
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < f.threads; ++t) {
    threads.emplace_back([&] {
      for (int64_t i = next.fetch_add(1); i < f.keys; i = next.fetch_add(1)) {
        absl::Status s = (*locker)->With(
            "keyspace", absl::StrCat("k", i), [&](lock::Held& held) {
              last_token.store(held.fencing_token(), std::memory_order_relaxed);
              return absl::OkStatus();
            });
        if (!s.ok() && errors.fetch_add(1) < 5) {
          std::cerr << "fence_keyspace: k" << i << ": " << s << "\n";
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const double lock_seconds = SecondsSince(start);
  const int64_t dbsize_before = DbSize(addr);
  Emit({{"phase", "locked"},
        {"keys", f.keys},
        {"threads", f.threads},
        {"ttl", f.ttl},
        {"script_timeout", f.script_timeout},
        {"fencing_retention", f.retention},
        {"errors", errors.load()},
        {"seconds", lock_seconds},
        {"locks_per_second", f.keys / lock_seconds},
        {"last_token", last_token.load()},
        {"dbsize_before", dbsize_before}});

  // Poll until Redis has reclaimed every expired key (DBSIZE counts keys
  // that expired but were not yet collected), or give up well after the
  // retention has passed.
  const Clock::time_point locked = Clock::now();
  const double give_up = absl::ToDoubleSeconds(retention) + 120;
  int64_t dbsize_after = dbsize_before;
  while (dbsize_after != 0 && SecondsSince(locked) < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    dbsize_after = DbSize(addr);
  }
  const bool clean = dbsize_after == 0 && errors.load() == 0;
  Emit({{"phase", "after_retention"},
        {"seconds_after_locking", SecondsSince(locked)},
        {"seconds_total", SecondsSince(start)},
        {"dbsize_after", dbsize_after},
        {"ok", clean}});
  (*locker).reset();
  return clean ? 0 : 1;
}
