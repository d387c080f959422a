#include "integration/checker/checker.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lock::checker {
namespace {

constexpr const char* kKindNames[kViolationKinds] = {
    "overlap",     "fence_order", "stale_write_accepted",
    "fresh_write_rejected", "duplicate_value", "value_gap",
    "final_state", "phantom_hold", "counts", "over_permits", "order"};

std::string Describe(const Op& op) {
  return absl::StrCat("p", op.process, "/t", op.thread, "/op", op.id,
                      " (fence ", op.fence, ")");
}

bool Live(const Op& op) { return op.entered && !op.died; }

// Holds a fencing token: mutex, fair, the write side of read_write.
bool Exclusive(const Op& op) {
  return op.kind != "semaphore" && !(op.kind == "read_write" && op.read);
}

// Shared holds: semaphore permits and read holds.
bool Shared(const Op& op) { return !Exclusive(op); }

struct Interval {
  int64_t start, end;
  const Op* op;
};

class Checker {
 public:
  Checker(const History& h, const std::map<std::string, FinalState>& final_state)
      : history_(h), final_(final_state) {}

  Report Run() {
    Totals();
    Counts();
    std::map<std::string, std::vector<const Op*>> by_key;
    for (const Op& op : history_.ops) by_key[op.key].push_back(&op);
    for (auto& [key, ops] : by_key) {
      for (const Op* op : ops) {
        if (op->kind != ops.front()->kind) {
          Add(ViolationKind::kCounts, key,
              absl::StrCat(Describe(*op), " is a ", op->kind, " section but ",
                           Describe(*ops.front()), " a ", ops.front()->kind));
          break;
        }
      }
      Overlaps(key, ops);
      SharedHolds(key, ops);
      Order(key, ops);
      FenceOrder(key, ops);
      Writes(key, ops);
      Values(key, ops);
      PhantomHolds(key, ops);
    }
    for (const auto& [key, state] : final_) {
      if (state.present && by_key.count(key) == 0) {
        Add(ViolationKind::kFinalState, key,
            absl::StrCat("resource holds value ", state.value, " (fence ",
                         state.fence, ") but no section of this run wrote it"));
      }
    }
    report_.notes.insert(report_.notes.end(), history_.notes.begin(),
                         history_.notes.end());
    report_.stale_writes_accepted = report_.Count(ViolationKind::kStaleWriteAccepted);
    report_.overlaps = report_.Count(ViolationKind::kOverlap);
    return std::move(report_);
  }

 private:
  void Add(ViolationKind kind, const std::string& key, std::string detail) {
    report_.violations.push_back(Violation{kind, key, std::move(detail)});
  }

  void Totals() {
    for (const Op& op : history_.ops) {
      ++report_.operations;
      if (op.entered) ++report_.entered;
      if (op.lost) ++report_.losses_signalled;
      if (op.died) ++report_.died;
      ++report_.results[op.result];
      if (op.kind == "read_write" && !op.read) {
        ++report_.write_calls;
        if (!op.entered) {
          ++report_.write_calls_not_entered;
          if (op.result == "ABORTED") ++report_.write_calls_busy;
        } else if (op.call_steady_ns > 0) {
          report_.max_write_wait_ms = std::max(
              report_.max_write_wait_ms, (op.enter_steady_ns - op.call_steady_ns) / 1'000'000);
        }
      }
      switch (op.write) {
        case WriteOutcome::kAccepted: ++report_.writes_accepted; break;
        case WriteOutcome::kRejected: ++report_.stale_writes_rejected; break;
        case WriteOutcome::kFailed: ++report_.writes_failed; break;
        case WriteOutcome::kUnknown: ++report_.writes_unknown; break;
        case WriteOutcome::kNone: break;
      }
    }
  }

  void Counts() {
    for (const std::string& p : history_.problems) {
      Add(ViolationKind::kCounts, "", p);
    }
    std::map<int, int64_t> per_process;
    std::map<int, int64_t> died;
    for (const Op& op : history_.ops) {
      ++per_process[op.process];
      if (op.died) ++died[op.process];
      if (!op.entered && op.write != WriteOutcome::kNone) {
        Add(ViolationKind::kCounts, op.key,
            absl::StrCat(Describe(op), " wrote without entering"));
      }
    }
    for (int p : history_.processes) {
      auto s = history_.summaries.find(p);
      if (s == history_.summaries.end()) {
        report_.notes.push_back(absl::StrCat(
            "process ", p, " left no summary (it was killed); ", died[p],
            " of its sections were cut short"));
        continue;
      }
      if (s->second.ops != per_process[p]) {
        Add(ViolationKind::kCounts, "",
            absl::StrCat("process ", p, " counted ", s->second.ops,
                         " operations but logged ", per_process[p]));
      }
      if (died[p] > 0) {
        Add(ViolationKind::kCounts, "",
            absl::StrCat("process ", p, " exited normally but ", died[p],
                         " of its operations never finished"));
      }
    }
  }

  // Sweeps intervals in start order, reporting each overlapping pair once.
  template <typename Fn>
  static void Sweep(std::vector<Interval> v, Fn on_overlap) {
    std::sort(v.begin(), v.end(), [](const Interval& a, const Interval& b) {
      return a.start < b.start;
    });
    std::multiset<std::pair<int64_t, const Interval*>> active;  // by end
    for (const Interval& cur : v) {
      while (!active.empty() && active.begin()->first <= cur.start) {
        active.erase(active.begin());
      }
      for (const auto& [end, other] : active) on_overlap(*other, cur);
      active.insert({cur.end, &cur});
    }
  }

  // Each holder's interval in Redis TIME: from entering to leaving, or, for
  // a process that died inside, to the end of the lease it saw. Sections
  // without TIME on both ends (Redis could not be asked) are left out.
  static std::vector<Interval> RedisHolds(const std::vector<const Op*>& ops) {
    std::vector<Interval> out;
    for (const Op* op : ops) {
      if (!op->entered || op->enter_redis_us < 0) continue;
      const int64_t end = op->died ? op->lease_end_redis_us : op->exit_redis_us;
      if (end >= op->enter_redis_us) out.push_back({op->enter_redis_us, end, op});
    }
    return out;
  }

  static bool HasRedisTime(const Op& op) {
    return op.enter_redis_us >= 0 && op.exit_redis_us >= 0;
  }

  // Sweeps intervals in start order and returns the most open at once;
  // `on_over(open)` is called each time more than `limit` become open (once
  // per excursion above it; `open` maps each interval's end to it).
  template <typename Fn>
  static int64_t Peak(std::vector<Interval> v, size_t limit, Fn on_over) {
    std::sort(v.begin(), v.end(), [](const Interval& a, const Interval& b) {
      return a.start < b.start;
    });
    std::multimap<int64_t, const Interval*> open;  // by end
    size_t peak = 0;
    bool over = false;
    for (const Interval& cur : v) {
      while (!open.empty() && open.begin()->first <= cur.start) open.erase(open.begin());
      if (open.size() <= limit) over = false;
      open.insert({cur.end, &cur});
      peak = std::max(peak, open.size());
      if (open.size() > limit && !over) {
        over = true;
        on_over(open);
      }
    }
    return static_cast<int64_t>(peak);
  }

  void Overlaps(const std::string& key, const std::vector<const Op*>& ops) {
    // Pairs with Redis TIME on both sides are judged by it; a pair where
    // either side lacks it (Redis could not be asked) by the monotonic clock.
    std::vector<Interval> steady;
    for (const Op* op : ops) {
      if (Live(*op)) steady.push_back({op->enter_steady_ns, op->exit_steady_ns, op});
    }
    auto report = [&](const Interval& a, const Interval& b, const char* clock) {
      if (!Exclusive(*a.op) && !Exclusive(*b.op)) return;  // shared with shared
      if (a.op->lost || b.op->lost) {
        ++report_.signalled_overlaps;
        return;
      }
      Add(ViolationKind::kOverlap, key,
          absl::StrCat(Describe(*a.op), " [", a.start, ", ", a.end, "] and ",
                       Describe(*b.op), " [", b.start, ", ", b.end, "] (",
                       clock, ") both held the lock and neither was told it "
                       "lost it"));
    };
    Sweep(RedisHolds(ops), [&](const Interval& a, const Interval& b) {
      report(a, b, "Redis TIME, us");
    });
    Sweep(steady, [&](const Interval& a, const Interval& b) {
      if (HasRedisTime(*a.op) && HasRedisTime(*b.op)) return;
      report(a, b, "monotonic clock, ns");
    });
  }

  // Semaphore permits and read holds at once, in Redis TIME, among holders
  // not told they lost; more than `permits` permits is kOverPermits.
  void SharedHolds(const std::string& key, const std::vector<const Op*>& ops) {
    std::vector<const Op*> shared;
    for (const Op* op : ops) {
      if (Shared(*op) && !op->lost) shared.push_back(op);
    }
    if (shared.empty()) return;
    const bool semaphore = shared.front()->kind == "semaphore";
    const size_t limit = semaphore ? static_cast<size_t>(shared.front()->permits)
                                   : shared.size();
    const int64_t peak = Peak(RedisHolds(shared), limit, [&](const auto& holders) {
      std::string who;
      for (const auto& [end, h] : holders) {
        absl::StrAppend(&who, who.empty() ? "" : ", ", Describe(*h->op), " [",
                        h->start, ", ", h->end, "]");
      }
      Add(ViolationKind::kOverPermits, key,
          absl::StrCat(holders.size(), " holders of ", limit,
                       " permits inside at once (Redis TIME, us): ", who));
    });
    report_.max_shared_holds = std::max(report_.max_shared_holds, peak);
  }

  // Whether `op`'s process was stalled at some point from its With call to
  // its entry (with the margin either side).
  bool Stalled(const Op& op) const {
    auto it = history_.stalled.find(op.process);
    if (it == history_.stalled.end()) return false;
    for (const auto& [from, to] : it->second) {
      if (from <= op.enter_steady_ns + kOrderMarginNs &&
          to >= op.call_steady_ns - kOrderMarginNs) {
        return true;
      }
    }
    return false;
  }

  // Fair locks grant in request order (checker.h, kOrder).
  void Order(const std::string& key, const std::vector<const Op*>& ops) {
    std::vector<const Op*> judged;
    for (const Op* op : ops) {
      if (op->kind == "fair" && op->entered && !op->died && !op->lost &&
          op->call_steady_ns > 0 && !Stalled(*op)) {
        judged.push_back(op);
      }
    }
    std::sort(judged.begin(), judged.end(), [](const Op* a, const Op* b) {
      return a->call_steady_ns < b->call_steady_ns;
    });
    for (size_t i = 0; i < judged.size(); ++i) {
      const Op* a = judged[i];
      for (size_t j = i + 1; j < judged.size(); ++j) {
        const Op* b = judged[j];
        // Later calls only come later: once B called after A entered (give
        // or take the margin), no further B was queued behind a waiting A.
        if (b->call_steady_ns + kOrderMarginNs >= a->enter_steady_ns) break;
        if (b->call_steady_ns <= a->call_steady_ns + kOrderMarginNs) continue;
        ++report_.order_pairs_judged;
        if (b->enter_steady_ns < a->enter_steady_ns) {
          Add(ViolationKind::kOrder, key,
              absl::StrCat(Describe(*a), " called With at ", a->call_steady_ns,
                           " and was still waiting when ", Describe(*b),
                           " called at ", b->call_steady_ns, ", but ", Describe(*b),
                           " entered first (", b->enter_steady_ns, " < ",
                           a->enter_steady_ns, ", monotonic ns)"));
        }
      }
    }
  }

  // Tokens must grow in the order the server granted the lock. The client
  // sees only that a grant happened between the call and the entry, so the
  // order it can prove is: A entered before B's call began. A holder paused
  // between the grant and its entry enters late with an older (lower) token,
  // and that is not a violation.
  void FenceOrder(const std::string& key, const std::vector<const Op*>& ops) {
    auto call_ns = [](const Op* op) {
      return op->call_steady_ns > 0 ? op->call_steady_ns : op->enter_steady_ns;
    };
    std::vector<const Op*> by_enter;
    for (const Op* op : ops) {
      if (op->entered && Exclusive(*op)) by_enter.push_back(op);  // token holders
    }
    std::vector<const Op*> by_call = by_enter;
    std::sort(by_enter.begin(), by_enter.end(), [](const Op* a, const Op* b) {
      return a->enter_steady_ns < b->enter_steady_ns;
    });
    std::sort(by_call.begin(), by_call.end(),
              [&](const Op* a, const Op* b) { return call_ns(a) < call_ns(b); });
    const Op* highest = nullptr;  // among the sections entered so far
    size_t next = 0;
    for (const Op* op : by_call) {
      for (; next < by_enter.size() &&
             by_enter[next]->enter_steady_ns < call_ns(op);
           ++next) {
        if (highest == nullptr || by_enter[next]->fence > highest->fence) {
          highest = by_enter[next];
        }
      }
      if (highest != nullptr && op->fence <= highest->fence) {
        Add(ViolationKind::kFenceOrder, key,
            absl::StrCat(Describe(*op), " was called after ", Describe(*highest),
                         " had entered, but its token is not higher"));
      }
    }
  }

  void Writes(const std::string& key, const std::vector<const Op*>& ops) {
    std::vector<const Op*> accepted, rejected, maybe_applied;
    for (const Op* op : ops) {
      if (op->write == WriteOutcome::kAccepted) accepted.push_back(op);
      if (op->write == WriteOutcome::kRejected) rejected.push_back(op);
      if (op->write == WriteOutcome::kAccepted ||
          op->write == WriteOutcome::kUnknown) {
        maybe_applied.push_back(op);
      }
    }
    // Stale accepted: an accepted write W of holder A, after an accepted
    // write of a holder B that acquired later than A had completed.
    std::vector<const Op*> by_end = accepted, by_begin = accepted;
    std::sort(by_end.begin(), by_end.end(), [](const Op* a, const Op* b) {
      return a->write_end_steady_ns < b->write_end_steady_ns;
    });
    std::sort(by_begin.begin(), by_begin.end(), [](const Op* a, const Op* b) {
      return a->write_begin_steady_ns < b->write_begin_steady_ns;
    });
    size_t done = 0;
    const Op* latest_acquirer = nullptr;  // among writes completed so far
    for (const Op* w : by_begin) {
      while (done < by_end.size() &&
             by_end[done]->write_end_steady_ns < w->write_begin_steady_ns) {
        const Op* b = by_end[done++];
        if (latest_acquirer == nullptr ||
            b->enter_steady_ns > latest_acquirer->enter_steady_ns) {
          latest_acquirer = b;
        }
      }
      if (latest_acquirer != nullptr &&
          latest_acquirer->enter_steady_ns > w->enter_steady_ns) {
        Add(ViolationKind::kStaleWriteAccepted, key,
            absl::StrCat("write of ", Describe(*w), " was accepted after ",
                         Describe(*latest_acquirer),
                         ", which acquired the lock later, had written"));
      }
    }
    // Fresh rejected: refused although no write with a higher token could
    // have been applied before it.
    std::sort(maybe_applied.begin(), maybe_applied.end(),
              [](const Op* a, const Op* b) {
                return a->write_begin_steady_ns < b->write_begin_steady_ns;
              });
    for (const Op* r : rejected) {
      bool explained = false;
      for (const Op* w : maybe_applied) {
        if (w->write_begin_steady_ns >= r->write_end_steady_ns) break;
        if (w->fence > r->fence) {
          explained = true;
          break;
        }
      }
      if (!explained) {
        Add(ViolationKind::kFreshWriteRejected, key,
            absl::StrCat("write of ", Describe(*r),
                         " was refused as stale, but no write with a higher "
                         "token could have been applied before it"));
      }
    }
  }

  void Values(const std::string& key, const std::vector<const Op*>& ops) {
    std::map<int64_t, std::vector<const Op*>> accepted;
    std::set<int64_t> candidates;
    int64_t top = 0;
    int64_t max_fence = 0;
    for (const Op* op : ops) {
      if (op->write == WriteOutcome::kAccepted) {
        accepted[op->write_value].push_back(op);
        max_fence = std::max(max_fence, op->fence);
      }
      if (op->write == WriteOutcome::kAccepted ||
          op->write == WriteOutcome::kUnknown) {
        candidates.insert(op->write_value);
      }
      if (op->write == WriteOutcome::kAccepted) top = std::max(top, op->write_value);
    }
    for (const auto& [value, writers] : accepted) {
      if (writers.size() > 1) {
        Add(ViolationKind::kDuplicateValue, key,
            absl::StrCat("value ", value, " was written ", writers.size(),
                         " times (first ", Describe(*writers[0]), ", then ",
                         Describe(*writers[1]),
                         "): an update was lost"));
      }
    }
    auto f = final_.find(key);
    const FinalState state = f == final_.end() ? FinalState{} : f->second;
    if (state.present) top = std::max(top, state.value);
    for (int64_t v = 1; v <= top; ++v) {
      if (candidates.count(v) == 0) {
        Add(ViolationKind::kValueGap, key,
            absl::StrCat("value ", v, " is below the final value ", top,
                         " but no section wrote it"));
        break;  // one per key is enough to point at the loss
      }
    }
    if (accepted.empty() && !state.present) return;
    if (!state.present) {
      Add(ViolationKind::kFinalState, key,
          absl::StrCat(accepted.size(), " distinct values were accepted but "
                       "the resource does not exist at the end"));
      return;
    }
    bool matches = false;
    for (const Op* op : ops) {
      if ((op->write == WriteOutcome::kAccepted ||
           op->write == WriteOutcome::kUnknown) &&
          op->write_value == state.value && op->fence == state.fence) {
        matches = true;
      }
    }
    if (!matches || state.fence < max_fence) {
      Add(ViolationKind::kFinalState, key,
          absl::StrCat("resource ends with value ", state.value, " fence ",
                       state.fence, ", which is not the write of the highest "
                       "accepted token ", max_fence));
    }
  }

  void PhantomHolds(const std::string& key, const std::vector<const Op*>& ops) {
    for (const Op* op : ops) {
      if (op->entered && op->owner_checked && !op->owner_verified && !op->lost) {
        Add(ViolationKind::kPhantomHold, key,
            absl::StrCat(Describe(*op), " ran while Redis named another owner "
                         "and was never told it had lost the lock"));
      }
    }
  }

  const History& history_;
  const std::map<std::string, FinalState>& final_;
  Report report_;
};

}  // namespace

const char* ViolationKindName(ViolationKind kind) {
  return kKindNames[static_cast<int>(kind)];
}

int64_t Report::Count(ViolationKind kind) const {
  return std::count_if(violations.begin(), violations.end(),
                       [kind](const Violation& v) { return v.kind == kind; });
}

std::set<ViolationKind> Report::Kinds() const {
  std::set<ViolationKind> kinds;
  for (const Violation& v : violations) kinds.insert(v.kind);
  return kinds;
}

nlohmann::json Report::ToJson() const {
  nlohmann::json by_kind = nlohmann::json::object();
  for (int k = 0; k < kViolationKinds; ++k) {
    const auto kind = static_cast<ViolationKind>(k);
    if (int64_t n = Count(kind)) by_kind[ViolationKindName(kind)] = n;
  }
  nlohmann::json details = nlohmann::json::array();
  for (const Violation& v : violations) {
    if (details.size() >= 50) break;
    details.push_back({{"kind", ViolationKindName(v.kind)},
                       {"key", v.key},
                       {"detail", v.detail}});
  }
  return {{"operations", operations},
          {"entered", entered},
          {"losses_signalled", losses_signalled},
          {"died", died},
          {"writes_accepted", writes_accepted},
          {"stale_writes_rejected", stale_writes_rejected},
          {"stale_writes_accepted", stale_writes_accepted},
          {"writes_failed", writes_failed},
          {"writes_unknown", writes_unknown},
          {"overlaps", overlaps},
          {"signalled_overlaps", signalled_overlaps},
          {"max_shared_holds", max_shared_holds},
          {"order_pairs_judged", order_pairs_judged},
          {"write_calls", write_calls},
          {"write_calls_not_entered", write_calls_not_entered},
          {"write_calls_busy", write_calls_busy},
          {"max_write_wait_ms", max_write_wait_ms},
          {"results", results},
          {"violations", static_cast<int64_t>(violations.size())},
          {"violations_by_kind", by_kind},
          {"violation_details", details},
          {"notes", notes}};
}

std::string Report::Summary(int max_details) const {
  std::string out = absl::StrCat(
      "operations ", operations, ", critical sections ", entered,
      ", losses signalled ", losses_signalled, ", died inside ", died, "\n",
      "fenced writes: accepted ", writes_accepted, ", stale rejected ",
      stale_writes_rejected, ", stale accepted ", stale_writes_accepted,
      ", failed ", writes_failed, ", unknown outcome ", writes_unknown, "\n",
      "overlaps: ", overlaps, " unsignalled, ", signalled_overlaps,
      " signalled\nshared holds at once (max) ", max_shared_holds,
      ", fair order pairs judged ", order_pairs_judged, ", write calls ",
      write_calls, " (not entered ", write_calls_not_entered, ", busy ",
      write_calls_busy, ", max wait ",
      max_write_wait_ms, "ms)\nresults:");
  for (const auto& [code, n] : results) absl::StrAppend(&out, " ", code, "=", n);
  absl::StrAppend(&out, "\nviolations: ", violations.size(), "\n");
  std::map<ViolationKind, int> shown;
  for (const Violation& v : violations) {
    if (shown[v.kind]++ >= max_details) continue;
    absl::StrAppend(&out, "  ", ViolationKindName(v.kind), " [", v.key, "] ",
                    v.detail, "\n");
  }
  for (const auto& [kind, n] : shown) {
    if (n > max_details) {
      absl::StrAppend(&out, "  ... and ", n - max_details, " more ",
                      ViolationKindName(kind), "\n");
    }
  }
  for (const std::string& note : notes) absl::StrAppend(&out, "note: ", note, "\n");
  return out;
}

Report Check(const History& history,
             const std::map<std::string, FinalState>& final_state) {
  return Checker(history, final_state).Run();
}

}  // namespace lock::checker
