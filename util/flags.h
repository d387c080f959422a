// Command lines of the tools, the examples and the test drivers: abseil
// flags (ABSL_FLAG next to the code that reads them), parsed by ParseFlags,
// which `--help` then describes.
//
//   ABSL_FLAG(int, threads, 8, "worker threads");
//   ABSL_FLAG(util::IntList, sizes, util::IntList({1, 4}), "sizes to try");
//
//   int main(int argc, char** argv) {
//     util::ParseFlags(argc, argv, "does things [--threads N]");
//     const int threads = util::FlagAtLeast(FLAGS_threads, 1);
//
// Flag names are C++ identifiers in abseil (--phase_ms), while our scripts
// and documents have always written some of them with dashes (--phase-ms):
// ParseFlags accepts either spelling.
//
// Errors: abseil reports an unknown flag or a value of the wrong type itself
// ("ERROR: Illegal value 'x' specified for flag 'threads'") and exits 1;
// `--help` exits 1 too. The checks abseil cannot make (a minimum, stray
// arguments) go through UsageError and exit 2.
#ifndef UTIL_FLAGS_H_
#define UTIL_FLAGS_H_

#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace util {

// Parses the flags of argv (`--name=value`, `--name value`, `--bool`,
// `--nobool`) after setting `usage` as the text `--help` starts with.
// Returns the other arguments (argv[0] excluded), at most `max_positional`
// of them: more is a usage error.
std::vector<std::string> ParseFlags(int argc, char** argv,
                                    absl::string_view usage,
                                    size_t max_positional = 0);

// Prints "<program>: <problem>" and a pointer to --help, then exits 2.
[[noreturn]] void UsageError(absl::string_view problem);

// The flag's value; a usage error naming the flag when it is below `min`.
template <typename T>
T FlagAtLeast(const absl::Flag<T>& flag, std::type_identity_t<T> min) {
  const T value = absl::GetFlag(flag);
  if (value < min) {
    UsageError(absl::StrCat("--", absl::GetFlagReflectionHandle(flag).Name(),
                            " needs a number >= ", min, ", got ", value));
  }
  return value;
}

// A flag value made of whole numbers >= 0 separated by commas: "1,4,16".
struct IntList {
  IntList() = default;
  IntList(std::vector<int> v) : values(std::move(v)) {}  // NOLINT: a value
  std::vector<int> values;
};
bool AbslParseFlag(absl::string_view text, IntList* list, std::string* error);
std::string AbslUnparseFlag(const IntList& list);

}  // namespace util

#endif  // UTIL_FLAGS_H_
