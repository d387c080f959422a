// Contended handoff: K waiters on one key, each holding it for hold_ms. The
// latency from a holder starting its release to the next (other) waiter
// holding the lock, against the PING round trip measured at the same time
// on another connection. Then the floors of a handoff with the lock held:
// bare hiredis with the library's own scripts, two threads taking turns,
// with the one thread wake-up the library pays before its acquire (a
// blocked waiter reads the release channel itself), and with two.
#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "lock/internal/keys.h"
#include "lock/internal/token.h"
#include "tools/bench/common.h"

namespace bench {
namespace {

[[noreturn]] void FloorFailed(const std::string& what) {
  std::cerr << "bench: handoff floor: " << what << "\n";
  std::exit(1);
}

// Two threads take turns holding one key for `hold`, with bare hiredis and
// the acquire and release scripts the library sends. A waiter learns of the
// release from the PUBLISH inside release.lua and then sends its acquire:
//   wakeups 1: the waiter itself blocks reading its own subscriber
//              connection, so reading the message is the only wake-up
//              before the acquire;
//   wakeups 2: one subscriber thread reads the message and wakes the waiter
//              through a condition variable, as the library's notifier did
//              before its blocked waiters read the channel themselves.
// Returns the handoff latencies in ms, measured as the library's are: from
// the holder starting its release to the other thread holding the lock.
std::vector<double> HandoffFloor(const std::string& addr, std::chrono::microseconds hold,
                                 double seconds, int wakeups) {
  const lock::internal::LockKeys keys(absl::StrCat("bench:floor-", wakeups, ":"), "one");
  const std::string channel(keys.channel());
  std::mutex mu;
  std::condition_variable changed;
  int holder = 0;                 // the thread that holds the lock
  int64_t grants = 1;             // acquisitions so far; each after the first follows a release
  int64_t delivered = 0;          // wakeups 2: releases the subscriber thread has read
  int64_t release_ns = 0;         // when the holder began its release
  std::vector<double> handoff_ms;
  std::atomic<bool> stop{false};

  const auto subscribe = [&] {
    ContextPtr c = RawConnect(addr);
    lock::redis::ReplyPtr ok = RawCommand({"SUBSCRIBE", channel}).Send(c.get());
    if (ok == nullptr) FloorFailed("SUBSCRIBE failed");
    return c;
  };
  // Reads one message from a subscriber connection (blocking).
  const auto next_message = [](redisContext* c) {
    void* reply = nullptr;
    if (redisGetReply(c, &reply) != REDIS_OK) FloorFailed("subscriber connection lost");
    freeReplyObject(reply);
  };

  std::thread subscriber;
  ContextPtr shared_sub;
  if (wakeups == 2) {
    shared_sub = subscribe();
    subscriber = std::thread([&] {
      while (true) {
        next_message(shared_sub.get());
        std::lock_guard<std::mutex> l(mu);
        if (stop.load() && holder < 0) return;
        ++delivered;
        changed.notify_all();
      }
    });
  }

  // wakeups 1: each thread's subscriber connection, subscribed before
  // either thread takes the lock (the message count below must start with
  // the first release: a thread that subscribed after it would wait for
  // one release too many, while the other waits for it to take the lock).
  ContextPtr own_subs[2];
  if (wakeups == 1) {
    for (ContextPtr& sub : own_subs) sub = subscribe();
  }

  const auto run = [&](int me) {
    ContextPtr cmd = RawConnect(addr);
    RawLoadScripts(cmd.get());
    const std::string token = lock::internal::NewOwnerToken();
    const RawCommand acquire(RawAcquireArgs(keys, token, /*fencing=*/true));
    const RawCommand release(RawReleaseArgs(keys, token));
    redisContext* own_sub = own_subs[me].get();
    int64_t read = 0;  // wakeups 1: messages read from own_sub
    const auto held = [&] {
      lock::redis::ReplyPtr a = acquire.Send(cmd.get());
      return a != nullptr && a->type == REDIS_REPLY_ARRAY && a->elements == 3 &&
             a->element[0]->integer == 1;
    };
    if (me == 0 && !held()) FloorFailed("the first acquire found the key taken");
    bool holding = me == 0;
    while (true) {
      if (holding) {
        std::this_thread::sleep_for(hold);
        const bool last = stop.load();
        {
          std::lock_guard<std::mutex> l(mu);
          release_ns = Clock::now().time_since_epoch().count();
        }
        lock::redis::ReplyPtr r = release.Send(cmd.get());
        if (r == nullptr || r->type != REDIS_REPLY_INTEGER || r->integer != 1) {
          FloorFailed("a release found the key not held");
        }
        if (last) return;
        // Stay back until the other thread holds it (otherwise the
        // releaser, already running, would take it again).
        std::unique_lock<std::mutex> l(mu);
        changed.wait(l, [&] { return holder != me; });
        holding = false;
        continue;
      }
      // Waiting: every release before the current hold was published
      // before that hold was granted, so its message has arrived already.
      int64_t before;
      {
        std::lock_guard<std::mutex> l(mu);
        before = grants - 1;
      }
      if (wakeups == 1) {
        while (read < before + 1) {
          next_message(own_sub);
          ++read;
        }
      } else {
        std::unique_lock<std::mutex> l(mu);
        changed.wait(l, [&] { return delivered > before; });
      }
      if (!held()) FloorFailed("the waiter, woken by the release, found the key taken");
      const int64_t got = Clock::now().time_since_epoch().count();
      {
        std::lock_guard<std::mutex> l(mu);
        handoff_ms.push_back((got - release_ns) / 1e6);
        holder = me;
        ++grants;
      }
      changed.notify_all();
      holding = true;
    }
  };
  std::thread a(run, 0), b(run, 1);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  a.join();
  b.join();
  if (wakeups == 2) {
    {
      std::lock_guard<std::mutex> l(mu);
      holder = -1;  // the next message ends the subscriber thread
    }
    ContextPtr c = RawConnect(addr);
    RawCommand({"PUBLISH", channel, "end"}).Send(c.get());
    subscriber.join();
  }
  return handoff_ms;
}

}  // namespace

void Handoff(const Flags& f, const std::string& addr) {
  for (int hold_ms : f.hold_ms) {
    for (int k : f.waiters) {
      const ContendResult r =
          Contend(addr, {.policy = ContendedPolicy(absl::StrCat("handoff-", k, "-", hold_ms)),
                         .threads = k,
                         .seconds = f.seconds,
                         .hold = std::chrono::milliseconds(hold_ms),
                         .step_back = true});
      const double p50 = Percentile(r.handoff_ms, 0.5), p99 = Percentile(r.handoff_ms, 0.99);
      const double rtt_p50 = Percentile(r.rtt_us, 0.5) / 1000;
      const double rtt_p99 = Percentile(r.rtt_us, 0.99) / 1000;
      Emit({{"scenario", "handoff"},
            {"waiters", k},
            {"hold_ms", hold_ms},
            {"handoffs", r.handoff_ms.size()},
            {"acquisitions_per_s", Round3(r.acquisitions / r.elapsed_s)},
            {"handoff_p50_ms", Round3(p50)},
            {"handoff_p99_ms", Round3(p99)},
            {"rtt_p50_ms", Round3(rtt_p50)},
            {"rtt_p99_ms", Round3(rtt_p99)},
            {"p50_over_rtt", Round3(p50 / rtt_p50)},
            {"idle_fraction", Round3(std::max(0.0, 1 - r.held_s / r.elapsed_s))},
            {"woken_by_notify", r.woken_by_notify},
            {"woken_by_timer", r.woken_by_timer},
            {"target_p50_le_2rtt", p50 <= 2 * rtt_p50},
            {"target_p99_le_5ms", p99 <= 5.0}});
    }
  }
  for (int hold_ms : f.hold_ms) {
    if (hold_ms == 0) continue;  // with nothing held there is nobody asleep to wake
    for (int wakeups : {2, 1}) {
      PingSampler pings(addr);
      const std::vector<double> ms =
          HandoffFloor(addr, std::chrono::milliseconds(hold_ms), f.seconds, wakeups);
      const std::vector<double> rtt_us = pings.Stop();
      const double p50 = Percentile(ms, 0.5), rtt_p50 = Percentile(rtt_us, 0.5) / 1000;
      Emit({{"scenario", "handoff_floor"},
            {"wakeups", wakeups},
            {"hold_ms", hold_ms},
            {"handoffs", ms.size()},
            {"handoff_p50_ms", Round3(p50)},
            {"handoff_p99_ms", Round3(Percentile(ms, 0.99))},
            {"rtt_p50_ms", Round3(rtt_p50)},
            {"p50_over_rtt", Round3(p50 / rtt_p50)}});
    }
  }
}

}  // namespace bench
