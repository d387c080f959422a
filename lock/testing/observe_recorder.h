// Tests' log sink and tracer: they keep copies of everything delivered
// (the views lock/observe.h hands over live for the call only), installed
// for the recorder's lifetime.
#ifndef LOCK_TESTING_OBSERVE_RECORDER_H_
#define LOCK_TESTING_OBSERVE_RECORDER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lock/observe.h"

namespace lock::testing {

struct RecordedEvent {
  LogSeverity severity;
  std::string event, message, policy, key, redis;
  // Every text field, for "never contains" checks.
  std::string All() const { return absl::StrCat(event, "|", message, "|", policy, "|", key, "|", redis); }
};

struct RecordedSpan {
  std::string name;
  absl::Time start, end;
  absl::Status status;
  std::map<std::string, std::variant<bool, int64_t, double, std::string>> attributes;

  bool Has(const std::string& key) const { return attributes.count(key) > 0; }
  std::string Text(const std::string& key) const {
    auto it = attributes.find(key);
    return it != attributes.end() && std::holds_alternative<std::string>(it->second)
               ? std::get<std::string>(it->second)
               : "";
  }
  int64_t Int(const std::string& key) const {
    auto it = attributes.find(key);
    return it != attributes.end() && std::holds_alternative<int64_t>(it->second)
               ? std::get<int64_t>(it->second)
               : -1;
  }
  std::optional<bool> Bool(const std::string& key) const {
    auto it = attributes.find(key);
    if (it == attributes.end() || !std::holds_alternative<bool>(it->second)) return std::nullopt;
    return std::get<bool>(it->second);
  }
};

class Recorder : public Tracer {
 public:
  // A recorder installed as the process-wide log sink and tracer.
  static std::shared_ptr<Recorder> Make() {
    auto r = std::shared_ptr<Recorder>(new Recorder);
    std::weak_ptr<Recorder> weak = r;
    SetLogSink([weak](const LogEvent& e) {
      if (auto self = weak.lock()) self->Add(e);
    });
    SetTracer(r);
    return r;
  }
  ~Recorder() override = default;

  // Removes the process-wide sink and tracer.
  static void Uninstall() {
    SetLogSink(nullptr);
    SetTracer(nullptr);
  }

  void OnSpan(const Span& s) override {
    RecordedSpan r{std::string(s.name), s.start, s.end, s.status, {}};
    for (const SpanAttribute& a : s.attributes) {
      std::visit(
          [&](auto v) {
            if constexpr (std::is_same_v<decltype(v), std::string_view>) {
              r.attributes[std::string(a.key)] = std::string(v);
            } else {
              r.attributes[std::string(a.key)] = v;
            }
          },
          a.value);
    }
    std::lock_guard<std::mutex> lock(mu_);
    spans_.push_back(std::move(r));
  }

  std::vector<RecordedEvent> Events() const {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::vector<RecordedEvent> Events(const std::string& name) const {
    std::vector<RecordedEvent> out;
    for (RecordedEvent& e : Events()) {
      if (e.event == name) out.push_back(std::move(e));
    }
    return out;
  }
  // Spans named `name` about lock `key`, in the order they ended.
  std::vector<RecordedSpan> Spans(const std::string& name, const std::string& key) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<RecordedSpan> out;
    for (const RecordedSpan& s : spans_) {
      if (s.name == name && s.Text("lock.key") == key) out.push_back(s);
    }
    return out;
  }

 private:
  Recorder() = default;
  void Add(const LogEvent& e) {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back({e.severity, std::string(e.event), std::string(e.message),
                       std::string(e.policy), std::string(e.key), std::string(e.redis)});
  }

  mutable std::mutex mu_;
  std::vector<RecordedEvent> events_;
  std::vector<RecordedSpan> spans_;
};

}  // namespace lock::testing

#endif  // LOCK_TESTING_OBSERVE_RECORDER_H_
