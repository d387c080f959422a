// Benchmarks of the lock library against the raw Redis floor, measured in the
// same run so that results are ratios that survive a noisy machine.
//
//   bazel run -c opt //tools/bench -- --seconds=3 --threads=1,8
//
// Scenario "uncontended": each thread acquires and releases its own key in a
// loop through RedisLock; the baseline sends the same two EVALSHA round trips
// per pair through bare hiredis, one connection per thread. Prints one JSON
// line per thread count. Starts its own redis-server unless --redis is given.
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "integration/harness/redis_server.h"
#include "lock/redis/pool.h"
#include "lock/redis/reply.h"
#include "lock/redis_lock.h"
#include "lock/scripts/embedded.h"
#include "nlohmann/json.hpp"
#include "policy/policy.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  double seconds = 3;
  std::vector<int> threads = {1, 8};
  std::string redis;  // empty: start an embedded server
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::ConsumePrefix(&a, "--seconds=") && absl::SimpleAtod(a, &f.seconds)) {
      continue;
    }
    if (absl::ConsumePrefix(&a, "--threads=")) {
      f.threads.clear();
      for (absl::string_view t : absl::StrSplit(a, ',')) {
        int n = 0;
        if (!absl::SimpleAtoi(t, &n) || n < 1) {
          std::cerr << "bench: bad --threads value \"" << t << "\"\n";
          std::exit(2);
        }
        f.threads.push_back(n);
      }
      continue;
    }
    if (absl::ConsumePrefix(&a, "--redis=")) {
      f.redis = std::string(a);
      continue;
    }
    std::cerr << "usage: bench [--seconds=S] [--threads=1,8] [--redis=host:port]\n";
    std::exit(2);
  }
  return f;
}

// Runs `body(thread_index)` in `threads` threads for `seconds`; each call is
// one acquire+release pair. Returns pairs per second.
template <typename Body>
double RunPairs(int threads, double seconds, Body body) {
  std::atomic<bool> stop{false};
  std::atomic<int64_t> pairs{0};
  std::vector<std::thread> pool;
  const Clock::time_point start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      int64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (!body(t)) std::abort();
        ++n;
      }
      pairs += n;
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : pool) th.join();
  const double elapsed =
      std::chrono::duration<double>(Clock::now() - start).count();
  return pairs.load() / elapsed;
}

std::pair<std::string, int> HostPort(const std::string& addr) {
  size_t colon = addr.rfind(':');
  return {addr.substr(0, colon), std::atoi(addr.c_str() + colon + 1)};
}

// The floor: the same scripts, the same round trips, no library.
double RawFloor(const std::string& addr, int threads, double seconds) {
  auto [host, port] = HostPort(addr);
  std::vector<lock::redis::ContextPtr> ctxs;
  for (int t = 0; t < threads; ++t) {
    lock::redis::ContextPtr c(redisConnect(host.c_str(), port));
    if (c == nullptr || c->err) {
      std::cerr << "bench: cannot connect to " << addr << "\n";
      std::exit(1);
    }
    for (const auto* s : {&lock::scripts::k_acquire, &lock::scripts::k_release}) {
      lock::redis::ReplyPtr r(static_cast<redisReply*>(
          redisCommand(c.get(), "SCRIPT LOAD %b", s->body.data(), s->body.size())));
    }
    ctxs.push_back(std::move(c));
  }
  // Per-thread argument vectors, built once: the floor pays only for I/O.
  struct Args {
    std::vector<std::string> acquire, release;
  };
  std::vector<Args> args(threads);
  for (int t = 0; t < threads; ++t) {
    const std::string owner = absl::StrCat("{bench:raw:", t, "}");
    args[t].acquire = {"EVALSHA", std::string(lock::scripts::k_acquire.sha1), "3",
                       owner, owner + ":fence", owner + ":cancel:tok", "tok",
                       "30000", "1", "1"};
    args[t].release = {"EVALSHA", std::string(lock::scripts::k_release.sha1), "1",
                       owner, "tok", "0", owner + ":released", "0"};
  }
  auto argv_command = [](redisContext* c, const std::vector<std::string>& a) {
    const char* argv[16];
    size_t lens[16];
    for (size_t i = 0; i < a.size(); ++i) {
      argv[i] = a[i].data();
      lens[i] = a[i].size();
    }
    return lock::redis::ReplyPtr(static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(a.size()), argv, lens)));
  };
  return RunPairs(threads, seconds, [&](int t) {
    lock::redis::ReplyPtr a = argv_command(ctxs[t].get(), args[t].acquire);
    lock::redis::ReplyPtr r = argv_command(ctxs[t].get(), args[t].release);
    return a != nullptr && r != nullptr && a->type == REDIS_REPLY_ARRAY &&
           r->type == REDIS_REPLY_INTEGER && r->integer == 1;
  });
}

double Library(const std::string& addr, int threads, double seconds) {
  auto pool = std::make_shared<lock::redis::ConnectionPool>(
      lock::redis::PoolOptions{.connection = {.addr = addr}, .max_size = threads});
  auto policy = std::make_shared<policy::Policy>();
  policy->name = "bench";
  policy->key_prefix = "bench:lib:";
  std::vector<std::unique_ptr<lock::RedisLock>> locks;
  for (int t = 0; t < threads; ++t) {
    locks.push_back(*lock::RedisLock::Create(pool, policy, absl::StrCat("k", t)));
  }
  return RunPairs(threads, seconds, [&](int t) {
    return locks[t]->Acquire().ok() && locks[t]->Release().ok();
  });
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  std::unique_ptr<lock::harness::RedisServer> server;
  std::string addr = flags.redis;
  if (addr.empty()) {
    auto started = lock::harness::RedisServer::Start({.name = "bench-redis"});
    if (!started.ok()) {
      std::cerr << "bench: " << started.status() << "\n";
      return 1;
    }
    server = *std::move(started);
    addr = server->addr();
  }
  for (int threads : flags.threads) {
    // Interleaved and best-of-two, so a burst of noise hurts neither side more.
    double raw = 0, lib = 0;
    for (int round = 0; round < 2; ++round) {
      raw = std::max(raw, RawFloor(addr, threads, flags.seconds / 2));
      lib = std::max(lib, Library(addr, threads, flags.seconds / 2));
    }
    nlohmann::json line = {{"scenario", "uncontended_acquire_release"},
                           {"threads", threads},
                           {"seconds", flags.seconds},
                           {"lib_pairs_per_s", static_cast<int64_t>(lib)},
                           {"raw_pairs_per_s", static_cast<int64_t>(raw)},
                           {"ratio", std::round(lib / raw * 1000) / 1000}};
    std::cout << line.dump() << std::endl;
  }
  return 0;
}
