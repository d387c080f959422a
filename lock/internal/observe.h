// The library's side of lock/observe.h: where the engine and the Redis layer
// report log events and spans. Each report costs one atomic load while no
// sink or tracer is set.
#ifndef LOCK_INTERNAL_OBSERVE_H_
#define LOCK_INTERNAL_OBSERVE_H_

#include <cstdint>
#include <string_view>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "lock/observe.h"

namespace lock::internal {

// What a log event is about (LogEvent's fields); empty when not one thing.
struct LogAbout {
  std::string_view policy;
  std::string_view key;
  std::string_view redis;
};

// Whether a log sink is set: callers skip building a message when not.
bool LogEnabled();
void Log(LogSeverity severity, std::string_view event, std::string_view message,
         const LogAbout& about = {});
// As Log, at most once a second per `limit_key` (an outage must not flood
// the user's logs); the next one delivered says how many were left out.
void LogLimited(LogSeverity severity, std::string_view event, std::string_view limit_key,
                std::string_view message, const LogAbout& about = {});

// Whether a tracer is set.
bool TracingEnabled();
// Delivers a span that began at `start_steady_ns` (steady clock, ns) and
// ends now.
void EmitSpan(std::string_view name, int64_t start_steady_ns, const absl::Status& status,
              absl::Span<const SpanAttribute> attributes);

// Fork handlers (lock/internal/fork.cc): the sink, tracer and rate-limit
// mutexes, held only briefly.
void ObserveForkPrepare();
void ObserveForkParent();
void ObserveForkChild();

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_OBSERVE_H_
