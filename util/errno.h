// errno as text and as an absl::Status, for code that calls the system.
#ifndef UTIL_ERRNO_H_
#define UTIL_ERRNO_H_

#include <cerrno>
#include <string>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace util {

// strerror's text for `error` (thread-safe), e.g. "No such file or directory".
inline std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

// kInternal "<what>: <ErrnoText(error)>", by default for the current errno.
inline absl::Status ErrnoError(absl::string_view what, int error = errno) {
  return absl::InternalError(absl::StrCat(what, ": ", ErrnoText(error)));
}

}  // namespace util

#endif  // UTIL_ERRNO_H_
