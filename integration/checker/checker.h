// Verifies the history of a lock workload (history.h) against what a
// distributed lock with fencing promises.
//
//   absl::StatusOr<History> h = ReadHistory(files);
//   Report r = Check(*h, final_state);   // final_state: each resource's last
//   std::cout << r.Summary();            // value and fence, read from Redis
//   return r.ok() ? 0 : 1;
//
// The rules, per lock key (each names the ViolationKind it reports). A key's
// sections say which kind of lock it is (Op::kind); "exclusive" sections
// are those of a mutex or fair lock and the writes of a read_write lock:
//  kOverlap            no two critical sections overlap in Redis TIME (the
//                      machine's monotonic clock when TIME is missing) while
//                      neither was told it lost the lock, where at least one
//                      is exclusive: read holds may overlap each other, and
//                      semaphore permits are counted by kOverPermits. A
//                      section of a process that died inside holds until the
//                      end of the lease it saw in Redis (Op::
//                      lease_end_redis_us), in Redis TIME only; without one
//                      it is not a live holder.
//  kOverPermits        semaphore: never more than `permits` sections inside
//                      at once in Redis TIME among those not told they lost
//                      (a dead holder counted as above, so a permit returned
//                      before its lease ended is caught).
//  kOrder              fair: grants follow request order. For two sections A
//                      and B where B's With began more than kOrderMarginNs
//                      after A's and A entered more than kOrderMarginNs after
//                      B's With began (so A was queued first and B queued
//                      while A still waited), A entered first. Sections that
//                      died or were told they lost, or waited while their
//                      process was stalled (History::stalled), are not judged.
//  kFenceOrder         fencing tokens strictly increase in acquisition order
//                      among exclusive sections:
//                      a section whose With call began after another section
//                      had entered holds a higher token.
//  kStaleWriteAccepted no fenced write was accepted after a write of a holder
//                      that acquired later had already completed: that is the
//                      write fencing exists to refuse.
//  kFreshWriteRejected no write was refused unless a write with a higher
//                      token was accepted (or may have been) before it.
//  kDuplicateValue     each section writes (value it read) + 1; two accepted
//  kValueGap           writes of one value are a lost update, and a value
//  kFinalState         below the final one that nobody wrote means data was
//                      lost; the resource's final value and fence must be
//                      those of an accepted (or possibly applied) write with
//                      the highest accepted token.
//  kPhantomHold        no section ran while Redis named another owner (for a
//                      shared hold: did not list its token among the holders
//                      or readers) without being told it lost the lock.
//  kCounts             every process that exited normally logged exactly the
//                      operations it counted; no line is duplicated.
// "Before" between writes is judged on the machine's monotonic clock, which
// all processes of a run share: a write happens between the moment its
// request was sent and the moment its reply arrived. A write whose reply
// never came may have happened at any time after it was sent.
#ifndef INTEGRATION_CHECKER_CHECKER_H_
#define INTEGRATION_CHECKER_CHECKER_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "integration/checker/history.h"
#include "nlohmann/json.hpp"

namespace lock::checker {

enum class ViolationKind {
  kOverlap,
  kFenceOrder,
  kStaleWriteAccepted,
  kFreshWriteRejected,
  kDuplicateValue,
  kValueGap,
  kFinalState,
  kPhantomHold,
  kCounts,
  kOverPermits,
  kOrder,
};
inline constexpr int kViolationKinds = 11;

// The slack kOrder allows between a With call and its request taking its
// place in the queue in Redis (times are the machine's monotonic clock,
// which every process of a run shares): more than a thread of a loaded
// 2-core machine (sanitizers, tests in parallel) is likely to stall for.
inline constexpr int64_t kOrderMarginNs = 20'000'000;

// "overlap", "fence_order", ... (the names used in reports).
const char* ViolationKindName(ViolationKind kind);

struct Violation {
  ViolationKind kind;
  std::string key;  // "" for kCounts problems that concern no key
  std::string detail;
};

// The resource a key's sections write, as Redis holds it at the end.
struct FinalState {
  bool present = false;  // the resource exists
  int64_t value = 0;
  int64_t fence = 0;
};

struct Report {
  int64_t operations = 0;      // calls of lock::With
  int64_t entered = 0;         // critical sections that ran
  int64_t losses_signalled = 0;
  int64_t died = 0;            // sections cut short by their process dying
  int64_t writes_accepted = 0;
  int64_t stale_writes_rejected = 0;
  int64_t stale_writes_accepted = 0;  // = kStaleWriteAccepted violations
  int64_t writes_failed = 0;          // error replies: not applied
  int64_t writes_unknown = 0;         // no reply: may have been applied
  int64_t overlaps = 0;               // = kOverlap violations
  // Overlapping sections where at least one was told it lost the lock: what
  // fencing is for, not a violation.
  int64_t signalled_overlaps = 0;
  // Shared holds (semaphore permits, read holds) of one key inside at once
  // in Redis TIME, among holders not told they lost: the highest seen.
  int64_t max_shared_holds = 0;
  // fair: the pairs of sections kOrder judged (both demonstrably queued).
  int64_t order_pairs_judged = 0;
  // read_write: write calls, those that never entered (busy, error), those
  // whose wait for the lock ran out (busy: ABORTED), and the longest wait
  // of one that entered, from its With call to entering.
  int64_t write_calls = 0;
  int64_t write_calls_not_entered = 0;
  int64_t write_calls_busy = 0;
  int64_t max_write_wait_ms = 0;
  std::map<std::string, int64_t> results;  // With's result code -> count
  std::vector<Violation> violations;
  std::vector<std::string> notes;

  bool ok() const { return violations.empty(); }
  int64_t Count(ViolationKind kind) const;
  // The kinds that occurred.
  std::set<ViolationKind> Kinds() const;
  nlohmann::json ToJson() const;
  // Human-readable: the counters, then each violation (at most
  // `max_details` per kind).
  std::string Summary(int max_details = 5) const;
};

Report Check(const History& history,
             const std::map<std::string, FinalState>& final_state);

}  // namespace lock::checker

#endif  // INTEGRATION_CHECKER_CHECKER_H_
