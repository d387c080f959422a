#include "lock/redis/errors.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace lock::redis {
namespace {

// Before AUTH, Redis refuses long requests (more than 10 arguments, or a
// large argument) with a protocol error instead of NOAUTH, and closes the
// connection.
constexpr absl::string_view kUnauthenticated = "Protocol error: unauthenticated";

}  // namespace

ErrorReply ClassifyError(absl::string_view text) {
  struct Prefix {
    absl::string_view prefix;
    ErrorReply kind;
  };
  static constexpr Prefix kPrefixes[] = {
      {"NOSCRIPT", ErrorReply::kNoScript},     {"MOVED ", ErrorReply::kMoved},
      {"ASK ", ErrorReply::kAsk},              {"TRYAGAIN", ErrorReply::kTryAgain},
      {"READONLY", ErrorReply::kReadOnly},     {"NOAUTH", ErrorReply::kAuth},
      {"WRONGPASS", ErrorReply::kAuth},        {"NOPERM", ErrorReply::kAuth},
      {"LOADING", ErrorReply::kUnavailable},   {"BUSY", ErrorReply::kUnavailable},
      {"MASTERDOWN", ErrorReply::kUnavailable}, {"CLUSTERDOWN", ErrorReply::kUnavailable},
      {"OOM", ErrorReply::kOutOfMemory},
  };
  for (const Prefix& p : kPrefixes) {
    if (absl::StartsWith(text, p.prefix)) return p.kind;
  }
  // Older servers and AUTH without a configured password word these freely.
  if (absl::StrContains(text, kUnauthenticated) ||
      absl::StrContains(text, "invalid password") ||
      absl::StrContains(text, "AUTH <password> called without")) {
    return ErrorReply::kAuth;
  }
  return ErrorReply::kOther;
}

bool NotExecutedHere(absl::string_view text) {
  switch (ClassifyError(text)) {
    case ErrorReply::kNoScript:
    case ErrorReply::kMoved:
    case ErrorReply::kAsk:
    case ErrorReply::kTryAgain:
    case ErrorReply::kReadOnly:
      return true;
    default:
      return false;
  }
}

absl::Status ServerError(absl::string_view text, absl::string_view addr,
                         absl::string_view doing) {
  std::string msg = absl::StrCat("redis ", addr, ": ", doing, ": ", text);
  switch (ClassifyError(text)) {
    case ErrorReply::kAuth:
      if (absl::StrContains(text, kUnauthenticated)) {
        absl::StrAppend(&msg, " (NOAUTH: the server requires authentication; set the "
                              "target's password_env)");
      }
      return absl::PermissionDeniedError(msg);
    case ErrorReply::kUnavailable:
    case ErrorReply::kTryAgain:
      return absl::UnavailableError(msg);  // transient: retrying may succeed
    case ErrorReply::kOutOfMemory:
      return absl::ResourceExhaustedError(msg);
    case ErrorReply::kNoScript:
      return absl::NotFoundError(msg);
    default:
      return absl::FailedPreconditionError(msg);
  }
}

}  // namespace lock::redis
