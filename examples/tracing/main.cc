// Spans and log events of the library, printed: the smallest adapter from
// lock::Tracer and lock::SetLogSink (lock/observe.h) to a process's own
// output. An OpenTelemetry exporter has the same shape: PrintingTracer's
// OnSpan becomes StartSpan / SetAttribute / End (see lock/observe.h).
//
//   bazel run //examples/tracing                      # embedded redis-server
//   bazel run //examples/tracing -- --redis 127.0.0.1:6379
//
// It runs four short scenes and prints every span and event as one logfmt
// line on stdout:
//   contended  two threads close the same order: one waits for the other
//              (two lock.acquire spans, one with a wait, two lock.hold spans);
//   skipped    a nightly job fired while its run is going (on_busy "skip");
//   deadline   a caller whose deadline passes while it waits;
//   lost       an operator releases a held lock from outside (as `lockctl
//              release --owner` does): auto-renewal finds it gone, the hold
//              is lost (a lock_lost event, a lock.hold span with
//              lock.lost=true) and With returns IsLost.
// Then it checks what it printed: each scene's spans and event are there
// with the documented names and attributes, and no line shows the lost
// hold's owner token. Exits 0 when all hold, 1 otherwise.
#include <atomic>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/common/demo.h"
#include "lock/lock.h"
#include "util/flags.h"

namespace {

constexpr char kProgram[] = "tracing";
constexpr char kUsage[] =
    "tracing [--redis host:port] [--config policies.json]\n"
    "prints the library's spans and log events while four scenes run";

// The library's views are std::string_view; abseil as Debian builds it has
// its own string_view type.
absl::string_view Sv(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// A value as logfmt wants it: strings quoted when they have a space, a
// quote or nothing in them; numbers and booleans bare.
std::string Logfmt(absl::string_view s) {
  if (!s.empty() && s.find_first_of(" \"=") == absl::string_view::npos) {
    return std::string(s);
  }
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string Logfmt(const lock::SpanAttribute& a) {
  return std::visit(
      [](auto v) -> std::string {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, bool>) return v ? "true" : "false";
        if constexpr (std::is_same_v<T, int64_t>) return absl::StrCat(v);
        if constexpr (std::is_same_v<T, double>) return absl::StrFormat("%.6g", v);
        if constexpr (std::is_same_v<T, std::string_view>) return Logfmt(Sv(v));
      },
      a.value);
}

// What the checks read back: a span's name and attributes, as printed.
struct SeenSpan {
  std::string name;
  bool ok = false;
  std::map<std::string, std::string> attributes;

  std::string Get(const std::string& key) const {
    auto it = attributes.find(key);
    return it == attributes.end() ? "" : it->second;
  }
};

// Prints one line per span and per event, and keeps them for the checks.
// The library calls both on its own threads, possibly under its internal
// locks: they only format and append under their own mutex, and never call
// back into the library.
class Printer : public lock::Tracer {
 public:
  void OnSpan(const lock::Span& s) override {
    SeenSpan seen{.name = std::string(s.name), .ok = s.status.ok()};
    std::string line = absl::StrFormat(
        "span name=%s duration_ms=%.3f status=%s", Sv(s.name),
        absl::FDivDuration(s.end - s.start, absl::Milliseconds(1)),
        s.status.ok() ? "OK" : absl::StatusCodeToString(s.status.code()));
    for (const lock::SpanAttribute& a : s.attributes) {
      const std::string value = Logfmt(a);
      absl::StrAppend(&line, " ", Sv(a.key), "=", value);
      seen.attributes[std::string(a.key)] = value;
    }
    Emit(std::move(line), [&] { spans_.push_back(std::move(seen)); });
  }

  void OnEvent(const lock::LogEvent& e) {
    std::string line = absl::StrCat(
        "log severity=", Sv(lock::LogSeverityName(e.severity)), " event=", Sv(e.event),
        " policy=", Logfmt(Sv(e.policy)), " key=", Logfmt(Sv(e.key)),
        " redis=", Logfmt(Sv(e.redis)), " message=", Logfmt(Sv(e.message)));
    std::string event = absl::StrCat(Sv(e.event), " ", Sv(e.key));
    Emit(std::move(line), [&] { events_.push_back(std::move(event)); });
  }

  // A scene's title, between the lines of the one before and its own.
  void Scene(absl::string_view title) { Emit(absl::StrCat("== ", title), [] {}); }

  std::vector<SeenSpan> Spans(const std::string& name, const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<SeenSpan> out;
    for (const SeenSpan& s : spans_) {
      if (s.name == name && s.Get("lock.key") == Logfmt(key)) out.push_back(s);
    }
    return out;
  }
  bool HasEvent(const std::string& event, const std::string& key) {
    std::lock_guard<std::mutex> l(mu_);
    for (const std::string& e : events_) {
      if (e == absl::StrCat(event, " ", key)) return true;
    }
    return false;
  }
  bool AnyLineContains(const std::string& text) {
    std::lock_guard<std::mutex> l(mu_);
    for (const std::string& line : lines_) {
      if (absl::StrContains(line, text)) return true;
    }
    return false;
  }

 private:
  void Emit(std::string line, const std::function<void()>& keep) {
    std::lock_guard<std::mutex> l(mu_);
    std::cout << line << std::endl;
    lines_.push_back(std::move(line));
    keep();
  }

  std::mutex mu_;
  std::vector<std::string> lines_;
  std::vector<SeenSpan> spans_;
  std::vector<std::string> events_;
};

// Runs `held_by_other` under a lock of (policy, key) in a thread of its own,
// and `meanwhile` once that thread holds it; returns `meanwhile`'s status.
absl::Status WhileHeldElsewhere(const std::string& policy, const std::string& key,
                                absl::Duration hold,
                                const std::function<absl::Status()>& meanwhile) {
  absl::Notification taken;
  absl::Status holder;
  std::thread t([&] {
    holder = lock::With(policy, key, [&] {
      taken.Notify();
      absl::SleepFor(hold);
      return absl::OkStatus();
    });
    if (!taken.HasBeenNotified()) taken.Notify();  // failed: do not wait forever
  });
  taken.WaitForNotification();
  absl::Status s = holder.ok() ? meanwhile() : holder;
  t.join();
  if (!holder.ok()) return holder;
  return s;
}

// One verification line; false when `good` is.
bool Check(absl::string_view what, bool good, absl::string_view detail = "") {
  demo::Row(what, good ? "ok" : std::string(detail), good);
  return good;
}

}  // namespace

int main(int argc, char** argv) {
  util::ParseFlags(argc, argv, kUsage);
  auto env = demo::Environment::Prepare(kProgram, "examples/tracing/policies.json",
                                        absl::GetFlag(FLAGS_config),
                                        absl::GetFlag(FLAGS_redis));
  auto printer = std::make_shared<Printer>();
  lock::SetTracer(printer);
  lock::SetLogSink([printer](const lock::LogEvent& e) { printer->OnEvent(e); });
  if (absl::Status s = lock::Init(env->worker_config()); !s.ok()) {
    std::cerr << kProgram << ": " << s << "\n";
    return 1;
  }
  std::cout << kProgram << ": Redis " << env->Describe() << "\n";
  // Keys of this run only, should --redis name a Redis that other runs share.
  const std::string run = demo::NewRunId();
  const std::string order = run + ":order-42";
  const std::string nightly = run + ":report";
  const std::string slow = run + ":order-43";
  const std::string lost = run + ":order-44";

  printer->Scene("contended: two threads close the same order");
  absl::Status contended = WhileHeldElsewhere("order-close", order, absl::Milliseconds(200), [&] {
    return lock::With("order-close", order, [] { return absl::OkStatus(); });
  });

  printer->Scene("skipped: the nightly job fires while its run is going");
  absl::Status skipped = WhileHeldElsewhere("nightly", nightly, absl::Milliseconds(50), [&] {
    return lock::With("nightly", nightly, [] { return absl::OkStatus(); });
  });

  printer->Scene("deadline: the caller's deadline passes while it waits");
  absl::Status deadline = WhileHeldElsewhere("order-close", slow, absl::Milliseconds(300), [&] {
    lock::CallOptions call{.deadline = absl::Now() + absl::Milliseconds(100)};
    return lock::With("order-close", slow, call, [] { return absl::OkStatus(); });
  });

  printer->Scene("lost: an operator releases a held lock from outside");
  std::string owner_token;
  absl::Status lost_status = lock::With("short-lease", lost, [&](lock::Held& held) {
    owner_token = held.owner_token();
    absl::StatusOr<std::shared_ptr<lock::Locker>> locker = lock::Default();
    if (!locker.ok()) return locker.status();
    if (absl::Status s = (*locker)->UnlockByValue("short-lease", lost, owner_token); !s.ok()) {
      return s;
    }
    // Renewal runs at half the 1s lease: the loss shows well within 5s.
    const absl::Time give_up = absl::Now() + absl::Seconds(5);
    while (!held.stop_token().stop_requested() && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return absl::OkStatus();
  });
  lock::Shutdown();
  lock::SetTracer(nullptr);
  lock::SetLogSink(nullptr);

  std::cout << "\nverification\n";
  bool ok = true;
  {
    std::vector<SeenSpan> acquires = printer->Spans("lock.acquire", order);
    std::vector<SeenSpan> holds = printer->Spans("lock.hold", order);
    int waited = 0;
    for (const SeenSpan& s : acquires) {
      if (s.Get("lock.outcome") == "acquired" && std::stod(s.Get("lock.wait_seconds")) >= 0.1) {
        ++waited;
      }
    }
    ok &= Check("contended: With returned OK", contended.ok(), contended.ToString());
    ok &= Check("contended: 2 acquire spans, 1 waited >= 100ms",
                acquires.size() == 2 && waited == 1,
                absl::StrCat(acquires.size(), " spans, ", waited, " waited"));
    bool released = holds.size() == 2;
    for (const SeenSpan& s : holds) {
      released &= s.ok && s.Get("lock.outcome") == "released" && s.Get("lock.lost") == "false" &&
                  s.Get("lock.fencing_token") != "";
    }
    ok &= Check("contended: 2 hold spans released, with tokens", released,
                absl::StrCat(holds.size(), " hold spans"));
  }
  {
    std::vector<SeenSpan> acquires = printer->Spans("lock.acquire", nightly);
    int skips = 0;
    for (const SeenSpan& s : acquires) skips += !s.ok && s.Get("lock.outcome") == "skipped";
    ok &= Check("skipped: With returned IsSkipped", lock::IsSkipped(skipped), skipped.ToString());
    ok &= Check("skipped: 1 acquire span with outcome skipped", skips == 1,
                absl::StrCat(skips, " skipped spans"));
  }
  {
    std::vector<SeenSpan> acquires = printer->Spans("lock.acquire", slow);
    int expired = 0;
    for (const SeenSpan& s : acquires) {
      expired += !s.ok && s.Get("lock.outcome") == "deadline_exceeded";
    }
    ok &= Check("deadline: With returned IsDeadlineExceeded", lock::IsDeadlineExceeded(deadline),
                deadline.ToString());
    ok &= Check("deadline: 1 acquire span with outcome deadline_exceeded", expired == 1,
                absl::StrCat(expired, " such spans"));
  }
  {
    std::vector<SeenSpan> holds = printer->Spans("lock.hold", lost);
    const bool span_lost = holds.size() == 1 && !holds[0].ok &&
                           holds[0].Get("lock.outcome") == "lost" &&
                           holds[0].Get("lock.lost") == "true";
    ok &= Check("lost: With returned IsLost", lock::IsLost(lost_status), lost_status.ToString());
    ok &= Check("lost: 1 hold span with outcome lost", span_lost,
                absl::StrCat(holds.size(), " hold spans"));
    ok &= Check("lost: a lock_lost event", printer->HasEvent("lock_lost", lost));
    ok &= Check("lost: no line shows the owner token",
                !owner_token.empty() && !printer->AnyLineContains(owner_token),
                owner_token.empty() ? "no token seen" : "token printed");
  }
  std::cout << (ok ? "all checks passed" : "CHECKS FAILED") << "\n";
  return ok ? 0 : 1;
}
