#include "lock/internal/token.h"

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

}  // namespace
}  // namespace lock::internal
