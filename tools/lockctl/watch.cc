// lockctl watch: a live view of one policy's locks, redrawn every second
// (plain ANSI: clear and redraw on the terminal's alternate screen), on any
// topology: the keys come from a SCAN of every master, each lock is read as
// status reads it, waiters are counted on every master.
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lock/internal/keys.h"
#include "lock/redis/reply.h"
#include "tools/lockctl/cli.h"
#include "tools/lockctl/commands.h"
#include "tools/lockctl/kinds.h"
#include "tools/lockctl/locks.h"

ABSL_FLAG(double, interval, 1, "S: seconds between refreshes, 0.1..3600");
ABSL_FLAG(std::optional<int>, count, std::nullopt,
          "N: stop after N refreshes (default: until q)");

namespace lockctl {
namespace {

// Tokens at or above this are server-clock microseconds (DESIGN.md section
// 7); smaller ones are old INCR counters, no time at all.
constexpr int64_t kClockFence = 1'000'000'000'000'000;
constexpr absl::Duration kGrantWindow = absl::Seconds(10);

volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void OnStopSignal(int sig) { g_stop_signal = sig; }

// The terminal in raw mode while the watch runs (keys arrive one at a time,
// unechoed) on its alternate screen with the cursor hidden; everything is
// put back by the destructor, which also runs after SIGINT / SIGTERM (their
// handlers only ask the loop to stop).
class Screen {
 public:
  explicit Screen(bool interactive) : interactive_(interactive) {
    if (!interactive_) return;
    if (tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      raw_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    std::cout << "\x1b[?1049h\x1b[?25l" << std::flush;
  }
  ~Screen() {
    if (!interactive_) return;
    std::cout << "\x1b[?25h\x1b[?1049l" << std::flush;
    if (raw_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  void Draw(const std::string& frame) {
    if (!interactive_) {
      std::cout << frame << "\n" << std::flush;
      return;
    }
    // Lines wider than the terminal would wrap and scroll the view away.
    winsize ws{};
    const size_t width =
        ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 0;
    std::string out = "\x1b[H\x1b[2J";
    std::istringstream lines(frame);
    for (std::string line; std::getline(lines, line);) {
      if (width > 0 && line.size() > width) line.resize(width);
      absl::StrAppend(&out, line, "\r\n");
    }
    std::cout << out << std::flush;
  }

 private:
  const bool interactive_;
  termios saved_{};
  bool raw_ = false;
};

// One lock on the screen.
struct Row {
  std::string key;
  std::string state;
  std::string owner;  // token; "" when only shared holds ("3 holders")
  std::string holders;
  int64_t ttl_ms = 0;
  int64_t fence = 0;
  std::string channel;  // release channel whose subscribers wait; "" if queued
  int64_t queued = 0;   // fair lock: its queue
  int64_t waiters = 0;
  std::optional<absl::Duration> age;  // from the fencing token
  absl::Duration seen_for;            // since this watch first saw the hold
};

struct Frame {
  absl::Time at;
  std::vector<Row> rows;
  absl::Status error;
  double grants_per_s = 0;
};

std::string ChannelOf(policy::LockKind kind, const std::string& prefix, const std::string& key) {
  switch (kind) {
    case policy::LockKind::kMutex:
      return std::string(lock::internal::LockKeys(prefix, key).channel());
    case policy::LockKind::kSemaphore:
      return lock::internal::SemaphoreKeys(prefix, key).channel();
    case policy::LockKind::kReadWrite:
      return lock::internal::ReadWriteKeys(prefix, key).channel();
    case policy::LockKind::kFair:
      return "";  // its waiters are its queue
  }
  return "";
}

absl::StatusOr<Row> ReadMutex(const PolicyContext& ctx, const std::string& key) {
  absl::StatusOr<MutexView> v = InspectMutex(ctx, key);
  if (!v.ok()) return v.status();
  const lock::LockState& st = v->lock.state;
  Row r;
  r.key = key;
  if (!st.held) return r;
  r.state = !v->quorum_holds() ? "no quorum" : st.hold_count == 0 ? "kept" : "held";
  if (v->masters.size() > 1) absl::StrAppend(&r.state, " ", v->agreeing, "/", v->masters.size());
  r.owner = st.owner_token;
  r.ttl_ms = absl::ToInt64Milliseconds(st.remaining);
  r.fence = st.fencing_token;
  return r;
}

absl::StatusOr<Row> ReadPrimitive(const PolicyContext& ctx, const std::string& key) {
  absl::StatusOr<PrimitiveView> v = InspectPrimitive(ctx, key);
  if (!v.ok()) return v.status();
  Row r;
  r.key = key;
  std::vector<Participant> holds;
  for (const Participant& p : Participants(*v)) {
    if (p.holds()) holds.push_back(p);
  }
  r.state = Summary(*v);
  r.queued = static_cast<int64_t>(v->fair.queue.size());
  if (holds.empty()) return r;
  // Soonest lease first for shared holds (the inspect scripts' order).
  r.ttl_ms = holds.front().ms_left;
  if (holds.size() == 1) {
    r.owner = holds.front().token;
    r.fence = holds.front().fence;
  } else {
    r.holders = absl::StrCat(holds.size(), " holders");
  }
  return r;
}

class Watcher {
 public:
  Watcher(const PolicyContext& ctx, std::string match) : ctx_(ctx), match_(std::move(match)) {}

  Frame Refresh() {
    Frame f;
    f.at = absl::Now();
    f.error = Read(&f);
    // Grants: a key whose holder is not the one seen last time.
    std::map<std::string, Seen> now;
    for (Row& r : f.rows) {
      const std::string who = r.owner.empty() ? r.holders : r.owner;
      auto it = seen_.find(r.key);
      const bool same = it != seen_.end() && it->second.who == who;
      if (!same && !first_) grants_.push_back(f.at);
      const absl::Time since = same ? it->second.since : f.at;
      r.seen_for = f.at - since;
      now[r.key] = {who, since};
    }
    // After an error nothing was read: what was seen stays for next time.
    if (f.error.ok()) {
      seen_ = std::move(now);
      first_ = false;
    }
    while (!grants_.empty() && f.at - grants_.front() > kGrantWindow) grants_.pop_front();
    const absl::Duration window = std::min(kGrantWindow, f.at - started_);
    f.grants_per_s = window > absl::ZeroDuration()
                         ? static_cast<double>(grants_.size()) / absl::ToDoubleSeconds(window)
                         : 0;
    return f;
  }

 private:
  struct Seen {
    std::string who;
    absl::Time since;
  };

  absl::Status Read(Frame* f) {
    absl::StatusOr<std::vector<std::string>> keys = ScanLockKeys(ctx_, match_);
    if (!keys.ok()) return keys.status();
    const bool mutex = ctx_.policy->kind == policy::LockKind::kMutex;
    for (const std::string& key : *keys) {
      absl::StatusOr<Row> r = mutex ? ReadMutex(ctx_, key) : ReadPrimitive(ctx_, key);
      if (!r.ok()) return r.status();
      if (r->state.empty()) continue;  // released since the SCAN
      r->channel = ChannelOf(ctx_.policy->kind, ctx_.policy->key_prefix, key);
      r->waiters = r->queued;
      f->rows.push_back(*std::move(r));
    }
    return CountWaitersAndAges(f);
  }

  // PUBSUB NUMSUB answers for the node asked only, and a cluster's waiters
  // subscribe to any node: each master is asked for every channel at once.
  // The age comes from the server's own clock, as the tokens do.
  absl::Status CountWaitersAndAges(Frame* f) {
    absl::StatusOr<std::vector<Master>> masters = ctx_.reach->Masters();
    if (!masters.ok()) return masters.status();
    std::vector<std::string> numsub = {"PUBSUB", "NUMSUB"};
    std::map<std::string, Row*> by_channel;
    for (Row& r : f->rows) {
      if (r.channel.empty()) continue;
      numsub.push_back(r.channel);
      by_channel[r.channel] = &r;
    }
    for (const Master& m : *masters) {
      if (by_channel.empty()) break;
      absl::StatusOr<lock::redis::ReplyPtr> reply = ctx_.reach->CommandOn(m, numsub);
      if (!reply.ok()) return reply.status();
      const redisReply& a = **reply;
      for (size_t i = 0; a.type == REDIS_REPLY_ARRAY && i + 1 < a.elements; i += 2) {
        auto it = by_channel.find(std::string(lock::redis::ReplyText(*a.element[i])));
        if (it != by_channel.end() && a.element[i + 1]->type == REDIS_REPLY_INTEGER) {
          it->second->waiters += a.element[i + 1]->integer;
        }
      }
    }
    if (masters->empty()) return absl::OkStatus();
    absl::StatusOr<lock::redis::ReplyPtr> time = ctx_.reach->CommandOn(masters->front(), {"TIME"});
    if (!time.ok()) return time.status();
    int64_t sec = 0, usec = 0;
    if ((*time)->type != REDIS_REPLY_ARRAY || (*time)->elements != 2 ||
        !absl::SimpleAtoi(lock::redis::ReplyText(*(*time)->element[0]), &sec) ||
        !absl::SimpleAtoi(lock::redis::ReplyText(*(*time)->element[1]), &usec)) {
      return absl::InternalError(absl::StrCat("TIME on ", masters->front().addr,
                                              ": unexpected reply shape"));
    }
    const int64_t now_us = sec * 1'000'000 + usec;
    for (Row& r : f->rows) {
      if (r.fence >= kClockFence && r.fence <= now_us) r.age = absl::Microseconds(now_us - r.fence);
    }
    return absl::OkStatus();
  }

  const PolicyContext& ctx_;
  const std::string match_;
  const absl::Time started_ = absl::Now();
  std::map<std::string, Seen> seen_;
  bool first_ = true;  // holds already there at the start are no grants
  std::deque<absl::Time> grants_;
};

std::string AgeText(const Row& r) {
  if (r.age.has_value()) return FormatTtl(*r.age);
  return ">" + FormatTtl(r.seen_for);
}

std::string HostPid(const Row& r) {
  if (r.owner.empty()) return r.holders.empty() ? "-" : r.holders;
  const OwnerParts o = SplitOwner(r.owner);
  return o.host.empty() ? "-" : absl::StrCat(o.host, ":", o.pid);
}

std::string FrameText(const PolicyContext& ctx, const std::string& match, const Frame& f,
                      absl::Duration interval) {
  std::string out = absl::StrCat(
      "lockctl watch: policy ", ctx.policy->name, " (prefix \"", ctx.policy->key_prefix,
      "\", match \"", match, "\") on ", ctx.Where(), "\n",
      absl::FormatTime("%H:%M:%S UTC", f.at, absl::UTCTimeZone()), "   ", f.rows.size(),
      f.rows.size() == 1 ? " lock" : " locks", "   grants/s ",
      absl::StrFormat("%.1f", f.grants_per_s), "   every ", absl::FormatDuration(interval),
      "   q quits\n\n");
  if (!f.error.ok()) absl::StrAppend(&out, "error: ", f.error.message(), "\n\n");
  std::vector<std::vector<std::string>> rows = {
      {"KEY", "STATE", "HOST:PID", "AGE", "TTL", "FENCE", "WAITERS", "OWNER"}};
  for (const Row& r : f.rows) {
    rows.push_back({r.key, r.state, HostPid(r), AgeText(r), FormatTtl(absl::Milliseconds(r.ttl_ms)),
                    r.fence > 0 ? absl::StrCat(r.fence) : "-", absl::StrCat(r.waiters),
                    r.owner.empty() ? "-" : r.owner});
  }
  absl::StrAppend(&out, RenderTable(rows));
  if (f.rows.empty()) absl::StrAppend(&out, "(no locks held)\n");
  absl::StrAppend(&out,
                  "\nAGE from the fencing token (server clock at acquisition); \">\": "
                  "since first seen here\nWAITERS processes subscribed to the release "
                  "channel (fair: its queue); `lockctl watch --help` says more\n");
  return out;
}

nlohmann::json FrameJson(const PolicyContext& ctx, const std::string& match, const Frame& f) {
  nlohmann::json j = {{"time", absl::FormatTime(absl::RFC3339_full, f.at, absl::UTCTimeZone())},
                      {"policy", ctx.policy->name},
                      {"match", match},
                      {"redis", ctx.Where()},
                      {"grants_per_s", f.grants_per_s},
                      {"locks", nlohmann::json::array()}};
  if (!f.error.ok()) j["error"] = std::string(f.error.message());
  for (const Row& r : f.rows) {
    nlohmann::json l = {{"key", r.key},
                        {"state", r.state},
                        {"ttl_ms", r.ttl_ms},
                        {"fencing_token", r.fence},
                        {"waiters", r.waiters},
                        {"age_ms", absl::ToInt64Milliseconds(r.age.value_or(r.seen_for))},
                        {"age_from", r.age.has_value() ? "fencing_token" : "first_seen"}};
    if (!r.owner.empty()) {
      const OwnerParts o = SplitOwner(r.owner);
      l["owner"] = r.owner;
      l["owner_host"] = o.host;
      l["owner_pid"] = o.pid.empty() ? nlohmann::json(nullptr)
                                     : nlohmann::json(std::atoll(o.pid.c_str()));
    }
    j["locks"].push_back(std::move(l));
  }
  return j;
}

// Waits until `deadline`, a stop signal or a `q` on stdin; true to go on.
bool WaitForNext(absl::Time deadline, bool* stdin_open) {
  while (g_stop_signal == 0) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return true;
    pollfd p{.fd = STDIN_FILENO, .events = POLLIN, .revents = 0};
    const int ms = static_cast<int>(std::max<int64_t>(1, absl::ToInt64Milliseconds(left)));
    const int n = poll(&p, *stdin_open ? 1 : 0, ms);
    if (n <= 0) continue;  // timeout, or EINTR (a signal: checked above)
    char buf[64];
    const ssize_t got = read(STDIN_FILENO, buf, sizeof(buf));
    if (got <= 0) {
      *stdin_open = false;  // EOF: keys can no longer come; run until a signal
      continue;
    }
    for (ssize_t i = 0; i < got; ++i) {
      if (buf[i] == 'q' || buf[i] == 'Q') return false;
    }
  }
  return false;
}

int Watch(const std::vector<std::string>& positional) {
  if (positional.empty() || positional.size() > 2) {
    return UsageError("watch", "watch needs POLICY and at most one KEY-PATTERN");
  }
  const std::string match = positional.size() == 2 ? positional[1] : "*";
  if (match.empty() || match.find_first_of("{}") != std::string::npos) {
    return UsageError("watch", "KEY-PATTERN must be non-empty and without braces");
  }
  const double interval_s = absl::GetFlag(FLAGS_interval);
  const std::optional<int> count = absl::GetFlag(FLAGS_count);
  for (const absl::Status& s :
       {CheckFlag(FLAGS_interval, interval_s >= 0.1 && interval_s <= 3600,
                  "a number in [0.1, 3600]"),
        CheckFlag(FLAGS_count, count.value_or(1) >= 1, "a positive number")}) {
    if (!s.ok()) return UsageError("watch", std::string(s.message()));
  }
  absl::StatusOr<std::string> config = ConfigPath();
  if (!config.ok())
    return UsageError("watch", std::string(config.status().message()));
  absl::StatusOr<PolicyContext> ctx = OpenPolicy(*config, positional[0]);
  if (!ctx.ok()) return Fail(ctx.status());

  const bool json = absl::GetFlag(FLAGS_json);
  const absl::Duration interval = absl::Seconds(interval_s);
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  Screen screen(!json && StdinIsTty() && StdoutIsTty());
  Watcher watch(*ctx, match);
  bool stdin_open = true;
  absl::Status last;
  for (int n = 1;; ++n) {
    const absl::Time next = absl::Now() + interval;
    const Frame f = watch.Refresh();
    last = f.error;
    if (json) {
      std::cout << FrameJson(*ctx, match, f).dump() << "\n" << std::flush;
    } else {
      screen.Draw(FrameText(*ctx, match, f, interval));
    }
    if (count.has_value() && n >= *count) return ExitCodeFor(last);
    if (!WaitForNext(next, &stdin_open)) return kExitOk;
  }
}

}  // namespace

Command WatchCommand() {
  return {
      .name = "watch",
      .usage = R"text(
usage: lockctl watch POLICY [KEY-PATTERN] [--interval S] [--count N]
                     [--config FILE|DIR] [--json]
)text",
      .about = R"text(
A live view of the policy's locks whose key matches KEY-PATTERN (a Redis
glob over the key without prefix, default "*"), redrawn every S
seconds: per lock the owner's host:pid, the age of the hold, the lease
left, the fencing token and the waiters, and over all of them the new
holders per second. Works on every topology: a cluster's masters are
all scanned, a Sentinel target follows its master, a Redlock target
shows how many masters agree. Press q to quit (Ctrl-C works too); the
terminal is restored either way. --json prints one JSON object per
refresh and line, and no screen.

AGE      from the hold's fencing token, which is the Redis server's clock
         (µs) at the acquisition; ">" marks a hold without one (fencing
         off, Redlock, a semaphore): the time since this watch first saw
         it, so at least that old
WAITERS  processes subscribed to the lock's release channel, on every
         master (one per waiting process, however many of its threads
         wait; a subscription lingers about 2s after its wait ended); for
         a fair lock its queue
grants/s new holders seen from one refresh to the next, over the last
         10s: holds that came and went between two refreshes are missed
)text",
      .flags = {Opt(FLAGS_interval), Opt(FLAGS_count), Opt(FLAGS_config),
                Opt(FLAGS_json)},
      .exit_codes = R"text(
Exit codes: 0 quit (q, Ctrl-C, SIGTERM) or --count reached, 1 bad
configuration or unknown policy, 2 usage error, 3 Redis unreachable or
failing on the last of --count refreshes (before that, errors are
shown and the watch goes on: a failover should not end it).
)text",
      .run = Watch,
  };
}

}  // namespace lockctl
