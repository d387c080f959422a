#include "lock/redis/errors.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/status_matchers.h"

namespace lock::redis {
namespace {

using ::testing::HasSubstr;
using ::util::testing::StatusIs;

TEST(ClassifyErrorTest, EveryReplyTheEngineReactsTo) {
  EXPECT_EQ(ClassifyError("NOSCRIPT No matching script."), ErrorReply::kNoScript);
  EXPECT_EQ(ClassifyError("MOVED 3999 127.0.0.1:6381"), ErrorReply::kMoved);
  EXPECT_EQ(ClassifyError("ASK 3999 127.0.0.1:6381"), ErrorReply::kAsk);
  EXPECT_EQ(ClassifyError("TRYAGAIN Multiple keys request during rehashing of slot"),
            ErrorReply::kTryAgain);
  EXPECT_EQ(ClassifyError("READONLY You can't write against a read only replica."),
            ErrorReply::kReadOnly);
  EXPECT_EQ(ClassifyError("NOAUTH Authentication required."), ErrorReply::kAuth);
  EXPECT_EQ(ClassifyError("WRONGPASS invalid username-password pair"), ErrorReply::kAuth);
  EXPECT_EQ(ClassifyError("NOPERM this user has no permissions"), ErrorReply::kAuth);
  EXPECT_EQ(ClassifyError("ERR invalid password"), ErrorReply::kAuth);
  EXPECT_EQ(ClassifyError("ERR Protocol error: unauthenticated multibulk length"),
            ErrorReply::kAuth);
  EXPECT_EQ(ClassifyError("LOADING Redis is loading the dataset in memory"),
            ErrorReply::kUnavailable);
  EXPECT_EQ(ClassifyError("BUSY Redis is busy running a script."), ErrorReply::kUnavailable);
  EXPECT_EQ(ClassifyError("MASTERDOWN Link with MASTER is down"), ErrorReply::kUnavailable);
  EXPECT_EQ(ClassifyError("CLUSTERDOWN The cluster is down"), ErrorReply::kUnavailable);
  EXPECT_EQ(ClassifyError("OOM command not allowed when used memory > 'maxmemory'."),
            ErrorReply::kOutOfMemory);
  EXPECT_EQ(ClassifyError("ERR acquire: ttl must be digits"), ErrorReply::kOther);
  // A prefix is a whole word: "MOVEDX" is not a redirect.
  EXPECT_EQ(ClassifyError("MOVEDX 1 a:1"), ErrorReply::kOther);
}

TEST(ClassifyErrorTest, NotExecutedHereIsExactlyTheRetryableKinds) {
  for (const char* text : {"NOSCRIPT x", "MOVED 1 a:1", "ASK 1 a:1", "TRYAGAIN x", "READONLY x"}) {
    EXPECT_TRUE(NotExecutedHere(text)) << text;
  }
  for (const char* text : {"NOAUTH x", "OOM x", "BUSY x", "ERR x", "LOADING x"}) {
    EXPECT_FALSE(NotExecutedHere(text)) << text;
  }
}

TEST(ServerErrorTest, CodesNameTheServerAndWhatWasDone) {
  EXPECT_THAT(ServerError("WRONGPASS bad", "h:1", "AUTH"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("redis h:1: AUTH: WRONGPASS")));
  EXPECT_THAT(ServerError("ERR Protocol error: unauthenticated bulk length", "h:1", "script x"),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("password_env")));
  EXPECT_THAT(ServerError("LOADING x", "h:1", "d"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(ServerError("TRYAGAIN x", "h:1", "d"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(ServerError("OOM x", "h:1", "d"), StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_THAT(ServerError("NOSCRIPT x", "h:1", "d"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ServerError("MOVED 1 a:1", "h:1", "d"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(ServerError("ERR boom", "h:1", "d"), StatusIs(absl::StatusCode::kFailedPrecondition));
}

}  // namespace
}  // namespace lock::redis
