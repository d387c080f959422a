#include "lock/internal/token.h"

#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace lock::internal {
namespace {

TEST(OwnerToken, HasReadablePrefixAnd128RandomBits) {
  std::string token = NewOwnerToken();
  std::vector<std::string> parts = absl::StrSplit(token, ':');
  ASSERT_GE(parts.size(), 3u) << token;
  EXPECT_EQ(parts[parts.size() - 2], absl::StrCat(getpid()));
  const std::string& hex = parts.back();
  EXPECT_EQ(hex.size(), 32u);
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(OwnerToken, DistinctAcrossManyGenerations) {
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < 200000; ++i) {
    ASSERT_TRUE(seen.insert(NewOwnerToken()).second) << "repeat at " << i;
  }
}

TEST(OwnerToken, ForkedChildNeverRepeatsItsParentsTokens) {
  NewOwnerToken();  // the parent's buffer now holds unused random bytes
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string t = NewOwnerToken();
    (void)!write(fds[1], t.data(), t.size());
    _exit(0);
  }
  close(fds[1]);
  char buf[256];
  ssize_t n = read(fds[0], buf, sizeof(buf));
  close(fds[0]);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_GT(n, 0);
  const std::string child_token(buf, n);
  const std::string child_random = child_token.substr(child_token.rfind(':') + 1);
  const std::string parent_random = NewOwnerToken().substr(NewOwnerToken().rfind(':') + 1);
  EXPECT_NE(child_random, parent_random);
}

}  // namespace
}  // namespace lock::internal
