// The checker on hand-made histories: a clean one passes, and each kind of
// violation is found — so a green scenario run means something.
#include "integration/checker/checker.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/checker/history.h"

namespace lock::checker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// Builds histories of one key, "k", in a few words. Times are in ms; the
// Redis TIME of an op is its steady time (scaled to us), unless a test
// changes it.
class H {
 public:
  // A section of process `p` holding the lock from `enter` to `exit` (ms),
  // with fencing token `fence`, writing `value` from `wb` to `we` (ms).
  Op& Section(int p, int64_t fence, int64_t enter, int64_t exit, int64_t value,
              WriteOutcome w = WriteOutcome::kAccepted, int64_t wb = -1,
              int64_t we = -1) {
    Op op;
    op.process = p;
    op.id = next_id_[p]++;
    op.key = "k";
    op.entered = true;
    op.fence = fence;
    op.owner = "owner-" + std::to_string(fence);
    op.owner_checked = op.owner_verified = true;
    op.enter_steady_ns = enter * 1'000'000;
    op.exit_steady_ns = exit * 1'000'000;
    op.enter_redis_us = enter * 1'000;
    op.exit_redis_us = exit * 1'000;
    op.write = w;
    op.write_value = value;
    if (wb < 0) wb = enter + (exit - enter) / 2;
    if (we < 0) we = wb + (exit - wb) / 2;
    op.write_begin_steady_ns = wb * 1'000'000;
    op.write_end_steady_ns = we * 1'000'000;
    h_.ops.push_back(op);
    Touch(p);
    return h_.ops.back();
  }
  // A call that never got the lock.
  void Busy(int p) {
    Op op;
    op.process = p;
    op.id = next_id_[p]++;
    op.key = "k";
    op.result = "ABORTED";
    h_.ops.push_back(op);
    Touch(p);
  }
  void Final(int64_t value, int64_t fence) {
    final_["k"] = FinalState{true, value, fence};
  }
  // Every process reports the ops it logged.
  void Summaries() {
    for (int p : h_.processes) h_.summaries[p] = {p, next_id_[p]};
  }
  Report Check() { return checker::Check(h_, final_); }
  History& history() { return h_; }

 private:
  void Touch(int p) {
    if (std::find(h_.processes.begin(), h_.processes.end(), p) ==
        h_.processes.end()) {
      h_.processes.push_back(p);
    }
  }
  History h_;
  std::map<std::string, FinalState> final_;
  std::map<int, int64_t> next_id_;
};

std::vector<ViolationKind> Kinds(const Report& r) {
  std::set<ViolationKind> k = r.Kinds();
  return std::vector<ViolationKind>(k.begin(), k.end());
}

// Three holders one after another, one busy caller: nothing to report.
H Clean() {
  H h;
  h.Section(0, 1, 0, 10, 1);
  h.Section(1, 2, 11, 20, 2);
  h.Busy(1);
  h.Section(0, 3, 21, 30, 3);
  h.Final(3, 3);
  h.Summaries();
  return h;
}

TEST(CheckerTest, CleanHistoryPasses) {
  H h = Clean();
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.operations, 4);
  EXPECT_EQ(r.entered, 3);
  EXPECT_EQ(r.writes_accepted, 3);
  EXPECT_EQ(r.results["OK"], 3);
  EXPECT_EQ(r.results["ABORTED"], 1);
}

TEST(CheckerTest, UnsignalledOverlapIsAViolation) {
  H h;
  h.Section(0, 1, 0, 10, 1, WriteOutcome::kAccepted, 2, 3);
  h.Section(1, 2, 5, 20, 2, WriteOutcome::kAccepted, 12, 13);  // enters at 5 < 10
  h.Final(2, 2);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kOverlap)) << r.Summary();
  EXPECT_EQ(r.overlaps, 1);
  EXPECT_THAT(r.violations[0].detail, HasSubstr("Redis TIME"));
}

TEST(CheckerTest, OverlapWhereOneSideWasToldItLostIsNotAViolation) {
  H h;
  h.Section(0, 1, 0, 10, 1, WriteOutcome::kAccepted, 2, 3).lost = true;
  h.Section(1, 2, 5, 20, 2, WriteOutcome::kAccepted, 12, 13);
  h.Final(2, 2);
  h.Summaries();
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.signalled_overlaps, 1);
  EXPECT_EQ(r.losses_signalled, 1);
}

TEST(CheckerTest, OverlapWithoutRedisTimeFallsBackToTheMonotonicClock) {
  H h;
  h.Section(0, 1, 0, 10, 1, WriteOutcome::kAccepted, 2, 3).exit_redis_us = -1;
  h.Section(1, 2, 5, 20, 2, WriteOutcome::kAccepted, 12, 13);
  h.Final(2, 2);
  h.Summaries();
  Report r = h.Check();
  ASSERT_THAT(Kinds(r), ElementsAre(ViolationKind::kOverlap)) << r.Summary();
  EXPECT_THAT(r.violations[0].detail, HasSubstr("monotonic"));
}

TEST(CheckerTest, RedisTimeDecidesWhenBothSidesHaveIt) {
  // Touching on the monotonic clock, apart in Redis TIME: not an overlap.
  H h;
  h.Section(0, 1, 0, 10, 1);
  Op& b = h.Section(1, 2, 9, 20, 2, WriteOutcome::kAccepted, 12, 13);
  b.enter_redis_us = 11'000;
  h.Final(2, 2);
  h.Summaries();
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
}

TEST(CheckerTest, SectionOfADeadProcessIsNoLiveHolder) {
  H h;
  Op& dead = h.Section(0, 1, 0, 0, 0, WriteOutcome::kNone);
  dead.died = true;
  dead.result = "DIED";
  dead.exit_redis_us = -1;
  h.Section(1, 2, 5, 20, 1);
  h.Final(1, 2);
  h.history().summaries[1] = {1, 1};  // process 0 was killed: no summary
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.died, 1);
  EXPECT_THAT(r.notes, ElementsAre(HasSubstr("process 0 left no summary")));
}

TEST(CheckerTest, FencingTokenGoingBackwardsIsAViolation) {
  H h;
  h.Section(0, 5, 0, 10, 1);
  h.Section(1, 3, 11, 20, 2);  // acquired later, lower token
  h.Final(2, 3);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), testing::Contains(ViolationKind::kFenceOrder))
      << r.Summary();
}

TEST(CheckerTest, RepeatedFencingTokenIsAViolation) {
  H h;
  h.Section(0, 4, 0, 10, 1);
  h.Section(1, 4, 11, 20, 2);
  h.Final(2, 4);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kFenceOrder)) << r.Summary();
}

// A holder paused between the grant and its entry: A is granted token 5 at
// about t=0.5 but enters at t=30; B, called at t=1, is granted token 9 at t=11.
// Sorted by entry A looks later with a lower token, yet the server granted A
// first. (A's section overlaps B's, so it must have been told it lost.)
TEST(CheckerTest, HolderPausedBeforeEnteringIsNotAFenceOrderViolation) {
  H h;
  Op& a = h.Section(0, 5, 30, 40, 0, WriteOutcome::kRejected);
  a.call_steady_ns = 500'000;
  a.lost = true;
  a.result = "DATA_LOSS";
  Op& b = h.Section(1, 9, 11, 20, 1);
  b.call_steady_ns = 1'000'000;
  h.Final(1, 9);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), testing::Not(testing::Contains(ViolationKind::kFenceOrder)))
      << r.Summary();
}

// The same token order is a violation once B's call began after A entered.
TEST(CheckerTest, LowerTokenCalledAfterAnEntryIsAViolation) {
  H h;
  Op& a = h.Section(0, 9, 10, 20, 1);
  a.call_steady_ns = 9'000'000;
  Op& b = h.Section(1, 5, 25, 30, 2);
  b.call_steady_ns = 21'000'000;
  h.Final(2, 5);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), testing::Contains(ViolationKind::kFenceOrder))
      << r.Summary();
}

// The paused holder: A (token 1) acquires, reads 0, is paused past its
// lease; B (token 2) acquires, writes 1; A wakes and writes 1.
TEST(CheckerTest, StaleWriteRejectedIsFine) {
  H h;
  Op& a = h.Section(0, 1, 0, 100, 1, WriteOutcome::kRejected, 90, 95);
  a.lost = true;
  h.Section(1, 2, 40, 50, 1, WriteOutcome::kAccepted, 44, 45);
  h.Final(1, 2);
  h.Summaries();
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.stale_writes_rejected, 1);
  EXPECT_EQ(r.signalled_overlaps, 1);
}

TEST(CheckerTest, StaleWriteAcceptedIsAViolation) {
  H h;
  Op& a = h.Section(0, 1, 0, 100, 2, WriteOutcome::kAccepted, 90, 95);
  a.lost = true;
  h.Section(1, 2, 40, 50, 1, WriteOutcome::kAccepted, 44, 45);
  h.Final(2, 1);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), testing::Contains(ViolationKind::kStaleWriteAccepted))
      << r.Summary();
  EXPECT_EQ(r.stale_writes_accepted, 1);
  // The resource ended with the stale holder's token: also wrong.
  EXPECT_THAT(Kinds(r), testing::Contains(ViolationKind::kFinalState));
}

TEST(CheckerTest, FreshWriteRejectedIsAViolation) {
  H h;
  h.Section(0, 1, 0, 10, 1);
  h.Section(1, 2, 11, 20, 2, WriteOutcome::kRejected);  // nothing newer exists
  h.Final(1, 1);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kFreshWriteRejected))
      << r.Summary();
}

TEST(CheckerTest, RejectionExplainedByAWriteOfUnknownOutcome) {
  H h;
  // B's write got no reply, but may have landed before A's.
  Op& a = h.Section(0, 1, 0, 100, 1, WriteOutcome::kRejected, 90, 95);
  a.lost = true;
  h.Section(1, 2, 40, 50, 1, WriteOutcome::kUnknown, 44, 0);
  h.Final(1, 2);
  h.Summaries();
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.writes_unknown, 1);
}

TEST(CheckerTest, LostUpdateShowsAsADuplicateValue) {
  H h;
  h.Section(0, 1, 0, 10, 1);
  h.Section(1, 2, 11, 20, 1);  // read 0 again: the first write vanished
  h.Final(1, 2);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kDuplicateValue))
      << r.Summary();
}

TEST(CheckerTest, ValueNobodyWroteIsAGap) {
  H h;
  h.Section(0, 1, 0, 10, 1);
  h.Section(1, 2, 11, 20, 3);  // read 2, which was never written
  h.Final(3, 2);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kValueGap)) << r.Summary();
}

TEST(CheckerTest, FinalStateThatNoWriteLeftIsAViolation) {
  H h = Clean();
  h.Final(2, 2);  // the last accepted write (3, token 3) is gone
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kFinalState)) << r.Summary();
}

TEST(CheckerTest, MissingResourceIsAViolation) {
  H h;
  h.Section(0, 1, 0, 10, 1);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kFinalState)) << r.Summary();
}

TEST(CheckerTest, SectionRunningUnderAnotherOwnerIsAPhantomHold) {
  H h = Clean();
  h.history().ops[1].owner_verified = false;
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kPhantomHold)) << r.Summary();
  h.history().ops[1].lost = true;  // ...unless it was told
  EXPECT_TRUE(h.Check().ok());
}

TEST(CheckerTest, MissingOperationsAreCounted) {
  H h = Clean();
  h.history().summaries[0].ops += 1;  // process 0 did one more than it logged
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kCounts)) << r.Summary();
}

TEST(CheckerTest, UnfinishedOperationOfACleanlyExitedProcessIsCounted) {
  H h = Clean();
  h.history().ops[0].died = true;
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), testing::Contains(ViolationKind::kCounts))
      << r.Summary();
}

// ---- history lines ----------------------------------------------------------

// ---- kinds ------------------------------------------------------------------

// A permit of a 3-permit semaphore held from `enter` to `exit` (ms): token
// 0, no write.
Op& Permit(H& h, int p, int64_t enter, int64_t exit) {
  Op& op = h.Section(p, 0, enter, exit, 0, WriteOutcome::kNone);
  op.kind = "semaphore";
  op.permits = 3;
  return op;
}

// A read hold of a read_write lock: token 0, reads only.
Op& Read(H& h, int p, int64_t enter, int64_t exit) {
  Op& op = h.Section(p, 0, enter, exit, 0, WriteOutcome::kNone);
  op.kind = "read_write";
  op.read = true;
  return op;
}

// The write side of a read_write lock: fenced like a mutex.
Op& Write(H& h, int p, int64_t fence, int64_t enter, int64_t exit, int64_t value) {
  Op& op = h.Section(p, fence, enter, exit, value);
  op.kind = "read_write";
  return op;
}

// A fair lock's section whose With was called at `call` (ms).
Op& Fair(H& h, int p, int64_t fence, int64_t call, int64_t enter, int64_t exit,
         int64_t value) {
  Op& op = h.Section(p, fence, enter, exit, value);
  op.kind = "fair";
  op.call_steady_ns = call * 1'000'000;
  return op;
}

// Marks the `i`-th op as cut short by its process dying, with the lease it
// saw in Redis ending at `lease_end` (ms); its process leaves no summary.
// (By index: a reference into the history does not outlive the next op.)
void Die(H& h, size_t i, int64_t lease_end) {
  Op& op = h.history().ops[i];
  op.died = true;
  op.result = "DIED";
  op.exit_steady_ns = 0;
  op.exit_redis_us = -1;
  op.write = op.write == WriteOutcome::kNone ? op.write : WriteOutcome::kUnknown;
  op.write_end_steady_ns = 0;
  op.lease_end_redis_us = lease_end * 1'000;
  h.history().summaries.erase(op.process);
}

TEST(KindsTest, SemaphorePermitsUpToTheirNumberPass) {
  H h;
  Permit(h, 0, 0, 10);
  Permit(h, 1, 2, 12);
  Permit(h, 2, 4, 14);
  Permit(h, 0, 10, 20);  // enters as the first leaves
  Permit(h, 1, 30, 40);
  h.Summaries();
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.max_shared_holds, 3);
  EXPECT_EQ(r.overlaps, 0);
}

TEST(KindsTest, MorePermitsThanTheSemaphoreHasIsAViolation) {
  H h;
  Permit(h, 0, 0, 10);
  Permit(h, 1, 2, 12);
  Permit(h, 2, 4, 14);
  Permit(h, 3, 6, 16);
  Permit(h, 3, 20, 30);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kOverPermits)) << r.Summary();
  EXPECT_EQ(r.Count(ViolationKind::kOverPermits), 1);  // one per excursion
  EXPECT_THAT(r.violations[0].detail, HasSubstr("4 holders of 3 permits"));
  EXPECT_EQ(r.max_shared_holds, 4);
}

TEST(KindsTest, PermitHolderToldItLostIsNotCounted) {
  H h;
  Permit(h, 0, 0, 10).lost = true;
  Permit(h, 1, 2, 12);
  Permit(h, 2, 4, 14);
  Permit(h, 3, 6, 16);
  h.Summaries();
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.max_shared_holds, 3);
}

TEST(KindsTest, DeadPermitHolderHoldsUntilItsLeaseEnds) {
  for (const int64_t lease_end : {25, 15}) {
    H h;
    Permit(h, 0, 0, 0);
    Permit(h, 1, 10, 30);
    Permit(h, 2, 12, 30);
    Permit(h, 3, 20, 30);  // the third live permit: the dead one's
    h.Summaries();
    Die(h, 0, lease_end);
    Report r = h.Check();
    if (lease_end > 20) {
      // Its permit was granted again before its lease ended.
      EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kOverPermits)) << r.Summary();
    } else {
      EXPECT_TRUE(r.ok()) << r.Summary();
    }
  }
}

TEST(KindsTest, DeadMutexHolderHoldsUntilItsLeaseEnds) {
  for (const int64_t next_enter : {500, 1001}) {
    H h;
    h.Section(0, 1, 0, 0, 1, WriteOutcome::kNone);
    h.Section(1, 2, next_enter, next_enter + 10, 1);
    h.Final(1, 2);
    h.Summaries();
    Die(h, 0, 1000);
    Report r = h.Check();
    if (next_enter < 1000) {
      EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kOverlap)) << r.Summary();
    } else {
      EXPECT_TRUE(r.ok()) << r.Summary();
    }
  }
}

TEST(KindsTest, ReadersShareAndWritersHoldAlone) {
  H h;
  Read(h, 0, 0, 10);
  Read(h, 1, 2, 12);
  Read(h, 2, 4, 8);
  Write(h, 0, 5, 13, 20, 1);
  Read(h, 1, 21, 30);
  Write(h, 2, 6, 31, 40, 2);
  h.Final(2, 6);
  h.Summaries();
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.max_shared_holds, 3);
  EXPECT_EQ(r.write_calls, 2);
  EXPECT_EQ(r.write_calls_not_entered, 0);
  EXPECT_EQ(r.write_calls_busy, 0);
}

TEST(KindsTest, WriterTogetherWithAReaderOrWriterIsAViolation) {
  H h;
  Read(h, 0, 0, 10);
  Write(h, 1, 5, 8, 20, 1);    // inside while the reader is
  Write(h, 2, 6, 15, 25, 2);   // inside while the first writer is
  h.Final(2, 6);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kOverlap)) << r.Summary();
  EXPECT_EQ(r.overlaps, 2);
}

TEST(KindsTest, FairGrantsFollowRequestOrder) {
  H h;
  Fair(h, 0, 1, 0, 4, 160, 1);    // holds while the next two queue
  Fair(h, 1, 2, 40, 164, 200, 2);  // queued first
  Fair(h, 2, 3, 80, 204, 240, 3);  // queued 40 ms later while 1 still waited
  Fair(h, 3, 4, 88, 244, 280, 4);  // 8 ms after 2: too close to judge
  h.Final(4, 4);
  h.Summaries();
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
  // (1,2), (1,3), (2,3 is within the margin: not judged)...
  EXPECT_EQ(r.order_pairs_judged, 2);
}

TEST(KindsTest, LaterRequesterEnteringFirstIsAnOrderViolation) {
  H h;
  Fair(h, 0, 1, 0, 4, 160, 1);
  Fair(h, 1, 3, 40, 204, 240, 3);  // queued first, entered second
  Fair(h, 2, 2, 80, 164, 200, 2);
  h.Final(3, 3);
  h.Summaries();
  Report r = h.Check();
  EXPECT_THAT(Kinds(r), ElementsAre(ViolationKind::kOrder)) << r.Summary();
  EXPECT_EQ(r.order_pairs_judged, 1);
}

TEST(KindsTest, OrderIsNotJudgedForHoldersToldTheyLost) {
  H h;
  Fair(h, 0, 1, 0, 4, 160, 1);
  Fair(h, 1, 3, 40, 204, 240, 3).lost = true;
  Fair(h, 2, 2, 80, 164, 200, 2);
  h.Final(3, 3);
  h.Summaries();
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.order_pairs_judged, 0);
}

TEST(KindsTest, OrderIsNotJudgedForWaitersOfAStalledProcess) {
  H h;
  Fair(h, 0, 1, 0, 4, 160, 1);
  Fair(h, 1, 3, 40, 204, 240, 3);  // its process was SIGSTOPped while it waited
  Fair(h, 2, 2, 80, 164, 200, 2);
  h.Final(3, 3);
  h.Summaries();
  h.history().stalled[1] = {{60'000'000, 140'000'000}};
  Report r = h.Check();
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.order_pairs_judged, 0);
}

TEST(KindsTest, MixedKindsOnOneKeyAreACountsProblem) {
  H h;
  Permit(h, 0, 0, 10);
  Read(h, 1, 20, 30);
  h.Summaries();
  EXPECT_THAT(Kinds(h.Check()), ElementsAre(ViolationKind::kCounts));
}

TEST(HistoryTest, KindFieldsAndTheLeaseRoundTrip) {
  Op op;
  op.process = 4;
  op.id = 9;
  op.key = "k";
  op.kind = "read_write";
  op.read = true;
  op.permits = 0;
  op.entered = true;
  op.enter_redis_us = 100;
  op.lease_end_redis_us = 1'000'100;
  HistoryBuilder b;
  ASSERT_TRUE(b.AddText(EnterEvent(op).dump() + "\n", "h").ok());
  History h = b.Finish();
  ASSERT_EQ(h.ops.size(), 1u);
  EXPECT_TRUE(h.ops[0].died);
  EXPECT_EQ(h.ops[0].kind, "read_write");
  EXPECT_TRUE(h.ops[0].read);
  EXPECT_EQ(h.ops[0].lease_end_redis_us, 1'000'100);
  op.kind = "semaphore";
  op.read = false;
  op.permits = 3;
  HistoryBuilder b2;
  ASSERT_TRUE(b2.AddText(OpEvent(op).dump() + "\n", "h").ok());
  History h2 = b2.Finish();
  EXPECT_EQ(h2.ops[0].kind, "semaphore");
  EXPECT_EQ(h2.ops[0].permits, 3);
}

TEST(HistoryTest, RoundTripsAndRebuildsOperationsOfAKilledProcess) {
  Op op;
  op.process = 3;
  op.thread = 1;
  op.id = 7;
  op.key = "k";
  op.entered = true;
  op.fence = 42;
  op.owner = "host:1:abc";
  op.owner_checked = op.owner_verified = true;
  op.enter_steady_ns = 100;
  op.enter_redis_us = 5;
  op.write_value = 9;
  op.write_begin_steady_ns = 150;

  Op finished = op;
  finished.id = 8;
  finished.exit_steady_ns = 200;
  finished.write = WriteOutcome::kRejected;
  finished.lost = true;
  finished.result = "DATA_LOSS";

  std::string text = EnterEvent(op).dump() + "\n" + WriteEvent(op).dump() +
                     "\n" + EnterEvent(finished).dump() + "\n" +
                     OpEvent(finished).dump() + "\n" +
                     R"({"e":"op","p":3,"t":1,"op":9,"ke)";  // cut by SIGKILL
  HistoryBuilder b;
  ASSERT_TRUE(b.AddText(text, "h.jsonl").ok());
  History h = b.Finish();
  EXPECT_THAT(h.problems, IsEmpty());
  EXPECT_THAT(h.notes, ElementsAre(HasSubstr("truncated")));
  ASSERT_EQ(h.ops.size(), 2u);
  const Op& died = h.ops[0];
  EXPECT_EQ(died.id, 7);
  EXPECT_TRUE(died.died);
  EXPECT_TRUE(died.entered);
  EXPECT_EQ(died.fence, 42);
  EXPECT_EQ(died.write, WriteOutcome::kUnknown);
  EXPECT_EQ(died.write_value, 9);
  EXPECT_EQ(died.result, "DIED");
  const Op& done = h.ops[1];
  EXPECT_FALSE(done.died);
  EXPECT_EQ(done.write, WriteOutcome::kRejected);
  EXPECT_TRUE(done.lost);
  EXPECT_EQ(done.exit_steady_ns, 200);
  EXPECT_EQ(done.owner, "host:1:abc");
  EXPECT_EQ(h.processes, std::vector<int>{3});
}

TEST(HistoryTest, DuplicateLineIsAProblem) {
  Op op;
  op.key = "k";
  const std::string line = OpEvent(op).dump() + "\n";
  HistoryBuilder b;
  ASSERT_TRUE(b.AddText(line + line, "h").ok());
  History h = b.Finish();
  EXPECT_THAT(h.problems, ElementsAre(HasSubstr("duplicate")));
  EXPECT_THAT(Kinds(Check(h, {})), ElementsAre(ViolationKind::kCounts));
}

TEST(HistoryTest, MalformedLineIsAnErrorNamingItsPlace) {
  HistoryBuilder b;
  absl::Status s = b.AddText("{\"e\":\"op\"}\nnot json\n", "h.jsonl");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("h.jsonl:1"));
  HistoryBuilder b2;
  s = b2.AddText(R"({"e":"op","p":"zero","t":0,"op":1,"key":"k"})" "\n", "x");
  EXPECT_THAT(std::string(s.message()), HasSubstr("x:1: bad \"op\" event"));
}

}  // namespace
}  // namespace lock::checker
