#include "integration/harness/redis_server.h"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/hiredis_ptr.h"
#include "integration/harness/redis_test.h"
#include "util/proc.h"
#include "util/status_matchers.h"

namespace lock::harness {
namespace {

using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

MATCHER_P(IsOkAndHolds, expected, "") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  *result_listener << "value is \"" << *arg << "\"";
  return *arg == expected;
}

// A raw hiredis connection, to see the server the way a client does.
ContextPtr RawConnect(const RedisServer& server, absl::Duration timeout) {
  const timeval tv = absl::ToTimeval(timeout);
  ContextPtr context(
      redisConnectWithTimeout(server.host().c_str(), server.port(), tv));
  if (context == nullptr || context->err != 0) return nullptr;
  if (redisSetTimeout(context.get(), tv) != REDIS_OK) return nullptr;
  return context;
}

ReplyPtr RawPing(redisContext* context) {
  return ReplyPtr(static_cast<redisReply*>(redisCommand(context, "PING")));
}

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value, /*overwrite=*/1);
  }
  ~ScopedEnv() {
    if (old_.has_value()) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class RedisServerTest : public RedisTest {};

TEST_F(RedisServerTest, AnswersPingOnLoopback) {
  EXPECT_THAT(server().Exec({"PING"}), IsOkAndHolds("PONG"));
  EXPECT_EQ(server().addr(), absl::StrCat("127.0.0.1:", server().port()));
}

TEST_F(RedisServerTest, ExecFormatsReplies) {
  EXPECT_THAT(server().Exec({"SET", "k", std::string("a\0b", 3)}),
              IsOkAndHolds("OK"));
  EXPECT_THAT(server().Exec({"GET", "k"}),
              IsOkAndHolds(std::string("a\0b", 3)));
  EXPECT_THAT(server().Exec({"INCR", "n"}), IsOkAndHolds("1"));
  EXPECT_THAT(server().Exec({"INCR", "n"}), IsOkAndHolds("2"));
  EXPECT_THAT(server().Exec({"GET", "missing"}), IsOkAndHolds("(nil)"));
  EXPECT_THAT(server().Exec({"EVAL", "return {1, {'x', 'y'}}", "0"}),
              IsOkAndHolds("1\nx\ny"));
  EXPECT_THAT(server().Exec({"INCR", "k"}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not an integer")));
}

TEST_F(RedisServerTest, DebugSleepStallsTheServer) {
  const absl::Time start = absl::Now();
  EXPECT_THAT(server().Exec({"DEBUG", "SLEEP", "0.2"}), IsOkAndHolds("OK"));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(200));
}

TEST_F(RedisServerTest, KillMakesServerUnavailableUntilRestart) {
  ASSERT_THAT(server().Exec({"SET", "k", "v"}), IsOk());
  ASSERT_THAT(server().Kill(), IsOk());
  EXPECT_EQ(server().pid(), -1);
  EXPECT_THAT(server().Exec({"PING"}),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(server().Kill(), IsOk());
  EXPECT_THAT(server().Pause(),
              StatusIs(absl::StatusCode::kFailedPrecondition));

  ASSERT_THAT(server().Restart(/*keep_data=*/false), IsOk());
  EXPECT_THAT(server().Exec({"GET", "k"}), IsOkAndHolds("(nil)"));
  EXPECT_THAT(server().Exec({"SET", "k", "w"}), IsOkAndHolds("OK"));
}

TEST_F(RedisServerTest, PausedServerStallsCommandsUntilResumed) {
  ASSERT_THAT(server().Pause(), IsOk());
  // The kernel completes the handshake; only the reply never comes.
  ContextPtr paused = RawConnect(server(), absl::Milliseconds(200));
  ASSERT_NE(paused, nullptr);
  EXPECT_EQ(RawPing(paused.get()), nullptr);
  EXPECT_EQ(paused->err, REDIS_ERR_IO);

  ASSERT_THAT(server().Resume(), IsOk());
  ContextPtr resumed = RawConnect(server(), absl::Milliseconds(200));
  ASSERT_NE(resumed, nullptr);
  ReplyPtr reply = RawPing(resumed.get());
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(std::string(reply->str, reply->len), "PONG");
}

TEST_F(RedisServerTest, RestartOfAPausedServerKeepsItsData) {
  ASSERT_THAT(server().Exec({"SET", "k", "v"}), IsOk());
  ASSERT_THAT(server().Pause(), IsOk());
  ASSERT_THAT(server().Restart(/*keep_data=*/true), IsOk());
  EXPECT_THAT(server().Exec({"GET", "k"}), IsOkAndHolds("v"));
}

TEST_F(RedisServerTest, RestartFromAThreadThatExitsKeepsServerUp) {
  std::thread([this] { EXPECT_THAT(server().Restart(true), IsOk()); }).join();
  // A server tied by PR_SET_PDEATHSIG to that thread would be SIGKILLed as it
  // exits; that signal is asynchronous, so give it time to land.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_THAT(server().Exec({"PING"}), IsOkAndHolds("PONG"));
}

TEST_F(RedisServerTest, RestartOnATakenPortIsUnavailable) {
  ASSERT_THAT(server().Kill(), IsOk());
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(server().port());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(fd, 1), 0);
  EXPECT_THAT(server().Restart(false),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("Address already in use")));
  close(fd);
}

class PasswordTest : public RedisTest {
  RedisServerOptions ServerOptions() override {
    RedisServerOptions options;
    options.name = "secured";
    options.password = "s3cret \"pass\"";
    return options;
  }
};

TEST_F(PasswordTest, RejectsUnauthenticatedClientsButExecAuthenticates) {
  ContextPtr raw = RawConnect(server(), absl::Seconds(5));
  ASSERT_NE(raw, nullptr);
  ReplyPtr reply = RawPing(raw.get());
  ASSERT_NE(reply, nullptr);
  EXPECT_EQ(reply->type, REDIS_REPLY_ERROR);
  EXPECT_THAT(std::string(reply->str, reply->len), HasSubstr("NOAUTH"));

  EXPECT_THAT(server().Exec({"PING"}), IsOkAndHolds("PONG"));
}

TEST(RedisServerStartTest, TwoServersGetDifferentPorts) {
  absl::StatusOr<std::unique_ptr<RedisServer>> a = RedisServer::Start();
  absl::StatusOr<std::unique_ptr<RedisServer>> b = RedisServer::Start();
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_NE((*a)->port(), (*b)->port());
  EXPECT_THAT((*a)->Exec({"SET", "k", "a"}), IsOk());
  EXPECT_THAT((*b)->Exec({"GET", "k"}), IsOkAndHolds("(nil)"));
}

TEST(RedisServerStartTest, MissingBinaryIsNotFound) {
  ScopedEnv env("REDIS_SERVER", "/nonexistent/redis-server");
  EXPECT_THAT(RedisServer::Start(),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("/nonexistent/redis-server")));
}

TEST(RedisServerStartTest, UnknownBackendIsInvalidArgument) {
  ScopedEnv env("LOCK_TEST_BACKEND", "vm");
  EXPECT_THAT(RedisServer::Start(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("LOCK_TEST_BACKEND=vm")));
}

TEST(RedisServerStartTest, ContainerBackendWithoutAnEngineSaysWhy) {
  ScopedEnv env("LOCK_CONTAINER_ENGINE", "/nonexistent/podman");
  RedisServerOptions options;
  options.backend = ServerBackend::kContainer;
  EXPECT_THAT(RedisServer::Start(options),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("/nonexistent/podman: not installed"),
                             HasSubstr("tools/setup"))));
}

TEST(RedisServerStartTest, StartupFailureQuotesTheLog) {
  RedisServerOptions options;
  options.extra_config = {{"no-such-directive", "1"}};
  EXPECT_THAT(RedisServer::Start(options),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("no-such-directive")));
}

TEST(RedisServerStartTest, NoPingBeforeTheDeadlineIsDeadlineExceeded) {
  RedisServerOptions options;
  options.start_timeout = absl::ZeroDuration();
  EXPECT_THAT(RedisServer::Start(options),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(RedisServerStartTest, IgnoresSigpipe) {
  ASSERT_THAT(RedisServer::Start(), IsOk());
  struct sigaction action;
  ASSERT_EQ(sigaction(SIGPIPE, nullptr, &action), 0);
  EXPECT_EQ(action.sa_handler, SIG_IGN);
}

// Restart(true) keeps what was written before it, in both persistence modes;
// after a Kill, only AOF (fsync always) still has the latest write.
TEST(RedisServerRestartTest, KeepDataKeepsKeysAndDropDataDropsThem) {
  for (bool appendonly : {false, true}) {
    SCOPED_TRACE(appendonly ? "appendonly" : "rdb");
    RedisServerOptions options;
    options.appendonly = appendonly;
    absl::StatusOr<std::unique_ptr<RedisServer>> started =
        RedisServer::Start(options);
    ASSERT_THAT(started, IsOk());
    RedisServer& server = **started;
    const int port = server.port();
    const pid_t old_pid = server.pid();

    ASSERT_THAT(server.Exec({"SET", "k", "v"}), IsOk());
    ASSERT_THAT(server.Restart(/*keep_data=*/true), IsOk());
    EXPECT_EQ(server.port(), port);
    EXPECT_NE(server.pid(), old_pid);
    EXPECT_THAT(server.Exec({"GET", "k"}), IsOkAndHolds("v"));

    ASSERT_THAT(server.Exec({"SET", "k2", "v2"}), IsOk());
    ASSERT_THAT(server.Kill(), IsOk());
    ASSERT_THAT(server.Restart(/*keep_data=*/true), IsOk());
    EXPECT_THAT(server.Exec({"GET", "k"}), IsOkAndHolds("v"));
    EXPECT_THAT(server.Exec({"GET", "k2"}),
                IsOkAndHolds(appendonly ? "v2" : "(nil)"));

    ASSERT_THAT(server.Restart(/*keep_data=*/false), IsOk());
    EXPECT_THAT(server.Exec({"GET", "k"}), IsOkAndHolds("(nil)"));
  }
}

TEST(RedisServerLifetimeTest, DestructorKillsPausedServerAndRemovesItsDir) {
  absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  ASSERT_THAT(server, IsOk());
  const pid_t pid = (*server)->pid();
  absl::StatusOr<std::string> dir = (*server)->Exec({"CONFIG", "GET", "dir"});
  ASSERT_THAT(dir, IsOk());
  const std::string path = dir->substr(std::string("dir\n").size());
  ASSERT_TRUE(std::filesystem::is_directory(path)) << path;
  ASSERT_THAT((*server)->Pause(), IsOk());

  server->reset();
  EXPECT_NE(kill(pid, 0), 0);
  EXPECT_EQ(errno, ESRCH);
  EXPECT_FALSE(std::filesystem::exists(path)) << path;
}

// A test process that crashes runs no destructors; its servers must still go.
TEST(RedisServerLifetimeTest, ServerDiesWithTheProcessThatStartedIt) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
    const pid_t pid = server.ok() ? (*server)->pid() : -1;
    _exit(write(fds[1], &pid, sizeof(pid)) == sizeof(pid) ? 0 : 1);
  }
  close(fds[1]);
  pid_t redis_pid = -1;
  EXPECT_EQ(read(fds[0], &redis_pid, sizeof(redis_pid)), sizeof(redis_pid));
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_GT(redis_pid, 0);

  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!::util::ProcessGone(redis_pid) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(::util::ProcessGone(redis_pid));
}

}  // namespace
}  // namespace lock::harness
