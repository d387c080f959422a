// Logs and traces of the library, for the user's own logging and tracing
// stack. Both are off (and cost one atomic load) until set.
//
//   lock::SetLogSink([](const lock::LogEvent& e) {
//     spdlog::log(e.severity >= lock::LogSeverity::kError ? spdlog::level::err
//                                                        : spdlog::level::warn,
//                 "{} {}", e.event, e.message);
//   });
//
//   // An OpenTelemetry adapter: a span is delivered as it ends.
//   class OtelTracer : public lock::Tracer {
//     void OnSpan(const lock::Span& s) override {
//       otel::StartSpanOptions start;
//       start.start_system_time = otel::SystemTimestamp(absl::ToChronoTime(s.start));
//       auto span = tracer_->StartSpan(s.name, start);
//       for (const lock::SpanAttribute& a : s.attributes)
//         std::visit([&](auto v) { span->SetAttribute(a.key, v); }, a.value);
//       if (!s.status.ok()) span->SetStatus(otel::StatusCode::kError, s.status.ToString());
//       span->End();
//     }
//   };
//   lock::SetTracer(std::make_shared<OtelTracer>());
//
// Both are called synchronously on the thread that saw the event (a caller
// of With, a renewal worker, a library thread of an asynchronous acquire),
// possibly while the library holds an internal lock: keep them quick (hand
// the record to your logger's queue) and never call back into the lock
// library from them. The views they get live for the call only.
//
// What they never contain: a password (of a Redis target or a Sentinel) or
// an owner token (which would let a reader release a lock it does not hold).
#ifndef LOCK_OBSERVE_H_
#define LOCK_OBSERVE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <variant>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace lock {

enum class LogSeverity : int { kInfo = 0, kWarning = 1, kError = 2 };

// "INFO", "WARNING", "ERROR".
std::string_view LogSeverityName(LogSeverity s);

// One thing that happened, with its fields apart for structured logging.
struct LogEvent {
  LogSeverity severity = LogSeverity::kInfo;
  // A stable name to filter and alert on:
  //   renewal_failed          a renewal call failed (warning; the hold is
  //                           kept while its local lease lasts)
  //   lock_lost               a hold ran out of lease or was taken (error)
  //   sentinel_failover       Sentinel names another master than before
  //                           (warning)
  //   cluster_slots_refreshed the Cluster slot map was read again (info)
  //   policy_reload_accepted  an edited configuration file is in use (info)
  //   policy_reload_refused   an edited configuration file was refused; the
  //                           working policies stay (error)
  //   connection_error        a connection to Redis could not be made
  //                           (warning; at most one per address and second,
  //                           the message counts those left out)
  std::string_view event;
  std::string_view message;  // one line for people
  std::string_view policy;   // "" when not about one policy
  std::string_view key;      // the caller's key; "" when not about one lock
  std::string_view redis;    // the address or topology; "" when none
  absl::Time time;
};

using LogSink = std::function<void(const LogEvent&)>;

// Replaces the process-wide sink; an empty function silences the library
// again (the default).
void SetLogSink(LogSink sink);

// One attribute of a span, as OpenTelemetry's SetAttribute takes them.
struct SpanAttribute {
  std::string_view key;
  std::variant<bool, int64_t, double, std::string_view> value;
};

// A finished span. Names and attributes:
//   "lock.acquire"  one per acquire call (blocking, try or asynchronous),
//                   from its start until it was granted or gave up:
//                   lock.policy, lock.key, lock.kind, lock.attempts,
//                   lock.wait_seconds, lock.reentry (a re-entry of a hold of
//                   the same instance), lock.outcome ("acquired", "busy",
//                   "skipped", "deadline_exceeded", "cancelled", "error"),
//                   and lock.fencing_token once acquired. status: OK when
//                   acquired, else the outcome's status.
//   "lock.hold"     one per hold, from the acquire that took it until its
//                   release (or the release that found it lost): lock.policy,
//                   lock.key, lock.kind, lock.fencing_token, lock.lost, and
//                   lock.outcome ("released", "lost", "release_failed").
//                   status: OK when released while held, else why not.
struct Span {
  std::string_view name;
  absl::Time start;
  absl::Time end;
  absl::Status status;
  absl::Span<const SpanAttribute> attributes;
};

class Tracer {
 public:
  virtual ~Tracer() = default;
  virtual void OnSpan(const Span& span) = 0;
};

// Replaces the process-wide tracer; nullptr removes it (the default).
void SetTracer(std::shared_ptr<Tracer> tracer);

}  // namespace lock

#endif  // LOCK_OBSERVE_H_
