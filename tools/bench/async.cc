// The asynchronous API (issue 16), through one Locker on one server:
//   - 10,000 AcquireAsync pending on one hot key: the process's threads and
//     the heap per pending acquire while they wait, then all granted one
//     after another (never two inside at once), release-to-next-grant
//     latency;
//   - handoff among 32 contenders for one key, the blocking With (32
//     threads looping over an empty section) against AcquireAsync (32
//     acquires pending, each completion releasing and issuing the next),
//     alternated in rounds in the same run: release-to-next-grant latency
//     and its ratio;
//   - deadline precision: With and AcquireAsync given a 20 ms deadline on a
//     held key (wait and backoff far longer): how late they return;
//   - cancellation latency: a stop requested on a With or an AcquireAsync
//     waiting for a held key: from request_stop to its return.
// The policy waits on release notifications with a 10 s backoff, so every
// grant comes from a release waking a waiter, not from a timer.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <condition_variable>
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lock/internal/async_runtime.h"
#include "lock/lock.h"
#include "policy/registry.h"
#include "tools/bench/common.h"
#include "util/proc.h"

namespace bench {
namespace {

constexpr char kPolicy[] = "wait";
constexpr int kPending = 10'000;
constexpr int kContenders = 32;
constexpr int kSamples = 200;
constexpr absl::Duration kDeadline = absl::Milliseconds(20);
// How long a waiter is left waiting before its stop is requested.
constexpr auto kArmed = std::chrono::milliseconds(10);

std::unique_ptr<lock::Locker> NewLocker(const std::string& addr) {
  // pool_size: one connection for each of the blocking side's threads, so
  // neither side waits for a connection.
  const std::string json = absl::StrCat(
      R"({"redis": {"default": {"addrs": [")", addr, R"("], "pool_size": )", kContenders + 8,
      R"(}}, "policies": {"wait": {"key_prefix": "bench:async:", "ttl": "30s",
         "wait": {"timeout": "300s", "notify": true},
         "retry": {"initial_delay": "10s", "max_delay": "30s"}}}})");
  auto registry = policy::Registry::FromJson(json);
  if (!registry.ok()) {
    std::cerr << "bench: " << registry.status() << "\n";
    std::exit(1);
  }
  auto locker = lock::Locker::Create(std::shared_ptr<policy::Registry>(*std::move(registry)));
  if (!locker.ok()) {
    std::cerr << "bench: " << locker.status() << "\n";
    std::exit(1);
  }
  return *std::move(locker);
}

void Fail(const std::string& what, const absl::Status& s) {
  std::cerr << "bench: async: " << what << ": " << s << "\n";
  std::abort();
}

// Takes `key` and keeps it until the Lease goes.
lock::Lease Hold(lock::Locker& locker, const std::string& key) {
  std::promise<absl::StatusOr<lock::Lease>> p;
  locker.AcquireAsync(kPolicy, key, {},
                      [&](absl::StatusOr<lock::Lease> l) { p.set_value(std::move(l)); });
  absl::StatusOr<lock::Lease> l = p.get_future().get();
  if (!l.ok()) Fail("holder", l.status());
  return *std::move(l);
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Grants in order: when each began and when its release returned, by the
// grant's sequence number. A handoff is grant[n + 1] - released[n] (it may
// be negative: the next grant can start before the releaser, descheduled,
// sees its release return).
struct Grants {
  explicit Grants(size_t capacity) : granted(capacity), released(capacity) {}
  std::vector<Clock::time_point> granted, released;
  std::atomic<int> inside{0}, overlaps{0};
  std::atomic<size_t> next{0};
  // Returns the grant's sequence number; SIZE_MAX beyond capacity.
  size_t Enter() {
    const Clock::time_point now = Clock::now();
    if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
    const size_t n = next.fetch_add(1);
    if (n < granted.size()) granted[n] = now;
    return n;
  }
  void Leave() { inside.fetch_sub(1); }
  void Released(size_t n) {
    if (n < released.size()) released[n] = Clock::now();
  }
  // Handoffs between grants [from, to).
  void Handoffs(size_t from, size_t to, std::vector<double>* ms) const {
    to = std::min(to, granted.size());
    for (size_t n = from; n + 1 < to; ++n) ms->push_back(Ms(granted[n + 1] - released[n]));
  }
};

// ---- 10,000 pending ---------------------------------------------------------

struct PendingRun {
  explicit PendingRun(size_t n) : grants(n) {}
  Grants grants;
  std::atomic<int> done{0}, failed{0};
  std::mutex mu;
  std::condition_variable all_done;
};

void Pending(lock::Locker& locker, const std::string& addr, double blocking_p50) {
  lock::Lease holder = Hold(locker, "hot");
  auto admin = RawConnect(addr);
  auto run = std::make_unique<PendingRun>(kPending);
  const int threads_before = util::ProcessThreads();
  const int64_t calls_before = ScriptCalls(admin.get());
  const int64_t heap_before = HeapBytes();
  const Clock::time_point issue_start = Clock::now();
  PendingRun* r = run.get();
  for (int i = 0; i < kPending; ++i) {
    locker.AcquireAsync(kPolicy, "hot", {}, [r](absl::StatusOr<lock::Lease> lease) {
      if (!lease.ok()) {
        std::cerr << "bench: async: pending acquire: " << lease.status() << "\n";
        r->failed.fetch_add(1);
      } else {
        const size_t n = r->grants.Enter();
        r->grants.Leave();
        const absl::Status s = lease->Release();
        r->grants.Released(n);
        if (!s.ok()) Fail("pending release", s);
      }
      if (r->done.fetch_add(1) + 1 == kPending) {
        std::lock_guard<std::mutex> l(r->mu);
        r->all_done.notify_all();
      }
    });
  }
  // Every acquire made its first attempt (one script call each) and waits.
  const Clock::time_point give_up = Clock::now() + std::chrono::seconds(120);
  int64_t attempts = 0;
  while ((attempts = ScriptCalls(admin.get()) - calls_before) < kPending &&
         Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double issue_s = std::chrono::duration<double>(Clock::now() - issue_start).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int threads_waiting = util::ProcessThreads();
  const int64_t heap_waiting = HeapBytes();
  const int granted_early = r->done.load();
  const double bytes_per = static_cast<double>(heap_waiting - heap_before) / kPending;

  const Clock::time_point release_start = Clock::now();
  const absl::Status s = holder.Release();
  const Clock::time_point released = Clock::now();
  if (!s.ok()) Fail("holder release", s);
  {
    std::unique_lock<std::mutex> l(r->mu);
    if (!r->all_done.wait_for(l, std::chrono::seconds(300),
                              [&] { return r->done.load() == kPending; })) {
      std::cerr << "bench: async: only " << r->done.load() << " of " << kPending
                << " pending acquires ended\n";
      std::abort();
    }
  }
  const double grant_s = std::chrono::duration<double>(Clock::now() - release_start).count();
  std::vector<double> handoff;
  handoff.reserve(kPending);
  if (r->grants.next.load() > 0) handoff.push_back(Ms(r->grants.granted[0] - released));
  r->grants.Handoffs(0, kPending, &handoff);
  const double p50 = Percentile(handoff, 0.5);
  Emit({{"scenario", "async"},
        {"row", "pending"},
        {"pending", kPending},
        {"first_attempts", attempts},
        {"issue_s", Round3(issue_s)},
        {"threads_before", threads_before},
        {"threads_waiting", threads_waiting},
        {"runtime_threads", lock::internal::AsyncRuntime::Get().threads()},
        {"heap_bytes_per_pending", Round3(bytes_per)},
        {"granted_before_release", granted_early},
        {"granted", r->grants.next.load()},
        {"failed", r->failed.load()},
        {"overlaps", r->grants.overlaps.load()},
        {"grant_all_s", Round3(grant_s)},
        {"grants_per_s", Round3(kPending / grant_s)},
        {"handoff_p50_ms", Round3(p50)},
        {"handoff_p99_ms", Round3(Percentile(handoff, 0.99))},
        {"blocking_handoff_p50_ms", Round3(blocking_p50)},
        {"p50_over_blocking", Round3(p50 / blocking_p50)},
        {"target_threads_le_16", threads_waiting <= 16},
        {"target_bytes_le_2048", bytes_per <= 2048},
        {"target_no_overlap", r->grants.overlaps.load() == 0 && r->failed.load() == 0 &&
                                  granted_early == 0 &&
                                  r->grants.next.load() == static_cast<size_t>(kPending)}});
}

// ---- handoff: blocking With against AcquireAsync -----------------------------

// Grants one side can record in one round (far more than it makes).
constexpr size_t kRoundCapacity = 400'000;

// 32 threads looping With over an empty section for `d`; the handoffs of
// the grants made before the stop.
void BlockingRound(lock::Locker& locker, Clock::duration d, std::vector<double>* ms) {
  Grants g(kRoundCapacity);
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kContenders; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        size_t n = SIZE_MAX;
        const absl::Status s = locker.With(kPolicy, "hot2", [&]() -> absl::Status {
          n = g.Enter();
          g.Leave();
          return absl::OkStatus();
        });
        g.Released(n);
        if (!s.ok()) Fail("blocking With", s);
      }
    });
  }
  std::this_thread::sleep_for(d);
  const size_t made = g.next.load();
  stop = true;
  for (auto& th : threads) th.join();
  if (g.overlaps.load() != 0) Fail("blocking handoff", absl::InternalError("two inside"));
  // The first grants are the threads starting: not handoffs of a steady state.
  g.Handoffs(std::min<size_t>(kContenders, made), made, ms);
}

// 32 AcquireAsync pending on one key; each completion releases and issues
// the next, so 32 stay pending; for `d`.
struct AsyncRound {
  AsyncRound(lock::Locker& l) : locker(l), g(kRoundCapacity) {}
  lock::Locker& locker;
  Grants g;
  std::atomic<bool> stop{false};
  std::atomic<int> outstanding{0};
  std::mutex mu;
  std::condition_variable ended;

  void Issue() {
    outstanding.fetch_add(1);
    locker.AcquireAsync(kPolicy, "hot2", {}, [this](absl::StatusOr<lock::Lease> lease) {
      if (!lease.ok()) Fail("async handoff acquire", lease.status());
      const size_t n = g.Enter();
      g.Leave();
      const absl::Status s = lease->Release();
      g.Released(n);
      if (!s.ok()) Fail("async handoff release", s);
      if (!stop.load()) Issue();
      if (outstanding.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> l(mu);
        ended.notify_all();
      }
    });
  }
};

void AsyncHandoffRound(lock::Locker& locker, Clock::duration d, std::vector<double>* ms) {
  auto r = std::make_unique<AsyncRound>(locker);
  for (int i = 0; i < kContenders; ++i) r->Issue();
  std::this_thread::sleep_for(d);
  const size_t made = r->g.next.load();
  r->stop = true;
  {
    std::unique_lock<std::mutex> l(r->mu);
    r->ended.wait(l, [&] { return r->outstanding.load() == 0; });
  }
  if (r->g.overlaps.load() != 0) Fail("async handoff", absl::InternalError("two inside"));
  r->g.Handoffs(std::min<size_t>(kContenders, made), made, ms);
}

double HandoffPair(const Flags& f, lock::Locker& locker) {
  constexpr int kRounds = 3;
  const auto d = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::max(0.5, f.seconds / kRounds)));
  std::vector<double> blocking, async;
  for (int round = 0; round < kRounds; ++round) {
    BlockingRound(locker, d, &blocking);
    AsyncHandoffRound(locker, d, &async);
  }
  const double bp50 = Percentile(blocking, 0.5), ap50 = Percentile(async, 0.5);
  const double seconds = kRounds * std::chrono::duration<double>(d).count();
  Emit({{"scenario", "async"},
        {"row", "handoff"},
        {"contenders", kContenders},
        {"rounds", kRounds},
        {"seconds_per_side", Round3(seconds)},
        {"blocking_handoffs", blocking.size()},
        {"async_handoffs", async.size()},
        {"blocking_grants_per_s", Round3(blocking.size() / seconds)},
        {"async_grants_per_s", Round3(async.size() / seconds)},
        {"blocking_p50_ms", Round3(bp50)},
        {"blocking_p99_ms", Round3(Percentile(blocking, 0.99))},
        {"async_p50_ms", Round3(ap50)},
        {"async_p99_ms", Round3(Percentile(async, 0.99))},
        {"p50_ratio", Round3(ap50 / bp50)},
        {"target_ratio_le_1_2", ap50 <= 1.2 * bp50}});
  return bp50;
}

// ---- deadline and cancellation ------------------------------------------------

nlohmann::json LatencyLine(const std::string& row, const std::string& api,
                           const std::vector<double>& ms, int wrong) {
  const double p99 = Percentile(ms, 0.99);
  return {{"scenario", "async"},
          {"row", row},
          {"api", api},
          {"samples", ms.size()},
          {"wrong_outcomes", wrong},
          {"min_ms", Round3(ms.empty() ? 0 : *std::min_element(ms.begin(), ms.end()))},
          {"p50_ms", Round3(Percentile(ms, 0.5))},
          {"p99_ms", Round3(p99)},
          {"max_ms", Round3(ms.empty() ? 0 : *std::max_element(ms.begin(), ms.end()))},
          {"target_p99_le_5ms", p99 <= 5.0 && wrong == 0}};
}

void Deadlines(lock::Locker& locker) {
  lock::Lease holder = Hold(locker, "dl");
  std::vector<double> with_ms, async_ms;
  int with_wrong = 0, async_wrong = 0;
  for (int i = 0; i < kSamples; ++i) {
    const absl::Time deadline = absl::Now() + kDeadline;
    const absl::Status s = locker.With(kPolicy, "dl", lock::CallOptions{.deadline = deadline},
                                       [] { return absl::OkStatus(); });
    with_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - deadline));
    if (!lock::IsDeadlineExceeded(s)) ++with_wrong;
  }
  for (int i = 0; i < kSamples; ++i) {
    const absl::Time deadline = absl::Now() + kDeadline;
    std::promise<std::pair<absl::Time, absl::Status>> p;
    locker.AcquireAsync(kPolicy, "dl", lock::CallOptions{.deadline = deadline},
                        [&](absl::StatusOr<lock::Lease> l) {
                          p.set_value({absl::Now(), l.status()});
                        });
    const auto [at, s] = p.get_future().get();
    async_ms.push_back(absl::ToDoubleMilliseconds(at - deadline));
    if (!lock::IsDeadlineExceeded(s)) ++async_wrong;
  }
  Emit(LatencyLine("deadline", "With", with_ms, with_wrong));
  Emit(LatencyLine("deadline", "AcquireAsync", async_ms, async_wrong));
}

void Cancels(lock::Locker& locker) {
  lock::Lease holder = Hold(locker, "cancel");
  std::vector<double> with_ms, async_ms;
  int with_wrong = 0, async_wrong = 0;
  for (int i = 0; i < kSamples; ++i) {
    std::stop_source stop;
    Clock::time_point returned;
    absl::Status s;
    std::thread waiter([&] {
      s = locker.With(kPolicy, "cancel", lock::CallOptions{.stop = stop.get_token()},
                      [] { return absl::OkStatus(); });
      returned = Clock::now();
    });
    std::this_thread::sleep_for(kArmed);
    const Clock::time_point requested = Clock::now();
    stop.request_stop();
    waiter.join();
    with_ms.push_back(Ms(returned - requested));
    if (!lock::IsCancelled(s)) ++with_wrong;
  }
  for (int i = 0; i < kSamples; ++i) {
    std::stop_source stop;
    std::promise<std::pair<Clock::time_point, absl::Status>> p;
    locker.AcquireAsync(kPolicy, "cancel", lock::CallOptions{.stop = stop.get_token()},
                        [&](absl::StatusOr<lock::Lease> l) {
                          p.set_value({Clock::now(), l.status()});
                        });
    std::this_thread::sleep_for(kArmed);
    const Clock::time_point requested = Clock::now();
    stop.request_stop();
    const auto [at, s] = p.get_future().get();
    async_ms.push_back(Ms(at - requested));
    if (!lock::IsCancelled(s)) ++async_wrong;
  }
  Emit(LatencyLine("cancel", "With", with_ms, with_wrong));
  Emit(LatencyLine("cancel", "AcquireAsync", async_ms, async_wrong));
}

}  // namespace

void Async(const Flags& f, const std::string& addr) {
  std::unique_ptr<lock::Locker> locker = NewLocker(addr);
  // Connections, scripts, the notifier and the runtime's threads: up
  // before anything is measured.
  (void)Hold(*locker, "warm").Release();
  const double blocking_p50 = HandoffPair(f, *locker);
  Pending(*locker, addr, blocking_p50);
  Deadlines(*locker);
  Cancels(*locker);
}

}  // namespace bench
