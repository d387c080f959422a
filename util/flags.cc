#include "util/flags.h"

#include <cstdlib>
#include <iostream>
#include <mutex>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace util {
namespace {

std::string& ProgramName() {
  static std::string* name = new std::string("program");
  return *name;
}

// "--phase-ms=5" -> "--phase_ms=5"; values and arguments after "--" as given.
std::vector<std::string> WithUnderscoreNames(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (size_t i = 1; i < args.size(); ++i) {
    std::string& a = args[i];
    if (a == "--") break;
    if (!absl::StartsWith(a, "-")) continue;
    const size_t name_end = std::min(a.find('='), a.size());
    for (size_t c = a.find_first_not_of('-'); c < name_end; ++c) {
      if (a[c] == '-') a[c] = '_';
    }
  }
  return args;
}

}  // namespace

std::vector<std::string> ParseFlags(int argc, char** argv,
                                    absl::string_view usage,
                                    size_t max_positional) {
  if (argc > 0) {
    const absl::string_view path = argv[0];
    ProgramName() = std::string(path.substr(path.rfind('/') + 1));
  }
  // abseil takes the usage once per process (a second time is fatal), and
  // tests parse several command lines.
  static std::once_flag once;
  std::call_once(once, [usage] {
    absl::FlagsUsageConfig config;
    // `--help` lists the program's flags wherever they are defined (bench's
    // live in common.cc, the examples' partly in examples/common), but not
    // abseil's own (--flagfile...), which `--helpfull` still shows.
    config.contains_help_flags = [](absl::string_view file) {
      return !absl::StrContains(file, "absl/");
    };
    absl::SetFlagsUsageConfig(config);
    absl::SetProgramUsageMessage(usage);
  });

  std::vector<std::string> args = WithUnderscoreNames(argc, argv);
  std::vector<char*> arg_ptrs;
  for (std::string& a : args) arg_ptrs.push_back(a.data());
  std::vector<char*> rest = absl::ParseCommandLine(
      static_cast<int>(arg_ptrs.size()), arg_ptrs.data());
  std::vector<std::string> positional(rest.begin() + (rest.empty() ? 0 : 1),
                                      rest.end());
  if (positional.size() > max_positional) {
    UsageError(absl::StrCat("unexpected argument \"",
                            positional[max_positional], "\""));
  }
  return positional;
}

void UsageError(absl::string_view problem) {
  std::cerr << ProgramName() << ": " << problem << " (see --help)\n";
  std::exit(2);
}

bool AbslParseFlag(absl::string_view text, IntList* list, std::string* error) {
  std::vector<int> values;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    int n = 0;
    if (!absl::SimpleAtoi(item, &n) || n < 0) {
      *error = absl::StrCat("\"", item,
                            "\" is not a whole number >= 0 (want a list like "
                            "1,4,16)");
      return false;
    }
    values.push_back(n);
  }
  list->values = std::move(values);
  return true;
}

std::string AbslUnparseFlag(const IntList& list) {
  return absl::StrJoin(list.values, ",");
}

}  // namespace util
