#include "tools/lockctl/stats_dump.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "util/strings.h"

namespace lockctl {
namespace {

using lock::HistogramSnapshot;
using lock::PolicyStats;

// The library's metric names (lock/stats.cc): the same in both formats.
struct CounterField {
  const char* name;
  int64_t PolicyStats::*field;
};
constexpr CounterField kCounters[] = {
    {"lock_acquired_total", &PolicyStats::acquired},
    {"lock_busy_total", &PolicyStats::busy},
    {"lock_skipped_total", &PolicyStats::skipped},
    {"lock_acquire_errors_total", &PolicyStats::errors},
    {"lock_released_total", &PolicyStats::released},
    {"lock_active", &PolicyStats::active},
    {"lock_waiting", &PolicyStats::waiting},
    {"lock_lost_total", &PolicyStats::lost},
    {"lock_waits_woken_by_notify_total", &PolicyStats::waits_woken_by_notify},
    {"lock_waits_woken_by_timer_total", &PolicyStats::waits_woken_by_timer},
    {"lock_renewals_total", &PolicyStats::renewals},
    {"lock_renewal_errors_total", &PolicyStats::renewal_errors},
    {"lock_skipped_renewals_total", &PolicyStats::skipped_renewals},
};

struct HistogramField {
  const char* name;
  const char* label;  // for tables
  HistogramSnapshot PolicyStats::*field;
};
constexpr HistogramField kHistograms[] = {
    {"lock_acquire_wait_seconds", "acquire wait", &PolicyStats::acquire_wait},
    {"lock_hold_seconds", "hold time", &PolicyStats::hold_time},
    {"lock_script_call_seconds", "script call", &PolicyStats::script_call},
    {"lock_renewal_seconds", "renewal", &PolicyStats::renewal_latency},
};

constexpr size_t kBuckets = HistogramSnapshot::kBounds.size();

// Index of `bound` in kBounds, or kBuckets for +Inf; -1 if unknown.
int BucketIndex(double bound) {
  for (size_t i = 0; i < kBuckets; ++i) {
    if (std::fabs(HistogramSnapshot::kBounds[i] - bound) <=
        1e-9 * HistogramSnapshot::kBounds[i]) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

// ---- JSON (lock::StatsJson) -------------------------------------------------

absl::Status BadJson(absl::string_view where, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("stats JSON: ", where, ": ", why));
}

absl::StatusOr<int64_t> JsonInt(const nlohmann::json& v,
                                absl::string_view where) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float())
    return static_cast<int64_t>(std::llround(v.get<double>()));
  return BadJson(where, "expected a number");
}

absl::StatusOr<HistogramSnapshot> JsonHistogram(const nlohmann::json& j,
                                                const std::string& where) {
  HistogramSnapshot h;
  if (!j.is_object()) return BadJson(where, "expected an object");
  if (j.contains("count")) {
    absl::StatusOr<int64_t> c = JsonInt(j["count"], where + "/count");
    if (!c.ok()) return c.status();
    h.count = *c;
  }
  if (j.contains("sum_seconds") && j["sum_seconds"].is_number()) {
    h.sum_seconds = j["sum_seconds"].get<double>();
  }
  if (!j.contains("buckets")) return h;
  const nlohmann::json& b = j["buckets"];
  if (!b.is_array()) return BadJson(where + "/buckets", "expected an array");
  for (size_t i = 0; i < b.size(); ++i) {
    const std::string at = absl::StrCat(where, "/buckets/", i);
    if (!b[i].is_array() || b[i].size() != 2) {
      return BadJson(at, "expected [upper_bound, count]");
    }
    int index = -1;
    if (b[i][0].is_string() && b[i][0].get<std::string>() == "+Inf") {
      index = static_cast<int>(kBuckets);
    } else if (b[i][0].is_number()) {
      index = BucketIndex(b[i][0].get<double>());
    }
    if (index < 0) return BadJson(at, "bucket bound unknown to this build");
    absl::StatusOr<int64_t> n = JsonInt(b[i][1], at);
    if (!n.ok()) return n.status();
    h.buckets[index] = *n;
  }
  return h;
}

absl::StatusOr<StatsDump> ParseJson(std::string_view text) {
  nlohmann::json root =
      nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return BadJson("/", "not valid JSON");
  if (!root.is_object() || !root.contains("policies") ||
      !root["policies"].is_object()) {
    return BadJson("/policies", "missing: not a lock::StatsJson() dump");
  }
  StatsDump dump;
  dump.format = DumpFormat::kJson;
  auto global = [&](const char* name, int64_t* out) -> absl::Status {
    if (!root.contains(name)) return absl::OkStatus();
    absl::StatusOr<int64_t> v = JsonInt(root[name], absl::StrCat("/", name));
    if (!v.ok()) return v.status();
    *out = *v;
    return absl::OkStatus();
  };
  for (auto [name, out] :
       {std::pair{"worker_queue_len", &dump.renewal_queue_len},
        std::pair{"worker_queue_cap", &dump.renewal_queue_cap},
        std::pair{"renewal_round_trips", &dump.renewal_round_trips},
        std::pair{"config_reloads", &dump.config_reloads},
        std::pair{"config_reload_errors", &dump.config_reload_errors}}) {
    if (absl::Status s = global(name, out); !s.ok()) return s;
  }
  for (const auto& [policy, j] : root["policies"].items()) {
    const std::string where = "/policies/" + policy;
    if (!j.is_object()) return BadJson(where, "expected an object");
    // What tells a stats dump from any other JSON with "policies" (such as
    // a policy configuration).
    if (!j.contains("lock_acquired_total")) {
      return BadJson(where,
                     "no lock_acquired_total: not a lock::StatsJson() dump");
    }
    PolicyStats& p = dump.per_policy[policy];
    if (j.contains("kind") && j["kind"].is_string()) p.kind = j["kind"].get<std::string>();
    for (const CounterField& c : kCounters) {
      if (!j.contains(c.name)) continue;
      absl::StatusOr<int64_t> v =
          JsonInt(j[c.name], absl::StrCat(where, "/", c.name));
      if (!v.ok()) return v.status();
      p.*(c.field) = *v;
    }
    for (const HistogramField& h : kHistograms) {
      if (!j.contains(h.name)) continue;
      absl::StatusOr<HistogramSnapshot> v =
          JsonHistogram(j[h.name], absl::StrCat(where, "/", h.name));
      if (!v.ok()) return v.status();
      p.*(h.field) = *v;
    }
  }
  return dump;
}

// ---- Prometheus text (lock::StatsPrometheusText) ----------------------------

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

absl::Status BadLine(size_t line_no, absl::string_view line,
                     absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("stats text line ", line_no, ": ", why, ": \"", line, "\""));
}

// name{k="v",...} value   (timestamps, if any, are ignored)
absl::StatusOr<Sample> ParseSample(absl::string_view line, size_t line_no) {
  Sample s;
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ' && line[i] != '\t')
    ++i;
  s.name = std::string(line.substr(0, i));
  if (s.name.empty()) return BadLine(line_no, line, "no metric name");
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      while (i < line.size() && (line[i] == ' ' || line[i] == ',')) ++i;
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      const size_t eq = line.find('=', i);
      if (eq == absl::string_view::npos || eq + 1 >= line.size() ||
          line[eq + 1] != '"') {
        return BadLine(line_no, line, "malformed label");
      }
      std::string key(absl::StripAsciiWhitespace(line.substr(i, eq - i)));
      std::string value;
      i = eq + 2;
      bool closed = false;
      for (; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size()) {
          const char next = line[++i];
          value += next == 'n' ? '\n' : next;
        } else if (line[i] == '"') {
          closed = true;
          ++i;
          break;
        } else {
          value += line[i];
        }
      }
      if (!closed) return BadLine(line_no, line, "unterminated label value");
      s.labels[key] = std::move(value);
    }
  }
  absl::string_view rest =
      absl::StripAsciiWhitespace(line.substr(std::min(i, line.size())));
  absl::string_view value = rest.substr(0, rest.find_first_of(" \t"));
  if (value == "+Inf") {
    s.value = HUGE_VAL;
  } else if (!absl::SimpleAtod(value, &s.value)) {
    return BadLine(line_no, line, "bad sample value");
  }
  return s;
}

int64_t AsInt(double v) { return static_cast<int64_t>(std::llround(v)); }

absl::StatusOr<StatsDump> ParsePrometheus(std::string_view text) {
  StatsDump dump;
  dump.format = DumpFormat::kPrometheus;
  // Cumulative bucket counts per (policy, histogram), turned into per-bucket
  // counts at the end.
  std::map<std::pair<std::string, const HistogramField*>,
           std::array<int64_t, kBuckets + 1>>
      cumulative;
  size_t line_no = 0;
  for (absl::string_view line :
       absl::StrSplit(util::ToAbsl(text), '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    absl::StatusOr<Sample> s = ParseSample(line, line_no);
    if (!s.ok()) return s.status();
    if (s->name == "lock_renewal_queue_length") {
      dump.renewal_queue_len = AsInt(s->value);
      continue;
    }
    if (s->name == "lock_renewal_queue_capacity") {
      dump.renewal_queue_cap = AsInt(s->value);
      continue;
    }
    if (s->name == "lock_renewal_round_trips_total") {
      dump.renewal_round_trips = AsInt(s->value);
      continue;
    }
    if (s->name == "lock_config_reloads_total") {
      dump.config_reloads = AsInt(s->value);
      continue;
    }
    if (s->name == "lock_config_reload_errors_total") {
      dump.config_reload_errors = AsInt(s->value);
      continue;
    }
    auto policy = s->labels.find("policy");
    if (policy == s->labels.end()) continue;  // not ours
    if (s->name == "lock_policy_info") {
      if (auto kind = s->labels.find("kind"); kind != s->labels.end()) {
        dump.per_policy[policy->second].kind = kind->second;
      }
      continue;
    }
    bool known = false;
    for (const CounterField& c : kCounters) {
      if (s->name == c.name) {
        dump.per_policy[policy->second].*(c.field) = AsInt(s->value);
        known = true;
        break;
      }
    }
    if (known) continue;
    for (const HistogramField& h : kHistograms) {
      absl::string_view suffix = s->name;
      if (!absl::ConsumePrefix(&suffix, h.name)) continue;
      HistogramSnapshot& snap = dump.per_policy[policy->second].*(h.field);
      if (suffix == "_sum") {
        snap.sum_seconds = s->value;
      } else if (suffix == "_count") {
        snap.count = AsInt(s->value);
      } else if (suffix == "_bucket") {
        auto le = s->labels.find("le");
        if (le == s->labels.end())
          return BadLine(line_no, line, "bucket without le");
        int index = -1;
        double bound = 0;
        if (le->second == "+Inf") {
          index = static_cast<int>(kBuckets);
        } else if (absl::SimpleAtod(le->second, &bound)) {
          index = BucketIndex(bound);
        }
        if (index < 0)
          return BadLine(line_no, line, "bucket bound unknown to this build");
        cumulative[{policy->second, &h}][index] = AsInt(s->value);
      }
      break;
    }
  }
  for (const auto& [where, cum] : cumulative) {
    HistogramSnapshot& snap =
        dump.per_policy[where.first].*(where.second->field);
    int64_t prev = 0;
    for (size_t i = 0; i <= kBuckets; ++i) {
      // A missing bucket line reads as "no new observations".
      const int64_t c = std::max(cum[i], prev);
      snap.buckets[i] = c - prev;
      prev = c;
    }
  }
  if (dump.per_policy.empty() && line_no > 0 &&
      text.find("lock_") == std::string_view::npos) {
    return absl::InvalidArgumentError(
        "stats text: no lock_* metrics: not a lock::StatsPrometheusText() "
        "dump");
  }
  return dump;
}

std::string Pad(absl::string_view s, size_t width) {
  std::string out(s);
  if (out.size() < width) out.append(width - out.size(), ' ');
  return out;
}

}  // namespace

absl::StatusOr<StatsDump> ParseStatsDump(std::string_view text) {
  const absl::string_view t =
      absl::StripLeadingAsciiWhitespace(util::ToAbsl(text));
  if (t.empty()) return absl::InvalidArgumentError("stats dump is empty");
  if (t[0] == '{') return ParseJson(text);
  if (t[0] == '#' || absl::StartsWith(t, "lock_")) return ParsePrometheus(text);
  return absl::InvalidArgumentError(
      "stats dump is neither lock::StatsJson() JSON (starts with '{') nor "
      "lock::StatsPrometheusText() text (starts with '#' or 'lock_')");
}

void AddPolicyStats(PolicyStats& into, const PolicyStats& from) {
  for (const CounterField& c : kCounters) into.*(c.field) += from.*(c.field);
  for (const HistogramField& h : kHistograms) {
    HistogramSnapshot& a = into.*(h.field);
    const HistogramSnapshot& b = from.*(h.field);
    for (size_t i = 0; i < a.buckets.size(); ++i) a.buckets[i] += b.buckets[i];
    a.count += b.count;
    a.sum_seconds += b.sum_seconds;
  }
}

void AddDump(StatsDump& into, const StatsDump& from) {
  for (const auto& [name, p] : from.per_policy)
    AddPolicyStats(into.per_policy[name], p);
  into.renewal_queue_len += from.renewal_queue_len;
  into.renewal_queue_cap += from.renewal_queue_cap;
  into.renewal_round_trips += from.renewal_round_trips;
  into.config_reloads += from.config_reloads;
  into.config_reload_errors += from.config_reload_errors;
}

double EstimateQuantile(const HistogramSnapshot& h, double q) {
  int64_t total = 0;
  for (int64_t b : h.buckets) total += b;
  if (total == 0) return 0;
  const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(total);
  int64_t seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    const int64_t n = h.buckets[i];
    if (n > 0 && static_cast<double>(seen + n) >= rank) {
      const double lower = i == 0 ? 0.0 : HistogramSnapshot::kBounds[i - 1];
      const double upper = HistogramSnapshot::kBounds[i];
      return lower + (upper - lower) * (rank - static_cast<double>(seen)) /
                         static_cast<double>(n);
    }
    seen += n;
  }
  return HistogramSnapshot::kBounds.back();
}

int64_t DerivedRetries(const PolicyStats& s) {
  const int64_t release_calls = s.acquired - s.active;
  const int64_t first_attempts = s.acquired + s.busy + s.skipped + s.errors;
  return std::max<int64_t>(
      0, s.script_call.count - release_calls - first_attempts);
}

std::string FormatSeconds(double seconds) {
  if (seconds <= 0) return "0";
  const char* unit = "s";
  double v = seconds;
  if (seconds < 1e-3) {
    v = seconds * 1e6;
    unit = "us";
  } else if (seconds < 1) {
    v = seconds * 1e3;
    unit = "ms";
  }
  // Thresholds just below 10 and 100, so that rounding never prints "10.00"
  // or "100.0".
  if (v < 9.995) return absl::StrFormat("%.2f%s", v, unit);
  if (v < 99.95) return absl::StrFormat("%.1f%s", v, unit);
  return absl::StrFormat("%.0f%s", v, unit);
}

std::string RenderStatsTables(const StatsDump& dump) {
  std::string out;
  constexpr size_t kName = 30;
  auto row = [&](absl::string_view name, const std::string& value) {
    absl::StrAppend(&out, "  ", Pad(name, kName), " ", value, "\n");
  };
  if (dump.per_policy.empty())
    return "no lock statistics (no policy was used)\n";
  bool first = true;
  for (const auto& [name, p] : dump.per_policy) {
    if (!first) out += "\n";
    first = false;
    absl::StrAppend(&out, "policy ", name, "\n");
    row("acquired", absl::StrCat(p.acquired));
    row("busy (gave up)", absl::StrCat(p.busy));
    row("skipped (on_busy=skip)", absl::StrCat(p.skipped));
    row("errors", absl::StrCat(p.errors));
    row("released", absl::StrCat(p.released));
    row("held now", absl::StrCat(p.active));
    row("waiting now", absl::StrCat(p.waiting));
    row("lost while held", absl::StrCat(p.lost));
    row("waited (notify + timer)",
        absl::StrCat(p.waits_woken_by_notify + p.waits_woken_by_timer));
    row("  woken by notify", absl::StrCat(p.waits_woken_by_notify));
    row("  woken by timer", absl::StrCat(p.waits_woken_by_timer));
    row("renewals", absl::StrCat(p.renewals));
    row("renewal errors", absl::StrCat(p.renewal_errors));
    row("skipped renewals", absl::StrCat(p.skipped_renewals));
    for (const HistogramField& h : kHistograms) {
      const HistogramSnapshot& s = p.*(h.field);
      if (s.count == 0) {
        row(absl::StrCat(h.label, " p50/p90/p99"), "-");
        continue;
      }
      row(absl::StrCat(h.label, " p50/p90/p99"),
          absl::StrCat(FormatSeconds(EstimateQuantile(s, 0.5)), " / ",
                       FormatSeconds(EstimateQuantile(s, 0.9)), " / ",
                       FormatSeconds(EstimateQuantile(s, 0.99)),
                       "  (n=", s.count, ", mean ",
                       FormatSeconds(s.sum_seconds / s.count), ")"));
    }
  }
  if (dump.renewal_round_trips > 0 || dump.renewal_queue_cap > 0) {
    absl::StrAppend(&out, "\nrenewal workers\n");
    row("pipelines sent", absl::StrCat(dump.renewal_round_trips));
    row("queue length / capacity",
        absl::StrCat(dump.renewal_queue_len, " / ", dump.renewal_queue_cap));
  }
  if (dump.config_reloads > 0 || dump.config_reload_errors > 0) {
    absl::StrAppend(&out, "\nconfiguration (hot reload)\n");
    row("changes swapped in", absl::StrCat(dump.config_reloads));
    row("edits refused", absl::StrCat(dump.config_reload_errors));
  }
  return out;
}

nlohmann::json StatsDumpToJson(const StatsDump& dump) {
  nlohmann::json policies = nlohmann::json::object();
  for (const auto& [name, p] : dump.per_policy) {
    nlohmann::json j;
    for (const CounterField& c : kCounters) j[c.name] = p.*(c.field);
    for (const HistogramField& h : kHistograms) {
      const HistogramSnapshot& s = p.*(h.field);
      j[h.name] = {{"count", s.count},
                   {"sum_seconds", s.sum_seconds},
                   {"p50_seconds", EstimateQuantile(s, 0.5)},
                   {"p90_seconds", EstimateQuantile(s, 0.9)},
                   {"p99_seconds", EstimateQuantile(s, 0.99)}};
    }
    policies[name] = std::move(j);
  }
  return {{"format", dump.format == DumpFormat::kJson ? "json" : "prometheus"},
          {"renewal_round_trips", dump.renewal_round_trips},
          {"renewal_queue_len", dump.renewal_queue_len},
          {"renewal_queue_cap", dump.renewal_queue_cap},
          {"config_reloads", dump.config_reloads},
          {"config_reload_errors", dump.config_reload_errors},
          {"policies", std::move(policies)}};
}

}  // namespace lockctl
