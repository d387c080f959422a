#include "util/flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, phase_ms, 100, "a flag scripts write with a dash");
ABSL_FLAG(util::IntList, sizes, util::IntList({1, 4}), "a list");
ABSL_FLAG(double, seconds, 2, "a flag with a minimum");

namespace util {
namespace {

using ::testing::ElementsAre;

// ParseFlags over `args` (the program name first); returns the positional
// arguments.
std::vector<std::string> Parse(std::vector<std::string> args,
                               size_t max_positional = 0) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return ParseFlags(static_cast<int>(argv.size()), argv.data(), "a test",
                    max_positional);
}

TEST(FlagsTest, DashedAndUnderscoredNamesAreTheSameFlag) {
  Parse({"prog", "--phase-ms=5"});
  EXPECT_EQ(absl::GetFlag(FLAGS_phase_ms), 5);
  Parse({"prog", "--phase_ms", "7"});
  EXPECT_EQ(absl::GetFlag(FLAGS_phase_ms), 7);
}

TEST(FlagsTest, ValuesAndPositionalArgumentsKeepTheirDashes) {
  EXPECT_THAT(Parse({"prog", "my-file", "--", "--not-a-flag"}, 2),
              ElementsAre("my-file", "--not-a-flag"));
}

TEST(FlagsTest, IntListParsesAndPrintsCommaSeparatedNumbers) {
  Parse({"prog", "--sizes=2,8,32"});
  EXPECT_THAT(absl::GetFlag(FLAGS_sizes).values, ElementsAre(2, 8, 32));
  EXPECT_EQ(AbslUnparseFlag(absl::GetFlag(FLAGS_sizes)), "2,8,32");
  IntList list;
  std::string error;
  EXPECT_FALSE(AbslParseFlag("1,-2", &list, &error));
  EXPECT_THAT(error, ::testing::HasSubstr("\"-2\" is not a whole number >= 0"));
  EXPECT_FALSE(AbslParseFlag("1,,2", &list, &error));
}

TEST(FlagsDeathTest, MalformedValueNamesTheFlag) {
  EXPECT_EXIT(Parse({"prog", "--sizes=1,x"}), ::testing::ExitedWithCode(1),
              "Illegal value '1,x' specified for flag 'sizes'");
}

TEST(FlagsDeathTest, StrayArgumentIsAUsageError) {
  EXPECT_EXIT(Parse({"prog", "stray"}), ::testing::ExitedWithCode(2),
              "prog: unexpected argument \"stray\"");
}

TEST(FlagsDeathTest, BelowTheMinimumNamesTheFlag) {
  Parse({"prog", "--seconds=0.5"});
  EXPECT_EQ(FlagAtLeast(FLAGS_seconds, 0), 0.5);
  Parse({"prog", "--seconds=-1"});
  EXPECT_EXIT(FlagAtLeast(FLAGS_seconds, 0), ::testing::ExitedWithCode(2),
              "prog: --seconds needs a number >= 0, got -1");
}

}  // namespace
}  // namespace util
