// The library's worker for the side-by-side comparison with other lock
// libraries (tools/bench/peers/run.py, issue 18). It speaks the same
// protocol as the peers' drivers under tools/bench/peers/ (worker.js), so
// every library is started, synchronised and measured the same way. One
// JSON line each step:
//   in:  the job: mode (uncontended, contended or semaphore), redis
//        (host:port), key, hold_ms, outside_ms, permits, ttl_ms, raw,
//        kind ("fair" for the fair lock instead of the mutex);
//   out: ready, once connected with one pair done;
//   in:  windows, the [start, stop) pairs of CLOCK_MONOTONIC instants to
//        run in (run.py interleaves the libraries' windows);
//   out: library, mode, pid, pairs, errors, busy_ns (time spent running,
//        summed over the windows) and the holds as [acquired, released)
//        pairs of nanoseconds.
// "raw" (uncontended only) is the floor: bare hiredis sending the very
// EVALSHA pair the library sends, as section 1 of BENCHMARKS.md does.
//
// The library side goes through the public API a user would call: a
// configuration in JSON, lock::Default()->NewLock(policy, key), then
// Acquire/Release on that instance.
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "lock/internal/token.h"
#include "lock/lock.h"
#include "lock/redis_lock.h"
#include "tools/bench/common.h"

namespace bench {
namespace {

int64_t NowNs() { return Clock::now().time_since_epoch().count(); }

void SleepUntilNs(int64_t ns) {
  std::this_thread::sleep_until(Clock::time_point(Clock::duration(ns)));
}

nlohmann::json ReadLine() {
  std::string line;
  if (!std::getline(std::cin, line)) {
    std::cerr << "bench peer: stdin closed before the expected line\n";
    std::exit(1);
  }
  return nlohmann::json::parse(line);
}

// The policies the comparison uses, with the library's defaults except for
// waiting: a wait must never give up within a run (the peers get unlimited
// attempts too). One connection, as the peers' single client each.
std::string PeerConfig(const nlohmann::json& job) {
  const nlohmann::json wait = {{"timeout", "60s"}};
  const nlohmann::json retry = {{"max_attempts", 100000000}};
  const std::string ttl = absl::StrCat(job["ttl_ms"].get<int64_t>(), "ms");
  nlohmann::json config = {{"redis", {{"default", {{"addrs", {job["redis"]}}, {"pool_size", 1}}}}},
                           {"policies",
                            {{"peer-mutex", {{"ttl", ttl}, {"wait", wait}, {"retry", retry}}},
                             {"peer-fair",
                              {{"kind", "fair"}, {"ttl", ttl}, {"wait", wait}, {"retry", retry}}},
                             {"peer-semaphore",
                              {{"kind", "semaphore"},
                               {"permits", job["permits"]},
                               {"ttl", ttl},
                               {"wait", wait},
                               {"retry", retry}}}}}};
  return config.dump();
}

}  // namespace

void Peer() {
  const nlohmann::json job = ReadLine();
  const std::string mode = job["mode"].get<std::string>();
  const bool raw = job.value("raw", false);
  const std::string addr = job["redis"].get<std::string>();
  const std::string key = job["key"].get<std::string>();
  if (raw && mode != "uncontended") {
    std::cerr << "bench peer: raw hiredis has no waiting: uncontended only\n";
    std::exit(2);
  }

  std::unique_ptr<RawPair> raw_pair;
  std::unique_ptr<lock::RedisLock> lk;
  if (raw) {
    raw_pair = MutexRawPair(addr, "", key, lock::internal::NewOwnerToken());
  } else {
    if (absl::Status s = lock::InitFromJson(PeerConfig(job)); !s.ok()) {
      std::cerr << "bench peer: " << s << "\n";
      std::exit(1);
    }
    const std::string policy = mode == "semaphore" ? "peer-semaphore"
                               : job.value("kind", "") == "fair" ? "peer-fair"
                                                                 : "peer-mutex";
    auto made = (*lock::Default())->NewLock(policy, key);
    if (!made.ok()) {
      std::cerr << "bench peer: " << made.status() << "\n";
      std::exit(1);
    }
    lk = *std::move(made);
  }
  // One pair of the bare loop checks both replies in one call; the library
  // side acquires and releases separately so that the hold can sit between.
  const auto pair = [&] {
    if (raw) return raw_pair->Run();
    return lk->Acquire().ok() && lk->Release().ok();
  };
  if (!pair()) {
    std::cerr << "bench peer: the warm-up pair failed\n";
    std::exit(1);
  }
  Emit({{"ready", true}});

  const nlohmann::json go = ReadLine();
  const auto hold =
      std::chrono::microseconds(static_cast<int64_t>(job.value("hold_ms", 0.0) * 1000));
  const auto outside =
      std::chrono::microseconds(static_cast<int64_t>(job.value("outside_ms", 0.0) * 1000));
  int64_t pairs = 0, errors = 0, busy_ns = 0;
  std::vector<std::pair<int64_t, int64_t>> intervals;
  for (const nlohmann::json& window : go["windows"]) {
    const int64_t stop_ns = window[1].get<int64_t>();
    SleepUntilNs(window[0].get<int64_t>());
    const int64_t began_ns = NowNs();
    while (NowNs() < stop_ns) {
      if (mode == "uncontended") {
        pair() ? ++pairs : ++errors;
        continue;
      }
      if (!lk->Acquire().ok()) {
        ++errors;
        continue;
      }
      const int64_t acquired = NowNs();
      if (hold.count() > 0) std::this_thread::sleep_for(hold);
      const int64_t released = NowNs();
      errors += lk->Release().ok() ? 0 : 1;
      intervals.emplace_back(acquired, released);
      ++pairs;
      if (outside.count() > 0) std::this_thread::sleep_for(outside);
    }
    busy_ns += NowNs() - began_ns;
  }
  Emit({{"library", raw ? "raw" : "redis-lock"},
        {"mode", mode},
        {"pid", getpid()},
        {"pairs", pairs},
        {"errors", errors},
        {"busy_ns", busy_ns},
        {"intervals", intervals}});
  lk.reset();
  if (!raw) lock::Shutdown();
}

}  // namespace bench
