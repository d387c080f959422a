// The operation history a lock workload leaves behind, one JSON object per
// line, and the code that reads it back.
//
//   HistoryWriter w("/tmp/run/history-0.jsonl");        // one per process
//   w.Append(EnterEvent(op));   // when the critical section starts
//   w.Append(WriteEvent(op));   // right before the fenced write is sent
//   w.Append(OpEvent(op));      // when lock::With has returned
//   w.Append(SummaryEvent(process, ops_attempted));     // clean exit only
//
//   absl::StatusOr<History> h = ReadHistory({"/tmp/run/history-0.jsonl", ...});
//
// Each line is written with one write(2) on an O_APPEND descriptor, so a
// process killed with SIGKILL loses at most the line it was writing, never
// an earlier one. The "enter" and "write" lines exist for exactly that case:
// an operation whose process died inside the critical section has no "op"
// line, and the reader rebuilds it from the lines it did leave (its write,
// if it was sent, has an unknown outcome).
//
// Times: `*_steady_ns` are CLOCK_MONOTONIC, which is one clock for every
// process of a machine, so they compare across the workload's processes;
// `*_redis_us` are the Redis server's TIME (microseconds), -1 when the
// server could not be asked.
#ifndef INTEGRATION_CHECKER_HISTORY_H_
#define INTEGRATION_CHECKER_HISTORY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace lock::checker {

// What became of the fenced write of one critical section.
enum class WriteOutcome {
  kNone,      // not attempted (the section never got that far)
  kAccepted,  // FencedSet returned OK
  kRejected,  // FencedSet returned IsStaleFence
  kFailed,    // an error reply (OOM, NOPERM...): definitely not applied
  kUnknown,   // no reply (timeout, broken connection, process died): it may
              // have been applied, at any time after it was sent
};

const char* WriteOutcomeName(WriteOutcome w);
bool WriteOutcomeFromName(const std::string& name, WriteOutcome* out);

// One call of lock::With by one thread of one process.
struct Op {
  int process = 0;
  int thread = 0;
  int64_t id = 0;  // unique within its process
  std::string key;

  // The policy's kind ("mutex", "semaphore", "read_write", "fair"): which
  // rules the checker applies to the key. `read`: a read hold of a
  // read_write lock (shared, token 0); its other sections are writes.
  // `permits`: a semaphore's number of permits.
  std::string kind = "mutex";
  bool read = false;
  int permits = 0;

  // Acquisition. `entered`: the critical section ran.
  bool entered = false;
  int64_t fence = 0;
  std::string owner;
  // Right after entering, the owner hash in Redis named this owner (false
  // when it did not, or could not be read: see owner_checked).
  bool owner_checked = false;
  bool owner_verified = false;
  // When lock::With was called. The server granted the lock somewhere between
  // this and enter_steady_ns; a process paused right after the grant enters
  // long after others that were granted later.
  int64_t call_steady_ns = 0;
  int64_t enter_steady_ns = 0;
  int64_t exit_steady_ns = 0;  // 0 when the process died inside
  int64_t enter_redis_us = -1;
  int64_t exit_redis_us = -1;
  // When the lease Redis held for this section right after it entered ends
  // (server clock, us; -1 unknown). A holder killed inside keeps its lock
  // or permit at least until then, so the checker counts it as a holder
  // until then: a lock or permit handed on earlier is caught.
  int64_t lease_end_redis_us = -1;

  // The fenced write of a counter-like value: the value read from the
  // resource plus one, guarded by `fence`.
  WriteOutcome write = WriteOutcome::kNone;
  int64_t write_value = 0;
  int64_t write_begin_steady_ns = 0;  // before the request was sent
  int64_t write_end_steady_ns = 0;    // after its reply; 0 if none came

  // The section was told it lost the lock: Held::lost(), its stop_token, or
  // With returned IsLost.
  bool lost = false;
  // The process died inside the section (no "op" line).
  bool died = false;
  // absl status code name of With's result ("OK", "ABORTED"...), "DIED" for
  // a section cut short by its process dying.
  std::string result = "OK";
  std::string message;  // With's error message, if any
};

// A process's own count of what it did, written when it exits normally.
struct ProcessSummary {
  int process = 0;
  int64_t ops = 0;
};

// Every operation of a run, plus what the processes said about themselves.
struct History {
  std::vector<Op> ops;
  std::map<int, ProcessSummary> summaries;  // by process
  std::vector<int> processes;               // every process seen, sorted
  // Integrity problems found while reading (a duplicate op id, an "op" line
  // that contradicts its "enter" line...), reported by the checker.
  std::vector<std::string> problems;
  // Harmless oddities worth printing (a truncated last line of a killed
  // process).
  std::vector<std::string> notes;
  // When a process could not run or reach Redis (SIGSTOP, a partition), by
  // process, [from, to] on the monotonic clock: not in the files, set by
  // whoever injected the fault. A fair waiter there cannot keep its place in
  // the queue, so kOrder does not judge its waits.
  std::map<int, std::vector<std::pair<int64_t, int64_t>>> stalled;
};

nlohmann::json EnterEvent(const Op& op);
nlohmann::json WriteEvent(const Op& op);
nlohmann::json OpEvent(const Op& op);
nlohmann::json SummaryEvent(int process, int64_t ops);

// Appends JSON lines to a file, one write(2) per line. Thread-safe.
class HistoryWriter {
 public:
  static absl::StatusOr<std::unique_ptr<HistoryWriter>> Open(
      const std::string& path);
  ~HistoryWriter();
  HistoryWriter(const HistoryWriter&) = delete;
  HistoryWriter& operator=(const HistoryWriter&) = delete;

  absl::Status Append(const nlohmann::json& event);

 private:
  explicit HistoryWriter(int fd) : fd_(fd) {}
  const int fd_;
};

// Collects history lines (of any number of processes, in any order) and
// turns them into operations.
class HistoryBuilder {
 public:
  // A truncated last line (a process killed mid-write) is ignored; any other
  // malformed line is an error naming the source and line number.
  absl::Status AddText(const std::string& text, const std::string& source);
  absl::Status AddEvent(const nlohmann::json& event, const std::string& where);
  History Finish();

 private:
  struct Pending {
    bool has_enter = false, has_write = false, has_op = false;
    Op enter, write, op;
  };
  std::map<std::pair<int, int64_t>, Pending> pending_;  // by (process, id)
  std::map<int, ProcessSummary> summaries_;
  std::vector<std::string> problems_;
  std::vector<std::string> notes_;
};

// Reads and merges history files.
absl::StatusOr<History> ReadHistory(const std::vector<std::string>& paths);

}  // namespace lock::checker

#endif  // INTEGRATION_CHECKER_HISTORY_H_
