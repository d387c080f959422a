// Wake-on-release for waiters: one pub/sub connection per Redis target
// multiplexes every waiter of the process (never a connection per waiter).
//
// A waiter subscribes to the lock's release channel *before* its next
// attempt, remembers generation(), tries, and only then waits for the
// generation to move. A release published between the try and the wait is
// therefore never missed (Redisson#1763). When the subscriber connection is
// down, active() is false and waiters fall back to their backoff timers; the
// connection is re-established in the background.
#ifndef LOCK_INTERNAL_NOTIFIER_H_
#define LOCK_INTERNAL_NOTIFIER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lock/internal/process.h"
#include "lock/redis/connection.h"

namespace lock::internal {

class ReleaseNotifier {
 public:
  class Watch;

  // Whom a message on a channel wakes among the waiters of the process.
  enum class WakeMode : uint8_t {
    kOne,        // one (a mutex or a semaphore permit frees one place)
    kAll,        // all (a write release lets every waiting reader in)
    // the waiter whose owner token is the message's first word (a fair
    // lock's release names the head of its queue): no other waiter of the
    // process is woken, so a handoff costs no call of theirs
    kAddressed,
  };

  // Where to connect, asked again before every (re)connection so that the
  // subscriber follows a Sentinel failover or a changed cluster.
  using Endpoint = std::function<absl::StatusOr<redis::ConnectionOptions>()>;
  explicit ReleaseNotifier(Endpoint endpoint);
  explicit ReleaseNotifier(redis::ConnectionOptions options);
  ReleaseNotifier(const ReleaseNotifier&) = delete;
  ReleaseNotifier& operator=(const ReleaseNotifier&) = delete;
  // All Watches must be gone — except in a fork() child destroying its
  // parent's notifier: the subscriber thread does not exist there, so it is
  // neither woken nor joined, and its connection is left alone.
  ~ReleaseNotifier();

  // Registers interest in `channel` and waits up to `timeout` for Redis to
  // confirm the subscription (callers pass what is left of their own wait,
  // so a hanging subscriber connection never stretches it). Always returns
  // a Watch; check active(). `wake` is the channel's (every waiter of one
  // channel passes the same); `token` is the waiter's owner token, which
  // kAddressed messages name.
  std::unique_ptr<Watch> Subscribe(const std::string& channel,
                                   absl::Duration timeout, WakeMode wake = WakeMode::kOne,
                                   std::string token = "");

  // A Watch of `channel` when it is subscribed and confirmed now (a waiter
  // of the process, or one that left less than kLingerNs ago, keeps it so),
  // else null: no Redis call, no waiting. A waiter that must be reachable
  // from its very first attempt (a fair lock's, which a release may name
  // at any time) takes one before that attempt when it can.
  std::unique_ptr<Watch> WatchIfSubscribed(const std::string& channel, WakeMode wake,
                                           std::string token);

  // For the fork handlers (lock/internal/fork.h): lock / unlock every live
  // notifier's mutex.
  static void ForkPrepare();
  static void ForkDone();

 private:
  struct Channel {
    int refs = 0;
    bool confirmed = false;
    bool unsubscribing = false;  // UNSUBSCRIBE queued or sent
    int64_t idle_since_ns = 0;   // when refs last dropped to 0
    uint64_t generation = 0;
    // The generation of the last dropped connection: every waiter re-checks.
    uint64_t dropped_at = 0;
    WakeMode wake = WakeMode::kOne;
    // kAddressed: the tokens of the waiters, each with the generation of the
    // last message that named it (0: none yet), that message, and the
    // waiter's own condition variable: a message wakes the one waiter it
    // names, not every waiter of the channel only to have them sleep again.
    struct Named {
      uint64_t at = 0;
      std::string message;
      std::condition_variable* cv = nullptr;
    };
    absl::flat_hash_map<std::string, Named> addressed;
    std::condition_variable changed;
  };

  // A channel nobody waits on stays subscribed this long, so a hot key's
  // next waiter needs no SUBSCRIBE round trip.
  static constexpr int64_t kLingerNs = 2'000'000'000;

  void SweepIdleLocked(int64_t now_ns);
  // A Watch on `ch` (already counted in its refs) for a waiter of `wake`.
  std::unique_ptr<Watch> MakeWatchLocked(const std::string& channel, Channel* ch,
                                         WakeMode wake, std::string token);

  void Run();
  void Wake();
  void DisconnectedLocked();
  void Handle(const redisReply& reply);
  void Unsubscribe(const std::string& channel, const std::string& token);

  const Endpoint endpoint_;
  const pid_t built_by_ = ProcessId();
  int wake_fd_ = -1;

  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Channel>> channels_;
  std::vector<std::string> to_subscribe_;    // guarded by mu_
  std::vector<std::string> to_unsubscribe_;  // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
  // The subscriber connection is known to be down: waiters poll instead of
  // waiting for a confirmation that cannot come.
  bool down_ = false;                        // guarded by mu_
  std::thread thread_;                       // started by the first Subscribe
};

class ReleaseNotifier::Watch {
 public:
  ~Watch();
  // True when Redis confirmed the subscription and it has not dropped since.
  bool active() const;
  // Moves on every release published on the channel (and when the
  // subscriber connection drops, so that waiters re-check at once). A
  // release wakes one waiter of the process; a dropped connection wakes all.
  uint64_t generation() const;
  // Waits until a release that concerns this waiter was published after
  // generation() read `seen` (true) or `deadline` (false): any release,
  // or on a kAddressed channel one that names this waiter's token (and
  // any dropped connection). `message` (optional, kAddressed) receives the
  // last message that named the token ("" when none did).
  bool WaitUntil(uint64_t seen, std::chrono::steady_clock::time_point deadline,
                 std::string* message = nullptr);

 private:
  friend class ReleaseNotifier;
  Watch(ReleaseNotifier* notifier, std::string channel, Channel* state, std::string token)
      : notifier_(notifier),
        channel_(std::move(channel)),
        state_(state),
        token_(std::move(token)) {}

  ReleaseNotifier* const notifier_;
  const std::string channel_;
  Channel* const state_;  // lives while refs > 0
  const std::string token_;  // kAddressed channels only
  std::condition_variable cv_;  // kAddressed: woken by messages naming token_
};

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_NOTIFIER_H_
