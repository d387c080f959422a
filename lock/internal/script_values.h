// How the engine writes numbers into script arguments and reads the
// integers its scripts answer.
#ifndef LOCK_INTERNAL_SCRIPT_VALUES_H_
#define LOCK_INTERNAL_SCRIPT_VALUES_H_

#include <algorithm>
#include <array>
#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lock/redis/reply.h"

namespace lock::internal {

// A lease in the whole milliseconds Redis gets, at least 1.
inline int64_t Millis(absl::Duration d) {
  return std::max<int64_t>(1, absl::ToInt64Milliseconds(d));
}

// An integer reply; kInternal naming `what` for anything else.
inline absl::StatusOr<int64_t> IntReply(const redisReply& r, absl::string_view what) {
  if (r.type != REDIS_REPLY_INTEGER) {
    return absl::InternalError(absl::StrCat(
        what, ": unexpected reply type ", r.type, " (want an integer)"));
  }
  return r.integer;
}

// The {status, a, b} arrays acquire.lua and inspect.lua answer.
inline absl::StatusOr<std::array<int64_t, 3>> TripleReply(const redisReply& r,
                                                          absl::string_view what) {
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 3) {
    return absl::InternalError(
        absl::StrCat(what, ": unexpected reply shape (want 3 integers)"));
  }
  std::array<int64_t, 3> out;
  for (size_t i = 0; i < 3; ++i) {
    absl::StatusOr<int64_t> v = IntReply(*r.element[i], what);
    if (!v.ok()) return v.status();
    out[i] = *v;
  }
  return out;
}

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_SCRIPT_VALUES_H_
