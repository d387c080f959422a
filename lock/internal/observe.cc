#include "lock/internal/observe.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace lock {
namespace internal {
namespace {

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Observers {
  std::mutex mu;  // held only to copy or swap the pointers below
  std::shared_ptr<const LogSink> sink;
  std::shared_ptr<Tracer> tracer;
  std::atomic<bool> has_sink{false};
  std::atomic<bool> has_tracer{false};

  struct Limit {
    int64_t last_ns = 0;
    int64_t left_out = 0;
  };
  std::mutex limit_mu;
  absl::flat_hash_map<std::string, Limit> limits;  // guarded by limit_mu
};

// Never destroyed: renewal and library threads may report during exit.
Observers& Global() {
  static Observers* const o = new Observers;
  return *o;
}

}  // namespace

bool LogEnabled() { return Global().has_sink.load(std::memory_order_acquire); }

void Log(LogSeverity severity, std::string_view event, std::string_view message,
         const LogAbout& about) {
  Observers& o = Global();
  if (!o.has_sink.load(std::memory_order_acquire)) return;
  std::shared_ptr<const LogSink> sink;
  {
    std::lock_guard<std::mutex> lock(o.mu);
    sink = o.sink;
  }
  if (sink == nullptr) return;
  (*sink)(LogEvent{.severity = severity,
                   .event = event,
                   .message = message,
                   .policy = about.policy,
                   .key = about.key,
                   .redis = about.redis,
                   .time = absl::Now()});
}

void LogLimited(LogSeverity severity, std::string_view event, std::string_view limit_key,
                std::string_view message, const LogAbout& about) {
  Observers& o = Global();
  if (!o.has_sink.load(std::memory_order_acquire)) return;
  int64_t left_out = 0;
  {
    std::lock_guard<std::mutex> lock(o.limit_mu);
    Observers::Limit& l = o.limits[std::string(event) + " " + std::string(limit_key)];
    const int64_t now = SteadyNs();
    if (l.last_ns != 0 && now - l.last_ns < 1'000'000'000) {
      ++l.left_out;
      return;
    }
    l.last_ns = now;
    left_out = std::exchange(l.left_out, 0);
  }
  if (left_out == 0) return Log(severity, event, message, about);
  Log(severity, event,
      std::string(message) + absl::StrCat(" (", left_out,
                                          " more like it in the last second not logged)"),
      about);
}

bool TracingEnabled() { return Global().has_tracer.load(std::memory_order_acquire); }

void EmitSpan(std::string_view name, int64_t start_steady_ns, const absl::Status& status,
              absl::Span<const SpanAttribute> attributes) {
  Observers& o = Global();
  if (!o.has_tracer.load(std::memory_order_acquire)) return;
  std::shared_ptr<Tracer> tracer;
  {
    std::lock_guard<std::mutex> lock(o.mu);
    tracer = o.tracer;
  }
  if (tracer == nullptr) return;
  const absl::Time end = absl::Now();
  tracer->OnSpan(Span{.name = name,
                      .start = end - absl::Nanoseconds(SteadyNs() - start_steady_ns),
                      .end = end,
                      .status = status,
                      .attributes = attributes});
}

void ObserveForkPrepare() {
  Global().mu.lock();
  Global().limit_mu.lock();
}
void ObserveForkParent() {
  Global().limit_mu.unlock();
  Global().mu.unlock();
}
void ObserveForkChild() { ObserveForkParent(); }

}  // namespace internal

std::string_view LogSeverityName(LogSeverity s) {
  switch (s) {
    case LogSeverity::kInfo:
      return "INFO";
    case LogSeverity::kWarning:
      return "WARNING";
    case LogSeverity::kError:
      return "ERROR";
  }
  return "UNKNOWN";
}

void SetLogSink(LogSink sink) {
  internal::Observers& o = internal::Global();
  std::shared_ptr<const LogSink> next =
      sink ? std::make_shared<const LogSink>(std::move(sink)) : nullptr;
  std::lock_guard<std::mutex> lock(o.mu);
  o.has_sink.store(next != nullptr, std::memory_order_release);
  o.sink = std::move(next);
}

void SetTracer(std::shared_ptr<Tracer> tracer) {
  internal::Observers& o = internal::Global();
  std::lock_guard<std::mutex> lock(o.mu);
  o.has_tracer.store(tracer != nullptr, std::memory_order_release);
  o.tracer = std::move(tracer);
}

}  // namespace lock
