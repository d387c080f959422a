// What an error reply from Redis means, for every place that reads one: the
// one classifier (before it, five files matched reply prefixes by hand).
//
//   switch (ClassifyError(ReplyText(r))) {
//     case ErrorReply::kMoved: ...
//   }
#ifndef LOCK_REDIS_ERRORS_H_
#define LOCK_REDIS_ERRORS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lock::redis {

enum class ErrorReply {
  kNoScript,     // NOSCRIPT: the script cache is empty (restart, failover)
  kMoved,        // MOVED <slot> <addr>: the slot lives elsewhere now
  kAsk,          // ASK <slot> <addr>: the slot is being migrated there
  kTryAgain,     // TRYAGAIN: a multi-key call during a slot migration
  kReadOnly,     // READONLY: the node is a replica (a demoted master)
  kAuth,         // NOAUTH, WRONGPASS, NOPERM, bad password
  kUnavailable,  // LOADING, BUSY, MASTERDOWN, CLUSTERDOWN: transient
  kOutOfMemory,  // OOM: maxmemory reached
  kOther,        // anything else: a script error, a wrong argument...
};

ErrorReply ClassifyError(absl::string_view reply_text);

// The reply means the script was not executed where it was sent (NOSCRIPT,
// MOVED, ASK, TRYAGAIN, READONLY): the call may be run again through
// Topology::Run, which follows the redirect, resends the script text and
// waits, without doing anything twice.
bool NotExecutedHere(absl::string_view reply_text);

// Maps an error reply (REDIS_REPLY_ERROR) to a status naming `addr` and what
// was being done; the connection is fine. kPermissionDenied for
// authentication, kUnavailable for transient refusals (retrying may
// succeed), kResourceExhausted for OOM, kNotFound for NOSCRIPT,
// kFailedPrecondition otherwise.
absl::Status ServerError(absl::string_view reply_text, absl::string_view addr,
                         absl::string_view doing);

}  // namespace lock::redis

#endif  // LOCK_REDIS_ERRORS_H_
