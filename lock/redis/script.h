// The one way the library runs a Lua script: EVALSHA with the SHA-1 computed
// at build time, falling back once to EVAL when the server answers NOSCRIPT
// (its script cache is empty after a restart, a failover or SCRIPT FLUSH).
// EVAL also re-caches the script, so the next call is an EVALSHA again.
#ifndef LOCK_REDIS_SCRIPT_H_
#define LOCK_REDIS_SCRIPT_H_

#include <chrono>
#include <cstdint>

#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "lock/redis/connection.h"
#include "lock/scripts/embedded.h"

namespace lock::redis {

// The words of one script call, for Command/Append: EVALSHA <sha1> (or EVAL
// <text> when `send_text`) <numkeys> keys... args... Views into `keys`,
// `args` and the script, which must outlive it. Not copyable: the numkeys
// word lives inside it.
class ScriptCall {
 public:
  ScriptCall(const scripts::EmbeddedScript& script, absl::Span<const absl::string_view> keys,
             absl::Span<const absl::string_view> args, bool send_text = false);
  ScriptCall(const ScriptCall&) = delete;
  ScriptCall& operator=(const ScriptCall&) = delete;

  absl::Span<const absl::string_view> argv() const { return argv_; }

 private:
  char numkeys_[24];
  absl::InlinedVector<absl::string_view, 12> argv_;
};

// WAIT <replicas> <timeout in ms, at least 1>: after a write, how many
// replicas acknowledged it.
class WaitCall {
 public:
  WaitCall(int replicas, absl::Duration timeout);
  WaitCall(const WaitCall&) = delete;
  WaitCall& operator=(const WaitCall&) = delete;

  absl::Span<const absl::string_view> argv() const { return argv_; }

 private:
  char replicas_[24];
  char ms_[24];
  absl::string_view argv_[3];
};

// Like RunScript, but a server error reply (other than a NOSCRIPT that the
// fallback resolved) comes back as a reply, so a caller can follow MOVED/ASK.
// `always_eval` sends the text at once (see EvalScript). The EVAL that
// follows a NOSCRIPT is bounded by `timeout` and by the caller's
// `deadline`, if any (nothing is sent once it passed).
absl::StatusOr<ReplyPtr> RunScriptReply(
    Connection& conn, const scripts::EmbeddedScript& script,
    absl::Span<const absl::string_view> keys, absl::Span<const absl::string_view> args,
    absl::Duration timeout, bool always_eval = false,
    std::chrono::steady_clock::time_point deadline =
        std::chrono::steady_clock::time_point::max());

absl::StatusOr<ReplyPtr> RunScript(Connection& conn,
                                   const scripts::EmbeddedScript& script,
                                   absl::Span<const absl::string_view> keys,
                                   absl::Span<const absl::string_view> args,
                                   absl::Duration timeout);

// Always sends the script text (EVAL). For calls whose reply may never be
// read, like the cancel of an acquire that timed out: a NOSCRIPT answer
// arriving after the caller gave up could not be retried.
absl::StatusOr<ReplyPtr> EvalScript(Connection& conn,
                                    const scripts::EmbeddedScript& script,
                                    absl::Span<const absl::string_view> keys,
                                    absl::Span<const absl::string_view> args,
                                    absl::Duration timeout);

}  // namespace lock::redis

#endif  // LOCK_REDIS_SCRIPT_H_
