#include "tools/lockctl/cli.h"

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/lockctl/commands.h"

// No lockctl option has an underscore yet; these show how one would be
// spelled.
ABSL_FLAG(int, phase_ms, 100, "MS: a flag with an underscore");
ABSL_FLAG(bool, dry_run, false, "a bool flag with an underscore");
// A type whose values lockctl does not describe itself: abseil says why.
ABSL_FLAG(int64_t, big_count, 0, "N: a flag of another type");

namespace lockctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::StartsWith;

std::vector<Command> AllCommands() {
  return {ValidateCommand(), ExplainCommand(), StatusCommand(), ListCommand(),
          ReleaseCommand(),  StatsCommand(),   BenchCommand(),  WatchCommand()};
}

Command Named(const std::string& name) {
  for (Command& c : AllCommands()) {
    if (c.name == name) return c;
  }
  ADD_FAILURE() << "no command " << name;
  return {};
}

Command Underscored() {
  return {
      .name = "test",
      .usage = "usage: lockctl test\n",
      .flags = {Opt(FLAGS_phase_ms), Opt(FLAGS_dry_run), Opt(FLAGS_big_count)}};
}

// The names of the flags `c` takes.
std::set<std::string> FlagNames(const Command& c) {
  std::set<std::string> names;
  for (const absl::CommandLineFlag* f : c.flags) names.emplace(f->Name());
  return names;
}

// The error message of a parse that must fail.
std::string ParseError(const Command& c, const std::vector<std::string>& argv) {
  absl::StatusOr<CommandLine> line = ParseCommandLine(c, argv);
  EXPECT_EQ(line.status().code(), absl::StatusCode::kInvalidArgument)
      << c.name << " " << absl::StrJoin(argv, " ");
  return std::string(line.status().message());
}

// Runs of spaces and line breaks as one space: --help wraps long lines.
std::string Squash(const std::string& text) {
  return absl::StrJoin(
      absl::StrSplit(text, absl::ByAnyChar(" \n"), absl::SkipEmpty()), " ");
}

// A flag's value as abseil prints it.
std::string Value(const std::string& flag) {
  return absl::FindCommandLineFlag(flag)->CurrentValue();
}

// Each test starts from the flags' defaults.
class CliTest : public ::testing::Test {
  absl::FlagSaver saver_;
};

TEST_F(CliTest, AnUnknownOptionIsRefusedNamingIt) {
  EXPECT_EQ(ParseError(Named("status"), {"p", "k", "--frob"}),
            "status has no option \"--frob\"");
  EXPECT_EQ(ParseError(Named("status"), {"--frob=1"}),
            "status has no option \"--frob\"");
  // abseil's own flags are no lockctl options.
  EXPECT_EQ(ParseError(Named("list"), {"--flagfile=x"}),
            "list has no option \"--flagfile\"");
}

TEST_F(CliTest, EachCommandTakesItsOwnOptionsOnly) {
  int refused = 0;
  for (const Command& c : AllCommands()) {
    const std::set<std::string> own = FlagNames(c);
    for (const Command& other : AllCommands()) {
      for (const absl::CommandLineFlag* f : other.flags) {
        const std::string name(f->Name());
        if (own.count(name) > 0) continue;
        EXPECT_EQ(ParseError(c, {"--" + name + "=1"}),
                  absl::StrCat(c.name, " has no option \"--", name, "\""));
        ++refused;
      }
    }
  }
  // validate takes none of the others' options, status not --owner, ...
  EXPECT_GT(refused, 30);
}

TEST_F(CliTest, EveryOptionACommandListsIsAccepted) {
  for (const Command& c : AllCommands()) {
    for (const absl::CommandLineFlag* f : c.flags) {
      const std::string option = absl::StrCat("--", f->Name());
      std::vector<std::string> argv = {option};
      if (!f->IsOfType<bool>()) argv.push_back(f->DefaultValue());
      EXPECT_TRUE(ParseCommandLine(c, argv).ok())
          << c.name << " " << absl::StrJoin(argv, " ");
    }
  }
}

TEST_F(CliTest, AValueOfTheWrongTypeIsRefusedNamingTheFlag) {
  EXPECT_EQ(ParseError(Named("bench"), {"--threads", "x"}),
            "--threads needs a whole number, got \"x\"");
  EXPECT_EQ(ParseError(Named("list"), {"--limit=1.5"}),
            "--limit needs a whole number, got \"1.5\"");
  EXPECT_EQ(ParseError(Named("watch"), {"--interval", "abc"}),
            "--interval needs a number, got \"abc\"");
  EXPECT_EQ(ParseError(Named("watch"), {"--count", "many"}),
            "--count needs a whole number, got \"many\"");
  EXPECT_EQ(ParseError(Named("stats"), {"--json=maybe"}),
            "--json needs true or false, got \"maybe\"");
  EXPECT_THAT(ParseError(Underscored(), {"--big-count=lots"}),
              StartsWith("--big-count: Illegal value 'lots'"));
}

TEST_F(CliTest, AValueMayStartWithADash) {
  ASSERT_TRUE(ParseCommandLine(Named("bench"), {"--seconds", "-1"}).ok());
  EXPECT_EQ(Value("seconds"), "-1");
  // ... and then the command's range check names the flag.
  EXPECT_EQ(CheckFlag(*absl::FindCommandLineFlag("seconds"), false,
                      "a number in (0, 3600]")
                .message(),
            "--seconds needs a number in (0, 3600], got -1");
}

TEST_F(CliTest, AMissingValueIsRefused) {
  EXPECT_EQ(ParseError(Named("list"), {"p", "--limit"}),
            "--limit needs a value");
}

TEST_F(CliTest, ABoolFlagIsSetClearedAndNeverTakesTheNextArgument) {
  const Command stats = Named("stats");
  absl::StatusOr<CommandLine> line = ParseCommandLine(stats, {"--json", "f"});
  ASSERT_TRUE(line.ok());
  EXPECT_THAT(line->positional, ElementsAre("f"));
  EXPECT_TRUE(absl::GetFlag(FLAGS_json));
  ASSERT_TRUE(ParseCommandLine(stats, {"--json=false"}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_json));
  ASSERT_TRUE(ParseCommandLine(stats, {"--json=true"}).ok());
  EXPECT_TRUE(absl::GetFlag(FLAGS_json));
  ASSERT_TRUE(ParseCommandLine(stats, {"--nojson"}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_json));
  ASSERT_TRUE(ParseCommandLine(stats, {"--json", "--no-json"}).ok());
  EXPECT_FALSE(absl::GetFlag(FLAGS_json));
  EXPECT_EQ(ParseError(stats, {"--nojson=1"}), "--nojson takes no value");
  // "no" makes a bool false, nothing else.
  EXPECT_EQ(ParseError(Named("list"), {"--nolimit"}),
            "list has no option \"--nolimit\"");
}

TEST_F(CliTest, DoubleDashEndsTheOptions) {
  absl::StatusOr<CommandLine> line =
      ParseCommandLine(Named("stats"), {"a", "--", "--json", "-h", "--"});
  ASSERT_TRUE(line.ok());
  EXPECT_THAT(line->positional, ElementsAre("a", "--json", "-h", "--"));
  EXPECT_FALSE(line->help);
  EXPECT_FALSE(absl::GetFlag(FLAGS_json));
}

TEST_F(CliTest, SingleDashArgumentsArePositionalButMinusH) {
  absl::StatusOr<CommandLine> line =
      ParseCommandLine(Named("stats"), {"-", "-x"});
  ASSERT_TRUE(line.ok());
  EXPECT_THAT(line->positional, ElementsAre("-", "-x"));
  EXPECT_FALSE(line->help);
  line = ParseCommandLine(Named("stats"), {"-h"});
  ASSERT_TRUE(line.ok());
  EXPECT_TRUE(line->help);
  EXPECT_THAT(line->positional, IsEmpty());
}

TEST_F(CliTest, DashesInANameAreItsUnderscores) {
  ASSERT_TRUE(
      ParseCommandLine(Underscored(), {"--phase-ms=7", "--dry-run"}).ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_phase_ms), 7);
  EXPECT_TRUE(absl::GetFlag(FLAGS_dry_run));
  ASSERT_TRUE(
      ParseCommandLine(Underscored(), {"--phase_ms", "8", "--no-dry-run"})
          .ok());
  EXPECT_EQ(absl::GetFlag(FLAGS_phase_ms), 8);
  EXPECT_FALSE(absl::GetFlag(FLAGS_dry_run));
  // The error names the option as it was typed.
  EXPECT_EQ(ParseError(Underscored(), {"--phase-ms=soon"}),
            "--phase-ms needs a whole number, got \"soon\"");
}

TEST_F(CliTest, HelpListsEveryFlagWithItsHelpAndDefault) {
  for (const Command& c : AllCommands()) {
    const std::string help = HelpText(c);
    EXPECT_THAT(help, StartsWith("usage: lockctl " + c.name)) << help;
    EXPECT_THAT(help, HasSubstr("\nExit codes: ")) << help;
    for (const absl::CommandLineFlag* f : c.flags) {
      const std::string name(f->Name());
      // "--config FILE|DIR policy configuration ...": the value's name is
      // the start of the flag's help.
      std::string line = absl::StrCat("--", name, " ", f->Help());
      if (!f->IsOfType<bool>()) {
        const size_t colon = line.find(": ");
        ASSERT_NE(colon, std::string::npos)
            << "the help of --" << name << " does not name its value";
        line.erase(colon, 1);
      }
      const std::string def = f->DefaultValue();
      if (!def.empty() && def != "false") {
        absl::StrAppend(&line, f->IsOfType<std::string>()
                                   ? absl::StrCat(" (default \"", def, "\")")
                                   : absl::StrCat(" (default ", def, ")"));
      }
      EXPECT_THAT(Squash(help), HasSubstr(Squash(line))) << help;
      EXPECT_THAT(help, HasSubstr("\n  --" + name + " ")) << help;
    }
  }
}

TEST_F(CliTest, EveryOptionInASynopsisIsAFlagOfTheCommand) {
  for (const Command& c : AllCommands()) {
    const std::set<std::string> own = FlagNames(c);
    for (absl::string_view word :
         absl::StrSplit(c.usage, absl::ByAnyChar(" []\n"), absl::SkipEmpty())) {
      if (!absl::ConsumePrefix(&word, "--")) continue;
      EXPECT_EQ(own.count(std::string(word)), 1u)
          << c.name << "'s synopsis names --" << word;
    }
  }
}

TEST_F(CliTest, AUsageErrorWinsOverHelp) {
  EXPECT_EQ(ParseError(Named("validate"), {"--help", "--frob"}),
            "validate has no option \"--frob\"");
  absl::StatusOr<CommandLine> line =
      ParseCommandLine(Named("validate"), {"x", "--help"});
  ASSERT_TRUE(line.ok());
  EXPECT_TRUE(line->help);
}

}  // namespace
}  // namespace lockctl
