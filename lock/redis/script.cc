#include "lock/redis/script.h"

#include <charconv>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lock::redis {
namespace {

absl::StatusOr<ReplyPtr> Eval(Connection& conn, absl::string_view verb,
                              absl::string_view script_or_sha,
                              absl::Span<const absl::string_view> keys,
                              absl::Span<const absl::string_view> args,
                              absl::Duration timeout) {
  char numkeys[24];
  char* end = std::to_chars(numkeys, numkeys + sizeof(numkeys), keys.size()).ptr;
  absl::InlinedVector<absl::string_view, 12> argv;
  argv.reserve(3 + keys.size() + args.size());
  argv.push_back(verb);
  argv.push_back(script_or_sha);
  argv.push_back(absl::string_view(numkeys, end - numkeys));
  argv.insert(argv.end(), keys.begin(), keys.end());
  argv.insert(argv.end(), args.begin(), args.end());
  return conn.RawCommand(argv, timeout);
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

absl::StatusOr<ReplyPtr> RunScriptReply(Connection& conn,
                                        const scripts::EmbeddedScript& script,
                                        absl::Span<const absl::string_view> keys,
                                        absl::Span<const absl::string_view> args,
                                        absl::Duration timeout,
                                        bool always_eval) {
  if (always_eval) return Eval(conn, "EVAL", script.body, keys, args, timeout);
  absl::StatusOr<ReplyPtr> reply = Eval(conn, "EVALSHA", script.sha1, keys, args, timeout);
  if (reply.ok() && (*reply)->type == REDIS_REPLY_ERROR &&
      absl::StartsWith(ReplyText(**reply), "NOSCRIPT")) {
    reply = Eval(conn, "EVAL", script.body, keys, args, timeout);
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
  return Mapped(Eval(conn, "EVAL", script.body, keys, args, timeout), conn, script);
}

}  // namespace lock::redis
