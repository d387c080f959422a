// The lock engine against FakeRedis (no redis-server): what it sends and how
// it reads each scripted answer — a grant, a busy key, a reply that never
// comes (cancelled), a hold found gone at release and by renewal; and the
// semaphore kind's scripts on the same paths. The same
// behaviour runs against real servers in //lock:redis_lock_test and the
// edge suites; these pin the engine's side of it in milliseconds.
#include "lock/internal/lock_core.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lock/errors.h"
#include "lock/redis/pool.h"
#include "lock/redis/testing/fake_redis.h"
#include "lock/scripts/embedded.h"
#include "util/status_matchers.h"

namespace lock::internal {
namespace {

using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using redis::testing::FakeRedis;

constexpr int64_t kFence = 1796000000000001;

// Which of the engine's scripts a command runs ("" for other commands).
std::string ScriptOf(const FakeRedis::Argv& argv) {
  if (argv.size() < 2 || (argv[0] != "EVALSHA" && argv[0] != "EVAL")) return "";
  for (const scripts::EmbeddedScript* s :
       {&scripts::k_acquire, &scripts::k_release, &scripts::k_extend, &scripts::k_cancel,
        &scripts::k_sem_acquire, &scripts::k_sem_release, &scripts::k_sem_cancel,
        &scripts::k_lease_extend}) {
    if (argv[1] == s->sha1 || argv[1] == s->body) return std::string(s->name);
  }
  return "?";
}

std::string Granted() {
  return FakeRedis::Array(
      {FakeRedis::Integer(1), FakeRedis::Integer(kFence), FakeRedis::Integer(30000)});
}

class LockCoreTest : public ::testing::Test {
 protected:
  // A lock on one FakeRedis that answers each command by the script it
  // runs (ScriptOf) and the command itself.
  using Answer = std::function<FakeRedis::Answer(const std::string& script,
                                                 const FakeRedis::Argv& argv)>;
  std::unique_ptr<RedisLock> Lock(const Answer& answer,
                                  const std::function<void(policy::Policy&)>& tweak = nullptr) {
    redis_ = std::make_unique<FakeRedis>([answer](const FakeRedis::Argv& argv) {
      return answer(ScriptOf(argv), argv);
    });
    auto p = std::make_shared<policy::Policy>();
    p->name = "unit";
    p->key_prefix = "u:";
    p->script_timeout = absl::Milliseconds(100);
    p->renewal.enabled = false;
    if (tweak) tweak(*p);
    auto pool = std::make_shared<redis::ConnectionPool>(
        redis::PoolOptions{.connection = {.addr = redis_->addr()}});
    auto lock = NewRedisLock(std::move(pool), std::move(p), "order-1");
    EXPECT_THAT(lock, IsOk());
    return *std::move(lock);
  }

  // The script names of every command received, in order.
  std::vector<std::string> Scripts() const {
    std::vector<std::string> out;
    for (const FakeRedis::Argv& argv : redis_->commands()) out.push_back(ScriptOf(argv));
    return out;
  }

  std::unique_ptr<FakeRedis> redis_;
};

TEST_F(LockCoreTest, GrantCarriesTheFenceAndReleaseSendsTheSameOwner) {
  auto lock = Lock([](const std::string& script, const FakeRedis::Argv&) {
    return FakeRedis::Reply(script == "acquire" ? Granted() : FakeRedis::Integer(1));
  });
  ASSERT_THAT(lock->Acquire(), IsOk());
  EXPECT_EQ(lock->fencing_token(), kFence);
  const std::string owner = lock->owner_token();
  ASSERT_THAT(lock->Release(), IsOk());
  const std::vector<FakeRedis::Argv> sent = redis_->commands();
  ASSERT_EQ(sent.size(), 2u);
  // acquire: EVALSHA sha 3 {u:order-1} {u:order-1}:fence {..}:cancel:<owner> owner ttl ...
  EXPECT_EQ(sent[0][3], "{u:order-1}");
  EXPECT_EQ(sent[0][6], owner);
  EXPECT_EQ(ScriptOf(sent[1]), "release");
  EXPECT_EQ(sent[1][4], owner);
}

TEST_F(LockCoreTest, BusyKeyUnderAFailPolicyAsksOnce) {
  auto lock = Lock([](const std::string&, const FakeRedis::Argv&) {
    return FakeRedis::Reply(FakeRedis::Array(
        {FakeRedis::Integer(0), FakeRedis::Integer(5000), FakeRedis::Integer(0)}));
  }, [](policy::Policy& p) { p.on_busy = policy::OnBusy::kFail; });
  EXPECT_TRUE(IsBusy(lock->Acquire()));
  EXPECT_EQ(redis_->Count("EVALSHA"), 1);
  EXPECT_EQ(lock->hold_count(), 0);
}

TEST_F(LockCoreTest, AcquireWhoseReplyNeverComesIsCancelledUnderTheSameOwner) {
  auto lock = Lock([](const std::string& script, const FakeRedis::Argv&) {
    if (script == "acquire") return FakeRedis::Answer{.silent = true};
    return FakeRedis::Reply(FakeRedis::Integer(1));  // cancel deleted it
  });
  EXPECT_THAT(lock->Acquire(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(lock->hold_count(), 0);
  const std::vector<FakeRedis::Argv> sent = redis_->commands();
  ASSERT_EQ(Scripts(), (std::vector<std::string>{"acquire", "cancel"}));
  // The cancel goes as text (its NOSCRIPT could not be retried) and names
  // the owner the lost acquire used.
  EXPECT_EQ(sent[1][0], "EVAL");
  EXPECT_EQ(sent[1][5], sent[0][6]);
}

TEST_F(LockCoreTest, NoscriptOnAcquireResendsTheTextAndHolds) {
  auto lock = Lock([](const std::string&, const FakeRedis::Argv& argv) {
    if (argv[0] == "EVALSHA") {
      return FakeRedis::Reply(FakeRedis::Error("NOSCRIPT No matching script."));
    }
    return FakeRedis::Reply(Granted());
  });
  ASSERT_THAT(lock->Acquire(), IsOk());
  EXPECT_EQ(lock->fencing_token(), kFence);
  EXPECT_EQ(redis_->Count("EVALSHA"), 1);
  EXPECT_EQ(redis_->Count("EVAL"), 1);
}

TEST_F(LockCoreTest, ReleaseOfAHoldThatIsGoneIsNotHeld) {
  auto lock = Lock([](const std::string& script, const FakeRedis::Argv&) {
    return FakeRedis::Reply(script == "acquire" ? Granted() : FakeRedis::Integer(0));
  });
  ASSERT_THAT(lock->Acquire(), IsOk());
  std::shared_ptr<HoldState> hold = LockAccess::Core(*lock).hold();
  EXPECT_TRUE(IsNotHeld(lock->Release()));
  EXPECT_TRUE(hold->lost.load());
  EXPECT_EQ(lock->hold_count(), 0);
}

TEST_F(LockCoreTest, RenewalThatFindsTheHoldGoneAnnouncesTheLoss) {
  std::atomic<int> extends{0};
  auto lock = Lock([&extends](const std::string& script, const FakeRedis::Argv&) {
    if (script == "extend") {
      ++extends;
      return FakeRedis::Reply(FakeRedis::Integer(0));
    }
    return FakeRedis::Reply(script == "acquire" ? Granted() : FakeRedis::Integer(0));
  }, [](policy::Policy& p) {
    p.ttl = absl::Milliseconds(200);
    p.script_timeout = absl::Milliseconds(50);
    p.renewal.enabled = true;
    p.renewal.threshold = 0.5;
  });
  ASSERT_THAT(lock->Acquire(), IsOk());
  ASSERT_THAT(lock->EnableAutoRenew(), IsOk());
  std::shared_ptr<HoldState> hold = LockAccess::Core(*lock).hold();
  const absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (!hold->lost.load() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
  EXPECT_TRUE(hold->lost.load());
  EXPECT_TRUE(hold->stop.stop_requested());
  EXPECT_GE(extends.load(), 1);
}

// The semaphore kind runs through the same engine with its own scripts.

void Semaphore(policy::Policy& p) {
  p.kind = policy::LockKind::kSemaphore;
  p.permits = 4;
}

std::string PermitGranted() {
  return FakeRedis::Array(
      {FakeRedis::Integer(1), FakeRedis::Integer(0), FakeRedis::Integer(30000)});
}

TEST_F(LockCoreTest, SemaphoreTakesAPermitWithoutAFenceAndGivesItBack) {
  auto lock = Lock([](const std::string& script, const FakeRedis::Argv&) {
    return FakeRedis::Reply(script == "sem_acquire" ? PermitGranted() : FakeRedis::Integer(1));
  }, Semaphore);
  ASSERT_THAT(lock->Acquire(), IsOk());
  EXPECT_EQ(lock->fencing_token(), 0);
  const std::string owner = lock->owner_token();
  ASSERT_THAT(lock->Release(), IsOk());
  ASSERT_EQ(Scripts(), (std::vector<std::string>{"sem_acquire", "sem_release"}));
  const std::vector<FakeRedis::Argv> sent = redis_->commands();
  // EVALSHA sha 2 {u:order-1}:sem:holders {..}:cancel:<owner> owner ttl count permits
  EXPECT_EQ(sent[0][3], "{u:order-1}:sem:holders");
  EXPECT_EQ(sent[0][5], owner);
  EXPECT_EQ(sent[0][7], "1");
  EXPECT_EQ(sent[0][8], "4");
  // EVALSHA sha 1 {u:order-1}:sem:holders owner channel
  EXPECT_EQ(sent[1][4], owner);
  EXPECT_EQ(sent[1][5], "{u:order-1}:sem:released");
}

TEST_F(LockCoreTest, SemaphoreAcquireWhoseReplyNeverComesIsCancelled) {
  auto lock = Lock([](const std::string& script, const FakeRedis::Argv&) {
    if (script == "sem_acquire") return FakeRedis::Answer{.silent = true};
    return FakeRedis::Reply(FakeRedis::Integer(1));  // the permit was taken back
  }, Semaphore);
  EXPECT_THAT(lock->Acquire(), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(lock->hold_count(), 0);
  ASSERT_EQ(Scripts(), (std::vector<std::string>{"sem_acquire", "sem_cancel"}));
  const std::vector<FakeRedis::Argv> sent = redis_->commands();
  EXPECT_EQ(sent[1][0], "EVAL");
  EXPECT_EQ(sent[1][5], sent[0][5]);  // the same token
}

TEST_F(LockCoreTest, SemaphoreReentryIsOnePermitAndItsInnerReleaseIsLocal) {
  auto lock = Lock([](const std::string& script, const FakeRedis::Argv&) {
    return FakeRedis::Reply(script == "sem_acquire" ? PermitGranted() : FakeRedis::Integer(1));
  }, Semaphore);
  ASSERT_THAT(lock->Acquire(), IsOk());
  ASSERT_THAT(lock->Acquire(), IsOk());
  EXPECT_EQ(lock->hold_count(), 2);
  ASSERT_THAT(lock->Release(), IsOk());
  EXPECT_EQ(lock->hold_count(), 1);
  ASSERT_THAT(lock->Release(), IsOk());
  ASSERT_EQ(Scripts(), (std::vector<std::string>{"sem_acquire", "sem_acquire", "sem_release"}));
  const std::vector<FakeRedis::Argv> sent = redis_->commands();
  EXPECT_EQ(sent[1][5], sent[0][5]);  // re-entry: the same token, hold count 2
  EXPECT_EQ(sent[1][7], "2");
}

TEST_F(LockCoreTest, SemaphoreRenewalThatFindsThePermitGoneAnnouncesTheLoss) {
  std::atomic<int> extends{0};
  auto lock = Lock([&extends](const std::string& script, const FakeRedis::Argv&) {
    if (script == "lease_extend") {
      ++extends;
      return FakeRedis::Reply(FakeRedis::Integer(0));
    }
    return FakeRedis::Reply(script == "sem_acquire" ? PermitGranted() : FakeRedis::Integer(0));
  }, [](policy::Policy& p) {
    Semaphore(p);
    p.ttl = absl::Milliseconds(200);
    p.script_timeout = absl::Milliseconds(50);
    p.renewal.enabled = true;
    p.renewal.threshold = 0.5;
  });
  ASSERT_THAT(lock->Acquire(), IsOk());
  ASSERT_THAT(lock->EnableAutoRenew(), IsOk());
  std::shared_ptr<HoldState> hold = LockAccess::Core(*lock).hold();
  const absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (!hold->lost.load() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
  EXPECT_TRUE(hold->lost.load());
  EXPECT_TRUE(hold->stop.stop_requested());
  EXPECT_GE(extends.load(), 1);
}

}  // namespace
}  // namespace lock::internal
