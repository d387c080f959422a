// The system abseil is built with its own string_view type (not
// std::string_view), so the two must be converted at the boundary.
#ifndef UTIL_STRINGS_H_
#define UTIL_STRINGS_H_

#include <charconv>
#include <cstdint>
#include <string_view>

#include "absl/strings/string_view.h"

namespace util {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view ToStd(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

// Decimal text of `v`, written into `buf` (no allocation): for command
// arguments built on hot paths.
inline absl::string_view Decimal(int64_t v, char (&buf)[24]) {
  char* end = std::to_chars(buf, buf + sizeof(buf), v).ptr;
  return absl::string_view(buf, end - buf);
}

}  // namespace util

#endif  // UTIL_STRINGS_H_
