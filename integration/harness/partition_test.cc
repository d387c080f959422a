// Partition (partition.h) against real servers: the cut is one-sided, is
// healed on scope exit, and the caller's thread comes back home. Skipped,
// with the reason, where this machine cannot make network namespaces.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "integration/harness/testing.h"
#include "util/status_matchers.h"

namespace lock::harness {
namespace {

using ::util::testing::IsOk;

ino_t ThreadNamespace() {
  struct stat st = {};
  EXPECT_EQ(stat("/proc/thread-self/ns/net", &st), 0);
  return st.st_ino;
}

TEST(PartitionTest, CutStopsTheClientSideAndScopeExitHeals) {
  ASSIGN_PARTITION_OR_SKIP(partition);
  ASSERT_THAT(partition->EnterClientSide(), IsOk());
  auto redis = RedisServer::Start(partition->ServerOptions());
  ASSERT_THAT(redis, IsOk());
  EXPECT_TRUE(absl::StartsWith((*redis)->addr(), "10.213.0.1:")) << (*redis)->addr();
  ASSERT_THAT((*redis)->Exec({"SET", "k", "v"}), IsOk());
  {
    Partition::ScopedCut cut = partition->CutUntilScopeExit();
    ASSERT_THAT(cut.status(), IsOk());
    EXPECT_TRUE(partition->cut());
    absl::StatusOr<RedisReply> r = (*redis)->Query({"GET", "k"}, absl::Milliseconds(300));
    EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  }
  EXPECT_FALSE(partition->cut());
  absl::StatusOr<std::string> v = (*redis)->Exec({"GET", "k"});
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(*v, "v");  // The server ran on through the cut, data intact.
}

TEST(PartitionTest, TheServerSideStillReachesTheServerDuringACut) {
  ASSIGN_PARTITION_OR_SKIP(partition);
  ASSERT_THAT(partition->EnterClientSide(), IsOk());
  auto redis = RedisServer::Start(partition->ServerOptions());
  ASSERT_THAT(redis, IsOk());
  ASSERT_THAT(partition->Cut(), IsOk());
  absl::StatusOr<std::string> from_server_side;
  std::thread server_side([&] {
    absl::Status entered = EnterNetworkNamespace(partition->server_namespace());
    from_server_side = entered.ok() ? (*redis)->Exec({"PING"}) : entered;
  });
  server_side.join();
  EXPECT_THAT(from_server_side, IsOk());
  EXPECT_FALSE((*redis)->Query({"PING"}, absl::Milliseconds(300)).ok());
  ASSERT_THAT(partition->Heal(), IsOk());
  EXPECT_THAT((*redis)->Exec({"PING"}), IsOk());
}

TEST(PartitionTest, DestructionTakesTheThreadBackHome) {
  const ino_t home = ThreadNamespace();
  {
    ASSIGN_PARTITION_OR_SKIP(partition);
    ASSERT_THAT(partition->EnterClientSide(), IsOk());
    EXPECT_NE(ThreadNamespace(), home);
    EXPECT_FALSE(partition->EnterClientSide().ok());  // twice
  }
  EXPECT_EQ(ThreadNamespace(), home);
}

// The reason a test prints when it skips: a child without root tries.
TEST(PartitionTest, WithoutRootCreateSaysWhy) {
  if (geteuid() != 0) GTEST_SKIP() << "already not root";
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipefd[0]);
    if (setresgid(65534, 65534, 65534) != 0 || setresuid(65534, 65534, 65534) != 0) {
      _exit(3);
    }
    absl::StatusOr<std::unique_ptr<Partition>> p = Partition::Create();
    const std::string text = p.status().ToString();
    (void)!write(pipefd[1], text.data(), text.size());
    _exit(p.ok() ? 1 : absl::IsUnavailable(p.status()) ? 0 : 2);
  }
  close(pipefd[1]);
  std::string text;
  char buf[512];
  for (ssize_t n; (n = read(pipefd[0], buf, sizeof(buf))) > 0;) text.append(buf, n);
  close(pipefd[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << text;
  EXPECT_TRUE(absl::StrContains(text, "needs root")) << text;
  EXPECT_TRUE(absl::StrContains(text, "ip netns add")) << text;
}

}  // namespace
}  // namespace lock::harness
