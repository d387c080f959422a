// The log sink and the tracer (lock/observe.h, issue 17) against a real
// redis-server with a password: each event the library reports, the spans of
// acquires and holds with their attributes, and never a password or an owner
// token in anything delivered. Sentinel failovers and Cluster slot map
// refreshes are in fleet_test.
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/internal/keys.h"
#include "lock/lock.h"
#include "lock/testing/locker_from_json.h"
#include "lock/testing/observe_recorder.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using harness::Eventually;
using testing::RecordedEvent;
using testing::RecordedSpan;
using testing::Recorder;
using ::testing::HasSubstr;
using ::util::testing::IsOk;

constexpr char kPassword[] = "observe-s3cret-pw";
constexpr char kWrongPassword[] = "not-the-pw-77xq";

constexpr char kConfig[] = R"json({
  "redis": {
    "default": { "addrs": ["ADDR"], "password_env": "OBSERVE_TEST_PASSWORD" },
    "wrong": { "addrs": ["ADDR"], "password_env": "OBSERVE_TEST_WRONG_PASSWORD",
               "connect_timeout": "300ms" },
    "down": { "addrs": ["127.0.0.1:1"], "connect_timeout": "200ms" },
    "down2": { "addrs": ["127.0.0.1:2"], "connect_timeout": "200ms" }
  },
  "policies": {
    "fail": { "key_prefix": "o:", "on_busy": "fail" },
    "wait": { "key_prefix": "o:", "wait": { "timeout": "150ms" },
              "retry": { "initial_delay": "10ms", "max_delay": "10ms", "jitter": 0 } },
    "renew": { "key_prefix": "r:", "ttl": "600ms", "script_timeout": "100ms",
               "renewal": { "threshold": 0.5 } },
    "wrong": { "redis": "wrong", "key_prefix": "o:", "on_busy": "fail" },
    "down": { "redis": "down", "key_prefix": "o:", "on_busy": "fail" },
    "down2": { "redis": "down2", "key_prefix": "o:", "on_busy": "fail" }
  }
})json";

class ObserveTest : public harness::RedisTest {
 protected:
  harness::RedisServerOptions ServerOptions() override {
    harness::RedisServerOptions o;
    o.password = kPassword;
    return o;
  }

  void SetUp() override {
    harness::RedisTest::SetUp();
    setenv("OBSERVE_TEST_PASSWORD", kPassword, 1);
    setenv("OBSERVE_TEST_WRONG_PASSWORD", kWrongPassword, 1);
    config_ = absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}});
    auto locker = LockerFromJson(config_, "observe.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }

  void TearDown() override {
    Recorder::Uninstall();
    locker_.reset();
    harness::RedisTest::TearDown();
  }

  // Fails the test if anything delivered so far carries a secret.
  void ExpectNoSecrets(const Recorder& r, const std::vector<std::string>& tokens) {
    for (const RecordedEvent& e : r.Events()) {
      EXPECT_THAT(e.All(), ::testing::Not(HasSubstr(kPassword))) << e.All();
      EXPECT_THAT(e.All(), ::testing::Not(HasSubstr(kWrongPassword))) << e.All();
      for (const std::string& t : tokens) {
        EXPECT_THAT(e.All(), ::testing::Not(HasSubstr(t))) << e.All();
      }
    }
  }

  std::string config_;
  std::unique_ptr<Locker> locker_;
};

bool HasEvent(const Recorder& r, const std::string& name, const std::string& key) {
  for (const RecordedEvent& e : r.Events(name)) {
    if (e.key == key) return true;
  }
  return false;
}

TEST_F(ObserveTest, SilentUntilASinkIsSetAndSilentAgainAfter) {
  // Nothing to hear from before: a failed connection, no sink.
  EXPECT_FALSE(locker_->With("down", "k", [] { return absl::OkStatus(); }).ok());
  auto r = Recorder::Make();
  EXPECT_TRUE(r->Events().empty());
  Recorder::Uninstall();
  EXPECT_FALSE(locker_->With("down", "k2", [] { return absl::OkStatus(); }).ok());
  EXPECT_TRUE(r->Events().empty());
}

// A lost hold (its key deleted behind it), a renewal that failed (the server
// paused past a renewal and the lease), failed connections (nothing listens;
// a wrong password): each reported with its severity and what it is about,
// and none of them with a password or an owner token.
TEST_F(ObserveTest, LogSinkHearsLossRenewalFailureAndConnectionErrorsWithoutSecrets) {
  auto r = Recorder::Make();
  std::vector<std::string> tokens;

  // First, while nothing else has failed to connect to this server (the
  // events are limited per address).
  EXPECT_FALSE(locker_->With("down", "k", [] { return absl::OkStatus(); }).ok());
  EXPECT_FALSE(locker_->With("wrong", "k", [] { return absl::OkStatus(); }).ok());
  std::vector<std::string> unreachable, refused;
  for (const RecordedEvent& e : r->Events("connection_error")) {
    EXPECT_EQ(e.severity, LogSeverity::kWarning);
    if (e.redis == "127.0.0.1:1") unreachable.push_back(e.message);
    if (e.redis == server().addr()) refused.push_back(e.message);
  }
  ASSERT_EQ(unreachable.size(), 1u);
  EXPECT_THAT(unreachable[0], HasSubstr("127.0.0.1:1"));
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_THAT(refused[0], HasSubstr("WRONGPASS"));

  absl::Status s = locker_->With("renew", "deleted", [&](Held& held) {
    tokens.push_back(held.owner_token());
    Redis({"DEL", std::string(internal::LockKeys("r:", "deleted").owner())});
    EXPECT_TRUE(Eventually([&] { return held.lost(); }));
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
  ASSERT_TRUE(Eventually([&] { return HasEvent(*r, "lock_lost", "deleted"); }));
  for (const RecordedEvent& e : r->Events("lock_lost")) {
    EXPECT_EQ(e.severity, LogSeverity::kError);
    EXPECT_EQ(e.policy, "renew");
  }

  s = locker_->With("renew", "paused", [&](Held& held) {
    tokens.push_back(held.owner_token());
    EXPECT_THAT(server().Pause(), IsOk());
    // Renewal is due at half the 600ms lease; its calls time out after 100ms.
    EXPECT_TRUE(Eventually([&] { return HasEvent(*r, "renewal_failed", "paused"); }));
    EXPECT_TRUE(Eventually([&] { return held.lost(); }));
    EXPECT_THAT(server().Resume(), IsOk());
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
  const std::vector<RecordedEvent> failed = r->Events("renewal_failed");
  ASSERT_FALSE(failed.empty());
  EXPECT_EQ(failed[0].severity, LogSeverity::kWarning);
  EXPECT_EQ(failed[0].policy, "renew");
  EXPECT_THAT(failed[0].message, HasSubstr("renewal of lock \"paused\""));
  EXPECT_TRUE(HasEvent(*r, "lock_lost", "paused"));

  ExpectNoSecrets(*r, tokens);
}

// An outage must not flood the user's logs: one connection_error per address
// and second, and the next one says how many were left out.
TEST_F(ObserveTest, ConnectionErrorsAreLimitedToOnePerAddressAndSecond) {
  // An address of its own: the limit is per address and process-wide.
  auto r = Recorder::Make();
  const auto count = [&] {
    int n = 0;
    for (const RecordedEvent& e : r->Events("connection_error")) n += e.redis == "127.0.0.1:2";
    return n;
  };
  const absl::Time start = absl::Now();
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(locker_->With("down2", "k", [] { return absl::OkStatus(); }).ok());
  }
  if (absl::Now() - start < absl::Milliseconds(900)) {
    EXPECT_EQ(count(), 1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  EXPECT_FALSE(locker_->With("down2", "k", [] { return absl::OkStatus(); }).ok());
  ASSERT_GE(count(), 2);
  EXPECT_THAT(r->Events("connection_error").back().message,
              HasSubstr("more like it in the last second not logged"));
}

TEST_F(ObserveTest, PolicyReloadsAcceptedAndRefusedAreLogged) {
  auto r = Recorder::Make();
  const std::string path = absl::StrCat(::testing::TempDir(), "/observe-", getpid(), ".json");
  const auto write = [&](const std::string& text) {
    const std::string tmp = path + ".tmp";
    std::ofstream(tmp) << text;
    ASSERT_EQ(std::rename(tmp.c_str(), path.c_str()), 0);
  };
  write(config_);
  ASSERT_THAT(Init(path, {.watch_interval = absl::Milliseconds(10)}), IsOk());
  write(absl::StrReplaceAll(config_, {{"\"ttl\": \"600ms\"", "\"ttl\": \"700ms\""}}));
  ASSERT_TRUE(Eventually([&] { return !r->Events("policy_reload_accepted").empty(); }));
  EXPECT_EQ(r->Events("policy_reload_accepted")[0].severity, LogSeverity::kInfo);
  EXPECT_THAT(r->Events("policy_reload_accepted")[0].message, HasSubstr(path));
  write("{ \"policies\": ");  // broken
  ASSERT_TRUE(Eventually([&] { return !r->Events("policy_reload_refused").empty(); }));
  const RecordedEvent refused = r->Events("policy_reload_refused")[0];
  EXPECT_EQ(refused.severity, LogSeverity::kError);
  EXPECT_THAT(refused.message, HasSubstr("the working policies stay"));
  EXPECT_THAT(refused.message, HasSubstr(path));
  Shutdown();
  ExpectNoSecrets(*r, {});
}

// One "lock.acquire" span per acquire call and one "lock.hold" span per
// hold, with the attributes lock/observe.h lists.
TEST_F(ObserveTest, SpansOfAcquiresAndHolds) {
  auto r = Recorder::Make();
  int64_t fence = 0;
  ASSERT_THAT(locker_->With("fail", "t", [&](Held& held) {
    fence = held.fencing_token();
    return absl::OkStatus();
  }), IsOk());
  std::vector<RecordedSpan> acquires = r->Spans("lock.acquire", "t");
  std::vector<RecordedSpan> holds = r->Spans("lock.hold", "t");
  ASSERT_EQ(acquires.size(), 1u);
  ASSERT_EQ(holds.size(), 1u);
  const RecordedSpan& a = acquires[0];
  EXPECT_THAT(a.status, IsOk());
  EXPECT_EQ(a.Text("lock.policy"), "fail");
  EXPECT_EQ(a.Text("lock.kind"), "mutex");
  EXPECT_EQ(a.Text("lock.outcome"), "acquired");
  EXPECT_EQ(a.Int("lock.attempts"), 1);
  EXPECT_EQ(a.Bool("lock.reentry"), false);
  EXPECT_EQ(a.Int("lock.fencing_token"), fence);
  EXPECT_TRUE(a.Has("lock.wait_seconds"));
  EXPECT_LE(a.start, a.end);
  const RecordedSpan& h = holds[0];
  EXPECT_THAT(h.status, IsOk());
  EXPECT_EQ(h.Text("lock.outcome"), "released");
  EXPECT_EQ(h.Bool("lock.lost"), false);
  EXPECT_EQ(h.Int("lock.fencing_token"), fence);
  // The hold starts as its acquire's call is sent (each span's times are
  // read from the clock when it is delivered: allow for that).
  EXPECT_LE(a.start, h.start + absl::Milliseconds(1));
  EXPECT_LE(a.end, h.end + absl::Milliseconds(1));

  // Busy after waiting: several attempts, the busy outcome, no token; a
  // re-entry of the holding instance; a try that finds it busy.
  auto holder = locker_->NewLock("wait", "busy");
  ASSERT_THAT(holder, IsOk());
  ASSERT_THAT((*holder)->Acquire(), IsOk());
  ASSERT_THAT((*holder)->Acquire(), IsOk());
  absl::Status s = locker_->With("wait", "busy", [] { return absl::OkStatus(); });
  EXPECT_TRUE(IsBusy(s)) << s;
  auto other = locker_->NewLock("fail", "busy");
  ASSERT_THAT(other, IsOk());
  EXPECT_THAT((*other)->TryAcquire(), ::util::testing::IsOkAndHolds(false));
  acquires = r->Spans("lock.acquire", "busy");
  ASSERT_EQ(acquires.size(), 4u);
  EXPECT_EQ(acquires[0].Bool("lock.reentry"), false);
  EXPECT_EQ(acquires[1].Bool("lock.reentry"), true);
  EXPECT_EQ(acquires[1].Text("lock.outcome"), "acquired");
  EXPECT_EQ(acquires[2].Text("lock.outcome"), "busy");
  EXPECT_TRUE(IsBusy(acquires[2].status));
  EXPECT_GT(acquires[2].Int("lock.attempts"), 1);
  EXPECT_FALSE(acquires[2].Has("lock.fencing_token"));
  EXPECT_EQ(acquires[3].Text("lock.outcome"), "busy");
  EXPECT_THAT(acquires[3].status, IsOk());  // a try's busy is `false`, not an error
  EXPECT_TRUE(r->Spans("lock.hold", "busy").empty());  // still held
  ASSERT_THAT((*holder)->Release(), IsOk());
  EXPECT_TRUE(r->Spans("lock.hold", "busy").empty());  // one level left
  ASSERT_THAT((*holder)->Release(), IsOk());
  ASSERT_EQ(r->Spans("lock.hold", "busy").size(), 1u);

  // A deadline that passes while waiting.
  auto blocker = locker_->NewLock("fail", "late");
  ASSERT_THAT((*blocker)->Acquire(), IsOk());
  s = locker_->With("wait", "late",
                    CallOptions{.deadline = absl::Now() + absl::Milliseconds(50)},
                    [] { return absl::OkStatus(); });
  EXPECT_TRUE(lock::IsDeadlineExceeded(s)) << s;
  ASSERT_EQ(r->Spans("lock.acquire", "late").size(), 2u);
  EXPECT_EQ(r->Spans("lock.acquire", "late")[1].Text("lock.outcome"), "deadline_exceeded");

  // An asynchronous acquire and its lease's release.
  std::promise<absl::StatusOr<Lease>> got;
  locker_->AcquireAsync("fail", "async", {}, [&](absl::StatusOr<Lease> lease) {
    got.set_value(std::move(lease));
  });
  absl::StatusOr<Lease> lease = got.get_future().get();
  ASSERT_THAT(lease, IsOk());
  ASSERT_EQ(r->Spans("lock.acquire", "async").size(), 1u);
  EXPECT_EQ(r->Spans("lock.acquire", "async")[0].Int("lock.fencing_token"),
            lease->fencing_token());
  ASSERT_THAT(lease->Release(), IsOk());
  ASSERT_EQ(r->Spans("lock.hold", "async").size(), 1u);
}

// A hold found gone by its release ends as lost, with why.
TEST_F(ObserveTest, HoldSpanOfALostHold) {
  auto r = Recorder::Make();
  auto lk = locker_->NewLock("fail", "gone");
  ASSERT_THAT(lk, IsOk());
  ASSERT_THAT((*lk)->Acquire(), IsOk());
  Redis({"DEL", std::string(internal::LockKeys("o:", "gone").owner())});
  EXPECT_TRUE(IsNotHeld((*lk)->Release()));
  const std::vector<RecordedSpan> holds = r->Spans("lock.hold", "gone");
  ASSERT_EQ(holds.size(), 1u);
  EXPECT_EQ(holds[0].Text("lock.outcome"), "lost");
  EXPECT_EQ(holds[0].Bool("lock.lost"), true);
  EXPECT_TRUE(IsLost(holds[0].status)) << holds[0].status;
  EXPECT_TRUE(HasEvent(*r, "lock_lost", "gone"));
}

}  // namespace
}  // namespace lock
