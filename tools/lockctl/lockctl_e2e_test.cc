// lockctl end to end: the real binary, run as a subprocess, against a real
// redis-server holding locks taken through the library itself.
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/internal/keys.h"
#include "lock/internal/primitive_calls.h"
#include "lock/lock.h"
#include "lock/redis/connection.h"
#include "lock/redis/script.h"
#include "nlohmann/json.hpp"
#include "policy/registry.h"
#include "tools/lockctl/lockctl_run.h"
#include "util/status_matchers.h"

namespace lockctl {
namespace {

using ::util::testing::IsOk;
using ::util::testing::IsOkAndHolds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"], "password_env": "PWENV", TARGET_EXTRA
                          "connect_timeout": "300ms" } },
  "defaults": { "script_timeout": "500ms" },
  "policies": {
    "orders": { "key_prefix": "order:close:", "ttl": "1h", "on_busy": "fail" },
    "other": { "key_prefix": "other:", "ttl": "1h" },
    "starry": { "key_prefix": "*", "ttl": "1h" },
    "jobs": { "key_prefix": "job:", "ttl": "1h", "on_busy": "skip",
              "hold_at_least": "1h" },
    "pool": { "key_prefix": "pool:", "kind": "semaphore", "permits": 3 },
    "docs": { "key_prefix": "doc:", "kind": "read_write" },
    "line": { "key_prefix": "line:", "kind": "fair" }
  }
})json";

// Lease left changes from run to run; so do column widths that depend on it.
std::string Normalize(std::string s) {
  s = std::regex_replace(s, std::regex(R"("ttl_ms": \d+)"), R"("ttl_ms": TTL)");
  s = std::regex_replace(
      s, std::regex(R"((^|  )[0-9][0-9hms.]*[hms](?=  |\n))"), "$1TTL");
  s = std::regex_replace(s, std::regex(R"(ttl left +\S+)"), "ttl left  TTL");
  s = std::regex_replace(s, std::regex(R"(  +)"), "  ");
  return s;
}

class LockctlTest : public lock::harness::RedisTest {
 protected:
  void SetUp() override {
    lock::harness::RedisTest::SetUp();
    if (HasFatalFailure()) return;
    config_ = absl::StrCat(TmpDir(), "/policies.json");
    std::ofstream(config_) << absl::StrReplaceAll(
        kConfig, {{"ADDR", server().addr()},
                  {"PWENV", PasswordEnv()},
                  {"TARGET_EXTRA", TargetExtra()}});
    auto registry = policy::Registry::Load(config_);
    ASSERT_THAT(registry, IsOk());
    auto locker = lock::Locker::Create(
        std::shared_ptr<policy::Registry>(*std::move(registry)));
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }

  virtual std::string PasswordEnv() { return ""; }
  // More fields of the target, each followed by a comma.
  virtual std::string TargetExtra() { return ""; }

  // A lock held through the library, as an application would hold it.
  std::unique_ptr<lock::RedisLock> HoldState(const std::string& policy,
                                        const std::string& key,
                                        int levels = 1) {
    auto lk = locker_->NewLock(policy, key);
    EXPECT_THAT(lk, IsOk());
    if (!lk.ok()) return nullptr;
    for (int i = 0; i < levels; ++i) EXPECT_THAT((*lk)->Acquire(), IsOk());
    return *std::move(lk);
  }

  absl::StatusOr<lock::LockState> Inspect(const std::string& policy,
                                          const std::string& key) {
    auto lk = locker_->NewLock(policy, key);
    if (!lk.ok()) return lk.status();
    return (*lk)->Inspect();
  }

  // The golden file with placeholders filled in, normalized like the output.
  std::string Golden(const std::string& name,
                     const std::map<std::string, std::string>& vars = {}) {
    std::string g = ReadFile("tools/lockctl/testdata/" + name);
    EXPECT_FALSE(g.empty()) << name;
    std::vector<std::pair<std::string, std::string>> subs = {
        {"${ADDR}", server().addr()}};
    for (const auto& [k, v] : vars) subs.push_back({"${" + k + "}", v});
    return Normalize(absl::StrReplaceAll(g, subs));
  }

  // ${OWNER}, ${HOST}, ${PID} of a hold.
  static std::map<std::string, std::string> OwnerVars(
      const lock::RedisLock& lk, const std::string& suffix = "") {
    const std::string token = lk.owner_token();
    std::vector<std::string> parts = absl::StrSplit(token, ':');
    EXPECT_EQ(parts.size(), 3u) << token;
    if (parts.size() != 3) return {};
    // Tokens follow the server clock (microseconds), so they differ per run.
    return {{"OWNER" + suffix, token},
            {"HOST" + suffix, parts[0]},
            {"PID" + suffix, parts[1]},
            {"FENCE" + suffix, absl::StrCat(lk.fencing_token())}};
  }

  std::vector<std::string> WithConfig(std::vector<std::string> args) {
    args.push_back("--config");
    args.push_back(config_);
    return args;
  }

  std::string config_;
  std::unique_ptr<lock::Locker> locker_;
};

TEST_F(LockctlTest, StatusOfAHeldLockMatchesGolden) {
  auto lk = HoldState("orders", "order-1", /*levels=*/2);
  ASSERT_NE(lk, nullptr);
  CliRun r = Lockctl(WithConfig({"status", "orders", "order-1"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(Normalize(r.out), Golden("status_held.golden", OwnerVars(*lk)))
      << r.out;

  r = Lockctl(WithConfig({"status", "orders", "order-1", "--json"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(Normalize(r.out), Golden("status_held.json.golden", OwnerVars(*lk)))
      << r.out;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["ttl_ms"].get<int64_t>(), 3'500'000);
  EXPECT_LE(j["ttl_ms"].get<int64_t>(), 3'600'000);
}

TEST_F(LockctlTest, StatusOfAFreeLockShowsTheLastFence) {
  auto lk = HoldState("orders", "order-1");
  ASSERT_NE(lk, nullptr);
  const auto vars = OwnerVars(*lk);
  ASSERT_THAT(lk->Release(), IsOk());
  CliRun r = Lockctl(WithConfig({"status", "orders", "order-1"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(Normalize(r.out), Golden("status_free.golden", vars)) << r.out;
}

TEST_F(LockctlTest, StatusOfARunOnceKeyKeptForHoldAtLeast) {
  auto lk = HoldState("jobs", "nightly");
  ASSERT_NE(lk, nullptr);
  const auto vars = OwnerVars(*lk);
  ASSERT_THAT(lk->Release(), IsOk());
  CliRun r = Lockctl(WithConfig({"status", "jobs", "nightly"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(Normalize(r.out), Golden("status_kept.golden", vars)) << r.out;
}

TEST_F(LockctlTest, ListShowsHeldLocksOfThePolicyOnly) {
  auto a = HoldState("orders", "order-1");
  auto b = HoldState("orders", "order-2", /*levels=*/3);
  auto other = HoldState("other", "order-1");  // another prefix
  auto gone = HoldState("orders", "order-3");  // leaves only its fence record
  ASSERT_TRUE(a && b && other && gone);
  ASSERT_THAT(gone->Release(), IsOk());
  // A cancel marker of a lost acquire, as the library leaves it.
  ASSERT_THAT(server().Exec({"SET",
                             lock::internal::LockKeys("order:close:", "order-4")
                                 .CancelMarker("x:1:ab"),
                             "1", "PX", "60000"}),
              IsOk());

  auto vars = OwnerVars(*a, "1");
  vars.merge(OwnerVars(*b, "2"));
  CliRun r = Lockctl(WithConfig({"list", "orders"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(Normalize(r.out), Golden("list.golden", vars)) << r.out;

  r = Lockctl(WithConfig({"list", "orders", "--json"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(Normalize(r.out), Golden("list.json.golden", vars)) << r.out;

  r = Lockctl(WithConfig({"list", "orders", "--match", "*-2"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("order-2"));
  EXPECT_THAT(r.out, Not(HasSubstr("order-1")));

  r = Lockctl(WithConfig({"list", "orders", "--limit", "1"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("1 more not shown (--limit 1)"));

  r = Lockctl(WithConfig({"list", "orders", "--match", "nothing*"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("no locks held under policy orders"));
}

TEST_F(LockctlTest, ListKeepsKeysThatOnlyLookLikeMarkers) {
  auto a = HoldState("orders", "order:cancel:7");
  auto b = HoldState("orders", "x:fence");
  ASSERT_TRUE(a && b);
  CliRun r = Lockctl(WithConfig({"list", "orders", "--json"}));
  ASSERT_EQ(r.code, 0) << r;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["locks"].size(), 2u) << r.out;
  EXPECT_EQ(j["locks"][0]["key"], "order:cancel:7");
  EXPECT_EQ(j["locks"][1]["key"], "x:fence");
}

TEST_F(LockctlTest, ListWithAGlobCharacterInThePrefix) {
  // The prefix is escaped in MATCH and checked again on every key found.
  auto a = HoldState("starry", "k1");
  auto b =
      HoldState("orders", "k2");  // {order:close:k2}: would match {*...} unescaped
  ASSERT_TRUE(a && b);
  CliRun r = Lockctl(WithConfig({"list", "starry", "--json"}));
  ASSERT_EQ(r.code, 0) << r;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["locks"].size(), 1u) << r.out;
  EXPECT_EQ(j["locks"][0]["redis_key"], "{*k1}");
}

TEST_F(LockctlTest, ReleaseWithTheWrongOwnerTouchesNothing) {
  auto lk = HoldState("orders", "order-1");
  ASSERT_NE(lk, nullptr);
  CliRun r =
      Lockctl(WithConfig({"release", "orders", "order-1", "--owner",
                          "elsewhere:1:00000000000000000000000000000000"}));
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("is not held by owner elsewhere:1:"));
  EXPECT_THAT(r.err, HasSubstr("held by " + lk->owner_token()));
  EXPECT_THAT(lk->IsLocked(), IsOkAndHolds(true));
}

TEST_F(LockctlTest, ReleaseWithTheOwnersToken) {
  auto lk = HoldState("orders", "order-1", /*levels=*/2);
  ASSERT_NE(lk, nullptr);
  CliRun r = Lockctl(WithConfig(
      {"release", "orders", "order-1", "--owner", lk->owner_token()}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("released orders / order-1"));
  EXPECT_THAT(Inspect("orders", "order-1"),
              IsOkAndHolds(::testing::Field(&lock::LockState::held, false)));
  // The same token again: nothing held by it any more.
  r = Lockctl(WithConfig(
      {"release", "orders", "order-1", "--owner", lk->owner_token()}));
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("it is free"));
}

TEST_F(LockctlTest, ReleaseWithoutOwnerOrForceIsRefused) {
  auto lk = HoldState("orders", "order-1");
  ASSERT_NE(lk, nullptr);
  CliRun r = Lockctl(WithConfig({"release", "orders", "order-1"}));
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_THAT(r.err, HasSubstr("refusing to release without --owner TOKEN"));
  r = Lockctl(WithConfig(
      {"release", "orders", "order-1", "--force"}));  // no tty, no --yes
  EXPECT_EQ(r.code, 2) << r;
  EXPECT_THAT(r.err, HasSubstr("add --yes"));
  EXPECT_THAT(lk->IsLocked(), IsOkAndHolds(true));
}

TEST_F(LockctlTest, ForceReleaseWithYesRemovesAnyOwnerAndSaysWhom) {
  auto lk = HoldState("orders", "order-1", /*levels=*/2);
  ASSERT_NE(lk, nullptr);
  const int64_t fence = lk->fencing_token();
  CliRun r =
      Lockctl(WithConfig({"release", "orders", "order-1", "--force", "--yes"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("removed owner " + lk->owner_token()));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat("fencing token ", fence)));
  EXPECT_THAT(r.err, HasSubstr("force-release policy=orders key=order-1"));
  EXPECT_THAT(r.err, HasSubstr("owner=" + lk->owner_token()));
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat("fence=", fence)));
  EXPECT_THAT(lk->IsLocked(), IsOkAndHolds(false));
  // The holder finds out at its next release, and nothing else is deleted.
  EXPECT_TRUE(lock::IsNotHeld(lk->Release()));

  // Nothing left to force.
  r = Lockctl(WithConfig(
      {"release", "orders", "order-1", "--force", "--yes", "--json"}));
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("is not held; nothing to release"));
}

TEST_F(LockctlTest, ForceReleaseClearsAKeptRunOnceKey) {
  auto lk = HoldState("jobs", "nightly");
  ASSERT_NE(lk, nullptr);
  ASSERT_THAT(lk->Release(), IsOk());
  CliRun r = Lockctl(
      WithConfig({"release", "jobs", "nightly", "--force", "--yes", "--json"}));
  ASSERT_EQ(r.code, 0) << r;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["forced"], true);
  EXPECT_EQ(j["hold_count"], 0);
  EXPECT_THAT(Inspect("jobs", "nightly"),
              IsOkAndHolds(::testing::Field(&lock::LockState::held, false)));
}

TEST_F(LockctlTest, RedisDownExits3) {
  ASSERT_THAT(server().Kill(), IsOk());
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"status", "orders", "k"},
           {"list", "orders"},
           {"release", "orders", "k", "--owner", "t"},
           {"release", "orders", "k", "--force", "--yes"},
           {"status", "pool", "k"},
           {"list", "docs"},
           {"release", "line", "k", "--owner", "t"},
           {"bench", "--policy", "orders", "--seconds", "0.2"}}) {
    CliRun r = Lockctl(WithConfig(args));
    EXPECT_EQ(r.code, 3) << args[0] << ": " << r;
    EXPECT_THAT(r.err, HasSubstr(server().addr())) << r;
    EXPECT_THAT(r.err, HasSubstr("could not talk to Redis")) << r;
  }
}

TEST_F(LockctlTest, UnknownPolicyAndBadKeyExit1) {
  CliRun r = Lockctl(WithConfig({"status", "nope", "k"}));
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("unknown policy \"nope\""));
  r = Lockctl(WithConfig({"status", "orders", "bad{key}"}));
  EXPECT_EQ(r.code, 1) << r;
}

TEST_F(LockctlTest, BenchReportsBothScenarios) {
  CliRun r = Lockctl(WithConfig({"bench", "--policy", "other", "--seconds",
                                 "0.3", "--threads", "2", "--json"}));
  ASSERT_EQ(r.code, 0) << r;
  std::vector<std::string> lines =
      absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << r;
  for (size_t i = 0; i < 2; ++i) {
    const nlohmann::json j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["scenario"], i == 0 ? "uncontended" : "handoff");
    EXPECT_GT(j["pairs"].get<int64_t>(), 0) << lines[i];
    EXPECT_EQ(j["errors"].get<int64_t>(), 0) << lines[i];
    EXPECT_GT(j["p99_ms"].get<double>(), 0) << lines[i];
  }
  // The bench cleans up after itself: no lock, no fencing counter left.
  EXPECT_THAT(server().Exec({"KEYS", "*lockctl-bench*"}), IsOkAndHolds(""));
}

// --- the other kinds: states made with the library's own scripts ---

constexpr int64_t kMinute = 60000;

class LockctlKindsTest : public LockctlTest {
 protected:
  // Runs a script call as the engine would; its integer or acquire status.
  int64_t Call(const lock::internal::PrimitiveCall& call) {
    if (conn_ == nullptr) {
      auto conn = lock::redis::Connection::Open({.addr = server().addr()});
      EXPECT_THAT(conn, IsOk());
      if (!conn.ok()) return -99;
      conn_ = *std::move(conn);
    }
    auto r = lock::redis::RunScript(*conn_, *call.script, call.KeyViews(),
                                    call.ArgViews(), absl::Seconds(5));
    EXPECT_THAT(r, IsOk()) << call.script->name;
    if (!r.ok()) return -99;
    const redisReply& reply = **r;
    if (reply.type == REDIS_REPLY_INTEGER) return reply.integer;
    auto a = lock::internal::ParseAcquireReply(reply, call.script->name);
    EXPECT_THAT(a, IsOk());
    return a.ok() ? a->status : -99;
  }

  nlohmann::json Json(const std::vector<std::string>& args) {
    CliRun r = Lockctl(WithConfig(args));
    EXPECT_EQ(r.code, 0) << r;
    return r.code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
  }

  static std::vector<std::string> Tokens(const nlohmann::json& leases) {
    std::vector<std::string> out;
    for (const auto& l : leases) {
      EXPECT_GT(l["ttl_ms"].get<int64_t>(), 0) << l;
      EXPECT_LE(l["ttl_ms"].get<int64_t>(), kMinute) << l;
      out.push_back(l["token"]);
    }
    return out;
  }

  const lock::internal::SemaphoreKeys sem_{"pool:", "p1"};
  const lock::internal::ReadWriteKeys rw_{"doc:", "d1"};
  const lock::internal::FairKeys fair_{"line:", "f1"};
  std::unique_ptr<lock::redis::Connection> conn_;
};

constexpr int64_t kHeld = lock::internal::AcquireReply::kHeld;
constexpr int64_t kBusy = lock::internal::AcquireReply::kBusy;

TEST_F(LockctlKindsTest, SemaphoreStatusListAndRelease) {
  using lock::internal::SemAcquire;
  ASSERT_EQ(Call(SemAcquire(sem_, "tok-a", kMinute, 1, 3)), kHeld);
  ASSERT_EQ(Call(SemAcquire(sem_, "tok-b", kMinute, 1, 3)), kHeld);
  const lock::internal::SemaphoreKeys other("pool:", "p2");
  ASSERT_EQ(Call(SemAcquire(other, "tok-c", kMinute, 1, 3)), kHeld);

  CliRun r = Lockctl(WithConfig({"status", "pool", "p1"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(Normalize(r.out), HasSubstr("kind  semaphore"));
  EXPECT_THAT(Normalize(r.out), HasSubstr("hash tag  {pool:p1} on " + server().addr()));
  EXPECT_THAT(Normalize(r.out), HasSubstr("permits  2/3 in use"));
  EXPECT_THAT(Normalize(r.out), HasSubstr("holder  tok-a ("));
  EXPECT_THAT(Normalize(r.out), HasSubstr("holder  tok-b ("));
  nlohmann::json j = Json({"status", "pool", "p1", "--json"});
  EXPECT_EQ(j["kind"], "semaphore");
  EXPECT_EQ(j["state"], "held");
  EXPECT_EQ(j["permits"], 3);
  EXPECT_EQ(j["in_use"], 2);
  EXPECT_THAT(Tokens(j["holders"]), UnorderedElementsAre("tok-a", "tok-b"));

  r = Lockctl(WithConfig({"list", "pool"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_EQ(Normalize(r.out),
            Normalize(absl::StrCat("KEY  KIND  SUMMARY\n"
                                   "p1  semaphore  2/3 permits\n"
                                   "p2  semaphore  1/3 permits\n"
                                   "2 locks under policy pool (prefix \"pool:\", "
                                   "match \"*\") on ",
                                   server().addr(), " db 0\n")));
  j = Json({"list", "pool", "--json"});
  EXPECT_EQ(j["kind"], "semaphore");
  ASSERT_EQ(j["locks"].size(), 2u) << j;
  EXPECT_EQ(j["locks"][0]["key"], "p1");
  EXPECT_EQ(j["locks"][0]["in_use"], 2);
  EXPECT_EQ(j["locks"][1]["summary"], "1/3 permits");

  r = Lockctl(WithConfig({"release", "pool", "p1", "--owner", "tok-a"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(Normalize(r.out), HasSubstr("released pool / p1 ({pool:p1} on "));
  EXPECT_THAT(Normalize(r.out), HasSubstr("removed permit of tok-a ("));
  r = Lockctl(WithConfig({"release", "pool", "p1", "--owner", "tok-a"}));
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("is not held by owner tok-a"));
  EXPECT_THAT(r.err, HasSubstr("it is 1/3 permits"));

  r = Lockctl(WithConfig({"release", "pool", "p1", "--force", "--yes", "--json"}));
  ASSERT_EQ(r.code, 0) << r;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["forced"], true);
  ASSERT_EQ(j["removed"].size(), 1u) << j;
  EXPECT_EQ(j["removed"][0]["token"], "tok-b");
  EXPECT_EQ(j["removed"][0]["role"], "permit");
  EXPECT_THAT(r.err, HasSubstr("force-release policy=pool key=p1"));
  EXPECT_THAT(r.err, HasSubstr("role=permit owner=tok-b"));
  j = Json({"status", "pool", "p1", "--json"});
  EXPECT_EQ(j["in_use"], 0);
  EXPECT_EQ(j["state"], "free");
  // The other semaphore is untouched.
  EXPECT_EQ(Json({"status", "pool", "p2", "--json"})["in_use"], 1);
}

TEST_F(LockctlKindsTest, ReadWriteShowsWriterClaimsAndReaders) {
  using lock::internal::RwReadAcquire;
  using lock::internal::RwWriteAcquire;
  ASSERT_EQ(Call(RwWriteAcquire(rw_, "w1", kMinute, 1, kMinute)), kHeld);
  ASSERT_EQ(Call(RwWriteAcquire(rw_, "w2", kMinute, 1, kMinute)), kBusy);  // claims
  const lock::internal::ReadWriteKeys shared("doc:", "d2");
  ASSERT_EQ(Call(RwReadAcquire(shared, "r1", kMinute, 1)), kHeld);
  ASSERT_EQ(Call(RwReadAcquire(shared, "r2", kMinute, 1)), kHeld);

  CliRun r = Lockctl(WithConfig({"status", "docs", "d1"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(Normalize(r.out), HasSubstr("state  write-held"));
  EXPECT_THAT(Normalize(r.out), HasSubstr("preference  writer"));
  EXPECT_THAT(Normalize(r.out), HasSubstr("writer  w1\n"));
  EXPECT_THAT(Normalize(r.out), HasSubstr("  reentry count  1\n"));
  EXPECT_THAT(Normalize(r.out), HasSubstr("waiting writer  w2 (claim "));
  nlohmann::json j = Json({"status", "docs", "d1", "--json"});
  EXPECT_EQ(j["kind"], "read_write");
  EXPECT_EQ(j["preference"], "writer");
  EXPECT_EQ(j["writer"]["token"], "w1");
  EXPECT_EQ(j["writer"]["hold_count"], 1);
  const int64_t fence = j["writer"]["fencing_token"].get<int64_t>();
  EXPECT_GT(fence, 0);
  EXPECT_EQ(j["last_fencing_token"], fence);
  EXPECT_THAT(Tokens(j["waiting_writers"]), ElementsAre("w2"));
  EXPECT_TRUE(j["readers"].empty());

  j = Json({"status", "docs", "d2", "--json"});
  EXPECT_EQ(j["state"], "read-held");
  EXPECT_TRUE(j["writer"].is_null());
  EXPECT_THAT(Tokens(j["readers"]), UnorderedElementsAre("r1", "r2"));

  j = Json({"list", "docs", "--json"});
  ASSERT_EQ(j["locks"].size(), 2u) << j;
  EXPECT_EQ(j["locks"][0]["summary"], "writer w1, 1 writer waiting");
  EXPECT_EQ(j["locks"][1]["summary"], "2 readers");
  r = Lockctl(WithConfig({"list", "docs"}));
  EXPECT_THAT(Normalize(r.out), HasSubstr("d1  read_write  writer w1, 1 writer waiting\n"));

  r = Lockctl(WithConfig({"release", "docs", "d1", "--owner", "w1"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(Normalize(r.out), HasSubstr(absl::StrCat("removed writer w1 (fencing token ", fence,
                                            ", reentry count 1, ")));
  j = Json({"status", "docs", "d1", "--json"});
  EXPECT_TRUE(j["writer"].is_null());
  EXPECT_THAT(Tokens(j["waiting_writers"]), ElementsAre("w2"));  // still waiting
  r = Lockctl(WithConfig({"release", "docs", "d1", "--owner", "w2"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(Normalize(r.out), HasSubstr("removed waiting writer w2 (claim "));
  EXPECT_TRUE(Json({"status", "docs", "d1", "--json"})["waiting_writers"].empty());

  // --force gives back every reader it read.
  r = Lockctl(WithConfig({"release", "docs", "d2", "--force", "--yes"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(Normalize(r.out), HasSubstr("force-released docs / d2 ({doc:d2} on "));
  EXPECT_THAT(Normalize(r.out), HasSubstr("removed reader r1 ("));
  EXPECT_THAT(Normalize(r.out), HasSubstr("removed reader r2 ("));
  EXPECT_THAT(r.err, HasSubstr("role=reader owner=r1"));
  EXPECT_EQ(Json({"status", "docs", "d2", "--json"})["state"], "free");
  r = Lockctl(WithConfig({"release", "docs", "d2", "--force", "--yes"}));
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("is not held; nothing to release"));
}

TEST_F(LockctlKindsTest, FairShowsTheQueueInOrderAndReleasesOwnerOrWaiter) {
  using lock::internal::FairAcquire;
  ASSERT_EQ(Call(FairAcquire(fair_, "o1", kMinute, 1, kMinute)), kHeld);
  ASSERT_EQ(Call(FairAcquire(fair_, "q1", kMinute, 1, kMinute)), kBusy);
  ASSERT_EQ(Call(FairAcquire(fair_, "q2", kMinute, 1, kMinute)), kBusy);
  ASSERT_EQ(Call(FairAcquire(fair_, "q3", kMinute, 1, kMinute)), kBusy);

  CliRun r = Lockctl(WithConfig({"status", "line", "f1"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(Normalize(r.out), HasSubstr("kind  fair"));
  EXPECT_THAT(Normalize(r.out), HasSubstr("owner  o1\n"));
  EXPECT_THAT(Normalize(r.out), HasSubstr("queued 1  q1 (place "));
  EXPECT_THAT(Normalize(r.out), HasSubstr("queued 3  q3 (place "));
  nlohmann::json j = Json({"status", "line", "f1", "--json"});
  EXPECT_EQ(j["kind"], "fair");
  EXPECT_EQ(j["owner"]["token"], "o1");
  EXPECT_EQ(j["owner"]["hold_count"], 1);
  EXPECT_GT(j["owner"]["fencing_token"].get<int64_t>(), 0);
  EXPECT_THAT(Tokens(j["queue"]), ElementsAre("q1", "q2", "q3"));
  EXPECT_EQ(j["queue"][2]["place"], 3);

  j = Json({"list", "line", "--json"});
  ASSERT_EQ(j["locks"].size(), 1u) << j;
  EXPECT_EQ(j["locks"][0]["summary"], "held by o1, 3 queued");

  // watch counts a fair lock's waiters from its queue; o1's token carries
  // no host:pid and its age comes from the fencing token.
  j = Json({"watch", "line", "--count", "1", "--json"});
  ASSERT_EQ(j["locks"].size(), 1u) << j;
  EXPECT_EQ(j["locks"][0]["key"], "f1");
  EXPECT_EQ(j["locks"][0]["owner"], "o1");
  EXPECT_EQ(j["locks"][0]["waiters"], 3);
  EXPECT_EQ(j["locks"][0]["state"], "held by o1, 3 queued");
  EXPECT_EQ(j["locks"][0]["age_from"], "fencing_token");

  r = Lockctl(WithConfig({"release", "line", "f1", "--owner", "q2"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(Normalize(r.out), HasSubstr("removed waiter q2 (place 2 in the queue, "));
  EXPECT_THAT(Tokens(Json({"status", "line", "f1", "--json"})["queue"]),
              ElementsAre("q1", "q3"));

  r = Lockctl(WithConfig({"release", "line", "f1", "--force", "--yes"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(Normalize(r.out), HasSubstr("removed owner o1 (fencing token "));
  EXPECT_THAT(Normalize(r.out), HasSubstr("the next in line, q1, was told"));
  EXPECT_THAT(r.err, HasSubstr("role=owner owner=o1"));
  j = Json({"status", "line", "f1", "--json"});
  EXPECT_EQ(j["state"], "free");
  EXPECT_TRUE(j["owner"].is_null());
  EXPECT_THAT(Tokens(j["queue"]), ElementsAre("q1", "q3"));  // q1 takes it next
  EXPECT_EQ(Call(FairAcquire(fair_, "q3", kMinute, 1, kMinute)), kBusy);
  EXPECT_EQ(Call(FairAcquire(fair_, "q1", kMinute, 1, kMinute)), kHeld);

  r = Lockctl(WithConfig({"release", "line", "f1", "--owner", "nobody"}));
  EXPECT_EQ(r.code, 1) << r;
  EXPECT_THAT(r.err, HasSubstr("it is held by q1, 1 queued"));
  r = Lockctl(WithConfig({"status", "line", "bad{key}"}));
  EXPECT_EQ(r.code, 1) << r;
}

TEST_F(LockctlKindsTest, ExplainSaysWhatEachKindMeans) {
  nlohmann::json j = Json({"explain", "pool"});
  EXPECT_EQ(j["resolved"]["kind"], "semaphore");
  EXPECT_EQ(j["resolved"]["permits"], 3);
  EXPECT_THAT(j["kind"].get<std::string>(), HasSubstr("up to 3 holders at once"));
  EXPECT_THAT(j["kind"].get<std::string>(), HasSubstr("none gets a fencing token"));
  j = Json({"explain", "docs"});
  EXPECT_THAT(j["kind"].get<std::string>(), HasSubstr("Writer preference"));
  EXPECT_THAT(j["kind"].get<std::string>(), HasSubstr("Only the write hold is exclusive"));
  j = Json({"explain", "line"});
  EXPECT_THAT(j["kind"].get<std::string>(), HasSubstr("granted in request order"));
  EXPECT_THAT(j["kind"].get<std::string>(), HasSubstr("a dead waiter leaves the queue"));
  j = Json({"explain", "orders"});
  EXPECT_THAT(j["kind"].get<std::string>(), HasSubstr("mutex: one holder at a time"));
}

// The policy's redis target decides how to authenticate.
class LockctlAuthTest : public LockctlTest {
 protected:
  lock::harness::RedisServerOptions ServerOptions() override {
    return {.name = "redis-auth", .password = "s3cret"};
  }
  std::string PasswordEnv() override {
    setenv("LOCKCTL_E2E_PW", "s3cret", 1);  // for the test's own Locker
    return "LOCKCTL_E2E_PW";
  }
};

TEST_F(LockctlAuthTest, UsesThePasswordFromPasswordEnv) {
  auto lk = HoldState("orders", "order-1");
  ASSERT_NE(lk, nullptr);
  CliRun r = Lockctl(WithConfig({"status", "orders", "order-1", "--json"}),
                     {{"LOCKCTL_E2E_PW", "s3cret"}});
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr(lk->owner_token()));

  r = Lockctl(WithConfig({"status", "orders", "order-1"}),
              {{"LOCKCTL_E2E_PW", "not-the-s3cret-zz"}});
  EXPECT_EQ(r.code, 3) << r;
  EXPECT_THAT(r.err + r.out, Not(HasSubstr("not-the-s3cret-zz")));
}

// lockctl reads the target's "tls" block as the library does: here a server
// that also demands a client certificate.
class LockctlTlsTest : public LockctlTest {
 protected:
  lock::harness::RedisServerOptions ServerOptions() override {
    return {.name = "redis-tls", .tls = true, .tls_auth_clients = "yes"};
  }
  std::string TargetExtra() override {
    const lock::harness::TlsFiles& f = *server().tls_files();
    return absl::StrCat(R"("tls": {"ca_file": ")", f.ca_cert, R"(", "cert_file": ")",
                        f.client_cert, R"(", "key_file": ")", f.client_key, R"("},)");
  }
};

TEST_F(LockctlTlsTest, StatusListAndReleaseOverTls) {
  auto lk = HoldState("orders", "order-1");
  ASSERT_NE(lk, nullptr);
  CliRun r = Lockctl(WithConfig({"status", "orders", "order-1", "--json"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr(lk->owner_token()));
  r = Lockctl(WithConfig({"list", "orders"}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(r.out, HasSubstr("order-1"));
  r = Lockctl(WithConfig({"release", "orders", "order-1", "--owner", lk->owner_token()}));
  ASSERT_EQ(r.code, 0) << r;
  EXPECT_THAT(Inspect("orders", "order-1"),
              ::util::testing::IsOkAndHolds(::testing::Field(&lock::LockState::held, false)));
}

}  // namespace
}  // namespace lockctl
