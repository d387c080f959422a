// co_await lock::Acquire (issue 16) against a real redis-server: a
// coroutine suspended while its acquire waits, resumed with the Lease on the
// caller's executor, and many coroutines on one key taking turns.
#include <atomic>
#include <coroutine>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/coro.h"
#include "lock/internal/keys.h"
#include "lock/lock.h"
#include "lock/testing/locker_from_json.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using harness::Eventually;
using ::util::testing::IsOk;

// A coroutine that starts at once and runs to its end by itself.
struct Detached {
  struct promise_type {
    Detached get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

// A single-threaded event loop, as an application's would be.
class Loop {
 public:
  Executor executor() {
    return [this](std::function<void()> task) {
      std::lock_guard<std::mutex> lock(mu_);
      tasks_.push_back(std::move(task));
    };
  }
  // Runs queued tasks on the calling thread until `done`.
  void RunUntil(const std::function<bool()>& done) {
    while (!done()) {
      std::function<void()> task;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!tasks_.empty()) {
          task = std::move(tasks_.front());
          tasks_.pop_front();
        }
      }
      if (task) {
        task();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
  }

 private:
  std::mutex mu_;
  std::deque<std::function<void()>> tasks_;
};

constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"] } },
  "policies": {
    "wait": { "key_prefix": "c:", "ttl": "30s",
              "wait": { "timeout": "60s", "notify": true },
              "retry": { "initial_delay": "5s", "max_delay": "5s" } }
  }
})json";

class CoroTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    auto locker =
        LockerFromJson(absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}}), "coro.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }
  std::unique_ptr<Locker> locker_;
};

TEST_F(CoroTest, ResumesOnTheCallersLoopWithTheLease) {
  Loop loop;
  const std::thread::id loop_thread = std::this_thread::get_id();
  std::atomic<bool> finished{false};
  std::string owner_inside;
  auto section = [&]() -> Detached {
    absl::StatusOr<Lease> lease =
        co_await Acquire(*locker_, "wait", "k", {.executor = loop.executor()});
    EXPECT_THAT(lease, IsOk());
    EXPECT_EQ(std::this_thread::get_id(), loop_thread);
    if (lease.ok()) {
      owner_inside = Redis({"HGET", std::string(internal::LockKeys("c:", "k").owner()), "owner"});
      EXPECT_EQ(owner_inside, lease->owner_token());
      EXPECT_THAT(lease->Release(), IsOk());
    }
    finished = true;
  };
  section();
  loop.RunUntil([&] { return finished.load(); });
  EXPECT_FALSE(owner_inside.empty());
}

// 200 coroutines on one loop thread take one key in turn: each is
// suspended while it waits, and resumed only when Redis shows the lock as
// its own; the fencing tokens grow from each grant to the next.
TEST_F(CoroTest, ManyCoroutinesTakeTurns) {
  constexpr int kCoroutines = 200;
  Loop loop;
  int not_owner = 0, done = 0, failed = 0;  // the loop's thread only
  int64_t last_fence = 0;
  int fence_backwards = 0;
  const std::string owner_key(internal::LockKeys("c:", "hot").owner());
  auto section = [&]() -> Detached {
    absl::StatusOr<Lease> lease =
        co_await Acquire(*locker_, "wait", "hot", {.executor = loop.executor()});
    if (!lease.ok()) {
      ++failed;
    } else {
      if (Redis({"HGET", owner_key, "owner"}) != lease->owner_token()) ++not_owner;
      if (lease->fencing_token() <= last_fence) ++fence_backwards;
      last_fence = lease->fencing_token();
      if (!lease->Release().ok()) ++failed;
    }
    ++done;
  };
  for (int i = 0; i < kCoroutines; ++i) section();
  loop.RunUntil([&] { return done == kCoroutines; });
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(not_owner, 0);
  EXPECT_EQ(fence_backwards, 0);
}

}  // namespace
}  // namespace lock
