// The asynchronous API (issue 16) against a real redis-server:
// AcquireAsync and its Lease, WithAsync, deadlines and stop requests of a
// pending acquire, 10,000 pending acquires on one key granted one after
// another by few threads, a Lease lost by renewal, released on another
// thread, and Shutdown / Locker destruction with acquires pending.
#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <stop_token>
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
#include "lock/internal/async_runtime.h"
#include "lock/internal/keys.h"
#include "lock/lock.h"
#include "lock/testing/locker_from_json.h"
#include "util/proc.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using harness::Eventually;
using ::testing::HasSubstr;
using ::util::testing::IsOk;
using Clock = std::chrono::steady_clock;

constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"] } },
  "policies": {
    "wait": { "key_prefix": "a:", "ttl": "30s",
              "wait": { "timeout": "300s", "notify": true },
              "retry": { "initial_delay": "10s", "max_delay": "30s", "jitter": 0.2 } },
    "fail": { "key_prefix": "a:", "on_busy": "fail" },
    "renew": { "key_prefix": "r:", "ttl": "300ms", "script_timeout": "100ms",
               "renewal": { "threshold": 0.5 } },
    "fair": { "kind": "fair", "key_prefix": "f:", "ttl": "30s",
              "wait": { "timeout": "300s", "notify": true },
              "retry": { "initial_delay": "10s", "max_delay": "10s", "jitter": 0 } }
  }
})json";


// Waits for one async result.
template <typename T>
struct Result {
  std::promise<T> promise;
  std::future<T> future = promise.get_future();
  std::function<void(T)> Done() {
    return [this](T v) { promise.set_value(std::move(v)); };
  }
  T Get() { return future.get(); }
};

class AsyncTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    config_ = absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}});
    auto locker = LockerFromJson(config_, "async.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = std::move(*locker);
  }

  std::unique_ptr<RedisLock> Hold(const std::string& policy, const std::string& key) {
    auto lock = locker_->NewLock(policy, key);
    EXPECT_THAT(lock, IsOk());
    EXPECT_THAT((*lock)->Acquire(), IsOk());
    return *std::move(lock);
  }

  // "" when nobody holds it.
  std::string Owner(const std::string& prefix, const std::string& key) {
    const std::string owner =
        Redis({"HGET", std::string(internal::LockKeys(prefix, key).owner()), "owner"});
    return owner == "(nil)" ? "" : owner;
  }

  std::string config_;
  std::unique_ptr<Locker> locker_;
};

TEST_F(AsyncTest, AcquireAsyncGivesALeaseThatReleases) {
  Result<absl::StatusOr<Lease>> r;
  locker_->AcquireAsync("wait", "k", {}, r.Done());
  absl::StatusOr<Lease> lease = r.Get();
  ASSERT_THAT(lease, IsOk());
  EXPECT_TRUE(lease->held());
  EXPECT_EQ(lease->key(), "k");
  EXPECT_GT(lease->fencing_token(), 0);
  EXPECT_FALSE(lease->lost());
  EXPECT_GT(lease->remaining(), absl::Seconds(20));
  EXPECT_EQ(Owner("a:", "k"), lease->owner_token());
  EXPECT_THAT(lease->Extend(absl::Seconds(60)), IsOk());
  EXPECT_GT(RedisInt({"PTTL", std::string(internal::LockKeys("a:", "k").owner())}), 30'000);
  EXPECT_THAT(lease->Release(), IsOk());
  EXPECT_FALSE(lease->held());
  EXPECT_EQ(Owner("a:", "k"), "");
  EXPECT_EQ(lease->Release().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(AsyncTest, ErrorsBeforeRedisComeThroughDone) {
  Result<absl::StatusOr<Lease>> unknown, bad_key;
  locker_->AcquireAsync("nope", "k", {}, unknown.Done());
  locker_->AcquireAsync("wait", "", {}, bad_key.Done());
  EXPECT_EQ(unknown.Get().status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(bad_key.Get().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(AsyncTest, BusyOutcomeAndMovedLeaseRelease) {
  auto holder = Hold("wait", "k");
  Result<absl::StatusOr<Lease>> busy;
  locker_->AcquireAsync("fail", "k", {}, busy.Done());
  EXPECT_TRUE(IsBusy(busy.Get().status()));
  ASSERT_THAT(holder->Release(), IsOk());

  Result<absl::StatusOr<Lease>> r;
  locker_->AcquireAsync("wait", "k", {}, r.Done());
  absl::StatusOr<Lease> lease = r.Get();
  ASSERT_THAT(lease, IsOk());
  Lease moved = *std::move(lease);
  EXPECT_FALSE(lease->held());
  EXPECT_TRUE(moved.held());
  Lease other;
  other = std::move(moved);
  EXPECT_EQ(Owner("a:", "k"), other.owner_token());
  other = Lease();  // releases
  EXPECT_EQ(Owner("a:", "k"), "");
}

TEST_F(AsyncTest, PendingAcquireIsGrantedOnRelease) {
  auto holder = Hold("wait", "k");
  Result<absl::StatusOr<Lease>> r;
  locker_->AcquireAsync("wait", "k", {}, r.Done());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(r.future.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  const auto released = Clock::now();
  ASSERT_THAT(holder->Release(), IsOk());
  absl::StatusOr<Lease> lease = r.Get();
  ASSERT_THAT(lease, IsOk());
  // Woken by the release, not by its 10 s backoff.
  EXPECT_LT(Clock::now() - released, std::chrono::seconds(5));
  EXPECT_EQ(Owner("a:", "k"), lease->owner_token());
}

TEST_F(AsyncTest, DeadlineAndStopEndPendingAcquires) {
  auto holder = Hold("wait", "k");
  Result<absl::StatusOr<Lease>> late, stopped;
  const auto start = Clock::now();
  locker_->AcquireAsync("wait", "k",
                        CallOptions{.deadline = absl::Now() + absl::Milliseconds(300)},
                        late.Done());
  std::stop_source stop;
  locker_->AcquireAsync("wait", "k", CallOptions{.stop = stop.get_token()}, stopped.Done());
  absl::Status s = late.Get().status();
  EXPECT_TRUE(lock::IsDeadlineExceeded(s)) << s;
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(290));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(stopped.future.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  const auto requested = Clock::now();
  stop.request_stop();
  s = stopped.Get().status();
  EXPECT_TRUE(lock::IsCancelled(s)) << s;
  EXPECT_LT(Clock::now() - requested, std::chrono::seconds(1));
  EXPECT_EQ(Owner("a:", "k"), holder->owner_token());
  EXPECT_EQ(GetStats().per_policy["wait"].waiting, 0);
}

// A stop that comes while the granting call is in flight: done gets
// kCancelled and the lock is given back.
TEST_F(AsyncTest, StopWhileTheGrantIsInFlightLeavesNothingHeld) {
  std::thread sleeper([&] { (void)server().Exec({"DEBUG", "SLEEP", "0.6"}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::stop_source stop;
  Result<absl::StatusOr<Lease>> r;
  locker_->AcquireAsync("wait", "inflight", CallOptions{.stop = stop.get_token()}, r.Done());
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  stop.request_stop();
  absl::Status s = r.Get().status();
  sleeper.join();
  EXPECT_TRUE(lock::IsCancelled(s)) << s;
  EXPECT_EQ(Owner("a:", "inflight"), "");
}

// 10,000 acquires pending on one hot key in this process: a few library
// threads carry them all, and they are granted one after another, never two
// at once.
TEST_F(AsyncTest, TenThousandPendingAcquiresGrantedOneAfterAnother) {
  constexpr int kWaiters = 10'000;
  auto holder = Hold("wait", "hot");
  const int threads_before = util::ProcessThreads();
  const int64_t calls_at_start = ScriptCalls();
  std::atomic<int> inside{0}, overlaps{0}, granted{0}, failed{0};
  std::mutex mu;
  std::vector<int64_t> fences;
  // std::promise, not absl::Notification: abseil's synchronization is an
  // uninstrumented library here, and ThreadSanitizer would not see the
  // ordering it gives.
  std::promise<void> all_done;
  for (int i = 0; i < kWaiters; ++i) {
    locker_->AcquireAsync("wait", "hot", {}, [&](absl::StatusOr<Lease> lease) {
      if (!lease.ok()) {
        ADD_FAILURE() << lease.status();
        failed.fetch_add(1);
      } else {
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        {
          std::lock_guard<std::mutex> lock(mu);
          fences.push_back(lease->fencing_token());
        }
        inside.fetch_sub(1);
        absl::Status released = lease->Release();
        if (!released.ok()) ADD_FAILURE() << released;
      }
      if (granted.fetch_add(1) + 1 == kWaiters) all_done.set_value();
    });
  }
  // Every acquire made its first attempt (one script call each) and waits.
  ASSERT_TRUE(Eventually([&] { return GetStats().per_policy["wait"].waiting == kWaiters; },
                         std::chrono::seconds(120)))
      << GetStats().per_policy["wait"].waiting << " waiting";
  EXPECT_GE(ScriptCalls() - calls_at_start, kWaiters);
  const int threads_waiting = util::ProcessThreads();
  EXPECT_EQ(granted.load(), 0);
  EXPECT_LE(threads_waiting, 16) << "before: " << threads_before;
  EXPECT_LE(threads_waiting - threads_before, internal::AsyncRuntime::kWorkers + 2);
  ASSERT_THAT(holder->Release(), IsOk());
  ASSERT_EQ(all_done.get_future().wait_for(std::chrono::seconds(240)), std::future_status::ready)
      << granted.load() << " of " << kWaiters;
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(overlaps.load(), 0);
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(fences.size(), static_cast<size_t>(kWaiters));
  // Granted in turn: every grant's token is above the one before it.
  for (size_t i = 1; i < fences.size(); ++i) ASSERT_LT(fences[i - 1], fences[i]) << i;
  EXPECT_EQ(Owner("a:", "hot"), "");
}

TEST_F(AsyncTest, LeaseLostByRenewalFailureIsSignalled) {
  Result<absl::StatusOr<Lease>> r;
  locker_->AcquireAsync("renew", "k", {}, r.Done());
  absl::StatusOr<Lease> lease = r.Get();
  ASSERT_THAT(lease, IsOk());
  // Renewed past several ttls.
  std::this_thread::sleep_for(std::chrono::milliseconds(900));
  EXPECT_FALSE(lease->lost());
  EXPECT_EQ(Owner("r:", "k"), lease->owner_token());
  std::atomic<bool> stopped{false};
  std::stop_callback on_stop(lease->stop_token(), [&] { stopped = true; });
  Redis({"DEL", std::string(internal::LockKeys("r:", "k").owner())});
  EXPECT_TRUE(Eventually([&] { return lease->lost(); }));
  EXPECT_TRUE(stopped.load());
  absl::Status s = lease->Release();
  EXPECT_TRUE(IsLost(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("lease was held"));
}

TEST_F(AsyncTest, LeaseReleasedOnAnotherThread) {
  Result<absl::StatusOr<Lease>> r;
  locker_->AcquireAsync("wait", "k", {}, r.Done());
  absl::StatusOr<Lease> lease = r.Get();
  ASSERT_THAT(lease, IsOk());
  std::thread([l = *std::move(lease)]() mutable { Lease gone = std::move(l); }).join();
  EXPECT_EQ(Owner("a:", "k"), "");

  Result<absl::StatusOr<Lease>> again;
  locker_->AcquireAsync("wait", "k", {}, again.Done());
  lease = again.Get();
  ASSERT_THAT(lease, IsOk());
  Result<absl::Status> released;
  lease->ReleaseAsync(released.Done());
  EXPECT_FALSE(lease->held());
  EXPECT_THAT(released.Get(), IsOk());
  EXPECT_EQ(Owner("a:", "k"), "");
}

TEST_F(AsyncTest, WithAsyncRunsTheSectionWhileHeld) {
  Result<absl::Status> ok, failed, threw;
  std::string seen_owner;
  locker_->WithAsync("wait", "k", {}, [&](Held& held) {
    seen_owner = Owner("a:", "k");
    EXPECT_EQ(seen_owner, held.owner_token());
    return absl::OkStatus();
  }, ok.Done());
  EXPECT_THAT(ok.Get(), IsOk());
  EXPECT_FALSE(seen_owner.empty());
  locker_->WithAsync("wait", "k", {}, [](Held&) { return absl::DataLossError("mine"); },
                     failed.Done());
  EXPECT_EQ(failed.Get().message(), "mine");
  locker_->WithAsync("wait", "k", {}, [](Held&) -> absl::Status { throw std::runtime_error("boom"); },
                     threw.Done());
  absl::Status s = threw.Get();
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(s.message(), HasSubstr("boom"));
  EXPECT_EQ(Owner("a:", "k"), "");
}

TEST_F(AsyncTest, CompletionsRunOnTheCallersExecutor) {
  std::mutex mu;
  std::vector<std::function<void()>> queue;
  Executor executor = [&](std::function<void()> task) {
    std::lock_guard<std::mutex> lock(mu);
    queue.push_back(std::move(task));
  };
  std::atomic<bool> called{false};
  locker_->AcquireAsync("wait", "k", CallOptions{.executor = executor},
                        [&](absl::StatusOr<Lease> lease) {
                          EXPECT_THAT(lease, IsOk());
                          called = true;
                        });
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !queue.empty();
  }));
  EXPECT_FALSE(called.load());  // not until the executor runs it
  std::function<void()> task;
  {
    std::lock_guard<std::mutex> lock(mu);
    task = std::move(queue.front());
  }
  task();
  EXPECT_TRUE(called.load());
  EXPECT_EQ(Owner("a:", "k"), "");  // the lease went with the callback
}

// lock::Shutdown ends every pending acquire of the process-wide Locker: each
// done once, IsCancelled, and nothing left held.
TEST_F(AsyncTest, ShutdownEndsPendingAcquiresOnce) {
  std::shared_ptr<Locker> shared = std::move(locker_);
  InitWith(shared);
  std::vector<std::unique_ptr<RedisLock>> holders;
  for (const char* policy : {"fair", "wait"}) {
    auto holder = shared->NewLock(policy, "k");
    ASSERT_THAT(holder, IsOk());
    ASSERT_THAT((*holder)->Acquire(), IsOk());
    holders.push_back(*std::move(holder));
  }
  constexpr int kPending = 50;
  std::atomic<int> calls{0}, cancelled{0};
  for (int i = 0; i < kPending; ++i) {
    AcquireAsync(i % 2 ? "wait" : "fair", "k", {}, [&](absl::StatusOr<Lease> lease) {
      calls.fetch_add(1);
      if (lock::IsCancelled(lease.status()) &&
          absl::StrContains(lease.status().message(), "lock::Shutdown")) {
        cancelled.fetch_add(1);
      } else {
        ADD_FAILURE() << lease.status();
      }
    });
  }
  // All waiting (the gauge counts them), none done.
  const auto waiting = [] {
    Stats s = GetStats();
    return s.per_policy["fair"].waiting + s.per_policy["wait"].waiting;
  };
  ASSERT_TRUE(Eventually([&] { return waiting() == kPending; })) << waiting();
  EXPECT_EQ(calls.load(), 0);
  Shutdown();
  EXPECT_TRUE(Eventually([&] { return calls.load() >= kPending; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(calls.load(), kPending);
  EXPECT_EQ(cancelled.load(), kPending);
  EXPECT_EQ(waiting(), 0);  // an aborted wait is no longer counted
  // The fair queue keeps no place of theirs.
  EXPECT_TRUE(Eventually([&] {
    return RedisInt({"ZCARD", internal::FairKeys("f:", "k").queue()}) == 0;
  }));
}

TEST_F(AsyncTest, DestroyedLockerEndsItsPendingAcquires) {
  auto holder = Hold("wait", "k");
  auto other = LockerFromJson(config_, "async.json");
  ASSERT_THAT(other, IsOk());
  Result<absl::StatusOr<Lease>> r;
  (*other)->AcquireAsync("wait", "k", {}, r.Done());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  other->reset();
  absl::Status s = r.Get().status();
  EXPECT_TRUE(lock::IsCancelled(s)) << s;
  EXPECT_THAT(s.message(), HasSubstr("destroyed"));
}

}  // namespace
}  // namespace lock
