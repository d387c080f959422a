// Wake-on-release for waiters: one pub/sub connection per Redis target
// multiplexes every waiter of the process (never a connection per waiter).
//
// A waiter subscribes to the lock's release channel *before* its next
// attempt, remembers generation(), tries, and only then waits for the
// generation to move. A release published between the try and the wait is
// therefore never missed (Redisson#1763). When the subscriber connection is
// down, active() is false and waiters fall back to their backoff timers; the
// connection is re-established in the background.
//
// Who reads the connection: one thread at a time, "the reader". While a
// thread is blocked in WaitUntil, that thread reads it itself (the leader;
// the other blocked threads follow and are woken as before): a release the
// leader reads wakes the leader with no other thread in between, so its
// next acquire leaves one thread wake-up after the message arrives instead
// of two. The subscriber thread reads when there is no blocked thread, and
// whenever something only it does is due: (re)connecting, SUBSCRIBE and
// UNSUBSCRIBE, awaiting a confirmation, and waking asynchronous waiters.
// With nothing due and nobody waiting, nobody reads (messages wait in the
// socket for the next reader, and a waiter that reads one it was not
// woken by only re-checks).
#ifndef LOCK_INTERNAL_NOTIFIER_H_
#define LOCK_INTERNAL_NOTIFIER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
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

  // How many waits a release ended on the very thread that read it, no
  // other thread woken in between (tests and benchmarks watch it).
  int64_t woken_by_own_read() const;

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
    uint64_t confirmed_at = 0;  // the generation when Redis confirmed it
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
      Watch* watch = nullptr;
    };
    absl::flat_hash_map<std::string, Named> addressed;
    // Waiters waiting now (blocked threads and asynchronous acquires alike),
    // in the order they began to wait: a kOne message wakes the first.
    Watch* armed_head = nullptr;
    Watch* armed_tail = nullptr;
    std::condition_variable changed;  // the subscription's confirmation
  };

  // A channel nobody waits on stays subscribed this long, so a hot key's
  // next waiter needs no SUBSCRIBE round trip.
  static constexpr int64_t kLingerNs = 2'000'000'000;

  void SweepIdleLocked(int64_t now_ns);
  // A Watch on `ch` (already counted in its refs) for a waiter of `wake`.
  std::unique_ptr<Watch> MakeWatchLocked(const std::string& channel, Channel* ch,
                                         WakeMode wake, std::string token);

  // Who reads the subscriber connection (see the top of this file).
  enum class Reader : uint8_t { kRun, kVacant, kWaiter };

  void Run();
  // Wakes the subscriber thread out of its poll.
  void Wake();
  // Wakes the leader out of its poll (a stop, or the subscriber thread wants
  // the connection back).
  void WakeLeader();
  // Reads what the connection has and handles each reply (the reader only).
  bool ReadAndHandle(redis::Connection* conn);
  // ReadAndHandle when poll() reported `revents` on the connection; false
  // when it failed or the server closed the connection.
  bool ReadPolled(redis::Connection* conn, short revents);
  // The subscriber thread must read: Redis owes replies to its SUBSCRIBE or
  // UNSUBSCRIBE (a Subscribe awaits one, and a Watch is not active() until
  // its confirmation is read), or an asynchronous waiter is armed.
  bool NeedsRunLocked() const { return replies_due_ > 0 || async_armed_ > 0; }
  // The reader gives the connection up: to the subscriber thread when it
  // must read or write (waking it unless it is the caller, `by_run`), else
  // to the longest-blocked thread other than `leaving`, else to nobody.
  void HandOffLocked(Watch* leaving, bool by_run);
  // Unread messages on a connection nobody reads were published before
  // now: a waiter about to note where its wait starts reads them first, so
  // that they do not end a wait for a release whose effect its coming
  // attempt sees anyway (its own last release, typically).
  void CatchUpLocked(std::unique_lock<std::mutex>& lock);
  // `self` leads: polls the connection (mu_ released) until something
  // arrives, its deadline, or a wake-up; false once the deadline passed.
  bool LeadLocked(std::unique_lock<std::mutex>& lock, Watch* self,
                  std::chrono::steady_clock::time_point deadline);
  void FollowLocked(Watch* w);
  void UnfollowLocked(Watch* w);
  // Wakes an armed waiter: unlinks it and calls its waker (mu_ held).
  static void FireLocked(Watch* w);
  static void FireAllLocked(Channel* ch);
  void DisconnectedLocked();
  void Handle(const redisReply& reply);
  void Unsubscribe(const std::string& channel, const std::string& token);

  const Endpoint endpoint_;
  const pid_t built_by_ = ProcessId();
  int wake_fd_ = -1;
  int leader_fd_ = -1;

  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Channel>> channels_;
  std::vector<std::string> to_subscribe_;    // guarded by mu_
  std::vector<std::string> to_unsubscribe_;  // guarded by mu_
  bool stop_ = false;                        // guarded by mu_
  // The subscriber connection is known to be down: waiters poll instead of
  // waiting for a confirmation that cannot come.
  bool down_ = false;                        // guarded by mu_
  Reader reader_ = Reader::kRun;             // guarded by mu_
  Watch* leader_ = nullptr;                  // guarded by mu_: reader_ == kWaiter
  // The subscriber thread has writes to send while a leader reads.
  bool yield_wanted_ = false;                // guarded by mu_
  // Guarded by mu_: channels named in SUBSCRIBE and UNSUBSCRIBE on this
  // connection whose replies are not read yet (one reply per channel).
  int64_t replies_due_ = 0;
  int async_armed_ = 0;   // guarded by mu_: Watches armed by Arm()
  int64_t woken_by_own_read_ = 0;            // guarded by mu_
  // Threads blocked in WaitUntil, longest-blocked first.
  Watch* followers_head_ = nullptr;          // guarded by mu_
  Watch* followers_tail_ = nullptr;          // guarded by mu_
  // Used by the reader only; replaced under mu_. Null while disconnected.
  std::unique_ptr<redis::Connection> conn_;
  std::thread thread_;                       // started by the first Subscribe
};

class ReleaseNotifier::Watch {
 public:
  // What a waiter that parks no thread (an asynchronous acquire) is told
  // when a release concerns it. Wake() runs on the subscriber thread under
  // the notifier's lock: it may only hand work elsewhere (post a task), and
  // must not call back into the notifier.
  class Waker {
   public:
    virtual void Wake() = 0;

   protected:
    ~Waker() = default;
  };

  ~Watch();
  // True when Redis confirmed the subscription and it has not dropped since.
  bool active() const;
  // Moves on every release published on the channel (and when the
  // subscriber connection drops, so that waiters re-check at once). A
  // release wakes one waiter of the process; a dropped connection wakes all.
  uint64_t generation() const;
  // Where the first wait after Subscribe starts from (its `seen`): a new
  // subscription's confirmation, so that a release the subscriber thread
  // read before the waiter came back from Subscribe still wakes it; the
  // generation at Subscribe for a channel subscribed before.
  uint64_t subscribed_at() const { return subscribed_at_; }
  // Waits until a release that concerns this waiter was published after
  // generation() read `seen` (true) or `deadline` (false): any release,
  // or on a kAddressed channel one that names this waiter's token (and
  // any dropped connection). `message` (optional, kAddressed) receives the
  // last message that named the token ("" when none did).
  // A stop request on `stop` ends the wait at once (false, unless a
  // release came too).
  bool WaitUntil(uint64_t seen, std::chrono::steady_clock::time_point deadline,
                 std::string* message = nullptr, const std::stop_token& stop = {});
  // The same wait without a thread: `waker` is woken once, by the first
  // release that concerns this waiter after `seen` (or a dropped
  // connection). false, and nothing armed, when one came already. A
  // dropped subscription does not fire it for a waiter armed while the
  // connection was down: pair it with a timer. Disarm() before the waker
  // goes; after Disarm returns it is not called.
  bool Arm(uint64_t seen, Waker* waker);
  void Disarm();
  // Whether a release that concerns this waiter came after `seen`, and
  // (`message`, optional) the last message that named its token.
  bool Woken(uint64_t seen, std::string* message = nullptr) const;
  // Whether the subscriber connection dropped after `seen`: a wake-up since
  // then may be the drop's, which no release caused.
  bool DroppedSince(uint64_t seen) const;

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
  // Under the notifier's mu_.
  bool ConcernedLocked(uint64_t seen) const;
  void TakeMessageLocked(uint64_t seen, std::string* message) const;
  // Appends this waiter to the channel's armed list (mu_ held, not armed).
  void ArmLocked(Waker* waker);
  void DisarmLocked();

  // A blocked thread's own waker: sets fired_ and signals cv_.
  struct ThreadWaker final : Waker {
    explicit ThreadWaker(Watch* w) : watch(w) {}
    void Wake() override;
    Watch* const watch;
  };

  const std::string token_;  // kAddressed channels only
  uint64_t subscribed_at_ = 0;  // set before the Watch is handed out
  std::condition_variable cv_;  // a blocked waiter's, signalled under mu_
  bool fired_ = false;          // guarded by mu_
  // Guarded by the notifier's mu_: armed when waker_ is set.
  Waker* waker_ = nullptr;
  bool async_ = false;  // armed by Arm(), not by a blocked thread
  Watch* armed_prev_ = nullptr;
  Watch* armed_next_ = nullptr;
  // Guarded by the notifier's mu_: in the notifier's followers while blocked.
  Watch* follow_prev_ = nullptr;
  Watch* follow_next_ = nullptr;
};

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_NOTIFIER_H_
