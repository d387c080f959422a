// Security properties: owner tokens are unguessable and never repeat (within
// a process, across forked processes), a wrong owner token can neither
// release nor extend somebody else's lock, and secrets never reach error
// messages or `lockctl explain`.
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/internal/keys.h"
#include "lock/internal/token.h"
#include "lock/lock.h"
#include "lock/redis/pool.h"
#include "lock/redis/script.h"
#include "lock/scripts/embedded.h"
#include "policy/config.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using ::util::testing::IsOk;
using ::util::testing::IsOkAndHolds;
using ::util::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

// The 128 random bits of a token, as two words.
using Bits = std::pair<uint64_t, uint64_t>;

Bits RandomPart(const std::string& token) {
  const std::vector<std::string> parts = absl::StrSplit(token, ':');
  EXPECT_EQ(parts.size(), 3u) << token;
  const std::string hex = parts.back();
  EXPECT_EQ(hex.size(), 32u) << token;
  const std::string raw = absl::HexStringToBytes(hex);
  Bits b{};
  std::memcpy(&b.first, raw.data(), 8);
  std::memcpy(&b.second, raw.data() + 8, 8);
  return b;
}

TEST(OwnerTokenTest, HasAReadablePrefixAnd128RandomBits) {
  const std::string t = internal::NewOwnerToken();
  EXPECT_THAT(t, MatchesRegex(absl::StrCat("[^:]+:", getpid(), ":[0-9a-f]{32}")));
}

TEST(OwnerTokenTest, AMillionTokensAreDistinctAndEveryBitIsFair) {
  constexpr int kTokens = 1'000'000;
  absl::flat_hash_set<Bits> seen;
  seen.reserve(kTokens);
  std::array<int, 128> ones{};
  for (int i = 0; i < kTokens; ++i) {
    const Bits b = RandomPart(internal::NewOwnerToken());
    ASSERT_TRUE(seen.insert(b).second) << "token repeated after " << i;
    for (int bit = 0; bit < 64; ++bit) {
      ones[bit] += (b.first >> bit) & 1;
      ones[64 + bit] += (b.second >> bit) & 1;
    }
  }
  // Each bit is a fair coin: 500000 ± 500 (one standard deviation); 10
  // deviations apart would be a stuck or biased bit, never chance.
  for (int bit = 0; bit < 128; ++bit) {
    EXPECT_NEAR(ones[bit], kTokens / 2, 5000) << "bit " << bit;
  }
}

// The token generator buffers OS randomness per thread. A forked child must
// not hand out its parent's buffered bytes again.
TEST(OwnerTokenTest, ForkedProcessesNeverShareTokens) {
  constexpr int kChildren = 6;
  constexpr int kPerProcess = 20'000;
  (void)internal::NewOwnerToken();  // the parent's buffer is now half used
  int pipes[kChildren][2];
  std::vector<pid_t> pids;
  for (int c = 0; c < kChildren; ++c) {
    ASSERT_EQ(pipe(pipes[c]), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(pipes[c][0]);
      std::string out;
      for (int i = 0; i < kPerProcess; ++i) {
        absl::StrAppend(&out, internal::NewOwnerToken(), "\n");
      }
      size_t done = 0;
      while (done < out.size()) {
        const ssize_t n = write(pipes[c][1], out.data() + done, out.size() - done);
        if (n <= 0) _exit(1);
        done += static_cast<size_t>(n);
      }
      _exit(0);
    }
    close(pipes[c][1]);
    pids.push_back(pid);
  }
  absl::flat_hash_set<Bits> seen;
  absl::flat_hash_set<std::string> prefixes;
  for (int i = 0; i < kPerProcess; ++i) {
    ASSERT_TRUE(seen.insert(RandomPart(internal::NewOwnerToken())).second);
  }
  for (int c = 0; c < kChildren; ++c) {
    std::string text;
    char buf[65536];
    ssize_t n;
    while ((n = read(pipes[c][0], buf, sizeof(buf))) > 0) text.append(buf, n);
    close(pipes[c][0]);
    int status = 0;
    ASSERT_EQ(waitpid(pids[c], &status, 0), pids[c]);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int count = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
      const std::string token(line);
      ASSERT_TRUE(seen.insert(RandomPart(token)).second)
          << "child " << c << " repeated a token: " << token;
      prefixes.insert(token.substr(0, token.rfind(':')));
      ++count;
    }
    EXPECT_EQ(count, kPerProcess);
  }
  EXPECT_EQ(prefixes.size(), static_cast<size_t>(kChildren)) << "host:pid labels";
}

// ---- wrong owner tokens -------------------------------------------------------

class WrongTokenTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    const std::string config = absl::StrCat(
        R"({"redis": {"default": {"addrs": [")", server().addr(),
        R"("]}}, "policies": {"p": {"key_prefix": "sec:", "ttl": "300ms",
        "script_timeout": "100ms", "on_busy": "fail",
        "renewal": {"enabled": false}}}})");
    auto registry = policy::Registry::FromJson(config, "security.json");
    ASSERT_THAT(registry, IsOk());
    auto locker = Locker::Create(std::shared_ptr<policy::Registry>(*std::move(registry)));
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }
  std::unique_ptr<RedisLock> Held(const std::string& key) {
    auto lk = locker_->NewLock("p", key);
    EXPECT_THAT(lk, IsOk());
    EXPECT_THAT((*lk)->Acquire(), IsOk());
    return *std::move(lk);
  }
  static std::string OwnerKey(const std::string& key) {
    return std::string(internal::LockKeys("sec:", key).owner());
  }
  std::string Owner(const std::string& key) {
    return server().Exec({"HGET", OwnerKey(key), "owner"}).value_or("?");
  }
  int64_t Pttl(const std::string& key) {
    int64_t v = -9;
    (void)absl::SimpleAtoi(server().Exec({"PTTL", OwnerKey(key)}).value_or(""), &v);
    return v;
  }
  std::unique_ptr<Locker> locker_;
};

TEST_F(WrongTokenTest, ReleaseWithAWrongTokenIsANoOpReturningNotHeld) {
  std::unique_ptr<RedisLock> holder = Held("k");
  const std::string token = holder->owner_token();
  const std::vector<std::string> wrong = {
      "", "x", token.substr(0, token.size() - 1), token + "0",
      absl::StrCat(token.substr(0, token.size() - 1), token.back() == '0' ? "1" : "0"),
      "*", "' or 1 --"};
  for (const std::string& w : wrong) {
    SCOPED_TRACE(w);
    absl::Status s = locker_->UnlockByValue("p", "k", w);
    EXPECT_TRUE(IsNotHeld(s)) << s;
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition));
    EXPECT_EQ(Owner("k"), token);
  }
  EXPECT_THAT(locker_->UnlockByValue("p", "k", token), IsOk());
}

TEST_F(WrongTokenTest, ExtendWithAWrongTokenIsANoOp) {
  std::unique_ptr<RedisLock> holder = Held("k");
  // extend.lua as the library sends it, with a token that is not the owner's.
  auto pool = std::make_shared<redis::ConnectionPool>(
      redis::PoolOptions{.connection = {.addr = server().addr()}});
  auto conn = pool->Borrow(absl::Seconds(1));
  ASSERT_THAT(conn, IsOk());
  const internal::LockKeys keys("sec:", "k");
  const absl::string_view k[] = {keys.owner()};
  const std::string bogus = internal::NewOwnerToken();
  const absl::string_view a[] = {bogus, "600000"};
  auto reply = redis::RunScript(**conn, scripts::k_extend, k, a, absl::Seconds(1));
  ASSERT_THAT(reply, IsOk());
  EXPECT_EQ((*reply)->integer, 0);
  EXPECT_LE(Pttl("k"), 300) << "the lease was stretched by a stranger";
  EXPECT_EQ(Owner("k"), holder->owner_token());
}

TEST_F(WrongTokenTest, StaleHolderCannotReleaseOrExtendTheNextOwnersLock) {
  std::unique_ptr<RedisLock> first = Held("k");
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // lease over
  std::unique_ptr<RedisLock> second = Held("k");
  const std::string owner = second->owner_token();
  ASSERT_NE(first->owner_token(), owner);
  EXPECT_TRUE(IsNotHeld(first->Renew(absl::Seconds(60))));
  EXPECT_LE(Pttl("k"), 300);
  EXPECT_EQ(first->Release().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Owner("k"), owner);
  EXPECT_THAT(second->IsLocked(), IsOkAndHolds(true));
}

// ---- secrets --------------------------------------------------------------------

constexpr char kSecret[] = "Pa55-never-print-me";

class SecretTest : public harness::RedisTest {
 protected:
  harness::RedisServerOptions ServerOptions() override {
    return {.name = "secret", .password = "the-real-server-password"};
  }
  void TearDown() override {
    unsetenv("SECURITY_TEST_PW");
    harness::RedisTest::TearDown();
  }
};

std::string Config(const std::string& addr, const std::string& user = "") {
  return absl::StrCat(R"({"redis": {"default": {"addrs": [")", addr,
                      R"("], "password_env": "SECURITY_TEST_PW")",
                      user.empty() ? "" : absl::StrCat(R"(, "username": ")", user, "\""),
                      R"(}}, "policies": {"p": {"key_prefix": "s:", "on_busy": "fail",
                      "script_timeout": "200ms"}}})");
}

TEST_F(SecretTest, PasswordsNeverAppearInErrors) {
  setenv("SECURITY_TEST_PW", kSecret, 1);
  ASSERT_THAT(server().Exec({"ACL", "SETUSER", "app", "on", absl::StrCat(">", kSecret),
                             "~nothing:*", "+@all"}),
              IsOk());
  struct Attempt {
    std::string what, addr, user;
  };
  const std::vector<Attempt> attempts = {
      {"wrong password for the default user", server().addr(), ""},
      {"user lacking key permissions", server().addr(), "app"},
      {"unknown user", server().addr(), "nobody"},
      {"nobody listening", "127.0.0.1:1", ""},
  };
  for (const Attempt& a : attempts) {
    SCOPED_TRACE(a.what);
    auto registry = policy::Registry::FromJson(Config(a.addr, a.user), "s.json");
    ASSERT_THAT(registry, IsOk());
    auto locker = Locker::Create(std::shared_ptr<policy::Registry>(*std::move(registry)));
    ASSERT_THAT(locker, IsOk());
    const absl::Status s = (*locker)->With("p", "k", [] { return absl::OkStatus(); });
    EXPECT_FALSE(s.ok());
    EXPECT_THAT(s.ToString(), Not(HasSubstr(kSecret)));
    EXPECT_THAT(s.ToString(), Not(HasSubstr("the-real-server-password")));
    const absl::Status f = (*locker)->FencedSet("p", "res", "v", 1);
    EXPECT_FALSE(f.ok());
    EXPECT_THAT(f.ToString(), Not(HasSubstr(kSecret)));
    // The resolved configuration as tools print it.
    const auto target = (*locker)->registry()->FindTarget("default");
    ASSERT_NE(target, nullptr);
    EXPECT_EQ(target->password, kSecret);  // loaded...
    EXPECT_THAT(policy::ExplainTarget(*target).dump(), Not(HasSubstr(kSecret)));  // ...never shown
  }
}

// Reads a whole command's output (stdout and stderr).
std::string RunCommand(const std::string& cmd, int* rc) {
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p != nullptr && (n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  *rc = p == nullptr ? -1 : pclose(p);
  return out;
}

TEST(LockctlSecretTest, ExplainAndValidateNeverPrintThePassword) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = tmp != nullptr ? tmp : "/tmp";
  const std::string good = dir + "/lockctl-secret.json";
  const std::string bad = dir + "/lockctl-secret-bad.json";
  std::ofstream(good) << Config("127.0.0.1:6379", "app");
  // A broken file whose errors sit right next to the password settings.
  std::ofstream(bad) << R"({"redis": {"default": {"addrs": ["127.0.0.1:0"],
      "password_env": "SECURITY_TEST_PW", "username": "app", "pasword": 1}},
      "policies": {"p": {"redis": "nope"}}})";
  const std::string ctl = "tools/lockctl/lockctl";
  const std::string env = absl::StrCat("SECURITY_TEST_PW=", kSecret, " ");
  int rc = 0;
  std::string out = RunCommand(env + ctl + " explain p --config " + good, &rc);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("SECURITY_TEST_PW"));  // names the variable...
  EXPECT_THAT(out, Not(HasSubstr(kSecret)));        // ...never its value
  out = RunCommand(env + ctl + " validate " + good + " " + bad, &rc);
  EXPECT_NE(rc, 0) << out;
  EXPECT_THAT(out, HasSubstr("lockctl-secret-bad.json"));
  EXPECT_THAT(out, Not(HasSubstr(kSecret)));
}

}  // namespace
}  // namespace lock
