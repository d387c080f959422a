// The system abseil is built with its own string_view type (not
// std::string_view), so the two must be converted at the boundary.
#ifndef UTIL_STRINGS_H_
#define UTIL_STRINGS_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace util {

inline absl::string_view ToAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}
inline std::string_view ToStd(absl::string_view s) {
  return std::string_view(s.data(), s.size());
}

}  // namespace util

#endif  // UTIL_STRINGS_H_
