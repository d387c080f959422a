// Early-return helpers for absl::Status / absl::StatusOr, which abseil 20220623
// does not ship.
#ifndef UTIL_STATUS_MACROS_H_
#define UTIL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define LOCK_STATUS_CONCAT_INNER_(a, b) a##b
#define LOCK_STATUS_CONCAT_(a, b) LOCK_STATUS_CONCAT_INNER_(a, b)

// Returns from the current function when `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                     \
  do {                                            \
    ::absl::Status lock_status_ = (expr);         \
    if (!lock_status_.ok()) return lock_status_;  \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, F())` declares x from an absl::StatusOr or returns
// its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(LOCK_STATUS_CONCAT_(lock_statusor_, __LINE__), lhs, expr)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#endif  // UTIL_STATUS_MACROS_H_
