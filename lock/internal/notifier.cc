#include "lock/internal/notifier.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <new>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "lock/internal/fork.h"

namespace lock::internal {
namespace {

absl::string_view Text(const redisReply& r) {
  return r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS
             ? absl::string_view(r.str, r.len)
             : absl::string_view();
}

// Every live notifier, for the fork handlers: they take each one's mu_ so
// that a child inherits its channel table consistent.
struct Live {
  std::mutex mu;
  absl::flat_hash_set<ReleaseNotifier*> notifiers;  // guarded by mu
};

Live& LiveNotifiers() {
  static Live* live = new Live;
  return *live;
}

}  // namespace

ReleaseNotifier::ReleaseNotifier(Endpoint endpoint)
    : endpoint_(std::move(endpoint)),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
      leader_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  InstallForkHandlers();
  Live& live = LiveNotifiers();
  std::lock_guard<std::mutex> lock(live.mu);
  live.notifiers.insert(this);
}

void NotifierForkPrepare() { ReleaseNotifier::ForkPrepare(); }
void NotifierForkParent() { ReleaseNotifier::ForkDone(); }
void NotifierForkChild() { ReleaseNotifier::ForkDone(); }

void ReleaseNotifier::ForkPrepare() {
  Live& live = LiveNotifiers();
  live.mu.lock();
  for (ReleaseNotifier* n : live.notifiers) n->mu_.lock();
}

// In the child the notifiers stay unusable anyway (their subscriber thread
// is gone): only their destructor runs there, and it needs a consistent
// channel table, not the thread.
void ReleaseNotifier::ForkDone() {
  Live& live = LiveNotifiers();
  for (ReleaseNotifier* n : live.notifiers) n->mu_.unlock();
  live.mu.unlock();
}

ReleaseNotifier::ReleaseNotifier(redis::ConnectionOptions options)
    : ReleaseNotifier([options]() -> absl::StatusOr<redis::ConnectionOptions> {
        return options;
      }) {}

ReleaseNotifier::~ReleaseNotifier() {
  {
    Live& live = LiveNotifiers();
    std::lock_guard<std::mutex> lock(live.mu);
    live.notifiers.erase(this);
  }
  if (ForkedSince(built_by_)) {
    // In a fork() child: the subscriber thread is not there (joining it
    // would wait forever), and waiters of the parent are still counted in
    // each channel's condition variable (destroying it would, too). The
    // eventfd is shared with the parent, whose subscriber we must not wake.
    Abandon(std::make_shared<std::thread>(std::move(thread_)));  // never joined
    for (auto& [name, ch] : channels_) new (&ch->changed) std::condition_variable();
    if (wake_fd_ >= 0) close(wake_fd_);  // our copies only
    if (leader_fd_ >= 0) close(leader_fd_);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  Wake();
  if (thread_.joinable()) thread_.join();
  if (wake_fd_ >= 0) close(wake_fd_);
  if (leader_fd_ >= 0) close(leader_fd_);
}

namespace {

void Signal(int fd) {
  uint64_t one = 1;
  (void)!write(fd, &one, sizeof(one));
}

void Drain(int fd) {
  uint64_t drained;
  (void)!read(fd, &drained, sizeof(drained));
}

}  // namespace

void ReleaseNotifier::Wake() { Signal(wake_fd_); }

void ReleaseNotifier::WakeLeader() { Signal(leader_fd_); }

int64_t ReleaseNotifier::woken_by_own_read() const {
  std::lock_guard<std::mutex> lock(mu_);
  return woken_by_own_read_;
}

std::unique_ptr<ReleaseNotifier::Watch> ReleaseNotifier::Subscribe(
    const std::string& channel, absl::Duration timeout, WakeMode wake, std::string token) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!thread_.joinable() && !stop_) thread_ = std::thread([this] { Run(); });
  CatchUpLocked(lock);
  std::unique_ptr<Channel>& slot = channels_[channel];
  if (slot == nullptr) slot = std::make_unique<Channel>();
  Channel* ch = slot.get();
  const bool subscribed_before = ch->confirmed && !ch->unsubscribing;
  if (ch->refs++ == 0 && (ch->unsubscribing || !ch->confirmed)) {
    // New, or on its way out: a confirmation left from before an UNSUBSCRIBE
    // in flight would be stale, so wait for this subscription's own.
    ch->confirmed = false;
    ch->unsubscribing = false;
    to_subscribe_.push_back(channel);
    Wake();
  }
  ch->changed.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                       [&] { return ch->confirmed || stop_ || down_; });
  std::unique_ptr<Watch> watch = MakeWatchLocked(channel, ch, wake, std::move(token));
  if (!subscribed_before && ch->confirmed) watch->subscribed_at_ = ch->confirmed_at;
  return watch;
}

std::unique_ptr<ReleaseNotifier::Watch> ReleaseNotifier::MakeWatchLocked(
    const std::string& channel, Channel* ch, WakeMode wake, std::string token) {
  ch->wake = wake;
  if (wake != WakeMode::kAddressed) token.clear();
  std::unique_ptr<Watch> watch(new Watch(this, channel, ch, token));
  watch->subscribed_at_ = ch->generation;
  if (!token.empty()) ch->addressed[token] = Channel::Named{0, "", watch.get()};
  return watch;
}

std::unique_ptr<ReleaseNotifier::Watch> ReleaseNotifier::WatchIfSubscribed(
    const std::string& channel, WakeMode wake, std::string token) {
  std::unique_lock<std::mutex> lock(mu_);
  CatchUpLocked(lock);
  auto it = channels_.find(channel);
  if (it == channels_.end() || !it->second->confirmed || it->second->unsubscribing) {
    return nullptr;
  }
  Channel* ch = it->second.get();
  ++ch->refs;
  return MakeWatchLocked(channel, ch, wake, std::move(token));
}

void ReleaseNotifier::Unsubscribe(const std::string& channel, const std::string& token) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  if (!token.empty()) it->second->addressed.erase(token);
  if (--it->second->refs > 0) return;
  // Lingers subscribed; SweepIdleLocked unsubscribes it later if still idle.
  it->second->idle_since_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count();
}

void ReleaseNotifier::SweepIdleLocked(int64_t now_ns) {
  for (auto& [name, ch] : channels_) {
    if (ch->refs == 0 && !ch->unsubscribing && now_ns - ch->idle_since_ns > kLingerNs) {
      // The entry stays until Redis confirms, so a quick re-subscribe reuses it.
      ch->unsubscribing = true;
      to_unsubscribe_.push_back(name);
    }
  }
}

ReleaseNotifier::Watch::~Watch() {
  Disarm();
  notifier_->Unsubscribe(channel_, token_);
}

bool ReleaseNotifier::Watch::active() const {
  std::lock_guard<std::mutex> lock(notifier_->mu_);
  return state_->confirmed;
}

uint64_t ReleaseNotifier::Watch::generation() const {
  std::unique_lock<std::mutex> lock(notifier_->mu_);
  notifier_->CatchUpLocked(lock);
  return state_->generation;
}

bool ReleaseNotifier::Watch::ConcernedLocked(uint64_t seen) const {
  if (state_->wake != WakeMode::kAddressed) return state_->generation != seen;
  // Looked up on every check: other waiters' entries come and go (rehash).
  auto named = state_->addressed.find(token_);
  return (named != state_->addressed.end() && named->second.at > seen) ||
         state_->dropped_at > seen;
}

void ReleaseNotifier::Watch::TakeMessageLocked(uint64_t seen, std::string* message) const {
  if (message == nullptr) return;
  message->clear();
  if (state_->wake != WakeMode::kAddressed) return;
  auto named = state_->addressed.find(token_);
  if (named != state_->addressed.end() && named->second.at > seen) {
    *message = named->second.message;
  }
}

bool ReleaseNotifier::Watch::Woken(uint64_t seen, std::string* message) const {
  std::lock_guard<std::mutex> lock(notifier_->mu_);
  TakeMessageLocked(seen, message);
  return ConcernedLocked(seen);
}

bool ReleaseNotifier::Watch::DroppedSince(uint64_t seen) const {
  std::lock_guard<std::mutex> lock(notifier_->mu_);
  return state_->dropped_at > seen;
}

bool ReleaseNotifier::Watch::Arm(uint64_t seen, Waker* waker) {
  std::lock_guard<std::mutex> lock(notifier_->mu_);
  DisarmLocked();
  if (ConcernedLocked(seen)) return false;
  ArmLocked(waker);
  async_ = true;
  // No thread blocks for this waiter: the subscriber thread must read.
  if (notifier_->async_armed_++ == 0 && notifier_->reader_ == Reader::kVacant) {
    notifier_->Wake();
  }
  return true;
}

void ReleaseNotifier::Watch::ArmLocked(Waker* waker) {
  waker_ = waker;
  armed_prev_ = state_->armed_tail;
  armed_next_ = nullptr;
  (armed_prev_ ? armed_prev_->armed_next_ : state_->armed_head) = this;
  state_->armed_tail = this;
}

void ReleaseNotifier::Watch::Disarm() {
  std::lock_guard<std::mutex> lock(notifier_->mu_);
  DisarmLocked();
}

void ReleaseNotifier::Watch::DisarmLocked() {
  if (waker_ == nullptr) return;
  if (async_) {
    async_ = false;
    --notifier_->async_armed_;
  }
  (armed_prev_ ? armed_prev_->armed_next_ : state_->armed_head) = armed_next_;
  (armed_next_ ? armed_next_->armed_prev_ : state_->armed_tail) = armed_prev_;
  armed_prev_ = armed_next_ = nullptr;
  waker_ = nullptr;
}

void ReleaseNotifier::Watch::ThreadWaker::Wake() {
  watch->fired_ = true;
  watch->cv_.notify_one();
}

bool ReleaseNotifier::Watch::WaitUntil(uint64_t seen,
                                       std::chrono::steady_clock::time_point deadline,
                                       std::string* message, const std::stop_token& stop) {
  ThreadWaker self(this);
  bool stopped = false;
  // Registered before the lock is taken: a stop requested already runs the
  // callback right here, and it takes the lock itself.
  std::stop_callback on_stop(stop, [this, &stopped] {
    std::lock_guard<std::mutex> lock(notifier_->mu_);
    stopped = true;
    cv_.notify_one();
    if (notifier_->leader_ == this) notifier_->WakeLeader();
  });
  std::unique_lock<std::mutex> lock(notifier_->mu_);
  ReleaseNotifier& n = *notifier_;
  fired_ = false;
  if (!stopped && !ConcernedLocked(seen)) {
    ArmLocked(&self);
    n.FollowLocked(this);
    // Holding the connection with nothing left for it to do, the subscriber
    // thread hands it to the longest-blocked thread when it looks again.
    if (n.reader_ == Reader::kRun && !n.NeedsRunLocked()) n.Wake();
    while (!fired_ && !stopped) {
      if (n.reader_ == Reader::kVacant) {
        n.reader_ = Reader::kWaiter;
        n.leader_ = this;
      }
      if (n.leader_ == this) {
        if (!n.LeadLocked(lock, this, deadline)) break;
      } else if (!cv_.wait_until(lock, deadline,
                                 [&] { return fired_ || stopped || n.leader_ == this; })) {
        break;
      }
    }
    n.UnfollowLocked(this);
    if (n.leader_ == this) n.HandOffLocked(this, /*by_run=*/false);
    DisarmLocked();
  }
  TakeMessageLocked(seen, message);
  return ConcernedLocked(seen);
}

void ReleaseNotifier::FollowLocked(Watch* w) {
  w->follow_prev_ = followers_tail_;
  w->follow_next_ = nullptr;
  (followers_tail_ ? followers_tail_->follow_next_ : followers_head_) = w;
  followers_tail_ = w;
}

void ReleaseNotifier::UnfollowLocked(Watch* w) {
  (w->follow_prev_ ? w->follow_prev_->follow_next_ : followers_head_) = w->follow_next_;
  (w->follow_next_ ? w->follow_next_->follow_prev_ : followers_tail_) = w->follow_prev_;
  w->follow_prev_ = w->follow_next_ = nullptr;
}

void ReleaseNotifier::HandOffLocked(Watch* leaving, bool by_run) {
  leader_ = nullptr;
  if (stop_ || conn_ == nullptr || !to_subscribe_.empty() || !to_unsubscribe_.empty() ||
      NeedsRunLocked()) {
    reader_ = Reader::kRun;
    yield_wanted_ = false;
    if (!by_run) Wake();
    return;
  }
  for (Watch* f = followers_head_; f != nullptr; f = f->follow_next_) {
    if (f != leaving && !f->fired_) {
      reader_ = Reader::kWaiter;
      leader_ = f;
      f->cv_.notify_one();
      return;
    }
  }
  reader_ = Reader::kVacant;
}

bool ReleaseNotifier::LeadLocked(std::unique_lock<std::mutex>& lock, Watch* self,
                                 std::chrono::steady_clock::time_point deadline) {
  const auto left = deadline - std::chrono::steady_clock::now();
  if (left <= std::chrono::steady_clock::duration::zero()) return false;
  redis::Connection* conn = conn_.get();  // the reader's alone until it hands off
  lock.unlock();
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  const timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  pollfd p[2] = {{conn->fd(), POLLIN | POLLRDHUP, 0}, {leader_fd_, POLLIN, 0}};
  ppoll(p, 2, &ts, nullptr);
  if (p[1].revents & POLLIN) Drain(leader_fd_);
  const bool ok = ReadPolled(conn, p[0].revents);
  lock.lock();
  if (self->fired_) ++woken_by_own_read_;
  if (!ok) {
    DisconnectedLocked();
  }
  if (!ok || yield_wanted_ || stop_) HandOffLocked(self, /*by_run=*/false);
  return true;
}

void ReleaseNotifier::CatchUpLocked(std::unique_lock<std::mutex>& lock) {
  if (reader_ != Reader::kVacant) return;  // a reader keeps up by itself
  reader_ = Reader::kWaiter;               // a reader that leads no wait
  redis::Connection* conn = conn_.get();
  lock.unlock();
  pollfd p{conn->fd(), POLLIN | POLLRDHUP, 0};
  const bool ok = poll(&p, 1, 0) <= 0 || ReadPolled(conn, p.revents);
  lock.lock();
  if (!ok) {
    DisconnectedLocked();
  }
  HandOffLocked(nullptr, /*by_run=*/false);
}

bool ReleaseNotifier::ReadPolled(redis::Connection* conn, short revents) {
  if ((revents & (POLLIN | POLLRDHUP | POLLERR | POLLHUP)) == 0) return true;
  // Closed by the server: what it sent before is read (messages published
  // before it went), and the connection is lost in the same pass, so that
  // a waiter about to wait learns now that no release can reach it.
  return ReadAndHandle(conn) && (revents & (POLLRDHUP | POLLERR | POLLHUP)) == 0;
}

bool ReleaseNotifier::ReadAndHandle(redis::Connection* conn) {
  if (!conn->ReadAvailable().ok()) return false;
  while (true) {
    absl::StatusOr<redis::ReplyPtr> r = conn->NextBufferedReply();
    if (!r.ok()) return false;
    if (*r == nullptr) return true;
    Handle(**r);
  }
}

void ReleaseNotifier::FireLocked(Watch* w) {
  Watch::Waker* waker = w->waker_;
  if (waker == nullptr) return;
  w->DisarmLocked();
  waker->Wake();
}

void ReleaseNotifier::FireAllLocked(Channel* ch) {
  while (ch->armed_head != nullptr) FireLocked(ch->armed_head);
}

void ReleaseNotifier::DisconnectedLocked() {
  conn_.reset();  // the reader's call: nobody else uses it now
  down_ = true;
  replies_due_ = 0;
  for (auto& [name, ch] : channels_) {
    ch->confirmed = false;
    ++ch->generation;  // waiters re-check now, then fall back to polling
    ch->dropped_at = ch->generation;
    ch->changed.notify_all();
    FireAllLocked(ch.get());
  }
  to_unsubscribe_.clear();  // nothing to unsubscribe on a new connection
  for (auto it = channels_.begin(); it != channels_.end();) {
    if (it->second->refs == 0) {
      channels_.erase(it++);
    } else {
      ++it;
    }
  }
}

void ReleaseNotifier::Handle(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 2) return;
  const absl::string_view kind = Text(*reply.element[0]);
  const std::string channel(Text(*reply.element[1]));
  std::lock_guard<std::mutex> lock(mu_);
  if ((kind == "subscribe" || kind == "unsubscribe") && replies_due_ > 0) --replies_due_;
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  Channel& ch = *it->second;
  if (kind == "message") {
    ++ch.generation;
    if (ch.wake == WakeMode::kOne) {
      // One release frees the lock for one holder: wake a single waiter
      // (the one waiting longest) instead of a herd that would mostly find
      // it taken again. The others still see the new generation when their
      // own timers fire.
      if (ch.armed_head != nullptr) FireLocked(ch.armed_head);
    } else if (ch.wake == WakeMode::kAll) {
      FireAllLocked(&ch);
    } else if (reply.elements >= 3) {
      const absl::string_view message = Text(*reply.element[2]);
      auto named = ch.addressed.find(message.substr(0, message.find(' ')));
      if (named != ch.addressed.end()) {
        named->second.at = ch.generation;
        named->second.message = std::string(message);
        FireLocked(named->second.watch);
      }
    }
  } else if (kind == "subscribe") {
    ch.confirmed = true;
    ch.confirmed_at = ch.generation;
    ch.changed.notify_all();
  } else if (kind == "unsubscribe") {
    if (ch.refs == 0 && ch.unsubscribing) {
      channels_.erase(it);
    } else {
      ch.confirmed = false;  // re-subscribed meanwhile; its reply follows
    }
  }
}

void ReleaseNotifier::Run() {
  auto backoff = std::chrono::milliseconds(20);
  while (true) {
    std::vector<std::string> subscribe, unsubscribe;
    bool mine = false;
    int unread_fd = -1;  // the connection, while nobody reads it
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      SweepIdleLocked(std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count());
      const bool writes = !to_subscribe_.empty() || !to_unsubscribe_.empty();
      if (reader_ == Reader::kVacant && (conn_ == nullptr || writes || NeedsRunLocked())) {
        reader_ = Reader::kRun;
      } else if (reader_ == Reader::kWaiter && writes && !yield_wanted_) {
        yield_wanted_ = true;  // the leader hands the connection back
        WakeLeader();
      }
      if (reader_ == Reader::kRun) {
        mine = true;
        yield_wanted_ = false;
        if (conn_ == nullptr) {
          // Everything wanted is (re)subscribed on the next connection.
          to_subscribe_.clear();
          for (const auto& [name, ch] : channels_) {
            if (ch->refs > 0) to_subscribe_.push_back(name);
          }
        }
        subscribe.swap(to_subscribe_);
        unsubscribe.swap(to_unsubscribe_);
      } else if (reader_ == Reader::kVacant) {
        unread_fd = conn_->fd();
      }
    }
    if (!mine) {
      // Paces the sweep of idle channels too. A connection nobody reads is
      // still watched for the server closing it (messages do not wake this
      // thread), so that the next waiter knows at once that it must poll.
      pollfd p[2] = {{wake_fd_, POLLIN, 0}, {unread_fd, POLLRDHUP, 0}};
      poll(p, unread_fd >= 0 ? 2 : 1, 500);
      Drain(wake_fd_);
      if (unread_fd >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
        std::unique_lock<std::mutex> lock(mu_);
        CatchUpLocked(lock);  // reads up to the end, if nobody else reads it now
      }
      continue;
    }
    if (conn_ == nullptr) {
      absl::StatusOr<redis::ConnectionOptions> where = endpoint_();
      absl::StatusOr<std::unique_ptr<redis::Connection>> c =
          where.ok() ? redis::Connection::Open(*where) : where.status();
      if (!c.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          DisconnectedLocked();
        }
        pollfd p{wake_fd_, POLLIN, 0};
        poll(&p, 1, static_cast<int>(backoff.count()));
        Drain(wake_fd_);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
        continue;
      }
      backoff = std::chrono::milliseconds(20);
      std::lock_guard<std::mutex> lock(mu_);
      conn_ = *std::move(c);
      down_ = false;
    }
    redis::Connection* conn = conn_.get();
    bool ok = true;
    // Unsubscribes first: a channel dropped and wanted again in the same
    // round must end up subscribed.
    for (auto* list : {&unsubscribe, &subscribe}) {
      if (list->empty() || !ok) continue;
      std::vector<absl::string_view> argv = {
          list == &subscribe ? "SUBSCRIBE" : "UNSUBSCRIBE"};
      argv.insert(argv.end(), list->begin(), list->end());
      ok = conn->Append(argv).ok();
    }
    if (ok) ok = conn->Flush().ok();
    if (ok) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        replies_due_ += static_cast<int64_t>(subscribe.size() + unsubscribe.size());
        if (!NeedsRunLocked()) HandOffLocked(nullptr, /*by_run=*/true);
        if (reader_ != Reader::kRun) continue;
      }
      pollfd p[2] = {{conn->fd(), POLLIN | POLLRDHUP, 0}, {wake_fd_, POLLIN, 0}};
      poll(p, 2, 500);  // also paces the sweep of idle channels
      if (p[1].revents & POLLIN) Drain(wake_fd_);
      ok = ReadPolled(conn, p[0].revents);
    }
    if (!ok) {
      std::lock_guard<std::mutex> lock(mu_);
      DisconnectedLocked();
    }
  }
}

}  // namespace lock::internal
