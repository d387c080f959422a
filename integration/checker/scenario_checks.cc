// Coordinator::ScenarioChecks: what each scenario promises beyond the
// checker's rules, judged from the history, Redis and the fault's timing.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "integration/checker/coordinator.h"

#include <algorithm>
#include "integration/checker/workload.h"

namespace lock::checker::driver {
namespace {

int64_t InfoField(harness::RedisServer& redis, const std::string& section,
                  const std::string& field) {
  absl::StatusOr<std::string> info = redis.Exec({"INFO", section});
  if (!info.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(*info, "\r\n")) {
    if (absl::ConsumePrefix(&line, field + ":")) {
      // errorstat lines look like "count=3"
      absl::ConsumePrefix(&line, "count=");
      int64_t v = 0;
      if (absl::SimpleAtoi(line, &v)) return v;
    }
  }
  return 0;
}

}  // namespace

void Coordinator::ScenarioChecks(const History& h, const Report& r) {
  const Op* victim = nullptr;
  for (const Op& op : h.ops) {
    if (op.process == 0 && op.id == victim_op_) victim = &op;  // (shared holds have token 0)
  }
  auto entered_after = [&](int64_t t, bool other_process, const std::string& key) {
    int64_t n = 0;
    for (const Op& op : h.ops) {
      if (op.entered && op.enter_steady_ns > t &&
          (!other_process || op.process != 0) && (key.empty() || op.key == key)) {
        ++n;
      }
    }
    return n;
  };
  auto result_with = [&](const std::string& code, const std::string& text) {
    int64_t n = 0;
    for (const Op& op : h.ops) {
      if (op.result == code && absl::StrContains(op.message, text)) ++n;
    }
    return n;
  };
  const std::string& s = sc_.Base();
  // Semaphore permits are shared: their sections hold no token and write
  // nothing; the other kinds' exclusive sections make fenced writes.
  const bool victim_writes = sc_.kind != "semaphore";
  if (s == "baseline") {
    checks_.push_back({"work done", r.entered > 0 && (!victim_writes || r.writes_accepted > 0),
                       absl::StrCat(r.entered, " critical sections, ", r.writes_accepted,
                                    " fenced writes accepted")});
  }
  if (s == "kill9") {
    int64_t first = -1;
    for (const Op& op : h.ops) {
      if (op.entered && op.key == victim_key_ && op.enter_steady_ns > fault_start_ns_ &&
          (first < 0 || op.enter_steady_ns < first)) {
        first = op.enter_steady_ns;
      }
    }
    const int64_t takeover_ms = first < 0 ? -1 : (first - fault_start_ns_) / 1'000'000;
    measures_["takeover_ms"] = takeover_ms;
    checks_.push_back({"killed holder's lock taken over after its ttl",
                       first >= 0 && takeover_ms <= f_.ttl_ms + 2000,
                       absl::StrCat("key ", victim_key_, " re-acquired ", takeover_ms,
                                    "ms after the kill (ttl ", f_.ttl_ms, "ms)")});
    checks_.push_back({"victim's section is in the history as died",
                       victim != nullptr && victim->died,
                       victim ? absl::StrCat("op ", victim->id, " died=", victim->died)
                              : "victim op missing"});
    if (sc_.kind != "mutex") {
      // The checker counts the dead holder until the lease it saw ends; this
      // makes sure that lease was seen, so the count had something to hold.
      checks_.push_back(
          {"victim's lease end is known", victim != nullptr && victim->lease_end_redis_us >= 0,
           victim ? absl::StrCat("lease ends at ", victim->lease_end_redis_us,
                                 " us (Redis TIME), entered at ", victim->enter_redis_us)
                  : "victim op missing"});
    }
    if (sc_.kind == "semaphore" && victim != nullptr && victim->lease_end_redis_us >= 0) {
      // No leak: once the dead holder's lease ended, all permits are granted
      // again (the sections entered afterwards, through the same checker).
      History during, after;
      for (const Op& op : h.ops) {
        if (!op.entered || &op == victim) continue;
        if (op.enter_redis_us > victim->lease_end_redis_us) after.ops.push_back(op);
        if (op.enter_redis_us < victim->lease_end_redis_us &&
            op.exit_redis_us > victim->enter_redis_us) {
          during.ops.push_back(op);
        }
      }
      // While its lease ran, the others shared the remaining permits and
      // never its own (the checker's over_permits rule, which counts the
      // dead holder, judges every moment; this names the window). How many
      // of the remaining permits were in use at once depends on where the
      // other workers were when it died (under a sanitizer they may still
      // be starting): measured, not required.
      const int64_t others = Check(during, {}).max_shared_holds;
      measures_["others_holding_during_dead_lease_max"] = others;
      checks_.push_back({"the dead holder's permit stays taken until its lease ends",
                         others <= kPermits - 1,
                         absl::StrCat("up to ", others, " others held permits at once while "
                                      "its lease ran (", kPermits - 1, " left for them)")});
      const Report later = Check(after, {});
      checks_.push_back({"the dead holder's permit comes back", later.max_shared_holds == kPermits,
                         absl::StrCat(after.ops.size(), " sections after its lease ended, up to ",
                                      later.max_shared_holds, " of ", kPermits,
                                      " permits held at once")});
    }
  }
  if (s == "sigstop" || s == "partition") {
    const bool told = victim != nullptr && victim->lost;
    const bool refused = victim != nullptr && victim->write == WriteOutcome::kRejected;
    checks_.push_back(
        {"paused holder learns it lost the lock", told,
         victim ? absl::StrCat("lost=", victim->lost, ", With returned ", victim->result)
                : "victim op missing"});
    if (victim_writes) {
      checks_.push_back(
          {"paused holder's late write is refused", refused,
           victim ? absl::StrCat("write ", WriteOutcomeName(victim->write),
                                 " with token ", victim->fence)
                  : "victim op missing"});
    }
    const int64_t others = entered_after(fault_start_ns_, true, victim_key_);
    checks_.push_back({"others took the lock meanwhile", others > 0,
                       absl::StrCat(others, " sections of other processes on ",
                                    victim_key_, " after the fault began")});
  }
  if (s == "restart_aof" || s == "restart_nopersist") {
    const std::map<std::string, int64_t> after = FenceCounters();
    int64_t regressions = 0;
    std::vector<std::string> detail;
    for (const auto& [key, before] : fences_before_) {
      // The lowest token issued after the restart, from the history.
      int64_t low = -1;
      for (const Op& op : h.ops) {
        if (op.entered && op.key == key && op.enter_steady_ns > fault_end_ns_ &&
            (low < 0 || op.fence < low)) {
          low = op.fence;
        }
      }
      if (low >= 0 && low <= before) ++regressions;
      detail.push_back(absl::StrCat(key, ": ", before, " -> ", low));
    }
    measures_["fence_counter_before_restart_to_first_token_after"] = absl::StrJoin(detail, ", ");
    measures_["keys_whose_tokens_went_backwards"] = regressions;
    const int64_t noscript = InfoField(*redis_, "errorstats", "errorstat_NOSCRIPT");
    measures_["noscript_replies_after_restart"] = noscript;
    const int64_t later = entered_after(fault_end_ns_, false, "");
    checks_.push_back({"locks work after the restart (NOSCRIPT handled)",
                       later > 0 && noscript > 0,
                       absl::StrCat(later, " sections after the restart; the server "
                                    "answered NOSCRIPT ", noscript, " times")});
    checks_.push_back({"fencing tokens keep increasing across the restart",
                       regressions == 0, absl::StrJoin(detail, ", ")});
  }
  if (s == "cluster_long_migration" || s == "extend_shorter") {
    // The victim's lease outlives several renewal margins with nothing
    // going wrong but the migration / its own shorter lease: it must keep
    // the lock, and nobody else may have entered meanwhile (the checker's
    // overlap rule proves that; this makes it visible).
    checks_.push_back(
        {"the holder keeps its lock", victim != nullptr && !victim->lost &&
                                          victim->result == "OK" &&
                                          victim->write == WriteOutcome::kAccepted,
         victim ? absl::StrCat("lost=", victim->lost, ", write ",
                               WriteOutcomeName(victim->write), ", With returned ",
                               victim->result, victim->message.empty() ? "" : " ",
                               victim->message)
                : "victim op missing"});
    int64_t inside = 0;
    if (victim != nullptr) {
      for (const Op& op : h.ops) {
        if (op.entered && op.key == victim_key_ && op.id != victim->id &&
            op.enter_steady_ns > victim->enter_steady_ns &&
            op.enter_steady_ns < victim->exit_steady_ns) {
          ++inside;
        }
      }
    }
    checks_.push_back({"nobody else entered during the hold", victim != nullptr && inside == 0,
                       absl::StrCat(inside, " sections on ", victim_key_,
                                    " began while the victim held it")});
  }
  if (s == "sentinel_failover" || s == "cluster_migration") {
    // What callers saw, by status code; ABORTED (busy: wait timed out
    // under contention) happens in the baseline too.
    std::map<std::string, int64_t> results;
    std::map<std::string, std::string> example;
    int64_t errors = 0;
    for (const Op& op : h.ops) {
      ++results[op.result];
      if (op.result != "OK" && op.result != "ABORTED" && op.result != "DIED") {
        ++errors;
        example.emplace(op.result, op.message);
      }
    }
    int64_t write_errors = 0, read_errors = 0;
    for (const Op& op : h.ops) {
      if (op.write == WriteOutcome::kFailed || op.write == WriteOutcome::kUnknown) {
        ++write_errors;
        example.emplace("write", op.message);
      }
      if (op.entered && op.write == WriteOutcome::kNone && !op.message.empty()) {
        ++read_errors;
        example.emplace("read", op.message);
      }
    }
    measures_["with_results"] = results;
    measures_["with_errors"] = errors;
    measures_["fenced_write_errors"] = write_errors;
    measures_["data_read_errors"] = read_errors;
    measures_["error_examples"] = example;
    const int64_t later = entered_after(fault_end_ns_, false, victim_key_);
    const int64_t later_any = entered_after(fault_end_ns_, false, "");
    measures_["sections_after_fault"] = later_any;
    checks_.push_back({"locks work after the fault", later > 0,
                       absl::StrCat(later, " sections on ", victim_key_, ", ",
                                    later_any, " in all, after the fault ended")});
    if (s == "cluster_migration") {
      checks_.push_back(
          {"migration is invisible to callers", errors + write_errors + read_errors == 0,
           absl::StrCat(errors, " With errors (other than busy), ", write_errors,
                        " fenced-write errors, ", read_errors, " data-read errors")});
      checks_.push_back(
          {"the holder keeps its lock across the migration",
           victim != nullptr && !victim->lost && victim->write == WriteOutcome::kAccepted,
           victim ? absl::StrCat("lost=", victim->lost, ", write ",
                                 WriteOutcomeName(victim->write), ", With returned ",
                                 victim->result)
                  : "victim op missing"});
    } else {
      measures_["victim"] =
          victim ? absl::StrCat("lost=", victim->lost, ", write ",
                                WriteOutcomeName(victim->write), ", With returned ",
                                victim->result, " ", victim->message)
                 : "victim op missing";
    }
  }
  if (s == "slow") {
    const int64_t timeouts = result_with("UNAVAILABLE", "timed out");
    measures_["calls_timed_out"] = timeouts;
    checks_.push_back({"slow server surfaces as kUnavailable timeouts", timeouts > 0,
                       absl::StrCat(timeouts, " With calls returned UNAVAILABLE "
                                    "\"timed out\"")});
    const int64_t later = entered_after(fault_end_ns_, false, "");
    checks_.push_back({"locks work after the server wakes", later > 0,
                       absl::StrCat(later, " sections afterwards")});
  }
  if (s == "oom") {
    int64_t oom_acquire = result_with("RESOURCE_EXHAUSTED", "OOM");
    int64_t oom_write = 0;
    for (const Op& op : h.ops) {
      if (op.write == WriteOutcome::kFailed && absl::StrContains(op.message, "OOM")) {
        ++oom_write;
      }
    }
    measures_["acquires_refused_oom"] = oom_acquire;
    measures_["writes_refused_oom"] = oom_write;
    checks_.push_back({"OOM surfaces as RESOURCE_EXHAUSTED naming OOM",
                       oom_acquire + oom_write > 0,
                       absl::StrCat(oom_acquire, " acquires and ", oom_write,
                                    " fenced writes refused with OOM")});
    // Any lock present while OOM must belong to a section that believed
    // it held it (or to one that was told it lost it).
    std::set<std::string> believed;
    for (const Op& op : h.ops) {
      if (op.entered && op.enter_steady_ns < fault_end_ns_ &&
          (op.exit_steady_ns == 0 || op.exit_steady_ns > fault_start_ns_)) {
        believed.insert(OwnerKey(run_, op.key));
      }
    }
    std::vector<std::string> orphans;
    for (const std::string& k : locks_during_oom_) {
      if (!believed.count(k)) orphans.push_back(k);
    }
    checks_.push_back({"no lock held in Redis that no section believed it held",
                       orphans.empty(),
                       absl::StrCat(locks_during_oom_.size(), " locks present "
                                    "under OOM; orphans: ",
                                    orphans.empty() ? "none" : absl::StrJoin(orphans, ", "))});
    const int64_t later = entered_after(fault_end_ns_, false, "");
    checks_.push_back({"locks work after memory is freed", later > 0,
                       absl::StrCat(later, " sections afterwards")});
  }
  // What each kind promises beyond the checker's rules: that the run had
  // the contention those rules need to mean something.
  if (sc_.kind == "semaphore") {
    measures_["max_permits_held"] = r.max_shared_holds;
    checks_.push_back({"all permits were in use at once (contended)",
                       r.max_shared_holds == kPermits,
                       absl::StrCat("up to ", r.max_shared_holds, " of ", kPermits,
                                    " permits held at once")});
  }
  if (sc_.kind == "read_write") {
    measures_["max_concurrent_readers"] = r.max_shared_holds;
    measures_["max_write_wait_ms"] = r.max_write_wait_ms;
    checks_.push_back({"readers share the lock", r.max_shared_holds >= 2,
                       absl::StrCat("up to ", r.max_shared_holds, " readers inside at once")});
    // Starved: a write call whose wait for the lock ran out with no fault to
    // explain it. A writer that waited on the victim (paused or killed
    // holding the write side, its lease still running) gives up because of
    // the fault, not because readers kept it out: calls made within two
    // ttl of the fault are counted apart. Calls refused for other reasons
    // (a failover's UNAVAILABLE) are counted, not judged.
    int64_t starved = 0, during_fault = 0;
    const int64_t slack_ns = 2 * static_cast<int64_t>(f_.ttl_ms) * 1'000'000;
    for (const Op& op : h.ops) {
      if (op.kind != "read_write" || op.read || op.entered || op.result != "ABORTED") continue;
      const bool near_fault = fault_start_ns_ > 0 &&
                              op.call_steady_ns >= fault_start_ns_ - slack_ns &&
                              op.call_steady_ns <= std::max(fault_end_ns_, fault_start_ns_) + slack_ns;
      ++(near_fault ? during_fault : starved);
    }
    checks_.push_back({"writers are not starved", r.write_calls > 0 && starved == 0,
                       absl::StrCat(r.write_calls - r.write_calls_not_entered, " of ",
                                    r.write_calls, " write calls entered, ", starved,
                                    " gave up waiting with no fault to explain it (",
                                    during_fault, " near the fault); longest wait ",
                                    r.max_write_wait_ms, "ms")});
  }
  if (sc_.kind == "fair") {
    measures_["order_pairs_judged"] = r.order_pairs_judged;
    checks_.push_back({"request order was judged (waiters queued)", r.order_pairs_judged > 0,
                       absl::StrCat(r.order_pairs_judged, " pairs of sections "
                                    "queued one behind the other compared")});
  }
}

}  // namespace lock::checker::driver
