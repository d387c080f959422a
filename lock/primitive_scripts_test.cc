// Issue 15's primitives below the engine: the semaphore, read-write and fair
// lock scripts (lock/scripts/{sem,rw,fair}_*.lua, lease_extend.lua) run
// against a real redis-server through the library's script layer
// (lock/redis/script.h), on the key layouts of lock/internal/keys.h. Leases
// are checked against the server's clock (TIME and the scores the scripts
// write), never against sleeps that race it.
//
// Also: the engine refuses the kinds it does not run yet (read_write, fair;
// the semaphore runs, see semaphore_test), so that no policy of another kind
// silently behaves as a mutex.
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_test.h"
#include "lock/internal/keys.h"
#include "lock/internal/primitive_calls.h"
#include "lock/internal/script_values.h"
#include "lock/lock.h"
#include "lock/redis/connection.h"
#include "lock/redis/script.h"
#include "lock/scripts/embedded.h"
#include "lock/testing/locker_from_json.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using internal::FairKeys;
using internal::ReadWriteKeys;
using internal::SemaphoreKeys;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::util::testing::IsOk;
using ::util::testing::StatusIs;

using Triple = std::array<int64_t, 3>;

constexpr int64_t kMinute = 60000;

class PrimitiveScriptsTest : public harness::RedisTest {
 protected:
  void SetUp() override {
    harness::RedisTest::SetUp();
    conn_ = Open();
  }

  std::unique_ptr<redis::Connection> Open() {
    auto conn = redis::Connection::Open({.addr = server().addr()});
    EXPECT_THAT(conn, IsOk());
    return conn.ok() ? *std::move(conn) : nullptr;
  }

  // Runs `script` on the test's connection (EVALSHA, EVAL after NOSCRIPT);
  // nullptr (and a test failure) on an error.
  redis::ReplyPtr Run(const scripts::EmbeddedScript& script,
                      const std::vector<std::string>& keys,
                      const std::vector<std::string>& args) {
    return RunOn(*conn_, script, keys, args);
  }

  redis::ReplyPtr RunOn(redis::Connection& conn, const scripts::EmbeddedScript& script,
                        const std::vector<std::string>& keys,
                        const std::vector<std::string>& args) {
    std::vector<absl::string_view> k(keys.begin(), keys.end());
    std::vector<absl::string_view> a(args.begin(), args.end());
    absl::StatusOr<redis::ReplyPtr> r =
        redis::RunScript(conn, script, k, a, absl::Seconds(5));
    EXPECT_THAT(r, IsOk()) << script.name;
    return r.ok() ? *std::move(r) : nullptr;
  }

  // The typed calls of lock/internal/primitive_calls.h.
  redis::ReplyPtr Run(const internal::PrimitiveCall& call) {
    return Run(*call.script, call.keys, call.args);
  }
  Triple RunTriple(const internal::PrimitiveCall& call) {
    redis::ReplyPtr r = Run(call);
    if (r == nullptr) return {-99, 0, 0};
    absl::StatusOr<internal::AcquireReply> a =
        internal::ParseAcquireReply(*r, call.script->name);
    EXPECT_THAT(a, IsOk());
    if (!a.ok()) return {-99, 0, 0};
    return {a->status, a->a, a->b};
  }
  int64_t RunInt(const internal::PrimitiveCall& call) {
    redis::ReplyPtr r = Run(call);
    if (r == nullptr) return -99;
    absl::StatusOr<int64_t> v = internal::ParseIntegerReply(*r, call.script->name);
    EXPECT_THAT(v, IsOk());
    return v.value_or(-99);
  }

  Triple RunTriple(const scripts::EmbeddedScript& script,
                   const std::vector<std::string>& keys,
                   const std::vector<std::string>& args) {
    redis::ReplyPtr r = Run(script, keys, args);
    if (r == nullptr) return {-99, 0, 0};
    absl::StatusOr<Triple> t = internal::TripleReply(*r, script.name);
    EXPECT_THAT(t, IsOk());
    return t.value_or(Triple{-99, 0, 0});
  }

  int64_t RunInt(const scripts::EmbeddedScript& script,
                 const std::vector<std::string>& keys,
                 const std::vector<std::string>& args) {
    redis::ReplyPtr r = Run(script, keys, args);
    if (r == nullptr) return -99;
    absl::StatusOr<int64_t> v = internal::IntReply(*r, script.name);
    EXPECT_THAT(v, IsOk());
    return v.value_or(-99);
  }

  // The server's clock in ms, as the scripts read it.
  int64_t ServerMs() {
    std::vector<std::string> parts = absl::StrSplit(Redis({"TIME"}), '\n');
    int64_t s = 0, us = 0;
    EXPECT_EQ(parts.size(), 2u);
    EXPECT_TRUE(absl::SimpleAtoi(parts[0], &s) && absl::SimpleAtoi(parts[1], &us));
    return s * 1000 + us / 1000;
  }

  // The score of `member` in ZSET `key`: a lease's end (ms); -1 when absent.
  int64_t Score(const std::string& key, const std::string& member) {
    absl::StatusOr<std::string> s = server().Exec({"ZSCORE", key, member});
    int64_t v = -1;
    if (s.ok() && *s != "(nil)") {
      EXPECT_TRUE(absl::SimpleAtoi(*s, &v)) << *s;
    }
    return v;
  }

  // A connection subscribed to `channel`.
  std::unique_ptr<redis::Connection> Subscribe(const std::string& channel) {
    std::unique_ptr<redis::Connection> sub = Open();
    if (sub == nullptr) return nullptr;
    EXPECT_THAT(sub->Command({"SUBSCRIBE", channel}, absl::Seconds(2)), IsOk());
    return sub;
  }

  // Nothing was published on `channel` since the last message read from
  // `sub`: a marker published now is the next message. (A read that times
  // out would break the connection.)
  void ExpectNoMessage(redis::Connection& sub, const std::string& channel) {
    Redis({"PUBLISH", channel, "<marker>"});
    EXPECT_EQ(NextMessage(sub), "<marker>");
  }

  // The next message on a subscribed connection ("<none>" on timeout).
  static std::string NextMessage(redis::Connection& sub,
                                 absl::Duration timeout = absl::Seconds(2)) {
    absl::StatusOr<redis::ReplyPtr> r = sub.ReadReply(timeout);
    if (!r.ok()) return "<none>";
    const redisReply& m = **r;
    if (m.type != REDIS_REPLY_ARRAY || m.elements != 3) return "<odd reply>";
    return std::string(redis::ReplyText(*m.element[2]));
  }

  std::unique_ptr<redis::Connection> conn_;
};


// ---------------------------------------------------------------------------
// Semaphore.

class SemaphoreTest : public PrimitiveScriptsTest {
 protected:
  Triple Acquire(const std::string& token, int64_t ttl_ms, int permits,
                 int count = 1) {
    return RunTriple(internal::SemAcquire(keys_, token, ttl_ms, count, permits));
  }
  int64_t Release(const std::string& token) {
    return RunInt(internal::SemRelease(keys_, token));
  }
  int64_t Extend(const std::string& token, int64_t lease_ms, bool renew = false) {
    return RunInt(internal::SemExtend(keys_, token, lease_ms, renew));
  }
  int64_t InUse() { return RedisInt({"ZCARD", keys_.holders()}); }

  const SemaphoreKeys keys_{"s:", "quota"};
};

TEST_F(SemaphoreTest, NeverGrantsMoreThanPermits) {
  int granted = 0;
  for (int i = 0; i < 10; ++i) {
    const Triple r = Acquire(absl::StrCat("t", i), kMinute, 3);
    if (r[0] == 1) {
      ++granted;
      EXPECT_EQ(r[1], 0);  // Permits are shared: no fencing token.
      EXPECT_EQ(r[2], kMinute);
    } else {
      EXPECT_EQ(r[0], 0);
      EXPECT_EQ(r[2], 3);  // permits in use
      EXPECT_GT(r[1], kMinute - 5000);  // until the earliest lease ends
      EXPECT_LE(r[1], kMinute);
    }
  }
  EXPECT_EQ(granted, 3);
  EXPECT_EQ(InUse(), 3);
  // Re-entry (or a retried acquire) is the same one permit.
  EXPECT_EQ(Acquire("t0", kMinute, 3, /*count=*/2)[0], 1);
  EXPECT_EQ(InUse(), 3);
  // Re-entering a permit this token does not hold starts nothing.
  EXPECT_EQ(Acquire("t7", kMinute, 3, /*count=*/2), (Triple{-2, 0, 0}));
  EXPECT_EQ(Release("t1"), 1);
  EXPECT_EQ(Acquire("t9", kMinute, 3)[0], 1);
  EXPECT_EQ(Acquire("t8", kMinute, 3)[0], 0);
  // The key expires with the last lease.
  EXPECT_GT(RedisInt({"PTTL", keys_.holders()}), kMinute - 5000);
}

TEST_F(SemaphoreTest, ConcurrentHoldersNeverExceedPermits) {
  constexpr int kPermits = 2;
  std::atomic<int> active{0};
  std::atomic<int> most{0};
  std::atomic<int> grants{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 6; ++th) {
    threads.emplace_back([&, th] {
      std::unique_ptr<redis::Connection> conn = Open();
      if (conn == nullptr) return;
      for (int i = 0; i < 40; ++i) {
        const std::string token = absl::StrCat("w", th, ":", i);
        while (true) {
          redis::ReplyPtr r =
              RunOn(*conn, scripts::k_sem_acquire,
                    {keys_.holders(), keys_.CancelMarker(token)},
                    {token, "60000", "1", absl::StrCat(kPermits)});
          if (r == nullptr) return;
          if (r->element[0]->integer == 1) break;
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        const int now = ++active;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        ++grants;
        std::this_thread::sleep_for(std::chrono::microseconds(300));
        --active;
        redis::ReplyPtr r = RunOn(*conn, scripts::k_sem_release, {keys_.holders()},
                                  {token, keys_.channel()});
        if (r == nullptr) return;
        EXPECT_EQ(r->integer, 1);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(grants.load(), 6 * 40);
  EXPECT_LE(most.load(), kPermits);
  EXPECT_EQ(most.load(), kPermits);  // and they were used
  EXPECT_EQ(RedisInt({"EXISTS", keys_.holders()}), 0);
}

// A holder that dies gives its permit back when its lease ends by the
// server's clock, and not a millisecond earlier.
TEST_F(SemaphoreTest, ExpiredHoldersPermitReturnsAfterItsLeaseNeverEarlier) {
  constexpr int64_t kTtl = 250;
  ASSERT_EQ(Acquire("dead", kTtl, 1)[0], 1);
  const int64_t lease_end = Score(keys_.holders(), "dead");
  ASSERT_GT(lease_end, 0);
  int busy = 0;
  Triple got{};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    got = Acquire("next", 60000, 1);
    if (got[0] == 1) break;
    ASSERT_EQ(got[0], 0);
    ++busy;
    // The hint is the dead holder's lease left, by the server's clock.
    EXPECT_GE(got[1], 1);
    EXPECT_LE(got[1], kTtl);
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  ASSERT_EQ(got[0], 1);
  EXPECT_GT(busy, 10);
  // The grant's server time is the new lease's end minus its length.
  const int64_t granted_at = Score(keys_.holders(), "next") - 60000;
  EXPECT_GE(granted_at, lease_end);
  EXPECT_EQ(Score(keys_.holders(), "dead"), -1);
  // The dead holder's late release and extend change nothing.
  EXPECT_EQ(Release("dead"), 0);
  EXPECT_EQ(Extend("dead", 60000), 0);
  EXPECT_EQ(InUse(), 1);
}

TEST_F(SemaphoreTest, ReleaseByANonOwnerChangesNothing) {
  ASSERT_EQ(Acquire("a", kMinute, 1)[0], 1);
  const int64_t end = Score(keys_.holders(), "a");
  auto sub = Subscribe(keys_.channel());
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(Release("intruder"), 0);
  EXPECT_EQ(Extend("intruder", 60000), 0);
  EXPECT_EQ(Score(keys_.holders(), "a"), end);
  EXPECT_EQ(Score(keys_.holders(), "intruder"), -1);
  EXPECT_EQ(Acquire("b", kMinute, 1)[0], 0);
  ExpectNoMessage(*sub, keys_.channel());
  // The owner's release frees the permit and tells the waiters.
  EXPECT_EQ(Release("a"), 1);
  EXPECT_EQ(NextMessage(*sub), keys_.holders());
  EXPECT_EQ(Release("a"), 0);  // once
  EXPECT_EQ(Acquire("b", kMinute, 1)[0], 1);
}

TEST_F(SemaphoreTest, LoweredPermitsKeepHoldersAndGrantNothingUntilBelow) {
  for (const char* t : {"a", "b", "c"}) ASSERT_EQ(Acquire(t, kMinute, 3)[0], 1);
  // The policy now says 2: all three keep their permits ...
  const Triple refused = Acquire("d", kMinute, 2);
  EXPECT_EQ(refused[0], 0);
  EXPECT_EQ(refused[2], 3);  // in use, above the new count
  EXPECT_EQ(Extend("c", 60000, /*renew=*/true), 1);
  EXPECT_EQ(InUse(), 3);
  // ... and one release brings the count to 2: still nothing to grant.
  EXPECT_EQ(Release("a"), 1);
  EXPECT_EQ(Acquire("d", kMinute, 2)[0], 0);
  EXPECT_EQ(Release("b"), 1);
  EXPECT_EQ(Acquire("d", kMinute, 2)[0], 1);
  EXPECT_EQ(InUse(), 2);
}

TEST_F(SemaphoreTest, ExtendIsOwnerCheckedAndRenewalNeverShortens) {
  ASSERT_EQ(Acquire("a", kMinute, 2)[0], 1);
  const int64_t long_end = Score(keys_.holders(), "a");
  // A renewal with a shorter lease leaves the longer one.
  EXPECT_EQ(Extend("a", 1000, /*renew=*/true), 1);
  EXPECT_EQ(Score(keys_.holders(), "a"), long_end);
  // An explicit extend sets it exactly, shorter too, and the key follows.
  const int64_t before = ServerMs();
  EXPECT_EQ(Extend("a", 2000), 1);
  const int64_t end = Score(keys_.holders(), "a");
  EXPECT_GE(end, before + 2000);
  EXPECT_LE(end, ServerMs() + 2000);
  EXPECT_LE(RedisInt({"PTTL", keys_.holders()}), 2000);
  EXPECT_EQ(Extend("b", 2000), 0);
  // sem_inspect: in use and each holder's lease left.
  redis::ReplyPtr r = Run(internal::SemInspect(keys_));
  ASSERT_NE(r, nullptr);
  absl::StatusOr<internal::SemaphoreState> state = internal::ParseSemInspect(*r);
  ASSERT_THAT(state, IsOk());
  EXPECT_EQ(state->in_use, 1);
  ASSERT_EQ(state->holders.size(), 1u);
  EXPECT_EQ(state->holders[0].token, "a");
  EXPECT_GT(state->holders[0].ms_left, 1000);
  EXPECT_LE(state->holders[0].ms_left, 2000);
}

TEST_F(SemaphoreTest, CancelSettlesALostAcquireReplyInEitherOrder) {
  // The acquire ran: the cancel gives the permit back.
  ASSERT_EQ(Acquire("ran", kMinute, 1)[0], 1);
  EXPECT_EQ(RunInt(internal::SemCancel(keys_, "ran", 5000)), 1);
  EXPECT_EQ(InUse(), 0);
  // The acquire is still on its way: the marker makes it refuse.
  EXPECT_EQ(RunInt(internal::SemCancel(keys_, "late", 5000)), 0);
  EXPECT_EQ(Acquire("late", kMinute, 1), (Triple{-1, 0, 0}));
  EXPECT_EQ(InUse(), 0);
}

TEST_F(SemaphoreTest, BadArgumentsFailBeforeAnyWrite) {
  std::vector<absl::string_view> keys = {keys_.holders(), "{s:quota}:cancel:x"};
  for (const std::vector<absl::string_view>& args :
       std::vector<std::vector<absl::string_view>>{
           {"x", "0", "1", "2"}, {"x", "100", "0", "2"}, {"x", "100", "1", "0"},
           {"x", "1e3", "1", "2"}, {"x", "100", "1"}}) {
    EXPECT_THAT(redis::RunScript(*conn_, scripts::k_sem_acquire, keys, args,
                                 absl::Seconds(2)),
                StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("sem_acquire")));
  }
  EXPECT_EQ(RedisInt({"EXISTS", keys_.holders()}), 0);
}

// ---------------------------------------------------------------------------
// Read-write.

class ReadWriteTest : public PrimitiveScriptsTest {
 protected:
  Triple Read(const std::string& token, int64_t ttl_ms = kMinute, int count = 1) {
    return RunTriple(internal::RwReadAcquire(keys_, token, ttl_ms, count));
  }
  Triple Write(const std::string& token, int64_t claim_ms = kMinute,
               int64_t ttl_ms = kMinute) {
    return RunTriple(internal::RwWriteAcquire(keys_, token, ttl_ms, 1, claim_ms));
  }
  int64_t ReadRelease(const std::string& token) {
    return RunInt(internal::RwReadRelease(keys_, token));
  }
  // The write side is released by the mutex's release.lua.
  int64_t WriteRelease(const std::string& token) {
    return RunInt(internal::RwWriteRelease(keys_, token, 0));
  }

  const ReadWriteKeys keys_{"rw:", "doc"};
};

TEST_F(ReadWriteTest, ReadersOverlap) {
  for (const char* r : {"r1", "r2", "r3"}) {
    EXPECT_EQ(Read(r), (Triple{1, 0, kMinute})) << r;
  }
  EXPECT_EQ(RedisInt({"ZCARD", keys_.readers()}), 3);
  EXPECT_GT(RedisInt({"PTTL", keys_.readers()}), kMinute - 5000);
}

TEST_F(ReadWriteTest, AWriterExcludesReadersAndWriters) {
  const Triple w = Write("w1");
  ASSERT_EQ(w[0], 1);
  EXPECT_GT(w[1], 0);  // the write side is fenced
  const Triple r = Read("r1");
  EXPECT_EQ(r[0], 0);
  EXPECT_EQ(r[2], 1);  // a writer holds
  EXPECT_GT(r[1], kMinute - 5000);
  EXPECT_EQ(Write("w2")[0], 0);
  EXPECT_EQ(Write("w2")[2], 1);
  EXPECT_EQ(RedisInt({"EXISTS", keys_.readers()}), 0);
  // A reader's release or a stranger's write release frees nothing.
  EXPECT_EQ(ReadRelease("w1"), 0);
  EXPECT_EQ(WriteRelease("w2"), 0);
  EXPECT_EQ(Read("r1")[0], 0);
  // The writer's release lets the next writer in (it claimed first, so it
  // goes before the reader).
  auto sub = Subscribe(keys_.channel());
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(WriteRelease("w1"), 1);
  EXPECT_EQ(NextMessage(*sub), keys_.writer());
  EXPECT_EQ(Read("r1")[2], 2);  // w2's claim holds readers back
  const Triple w2 = Write("w2");
  ASSERT_EQ(w2[0], 1);
  EXPECT_GT(w2[1], w[1]);  // increasing fencing tokens
  EXPECT_EQ(WriteRelease("w2"), 1);
  EXPECT_EQ(Read("r1")[0], 1);
  EXPECT_EQ(Write("w3")[0], 0);
  EXPECT_EQ(Write("w3")[2], 3);  // readers hold
}

TEST_F(ReadWriteTest, AWaitingWriterBlocksNewReaders) {
  ASSERT_EQ(Read("r1")[0], 1);
  ASSERT_EQ(Read("r2")[0], 1);
  // The writer finds readers: it waits, and its claim keeps new readers out.
  const Triple w = Write("w");
  EXPECT_EQ(w[0], 0);
  EXPECT_EQ(w[2], 3);
  EXPECT_GT(Score(keys_.writers_waiting(), "w"), 0);
  const Triple r3 = Read("r3");
  EXPECT_EQ(r3[0], 0);
  EXPECT_EQ(r3[2], 2);
  // A reader already in is not held back by the writer that waits on it.
  EXPECT_EQ(Read("r1", kMinute, /*count=*/2)[0], 1);
  // The readers drain; only the last one out publishes.
  auto sub = Subscribe(keys_.channel());
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(ReadRelease("r1"), 1);
  ExpectNoMessage(*sub, keys_.channel());
  EXPECT_EQ(Write("w")[0], 0);
  EXPECT_EQ(ReadRelease("r2"), 1);
  EXPECT_EQ(NextMessage(*sub), keys_.readers());
  const Triple got = Write("w");
  EXPECT_EQ(got[0], 1);
  EXPECT_EQ(Score(keys_.writers_waiting(), "w"), -1);  // claim done
  EXPECT_EQ(Read("r3")[2], 1);
}

// A stream of overlapping readers, each arriving before the previous one
// leaves, would keep a reader-preferring lock busy forever: here the
// writer gets in as soon as the readers that were in when it came are gone.
TEST_F(ReadWriteTest, AStreamOfReadersDoesNotStarveAWriter) {
  ASSERT_EQ(Read("r0")[0], 1);
  ASSERT_EQ(Write("w")[0], 0);
  for (int i = 1; i <= 20; ++i) {
    EXPECT_EQ(Read(absl::StrCat("r", i))[0], 0) << i;  // held back
    EXPECT_EQ(Write("w")[0], 0);                          // still r0 in
  }
  EXPECT_EQ(ReadRelease("r0"), 1);
  EXPECT_EQ(Write("w")[0], 1);
}

// Threads taking either side at random, each polling until it gets in:
// never a writer together with anyone, and readers do overlap.
TEST_F(ReadWriteTest, ConcurrentReadersAndWritersKeepTheInvariant) {
  std::atomic<int> readers{0}, writers{0}, most_readers{0}, violations{0};
  std::atomic<int> writes{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < 6; ++th) {
    threads.emplace_back([&, th] {
      std::unique_ptr<redis::Connection> conn = Open();
      if (conn == nullptr) return;
      for (int i = 0; i < 30; ++i) {
        const bool write = (i + th) % 4 == 0;
        const std::string token = absl::StrCat(write ? "w" : "r", th, ":", i);
        while (true) {
          redis::ReplyPtr r =
              write ? RunOn(*conn, scripts::k_rw_write_acquire,
                            {keys_.writer(), keys_.readers(), keys_.writers_waiting(),
                             keys_.fence(), keys_.CancelMarker(token)},
                            {token, "60000", "1", "1", "86400000", "60000"})
                    : RunOn(*conn, scripts::k_rw_read_acquire,
                            {keys_.writer(), keys_.readers(), keys_.writers_waiting(),
                             keys_.CancelMarker(token)},
                            {token, "60000", "1"});
          if (r == nullptr) return;
          if (r->element[0]->integer == 1) break;
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        if (write) {
          if (++writers != 1 || readers.load() != 0) ++violations;
          ++writes;
        } else {
          const int now = ++readers;
          if (writers.load() != 0) ++violations;
          int seen = most_readers.load();
          while (now > seen && !most_readers.compare_exchange_weak(seen, now)) {
          }
        }
        std::this_thread::sleep_for(std::chrono::microseconds(300));
        redis::ReplyPtr r;
        if (write) {
          --writers;
          r = RunOn(*conn, scripts::k_release, {keys_.writer()},
                    {token, "0", keys_.channel(), "0"});
        } else {
          --readers;
          r = RunOn(*conn, scripts::k_rw_read_release, {keys_.readers()},
                    {token, keys_.channel()});
        }
        if (r == nullptr) return;
        EXPECT_EQ(r->integer, 1) << token;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(writes.load(), 0);
  EXPECT_GT(most_readers.load(), 1);
  for (const std::string& key :
       {keys_.writer(), keys_.readers(), keys_.writers_waiting()}) {
    EXPECT_EQ(RedisInt({"EXISTS", key}), 0) << key;
  }
}

TEST_F(ReadWriteTest, AnAbandonedClaimEndsByTheServersClock) {
  ASSERT_EQ(Read("r1")[0], 1);
  constexpr int64_t kClaim = 200;
  ASSERT_EQ(Write("gone", kClaim)[0], 0);  // then the writer dies
  const int64_t claim_end = Score(keys_.writers_waiting(), "gone");
  Triple got{};
  int held_back = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    got = Read("r2");
    if (got[0] == 1) break;
    EXPECT_EQ(got[2], 2);
    EXPECT_GE(got[1], 1);
    EXPECT_LE(got[1], kClaim);
    ++held_back;
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  ASSERT_EQ(got[0], 1);
  EXPECT_GT(held_back, 5);
  EXPECT_GE(Score(keys_.readers(), "r2") - kMinute, claim_end);
}

TEST_F(ReadWriteTest, CancelWithdrawsAClaimAndUndoesLostAcquires) {
  ASSERT_EQ(Read("r1")[0], 1);
  ASSERT_EQ(Write("w")[0], 0);
  ASSERT_EQ(Read("r2")[0], 0);
  auto sub = Subscribe(keys_.channel());
  ASSERT_NE(sub, nullptr);
  // The writer gives up: its claim goes, and the readers it held back hear it.
  EXPECT_EQ(RunInt(internal::RwCancel(keys_, "w", 5000)), 0);
  EXPECT_EQ(NextMessage(*sub), keys_.writers_waiting());
  EXPECT_EQ(Read("r2")[0], 1);
  // Its acquire, still on its way, is refused.
  EXPECT_EQ(Write("w"), (Triple{-1, 0, 0}));
  // A read hold whose reply was lost is given back.
  EXPECT_EQ(RunInt(internal::RwCancel(keys_, "r2", 5000)), 1);
  EXPECT_EQ(Score(keys_.readers(), "r2"), -1);
}

TEST_F(ReadWriteTest, WriteSideRenewsAndReadHoldsExtend) {
  ASSERT_EQ(Write("w", kMinute, 1000)[0], 1);
  // The write side is a mutex-style owner hash: extend.lua renews it.
  EXPECT_EQ(RunInt(internal::RwWriteExtend(keys_, "w", 30000, /*renew=*/true)), 1);
  EXPECT_GT(RedisInt({"PTTL", keys_.writer()}), 20000);
  EXPECT_EQ(RunInt(internal::RwWriteExtend(keys_, "x", 30000, false)), 0);
  EXPECT_EQ(WriteRelease("w"), 1);
  ASSERT_EQ(Read("r", 1000)[0], 1);
  EXPECT_EQ(RunInt(internal::RwReadExtend(keys_, "r", 30000, /*renew=*/true)), 1);
  EXPECT_GT(Score(keys_.readers(), "r"), ServerMs() + 20000);
  EXPECT_EQ(RunInt(internal::RwReadExtend(keys_, "q", 30000, false)), 0);
  // rw_inspect: no writer, one reader.
  redis::ReplyPtr r = Run(internal::RwInspect(keys_));
  ASSERT_NE(r, nullptr);
  absl::StatusOr<internal::ReadWriteState> state = internal::ParseRwInspect(*r);
  ASSERT_THAT(state, IsOk());
  EXPECT_EQ(state->writer.owner, "");
  EXPECT_EQ(state->writer.pttl_ms, -2);
  EXPECT_GT(state->writer.last_fence, 0);  // last fence issued (the write)
  ASSERT_EQ(state->readers.size(), 1u);
  EXPECT_EQ(state->readers[0].token, "r");
  EXPECT_TRUE(state->waiting_writers.empty());
}

// ---------------------------------------------------------------------------
// Fair.

class FairTest : public PrimitiveScriptsTest {
 protected:
  void SetUp() override {
    PrimitiveScriptsTest::SetUp();
    // Cached up front, so that commandstats count one EVALSHA per call.
    for (const scripts::EmbeddedScript* s :
         {&scripts::k_fair_acquire, &scripts::k_fair_release, &scripts::k_fair_cancel,
          &scripts::k_lease_extend, &scripts::k_extend}) {
      Redis({"SCRIPT", "LOAD", std::string(s->body)});
    }
  }
  Triple Try(const std::string& token, int64_t queue_lease_ms = kMinute,
             int count = 1) {
    return RunTriple(internal::FairAcquire(keys_, token, kMinute, count, queue_lease_ms));
  }
  int64_t Release(const std::string& token) {
    return RunInt(internal::FairRelease(keys_, token, 0));
  }
  int64_t HandOff(const std::string& token) {
    return RunInt(internal::FairRelease(keys_, token, 0, /*handoff=*/true));
  }
  int64_t Cancel(const std::string& token) {
    return RunInt(internal::FairCancel(keys_, token, 5000));
  }

  const FairKeys keys_{"f:", "ledger"};
};

TEST_F(FairTest, GrantsInEnqueueOrder) {
  const Triple first = Try("a");
  ASSERT_EQ(first[0], 1);
  EXPECT_GT(first[1], 0);
  for (int i = 0; i < 5; ++i) {
    const Triple r = Try(absl::StrCat("w", i));
    EXPECT_EQ(r[0], 0);
    EXPECT_EQ(r[2], i + 1);  // place in line
  }
  // Trying again keeps the place.
  EXPECT_EQ(Try("w3")[2], 4);
  auto sub = Subscribe(keys_.channel());
  ASSERT_NE(sub, nullptr);
  int64_t fence = first[1];
  std::string holder = "a";
  for (int i = 0; i < 5; ++i) {
    const std::string next = absl::StrCat("w", i);
    EXPECT_EQ(Release(holder), 1);
    EXPECT_EQ(NextMessage(*sub), next);  // the head is named
    // Everyone behind the head is still refused on a free lock.
    if (i + 1 < 5) {
      const Triple behind = Try(absl::StrCat("w", 4));
      EXPECT_EQ(behind[0], 0);
      EXPECT_EQ(behind[2], 5 - i);
    }
    const Triple got = Try(next);
    ASSERT_EQ(got[0], 1) << next;
    EXPECT_GT(got[1], fence);
    fence = got[1];
    holder = next;
  }
  EXPECT_EQ(Release(holder), 1);
  EXPECT_EQ(NextMessage(*sub), "");  // nobody waits
  EXPECT_EQ(RedisInt({"EXISTS", keys_.queue()}), 0);
  EXPECT_EQ(RedisInt({"EXISTS", keys_.timeouts()}), 0);
  EXPECT_EQ(RedisInt({"EXISTS", keys_.owner()}), 0);
}

// A waiter that stops calling leaves the queue when its place's lease ends
// (server clock), and the one behind it gets the lock then.
TEST_F(FairTest, ADeadWaiterIsDroppedAfterItsQueueLease) {
  ASSERT_EQ(Try("holder")[0], 1);
  constexpr int64_t kQueueLease = 200;
  ASSERT_EQ(Try("dead", kQueueLease)[2], 1);
  ASSERT_EQ(Try("next")[2], 2);
  const int64_t dead_until = Score(keys_.timeouts(), "dead");
  ASSERT_EQ(Release("holder"), 1);
  Triple got{};
  int refused = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    const int64_t before = ServerMs();
    got = Try("next");
    if (got[0] == 1) {
      // The fencing token is the grant's server time in us.
      EXPECT_GE(got[1] / 1000, dead_until);
      EXPECT_LE(before, dead_until + 100);  // and no later than the next try
      break;
    }
    EXPECT_EQ(got[2], 2);
    EXPECT_GE(got[1], 1);  // until the dead head's place ends
    EXPECT_LE(got[1], kQueueLease);
    ++refused;
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  ASSERT_EQ(got[0], 1);
  EXPECT_GT(refused, 5);
  // Its lease is gone: extending it fails, and a late call joins at the tail.
  EXPECT_EQ(RunInt(internal::FairPlaceExtend(keys_, "dead", 60000)), 0);
  ASSERT_EQ(Try("third")[2], 1);
  EXPECT_EQ(Try("dead")[2], 2);
}

TEST_F(FairTest, ExtendingItsPlaceKeepsAWaiterInLine) {
  ASSERT_EQ(Try("holder")[0], 1);
  ASSERT_EQ(Try("w", 300)[2], 1);
  const int64_t before = Score(keys_.timeouts(), "w");
  EXPECT_EQ(RunInt(internal::FairPlaceExtend(keys_, "w", 60000)), 1);
  EXPECT_GT(Score(keys_.timeouts(), "w"), before + 50000);
  EXPECT_GT(RedisInt({"PTTL", keys_.queue()}), 50000);
  EXPECT_GT(RedisInt({"PTTL", keys_.timeouts()}), 50000);
  // The holder renews with the mutex's extend.lua.
  EXPECT_EQ(RunInt(internal::FairExtend(keys_, "holder", 90000, /*renew=*/true)), 1);
  EXPECT_GT(RedisInt({"PTTL", keys_.owner()}), 80000);
  EXPECT_EQ(RunInt(internal::FairExtend(keys_, "w", 90000, false)), 0);
  // Re-entry by the holder.
  EXPECT_EQ(Try("holder", kMinute, 2)[0], 1);
  EXPECT_EQ(Try("stranger", kMinute, 2), (Triple{-2, 0, 0}));
  // fair_inspect: the holder, and the queue in order.
  redis::ReplyPtr r = Run(internal::FairInspect(keys_));
  ASSERT_NE(r, nullptr);
  absl::StatusOr<internal::FairState> state = internal::ParseFairInspect(*r);
  ASSERT_THAT(state, IsOk());
  EXPECT_EQ(state->owner.owner, "holder");
  EXPECT_EQ(state->owner.hold_count, 2);
  EXPECT_GT(state->owner.fence, 0);
  EXPECT_EQ(state->owner.last_fence, state->owner.fence);
  ASSERT_EQ(state->queue.size(), 1u);
  EXPECT_EQ(state->queue[0].token, "w");
}

TEST_F(FairTest, CancelLeavesTheQueueAndTellsTheNewHead) {
  ASSERT_EQ(Try("holder")[0], 1);
  ASSERT_EQ(Try("a")[2], 1);
  ASSERT_EQ(Try("b")[2], 2);
  ASSERT_EQ(Release("holder"), 1);
  auto sub = Subscribe(keys_.channel());
  ASSERT_NE(sub, nullptr);
  // The head gives up while the lock is free: b is told.
  EXPECT_EQ(Cancel("a"), 0);
  EXPECT_EQ(NextMessage(*sub), "b");
  EXPECT_EQ(Try("a"), (Triple{-1, 0, 0}));  // its late call is refused
  EXPECT_EQ(Try("b")[0], 1);
  // A holder whose reply was lost: the cancel releases.
  EXPECT_EQ(Cancel("b"), 1);
  EXPECT_EQ(RedisInt({"EXISTS", keys_.owner()}), 0);
  EXPECT_EQ(Release("b"), 0);
}

// Waiters that all keep asking (each polling on its own connection) are
// still served in the order they joined.
TEST_F(FairTest, ConcurrentWaitersAreServedInTicketOrder) {
  ASSERT_EQ(Try("holder")[0], 1);
  constexpr int kWaiters = 8;
  std::vector<int64_t> tickets(kWaiters, -1);
  std::mutex mu;
  std::vector<int> grant_order;
  std::atomic<int> joined{0};
  std::atomic<int> holders{0};
  std::atomic<int> violations{0};
  std::vector<std::thread> threads;
  for (int th = 0; th < kWaiters; ++th) {
    threads.emplace_back([&, th] {
      std::unique_ptr<redis::Connection> conn = Open();
      if (conn == nullptr) return;
      const std::string token = absl::StrCat("w", th);
      auto try_once = [&] {
        return RunOn(*conn, scripts::k_fair_acquire,
                     {keys_.owner(), keys_.queue(), keys_.timeouts(), keys_.fence(),
                      keys_.CancelMarker(token)},
                     {token, "60000", "1", "1", "86400000", "60000"});
      };
      redis::ReplyPtr r = try_once();
      if (r == nullptr) return;
      EXPECT_EQ(r->element[0]->integer, 0);
      tickets[th] = Score(keys_.queue(), token);
      ++joined;
      while (true) {
        r = try_once();
        if (r == nullptr) return;
        if (r->element[0]->integer == 1) break;
        std::this_thread::sleep_for(std::chrono::microseconds(100 + 50 * th));
      }
      if (++holders != 1) ++violations;
      {
        std::lock_guard<std::mutex> lock(mu);
        grant_order.push_back(th);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
      --holders;
      r = RunOn(*conn, scripts::k_fair_release,
                {keys_.owner(), keys_.queue(), keys_.timeouts(), keys_.fence()},
                {token, "0", keys_.channel()});
      if (r != nullptr) {
        EXPECT_EQ(r->integer, 1);
      }
    });
  }
  ASSERT_TRUE(harness::Eventually([&] { return joined.load() == kWaiters; }));
  ASSERT_EQ(Release("holder"), 1);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(violations.load(), 0);
  ASSERT_EQ(grant_order.size(), static_cast<size_t>(kWaiters));
  for (size_t i = 1; i < grant_order.size(); ++i) {
    EXPECT_LT(tickets[grant_order[i - 1]], tickets[grant_order[i]]) << i;
  }
}

// Tokens are "<host>:<pid>:<random>": a release or cancel tells the head
// on its own process's channel, so no other process with a waiter wakes;
// the lock's channel itself hears only that nobody is left in line.
TEST_F(FairTest, TheHeadIsToldOnItsOwnProcessChannelOnly) {
  const std::string a = "host-a:1:aa", b = "host-b:2:bb", c = "host-c:3:cc", d = "host-c:3:dd";
  ASSERT_EQ(keys_.WaiterChannel(b), keys_.channel() + ":host-b:2");
  ASSERT_EQ(keys_.WaiterChannel("no-colon"), keys_.channel());
  ASSERT_EQ(Try(a)[0], 1);
  ASSERT_EQ(Try(b)[2], 1);
  ASSERT_EQ(Try(c)[2], 2);
  ASSERT_EQ(Try(d)[2], 3);
  auto lock_channel = Subscribe(keys_.channel());
  auto process_b = Subscribe(keys_.WaiterChannel(b));
  auto process_c = Subscribe(keys_.WaiterChannel(c));
  ASSERT_TRUE(lock_channel && process_b && process_c);
  // A plain release: b's process hears b's name, nobody else anything.
  EXPECT_EQ(Release(a), 1);
  EXPECT_EQ(NextMessage(*process_b), b);
  ExpectNoMessage(*process_c, keys_.WaiterChannel(c));
  ExpectNoMessage(*lock_channel, keys_.channel());
  // b gives up its turn: c, next, is told in its process.
  EXPECT_EQ(Cancel(b), 0);
  EXPECT_EQ(NextMessage(*process_c), c);
  ExpectNoMessage(*process_b, keys_.WaiterChannel(b));
  ExpectNoMessage(*lock_channel, keys_.channel());
  // A handoff to c, then from c to d, a waiter of the same process.
  ASSERT_EQ(Try(c)[0], 1);
  EXPECT_EQ(HandOff(c), 2);
  EXPECT_EQ(NextMessage(*process_c).substr(0, d.size() + 1), d + " ");
  ExpectNoMessage(*process_b, keys_.WaiterChannel(b));
  ExpectNoMessage(*lock_channel, keys_.channel());
  // Nobody left in line: the lock's channel says so.
  EXPECT_EQ(HandOff(d), 1);
  EXPECT_EQ(NextMessage(*lock_channel), "");
  ExpectNoMessage(*process_c, keys_.WaiterChannel(c));
}

// "handoff": the release makes the head the owner, for as long as its place
// had left, and names it with its fencing token; the head's next call
// re-enters and takes its full lease.
TEST_F(FairTest, HandoffGrantsTheHeadInsideTheRelease) {
  const Triple first = Try("a");
  ASSERT_EQ(first[0], 1);
  ASSERT_EQ(Try("b", 5000)[2], 1);
  ASSERT_EQ(Try("c")[2], 2);
  const int64_t b_place_ends = Score(keys_.timeouts(), "b");
  auto sub = Subscribe(keys_.channel());
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(HandOff("a"), 2);
  absl::StatusOr<internal::FairReleaseMessage> message =
      internal::ParseFairReleaseMessage(NextMessage(*sub));
  ASSERT_THAT(message, IsOk());
  EXPECT_EQ(message->next, "b");
  EXPECT_TRUE(message->handed_off);
  const int64_t fence = message->fence;
  EXPECT_GT(fence, first[1]);
  // b owns it now, no longer than its place would have lasted.
  EXPECT_EQ(Redis({"HGET", keys_.owner(), "owner"}), "b");
  EXPECT_LE(RedisInt({"PTTL", keys_.owner()}), 5000);
  EXPECT_LE(ServerMs() + RedisInt({"PTTL", keys_.owner()}), b_place_ends + 2);
  EXPECT_EQ(Score(keys_.queue(), "b"), -1);
  EXPECT_EQ(Try("c")[2], 1);  // c moved up, and waits for b
  // b's call re-enters with the token it was told, and takes its ttl.
  const Triple b = Try("b");
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[1], fence);
  EXPECT_GT(RedisInt({"PTTL", keys_.owner()}), kMinute - 5000);
  // With nobody left in line a handoff is a plain release.
  EXPECT_EQ(HandOff("b"), 2);
  EXPECT_EQ(NextMessage(*sub).substr(0, 2), "c ");
  EXPECT_EQ(HandOff("c"), 1);
  EXPECT_EQ(NextMessage(*sub), "");
  EXPECT_EQ(RedisInt({"EXISTS", keys_.owner()}), 0);
}

// A head handed the lock that never takes it up keeps it only until its
// place would have ended; then the next waiter gets in.
TEST_F(FairTest, AHandoffToADeadHeadEndsWithItsPlace) {
  ASSERT_EQ(Try("a")[0], 1);
  ASSERT_EQ(Try("dead", 200)[2], 1);
  ASSERT_EQ(Try("next")[2], 2);
  const int64_t dead_place_ends = Score(keys_.timeouts(), "dead");
  ASSERT_EQ(HandOff("a"), 2);
  Triple got{};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (std::chrono::steady_clock::now() < deadline) {
    got = Try("next");
    if (got[0] == 1) break;
    EXPECT_EQ(got[2], 1);
    EXPECT_LE(got[1], 200);  // the handed lease left
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  ASSERT_EQ(got[0], 1);
  EXPECT_GE(got[1] / 1000, dead_place_ends);
}

// The calls per handoff are a release and the head's one try, whatever
// the length of the queue: the release names the head, so no one else has
// to ask.
TEST_F(FairTest, CommandsPerHandoffDoNotDependOnTheQueueLength) {
  auto sub = Subscribe(keys_.channel());
  ASSERT_NE(sub, nullptr);
  std::map<int, double> per_handoff;
  for (int waiters : {2, 32}) {
    Redis({"DEL", keys_.owner(), keys_.queue(), keys_.timeouts()});
    ASSERT_EQ(Try("h")[0], 1);
    // Tokens without ':' are told on the lock's channel itself.
    for (int i = 0; i < waiters; ++i) ASSERT_EQ(Try(absl::StrCat(waiters, "-", i))[0], 0);
    const int64_t before = ScriptCalls();
    std::string holder = "h";
    for (int i = 0; i < waiters; ++i) {
      ASSERT_EQ(Release(holder), 1);
      const std::string head = NextMessage(*sub);
      ASSERT_EQ(head, absl::StrCat(waiters, "-", i));
      ASSERT_EQ(Try(head)[0], 1);
      holder = head;
    }
    per_handoff[waiters] = static_cast<double>(ScriptCalls() - before) / waiters;
    ASSERT_EQ(Release(holder), 1);
    EXPECT_EQ(NextMessage(*sub), "");
  }
  EXPECT_EQ(per_handoff[2], 2.0);
  EXPECT_EQ(per_handoff[32], 2.0);
}

TEST(FairReleaseMessageTest, WakeOrHandoff) {
  absl::StatusOr<internal::FairReleaseMessage> m =
      internal::ParseFairReleaseMessage("host:1:abc");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->next, "host:1:abc");
  EXPECT_FALSE(m->handed_off);
  m = internal::ParseFairReleaseMessage("host:1:abc 1733000000000001");
  ASSERT_THAT(m, IsOk());
  EXPECT_TRUE(m->handed_off);
  EXPECT_EQ(m->fence, 1733000000000001);
  m = internal::ParseFairReleaseMessage("");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->next, "");
  EXPECT_THAT(internal::ParseFairReleaseMessage("t x"),
              StatusIs(absl::StatusCode::kInternal));
}

}  // namespace
}  // namespace lock
