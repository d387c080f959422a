#include "policy/registry.h"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/internal/tls_testing.h"
#include "util/status_matchers.h"

namespace policy {
namespace {

using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr absl::Duration kDeadline = absl::Seconds(20);
constexpr absl::Duration kPollInterval = absl::Milliseconds(50);

// A policies file with one policy "p" whose ttl is `ttl`.
std::string PolicyFile(const std::string& ttl) {
  return R"({"redis": {"default": {"addrs": ["127.0.0.1:6379"]}},
             "policies": {"p": {"ttl": ")" +
         ttl + R"("}}})";
}

// Each test gets its own directory under $TEST_TMPDIR.
class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp != nullptr ? tmp : "/tmp") + "/" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0) << dir_;
  }

  std::string PathOf(const std::string& name) const {
    return dir_ + "/" + name;
  }

  // Replaces the file atomically (write + rename), the way deployment tools
  // do, so a concurrent reader never sees half a file.
  void Write(const std::string& name, const std::string& text) {
    const std::string tmp = PathOf("." + name + ".tmp");
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << text;
      ASSERT_TRUE(out.good());
    }
    ASSERT_EQ(std::rename(tmp.c_str(), PathOf(name).c_str()), 0);
  }

  // Through Registry::FindPolicy, which keeps the snapshot alive. (Reading
  // through `registry.snapshot()->FindPolicy()` would drop the snapshot at
  // the end of the statement: a use-after-free once the watcher swaps it.)
  static absl::Duration TtlOf(const Registry& registry) {
    std::shared_ptr<const Policy> p = registry.FindPolicy("p");
    return p == nullptr ? absl::ZeroDuration() : p->ttl;
  }

  // Polls `done` until it holds or the deadline passes.
  template <typename Predicate>
  static bool Eventually(Predicate done) {
    const absl::Time deadline = absl::Now() + kDeadline;
    while (absl::Now() < deadline) {
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(5));
    }
    return done();
  }

  std::string dir_;
};

// Collects what Watch() reports, for checking from the test thread.
class Reports {
 public:
  std::function<void(const absl::Status&)> Callback() {
    return [this](const absl::Status& s) {
      std::lock_guard<std::mutex> lock(mu_);
      statuses_.push_back(s);
    };
  }
  std::vector<absl::Status> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    return statuses_;
  }
  size_t size() { return Get().size(); }

 private:
  std::mutex mu_;
  std::vector<absl::Status> statuses_;
};

TEST_F(RegistryTest, LoadsAFile) {
  Write("locks.json", PolicyFile("7s"));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(TtlOf(**r), absl::Seconds(7));
  EXPECT_THAT((*r)->snapshot()->sources(), ElementsAre(PathOf("locks.json")));
  EXPECT_EQ((*r)->path(), PathOf("locks.json"));
}

TEST_F(RegistryTest, MissingPathIsNotFound) {
  EXPECT_THAT(Registry::Load(PathOf("nope.json")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("nope.json")));
}

TEST_F(RegistryTest, InvalidFileReportsItsErrors) {
  Write("locks.json", PolicyFile("0s"));
  EXPECT_THAT(Registry::Load(PathOf("locks.json")),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       PathOf("locks.json") +
                           ": /policies/p/ttl: must be > 0, got \"0s\""));
}

TEST_F(RegistryTest, DirectoryFilesAreMergedInNameOrder) {
  Write("20-policies.json", R"({"policies": {"p": {"ttl": "9s"}, "q": {}}})");
  Write("10-redis.json", R"({"redis": {"default": {"addrs": ["h:1"]}}})");
  Write("notes.txt", "not configuration");
  Write(".hidden.json", "not even JSON");
  absl::StatusOr<std::unique_ptr<Registry>> r = Registry::Load(dir_);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT((*r)->snapshot()->sources(),
              ElementsAre(PathOf("10-redis.json"), PathOf("20-policies.json")));
  EXPECT_THAT((*r)->snapshot()->PolicyNames(), ElementsAre("p", "q"));
  EXPECT_EQ(TtlOf(**r), absl::Seconds(9));
}

TEST_F(RegistryTest, DuplicateNameInTwoFilesNamesBoth) {
  Write("a.json", PolicyFile("5s"));
  Write("b.json", R"({"policies": {"p": {"ttl": "6s"}}})");
  EXPECT_THAT(Registry::Load(dir_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       PathOf("b.json") +
                           ": /policies/p: policy \"p\" is "
                           "defined in both " +
                           PathOf("a.json") + " and " + PathOf("b.json")));
}

TEST_F(RegistryTest, EmptyDirectoryIsNotFound) {
  EXPECT_THAT(Registry::Load(dir_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no *.json")));
}

TEST_F(RegistryTest, FromJsonNeedsNoFiles) {
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::FromJson(PolicyFile("3s"));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(TtlOf(**r), absl::Seconds(3));
  EXPECT_THAT((*r)->snapshot()->sources(), ElementsAre("<inline>"));
  EXPECT_THAT((*r)->Reload(), IsOk());
  (*r)->Watch(kPollInterval, nullptr);  // Nothing to watch: a no-op.
  EXPECT_THAT(Registry::FromJson("{", "inline.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("inline.json: malformed JSON")));
}

TEST_F(RegistryTest, ReloadSwapsOnSuccess) {
  Write("locks.json", PolicyFile("5s"));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  std::shared_ptr<const Snapshot> before = (*r)->snapshot();

  Write("locks.json", PolicyFile("6s"));
  ASSERT_THAT((*r)->Reload(), IsOk());
  EXPECT_EQ(TtlOf(**r), absl::Seconds(6));
  EXPECT_NE((*r)->snapshot(), before);
}

TEST_F(RegistryTest, ReloadKeepsTheWorkingSnapshotOnError) {
  Write("locks.json", PolicyFile("5s"));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  std::shared_ptr<const Snapshot> good = (*r)->snapshot();

  Write("locks.json", PolicyFile("5 seconds"));
  EXPECT_THAT((*r)->Reload(), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("/policies/p/ttl")));
  EXPECT_EQ((*r)->snapshot(), good);
  EXPECT_EQ(TtlOf(**r), absl::Seconds(5));

  ASSERT_EQ(std::remove(PathOf("locks.json").c_str()), 0);
  EXPECT_THAT((*r)->Reload(), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_EQ((*r)->snapshot(), good);
}

TEST_F(RegistryTest, FoundPolicyOutlivesReloadsAndTheRegistry) {
  Write("locks.json", PolicyFile("5s"));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  std::shared_ptr<const Policy> held = (*r)->FindPolicy("p");
  ASSERT_NE(held, nullptr);
  EXPECT_EQ((*r)->FindPolicy("nope"), nullptr);
  EXPECT_EQ((*r)->FindTarget("default")->addrs[0], "127.0.0.1:6379");

  Write("locks.json", PolicyFile("6s"));
  ASSERT_THAT((*r)->Reload(), IsOk());
  r->reset();
  EXPECT_EQ(held->ttl, absl::Seconds(5));  // The policy the lock started with.
}

TEST_F(RegistryTest, OldSnapshotStaysValidAfterASwap) {
  Write("locks.json", PolicyFile("5s"));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  std::shared_ptr<const Snapshot> old = (*r)->snapshot();
  const Policy* old_policy = old->FindPolicy("p");
  ASSERT_NE(old_policy, nullptr);

  for (const char* ttl : {"6s", "7s", "8s"}) {
    Write("locks.json", PolicyFile(ttl));
    ASSERT_THAT((*r)->Reload(), IsOk());
  }
  r->reset();  // Even the registry is gone; the snapshot is shared.
  EXPECT_EQ(old_policy->ttl, absl::Seconds(5));
  EXPECT_EQ(old_policy->name, "p");
}

TEST_F(RegistryTest, WatchReloadsAnEditedFile) {
  Write("locks.json", PolicyFile("5s"));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  Reports reports;
  (*r)->Watch(kPollInterval, reports.Callback());

  Write("locks.json", PolicyFile("11s"));
  ASSERT_TRUE(Eventually([&] { return TtlOf(**r) == absl::Seconds(11); }));
  ASSERT_TRUE(Eventually([&] { return reports.size() >= 1; }));
  EXPECT_THAT(reports.Get().back(), IsOk());
}

TEST_F(RegistryTest, WatchReportsABrokenEditOnceAndKeepsTheOldSnapshot) {
  Write("locks.json", PolicyFile("5s"));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  Reports reports;
  (*r)->Watch(kPollInterval, reports.Callback());

  Write("locks.json", PolicyFile("-1s"));
  ASSERT_TRUE(Eventually([&] { return reports.size() >= 1; }));
  EXPECT_THAT(reports.Get()[0], StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("/policies/p/ttl")));
  EXPECT_EQ(TtlOf(**r), absl::Seconds(5));

  // The fix is picked up; the broken state was reported once only.
  Write("locks.json", PolicyFile("12s"));
  ASSERT_TRUE(Eventually([&] { return TtlOf(**r) == absl::Seconds(12); }));
  ASSERT_TRUE(Eventually([&] { return reports.size() >= 2; }));
  const std::vector<absl::Status> all = reports.Get();
  EXPECT_FALSE(all[0].ok());
  for (size_t i = 1; i < all.size(); ++i) EXPECT_THAT(all[i], IsOk()) << i;
}

// Timestamps can miss this (same size, same mtime tick); content cannot.
TEST_F(RegistryTest, WatchSeesAnInPlaceEditOfTheSameSize) {
  Write("locks.json", PolicyFile("17s"));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  (*r)->Watch(kPollInterval, nullptr);
  {
    std::ofstream out(PathOf("locks.json"), std::ios::trunc);  // Same inode.
    out << PolicyFile("18s");
  }
  ASSERT_TRUE(Eventually([&] { return TtlOf(**r) == absl::Seconds(18); }));
}

TEST_F(RegistryTest, WatchNoticesANewFileInTheDirectory) {
  Write("10-redis.json", R"({"redis": {"default": {"addrs": ["h:1"]}}})");
  absl::StatusOr<std::unique_ptr<Registry>> r = Registry::Load(dir_);
  ASSERT_THAT(r, IsOk());
  EXPECT_THAT((*r)->snapshot()->PolicyNames(), IsEmpty());
  (*r)->Watch(kPollInterval, nullptr);

  Write("20-policies.json", R"({"policies": {"p": {"ttl": "4s"}}})");
  ASSERT_TRUE(Eventually([&] { return TtlOf(**r) == absl::Seconds(4); }));
}

// A configuration whose target "default" uses the TLS files of certs/
// (relative to the configuration file).
constexpr char kTlsConfig[] = R"({"redis": {"default": {
    "addrs": ["127.0.0.1:6380"],
    "tls": {"ca_file": "certs/ca.pem", "cert_file": "certs/client.pem",
            "key_file": "certs/client.key"}}}})";

std::string CertPemOf(const Registry& registry) {
  std::shared_ptr<const RedisTarget> t = registry.FindTarget("default");
  return t == nullptr ? "" : t->tls.cert_pem;
}

// Certificates are rotated by replacing the files, not the configuration:
// the watcher must notice them too.
TEST_F(RegistryTest, WatchReloadsRotatedTlsFiles) {
  const tls_testing::Pki old_pki = tls_testing::MakePki(PathOf("certs"));
  const tls_testing::Pki new_pki = tls_testing::MakePki(PathOf("new"));
  Write("locks.json", kTlsConfig);
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  const std::string old_cert = CertPemOf(**r);
  ASSERT_FALSE(old_cert.empty());
  Reports reports;
  (*r)->Watch(kPollInterval, reports.Callback());

  // A rotation as tools do it, one file after the other: in between, the new
  // certificate does not match the old key, which is reported and leaves
  // the working snapshot in place.
  ASSERT_EQ(std::rename(new_pki.cert.c_str(), old_pki.cert.c_str()), 0);
  ASSERT_TRUE(Eventually([&] { return reports.size() >= 1; }));
  EXPECT_THAT(reports.Get()[0],
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("/redis/default/tls/key_file: the private "
                                 "key in " +
                                 old_pki.key + " does not match")));
  EXPECT_EQ(CertPemOf(**r), old_cert);

  ASSERT_EQ(std::rename(new_pki.key.c_str(), old_pki.key.c_str()), 0);
  ASSERT_TRUE(Eventually([&] { return reports.size() >= 2; }));
  EXPECT_THAT(reports.Get()[1], IsOk());
  std::ifstream in(old_pki.cert);
  const std::string rotated((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(CertPemOf(**r), rotated);
  EXPECT_NE(rotated, old_cert);
  EXPECT_EQ(reports.size(), 2u);
}

// A file the configuration names but that is missing: creating it is a
// change, although the configuration never loaded with it.
TEST_F(RegistryTest, WatchNoticesAMissingTlsFileAppearing) {
  Write("locks.json", PolicyFile("5s"));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  Reports reports;
  (*r)->Watch(kPollInterval, reports.Callback());

  Write("locks.json", kTlsConfig);
  ASSERT_TRUE(Eventually([&] { return reports.size() >= 1; }));
  EXPECT_THAT(reports.Get()[0], StatusIs(absl::StatusCode::kInvalidArgument,
                                         HasSubstr("No such file")));
  EXPECT_EQ(CertPemOf(**r), "");

  // openssl writes the files one by one, so a poll may see some of them
  // only (another error report); in the end the configuration loads.
  tls_testing::MakePki(PathOf("certs"));
  ASSERT_TRUE(Eventually([&] { return !CertPemOf(**r).empty(); }));
  ASSERT_TRUE(Eventually([&] { return reports.Get().back().ok(); }));
}

TEST_F(RegistryTest, StopWatchingStopsReloads) {
  Write("locks.json", PolicyFile("5s"));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  Reports reports;
  (*r)->Watch(kPollInterval, reports.Callback());
  (*r)->StopWatching();
  (*r)->StopWatching();  // Idempotent.

  Write("locks.json", PolicyFile("13s"));
  // Not a timing assertion: without a watcher nothing can ever reload, so a
  // few poll intervals are enough to catch a thread that was left running.
  absl::SleepFor(4 * kPollInterval);
  EXPECT_EQ(TtlOf(**r), absl::Seconds(5));
  EXPECT_EQ(reports.size(), 0u);
}

// Readers never block on or observe a torn snapshot while reloads and a
// watcher run; mostly a target for --config=tsan.
TEST_F(RegistryTest, ConcurrentReadersReloadsAndWatcher) {
  Write("locks.json", PolicyFile("10s"));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(PathOf("locks.json"));
  ASSERT_THAT(r, IsOk());
  Registry& registry = **r;
  registry.Watch(absl::Milliseconds(1), nullptr);

  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      while (!stop.load()) {
        std::shared_ptr<const Snapshot> s = registry.snapshot();
        const Policy* p = s->FindPolicy("p");
        ASSERT_NE(p, nullptr);
        ASSERT_GE(p->ttl, absl::Seconds(10));
        ASSERT_LE(p->ttl, absl::Seconds(30));
      }
    });
  }
  for (int i = 11; i <= 30; ++i) {
    Write("locks.json", PolicyFile(std::to_string(i) + "s"));
    EXPECT_THAT(registry.Reload(), IsOk());
  }
  stop = true;
  for (std::thread& t : readers) t.join();
  registry.StopWatching();
  EXPECT_EQ(TtlOf(registry), absl::Seconds(30));
}

}  // namespace
}  // namespace policy
