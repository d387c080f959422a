#include "lock/redis/script.h"

#include <algorithm>
#include <charconv>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "util/strings.h"

namespace lock::redis {
namespace {

absl::StatusOr<ReplyPtr> Eval(Connection& conn, const scripts::EmbeddedScript& script,
                              bool send_text, absl::Span<const absl::string_view> keys,
                              absl::Span<const absl::string_view> args,
                              absl::Duration timeout) {
  const ScriptCall call(script, keys, args, send_text);
  return conn.RawCommand(call.argv(), timeout);
}

// Maps an error reply to a status naming the script; passes others through.
absl::StatusOr<ReplyPtr> Mapped(absl::StatusOr<ReplyPtr> reply, Connection& conn,
                                const scripts::EmbeddedScript& script) {
  if (!reply.ok()) {
    return absl::Status(
        reply.status().code(),
        absl::StrCat(reply.status().message(), " (script ", script.name, ")"));
  }
  if ((*reply)->type == REDIS_REPLY_ERROR) {
    return ServerError(ReplyText(**reply), conn.addr(),
                       absl::StrCat("script ", script.name));
  }
  return reply;
}

}  // namespace

ScriptCall::ScriptCall(const scripts::EmbeddedScript& script,
                       absl::Span<const absl::string_view> keys,
                       absl::Span<const absl::string_view> args, bool send_text) {
  argv_.reserve(3 + keys.size() + args.size());
  argv_.push_back(send_text ? "EVAL" : "EVALSHA");
  argv_.push_back(send_text ? script.body : script.sha1);
  argv_.push_back(util::Decimal(static_cast<int64_t>(keys.size()), numkeys_));
  argv_.insert(argv_.end(), keys.begin(), keys.end());
  argv_.insert(argv_.end(), args.begin(), args.end());
}

WaitCall::WaitCall(int replicas, absl::Duration timeout)
    : argv_{"WAIT", util::Decimal(replicas, replicas_),
            util::Decimal(std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout)), ms_)} {}

absl::StatusOr<ReplyPtr> RunScriptReply(Connection& conn,
                                        const scripts::EmbeddedScript& script,
                                        absl::Span<const absl::string_view> keys,
                                        absl::Span<const absl::string_view> args,
                                        absl::Duration timeout, bool always_eval,
                                        std::chrono::steady_clock::time_point deadline) {
  if (always_eval) return Eval(conn, script, true, keys, args, timeout);
  absl::StatusOr<ReplyPtr> reply = Eval(conn, script, false, keys, args, timeout);
  if (reply.ok() && (*reply)->type == REDIS_REPLY_ERROR &&
      ClassifyError(ReplyText(**reply)) == ErrorReply::kNoScript) {
    absl::Duration left = timeout;
    if (deadline != std::chrono::steady_clock::time_point::max()) {
      left = std::min(left, absl::FromChrono(deadline - std::chrono::steady_clock::now()));
      if (left <= absl::ZeroDuration()) {
        // Not run (NOSCRIPT), and the caller's deadline left no time for the text.
        return absl::UnavailableError(absl::StrCat(
            "script ", script.name,
            " was not cached (NOSCRIPT) and the caller's deadline passed before its text "
            "could be sent"));
      }
    }
    reply = Eval(conn, script, true, keys, args, left);
  }
  return reply;
}

absl::StatusOr<ReplyPtr> RunScript(Connection& conn,
                                   const scripts::EmbeddedScript& script,
                                   absl::Span<const absl::string_view> keys,
                                   absl::Span<const absl::string_view> args,
                                   absl::Duration timeout) {
  return Mapped(RunScriptReply(conn, script, keys, args, timeout), conn, script);
}

absl::StatusOr<ReplyPtr> EvalScript(Connection& conn,
                                    const scripts::EmbeddedScript& script,
                                    absl::Span<const absl::string_view> keys,
                                    absl::Span<const absl::string_view> args,
                                    absl::Duration timeout) {
  return Mapped(Eval(conn, script, true, keys, args, timeout), conn, script);
}

}  // namespace lock::redis
