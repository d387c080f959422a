// The read_write kind through the engine (issue 15): WithRead / WithWrite /
// With / NewReadLock / NewWriteLock on a "kind": "read_write" policy,
// against a real redis-server. Readers overlap, a writer excludes everyone,
// writer preference (a waiting writer keeps new readers out), a writer that
// gives up withdraws its claim, fencing tokens for the write side only,
// renewal and loss of a read hold, re-entry, Inspect, and the refusals.
#include <atomic>
#include <chrono>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/internal/keys.h"
#include "lock/lock.h"
#include "lock/testing/locker_from_json.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using harness::Eventually;
using internal::ReadWriteKeys;
using ::testing::HasSubstr;
using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using Clock = std::chrono::steady_clock;

// Policies on one prefix share their locks ("rw-*" on "w:"): they differ
// only in what a busy acquire does.
constexpr char kConfig[] = R"json({
  "redis": { "default": { "addrs": ["ADDR"] } },
  "policies": {
    "rw-fail": { "kind": "read_write", "key_prefix": "w:", "on_busy": "fail" },
    "rw-wait": { "kind": "read_write", "key_prefix": "w:",
                 "wait": { "timeout": "10s", "notify": true },
                 "retry": { "initial_delay": "5s", "max_delay": "5s", "jitter": 0 } },
    "rw-short": { "kind": "read_write", "key_prefix": "w:", "wait": { "timeout": "300ms" },
                  "retry": { "initial_delay": "20ms", "max_delay": "20ms" } },
    "rw-busy": { "kind": "read_write", "key_prefix": "b:", "wait": { "timeout": "30s" },
                 "retry": { "initial_delay": "1ms", "max_delay": "5ms" } },
    "rw-renew": { "kind": "read_write", "key_prefix": "r:", "ttl": "300ms",
                  "script_timeout": "100ms", "renewal": { "threshold": 0.5 } },
    "mutex": { "key_prefix": "w:" }
  }
})json";

class ReadWriteTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    auto locker =
        LockerFromJson(absl::StrReplaceAll(kConfig, {{"ADDR", server().addr()}}), "rw.json");
    ASSERT_THAT(locker, IsOk());
    locker_ = *std::move(locker);
  }

  int64_t Readers(const std::string& prefix, const std::string& key) {
    return RedisInt({"ZCARD", ReadWriteKeys(prefix, key).readers()});
  }
  int64_t Claims(const std::string& prefix, const std::string& key) {
    return RedisInt({"ZCARD", ReadWriteKeys(prefix, key).writers_waiting()});
  }

  std::unique_ptr<Locker> locker_;
};

TEST_F(ReadWriteTest, ReadersOverlapAndAWriterExcludesThem) {
  std::latch inside(3);
  std::latch leave(1);
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&] {
      EXPECT_THAT(locker_->WithRead("rw-fail", "doc", [&](Held& held) {
        EXPECT_EQ(held.fencing_token(), 0);  // shared: no token
        inside.count_down();
        leave.wait();
        return absl::OkStatus();
      }), IsOk());
    });
  }
  inside.wait();  // three readers at once
  EXPECT_EQ(Readers("w:", "doc"), 3);
  bool ran = false;
  absl::Status busy = locker_->WithWrite("rw-fail", "doc", [&] {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsBusy(busy)) << busy;
  EXPECT_THAT(busy.message(), HasSubstr("write lock \"doc\" (policy rw-fail) is read-held"));
  // With on a read_write policy means write.
  EXPECT_TRUE(IsBusy(locker_->With("rw-fail", "doc", [&] {
    ran = true;
    return absl::OkStatus();
  })));
  EXPECT_FALSE(ran);
  // A writer that could not get in (on_busy fail) leaves no claim behind.
  EXPECT_EQ(Claims("w:", "doc"), 0);
  leave.count_down();
  for (auto& t : readers) t.join();

  // Write-held: readers and writers are busy.
  ASSERT_THAT(locker_->WithWrite("rw-fail", "doc", [&](Held& held) {
    EXPECT_GT(held.fencing_token(), 0);
    absl::Status r = locker_->WithRead("rw-fail", "another-doc", [] {
      return absl::OkStatus();
    });
    EXPECT_THAT(r, IsOk());  // another key is unaffected
    std::thread other([&] {
      absl::Status s = locker_->WithRead("rw-fail", "doc", [] { return absl::OkStatus(); });
      EXPECT_TRUE(IsBusy(s)) << s;
      EXPECT_THAT(s.message(), HasSubstr("is write-held by another owner"));
      EXPECT_TRUE(IsBusy(locker_->WithWrite("rw-fail", "doc", [] { return absl::OkStatus(); })));
    });
    other.join();
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(RedisInt({"EXISTS", ReadWriteKeys("w:", "doc").writer()}), 0);
}

// Writer preference: once a writer waits, a new reader is held back, so a
// stream of readers cannot starve it; the writer gets in when the readers
// already in have left, woken by the last read release.
TEST_F(ReadWriteTest, AWaitingWriterKeepsNewReadersOutAndIsWokenByTheLastReader) {
  std::latch reading(1);
  std::latch leave(1);
  std::thread reader([&] {
    EXPECT_THAT(locker_->WithRead("rw-fail", "doc", [&] {
      reading.count_down();
      leave.wait();
      return absl::OkStatus();
    }), IsOk());
  });
  reading.wait();
  std::atomic<bool> wrote{false};
  Clock::duration waited{};
  std::thread writer([&] {
    const auto start = Clock::now();
    EXPECT_THAT(locker_->WithWrite("rw-wait", "doc", [&] {
      waited = Clock::now() - start;
      wrote = true;
      return absl::OkStatus();
    }), IsOk());
  });
  ASSERT_TRUE(Eventually([&] { return Claims("w:", "doc") == 1; }));
  // And subscribed to the release channel: a release before that is found
  // by its next attempt, after its 5s backoff, not by a wake-up.
  ASSERT_TRUE(Eventually([&] {
    const std::string numsub = Redis({"PUBSUB", "NUMSUB", ReadWriteKeys("w:", "doc").channel()});
    return absl::EndsWith(numsub, "\n1") || absl::EndsWith(numsub, " 1");
  }));
  // A new reader meets the claim.
  absl::Status held_back = locker_->WithRead("rw-fail", "doc", [] { return absl::OkStatus(); });
  EXPECT_TRUE(IsBusy(held_back)) << held_back;
  EXPECT_THAT(held_back.message(), HasSubstr("a writer is waiting (writer preference)"));
  EXPECT_FALSE(wrote.load());
  const PolicyStats before = GetStats().per_policy["rw-wait"];
  leave.count_down();
  reader.join();
  writer.join();
  EXPECT_TRUE(wrote.load());
  // Its backoff is 5s: the last reader's release woke it.
  EXPECT_LT(waited, std::chrono::seconds(3));
  EXPECT_GE(GetStats().per_policy["rw-wait"].waits_woken_by_notify -
                before.waits_woken_by_notify,
            1);
  EXPECT_EQ(Claims("w:", "doc"), 0);
  EXPECT_THAT(locker_->WithRead("rw-fail", "doc", [] { return absl::OkStatus(); }), IsOk());
  EXPECT_EQ(GetStats().per_policy["rw-wait"].kind, "read_write");
}

// A writer that gives up (wait.timeout) withdraws its claim at once: the
// readers it held back are not kept out for another ttl.
TEST_F(ReadWriteTest, AWriterThatGivesUpWithdrawsItsClaim) {
  auto reader = locker_->NewReadLock("rw-fail", "doc");
  ASSERT_THAT(reader, IsOk());
  ASSERT_THAT((*reader)->Acquire(), IsOk());
  absl::Status gave_up = locker_->WithWrite("rw-short", "doc", [] { return absl::OkStatus(); });
  EXPECT_TRUE(IsBusy(gave_up)) << gave_up;
  EXPECT_THAT(gave_up.message(), HasSubstr("wait.timeout"));
  EXPECT_EQ(Claims("w:", "doc"), 0);
  EXPECT_THAT(locker_->WithRead("rw-fail", "doc", [] { return absl::OkStatus(); }), IsOk());
  EXPECT_THAT((*reader)->Release(), IsOk());
}

// Under contention of readers and writers on one key: never a writer with
// anyone else, readers do overlap, and every writer gets its turn.
TEST_F(ReadWriteTest, NeverAWriterWithAnyoneAndWritersAreNotStarved) {
  std::atomic<int> readers{0}, writers{0}, most_readers{0};
  std::atomic<bool> broken{false};
  std::atomic<int> writes{0};
  auto reader_loop = [&] {
    for (int i = 0; i < 40; ++i) {
      EXPECT_THAT(locker_->WithRead("rw-busy", "hot", [&] {
        const int now = ++readers;
        if (writers.load() != 0) broken = true;
        int seen = most_readers.load();
        while (now > seen && !most_readers.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(std::chrono::microseconds(800));
        --readers;
        return absl::OkStatus();
      }), IsOk());
    }
  };
  auto writer_loop = [&] {
    for (int i = 0; i < 10; ++i) {
      EXPECT_THAT(locker_->WithWrite("rw-busy", "hot", [&] {
        if (++writers != 1 || readers.load() != 0) broken = true;
        std::this_thread::sleep_for(std::chrono::microseconds(500));
        --writers;
        ++writes;
        return absl::OkStatus();
      }), IsOk());
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back(reader_loop);
  for (int i = 0; i < 2; ++i) threads.emplace_back(writer_loop);
  for (auto& t : threads) t.join();
  EXPECT_FALSE(broken.load());
  EXPECT_EQ(writes.load(), 20);
  EXPECT_GE(most_readers.load(), 2);
  EXPECT_EQ(Readers("b:", "hot"), 0);
  EXPECT_EQ(Claims("b:", "hot"), 0);
}

TEST_F(ReadWriteTest, WriteTokensIncreaseAndFencedSetRefusesAReadHold) {
  int64_t first = 0, second = 0;
  ASSERT_THAT(locker_->WithWrite("rw-fail", "acct", [&](Held& h) {
    first = h.fencing_token();
    return locker_->FencedSet("rw-fail", "acct-data", "v1", first);
  }), IsOk());
  ASSERT_THAT(locker_->WithWrite("rw-fail", "acct", [&](Held& h) {
    second = h.fencing_token();
    return absl::OkStatus();
  }), IsOk());
  EXPECT_GT(first, 0);
  EXPECT_GT(second, first);
  ASSERT_THAT(locker_->WithRead("rw-fail", "acct", [&](Held& h) {
    EXPECT_THAT(locker_->FencedSet("rw-fail", "acct-data", "v2", h.fencing_token()),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         HasSubstr("fencing token 0 is what a read hold carries")));
    return absl::OkStatus();
  }), IsOk());
}

// A read hold is renewed past its ttl, and lost (with its stop token) when
// it disappears from Redis.
TEST_F(ReadWriteTest, ReadHoldIsRenewedAndItsLossSignalled) {
  const std::string readers = ReadWriteKeys("r:", "long").readers();
  ASSERT_THAT(locker_->WithRead("rw-renew", "long", [&](Held& held) {
    const auto end = Clock::now() + std::chrono::milliseconds(1200);  // 4 × ttl
    while (Clock::now() < end) {
      EXPECT_NE(Redis({"ZSCORE", readers, held.owner_token()}), "");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_FALSE(held.lost());
    return absl::OkStatus();
  }), IsOk());
  EXPECT_EQ(Readers("r:", "long"), 0);

  absl::Status s = locker_->WithRead("rw-renew", "gone", [&](Held& held) {
    Redis({"DEL", ReadWriteKeys("r:", "gone").readers()});
    EXPECT_TRUE(Eventually([&] { return held.stop_token().stop_requested(); }));
    return absl::OkStatus();
  });
  EXPECT_TRUE(IsLost(s)) << s;
}

// Re-entry of a read hold is the instance's own count: the inner release
// needs no Redis call, the last one gives the hold back. The write side
// keeps its levels in Redis, like a mutex.
TEST_F(ReadWriteTest, ReentryAndInspectOfEachSide) {
  auto reader = locker_->NewReadLock("rw-fail", "doc");
  auto writer = locker_->NewWriteLock("rw-fail", "doc");
  ASSERT_THAT(reader, IsOk());
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT((*reader)->Acquire(), IsOk());
  ASSERT_THAT((*reader)->Acquire(), IsOk());
  EXPECT_EQ((*reader)->hold_count(), 2);
  auto other = locker_->NewReadLock("rw-fail", "doc");
  ASSERT_THAT((*other)->Acquire(), IsOk());
  absl::StatusOr<LockState> st = (*reader)->Inspect();
  ASSERT_THAT(st, IsOk());
  EXPECT_TRUE(st->held);
  EXPECT_EQ(st->holders, 2);
  EXPECT_EQ(st->owner_token, (*reader)->owner_token());
  EXPECT_EQ(st->hold_count, 2);
  EXPECT_EQ(st->fencing_token, 0);
  ASSERT_THAT((*reader)->Release(), IsOk());
  EXPECT_EQ(Readers("w:", "doc"), 2);
  ASSERT_THAT((*reader)->Release(), IsOk());
  ASSERT_THAT((*other)->Release(), IsOk());
  EXPECT_EQ(Readers("w:", "doc"), 0);

  ASSERT_THAT((*writer)->Acquire(), IsOk());
  ASSERT_THAT((*writer)->Acquire(), IsOk());
  EXPECT_EQ(RedisInt({"HGET", ReadWriteKeys("w:", "doc").writer(), "count"}), 2);
  st = (*writer)->Inspect();
  ASSERT_THAT(st, IsOk());
  EXPECT_EQ(st->holders, 1);
  EXPECT_EQ(st->hold_count, 2);
  EXPECT_EQ(st->fencing_token, (*writer)->fencing_token());
  EXPECT_EQ(st->waiting, 0);
  ASSERT_THAT((*writer)->Release(), IsOk());
  ASSERT_THAT((*writer)->Release(), IsOk());
  EXPECT_EQ(RedisInt({"EXISTS", ReadWriteKeys("w:", "doc").writer()}), 0);
}

TEST_F(ReadWriteTest, SidesExistOnReadWritePoliciesOnlyAndDoNotNest) {
  EXPECT_THAT(locker_->WithRead("mutex", "k", [] { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("a read lock on policy \"mutex\", which is of kind "
                                 "\"mutex\": read and write sides exist on \"read_write\" "
                                 "policies only")));
  EXPECT_THAT(locker_->NewWriteLock("mutex", "k"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("a write lock")));
  EXPECT_THAT(locker_->NewReadLock("nope", "k"), StatusIs(absl::StatusCode::kNotFound));
  // A read nested in a write of the same key would wait for itself.
  absl::Status nested;
  ASSERT_THAT(locker_->WithWrite("rw-fail", "doc", [&] {
    nested = locker_->WithRead("rw-wait", "doc", [] { return absl::OkStatus(); });
    return absl::OkStatus();
  }), IsOk());
  EXPECT_TRUE(IsSelfDeadlock(nested)) << nested;
}

// Independent masters cannot bound readers against writers.
TEST_F(ReadWriteTest, ReadWriteOnARedlockTargetIsRefused) {
  const std::string config = absl::StrReplaceAll(R"json({
    "redis": { "default": { "addrs": ["ADDR"] },
               "quorum": { "mode": "redlock", "addrs": ["ADDR", "ADDR2", "ADDR3"] } },
    "policies": { "q": { "kind": "read_write", "redis": "quorum" },
                  "f": { "kind": "fair", "redis": "quorum" } }
  })json", {{"ADDR2", "127.0.0.1:1"}, {"ADDR3", "127.0.0.1:2"}, {"ADDR", server().addr()}});
  auto locker = LockerFromJson(config, "redlock.json");
  ASSERT_THAT(locker, IsOk());
  EXPECT_THAT((*locker)->NewReadLock("q", "k"),
              StatusIs(absl::StatusCode::kUnimplemented,
                       HasSubstr("is of kind \"read_write\" on redis target \"quorum\", a "
                                 "Redlock quorum")));
  EXPECT_THAT((*locker)->NewLock("f", "k"),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("is of kind \"fair\"")));
}

}  // namespace
}  // namespace lock
