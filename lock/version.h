// The library's version, for code that must check what it builds against.
//
//   #include "lock/version.h"
//   static_assert(LOCK_VERSION_MAJOR == 0);
//   std::cout << lock::kVersion;   // "0.1.0"
//
// Semantic versioning: the major number changes when a public name or a
// documented behaviour does. The VERSION file at the top of the repository
// holds the same string (a test keeps the two equal); CHANGELOG.md says
// what changed in each.
#ifndef LOCK_VERSION_H_
#define LOCK_VERSION_H_

#include <string_view>

#define LOCK_VERSION_MAJOR 0
#define LOCK_VERSION_MINOR 1
#define LOCK_VERSION_PATCH 0
#define LOCK_VERSION_STRING "0.1.0"

namespace lock {

inline constexpr std::string_view kVersion = LOCK_VERSION_STRING;

}  // namespace lock

#endif  // LOCK_VERSION_H_
