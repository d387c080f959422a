#include "lock/internal/kind_calls.h"

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lock/internal/keys.h"
#include "lock/internal/script_values.h"
#include "util/strings.h"

namespace lock::internal {
namespace {

std::string Left(int64_t ms) {
  return absl::FormatDuration(absl::Milliseconds(std::max<int64_t>(0, ms)));
}

absl::Duration LeaseLeft(int64_t ms) {
  return absl::Milliseconds(std::max<int64_t>(0, ms));
}

ExclusiveOptions ExclusiveOf(const policy::Policy& p) {
  return {.fencing = p.fencing, .fence_retention_ms = Millis(p.fencing_retention)};
}

// A shared hold among several (a permit, a read hold): the inspecting
// instance's own when it is among them, else the one whose lease ends first.
void ShowShared(const std::vector<Lease>& holds, absl::string_view mine, int mine_count,
                LockState* st) {
  st->holders = static_cast<int64_t>(holds.size());
  st->held = !holds.empty();
  if (holds.empty()) return;
  const Lease* shown = &holds.front();
  for (const Lease& l : holds) {
    if (!mine.empty() && l.token == mine) shown = &l;
  }
  st->owner_token = shown->token;
  st->remaining = LeaseLeft(shown->ms_left);
  // Levels of a shared hold are counted by the instance holding it.
  st->hold_count = !mine.empty() && shown->token == mine ? mine_count : 1;
}

class SemaphoreCalls final : public KindCalls {
 public:
  SemaphoreCalls(const policy::Policy& p, absl::string_view key)
      : keys_(p.key_prefix, key), permits_(p.permits) {}

  PrimitiveCall Acquire(absl::string_view token, int64_t ttl_ms, int count) const override {
    return SemAcquire(keys_, token, ttl_ms, count, permits_);
  }
  PrimitiveCall Release(absl::string_view token, int) const override {
    return SemRelease(keys_, token);
  }
  PrimitiveCall Cancel(absl::string_view token, int64_t marker_ms) const override {
    return SemCancel(keys_, token, marker_ms);
  }
  PrimitiveCall Inspect() const override { return SemInspect(keys_); }
  absl::StatusOr<LockState> ParseInspect(const redisReply& r, absl::string_view mine,
                                         int mine_count) const override {
    absl::StatusOr<SemaphoreState> sem = ParseSemInspect(r);
    if (!sem.ok()) return sem.status();
    LockState st;
    ShowShared(sem->holders, mine, mine_count, &st);
    st.holders = sem->in_use;
    return st;
  }
  const std::string& lease_key() const override { return keys_.holders(); }
  bool lease_in_zset() const override { return true; }
  const std::string& channel() const override { return keys_.channel(); }
  bool levels_in_redis() const override { return false; }
  bool exclusive() const override { return false; }
  // One permit back lets one waiter in.
  ReleaseNotifier::WakeMode wake() const override { return ReleaseNotifier::WakeMode::kOne; }
  std::string BusyText(absl::string_view key, const policy::Policy& p, int64_t ms_left,
                       int64_t in_use) const override {
    return absl::StrCat("semaphore \"", key, "\" (policy ", p.name, ") has all ", p.permits,
                        p.permits == 1 ? " permit" : " permits", " taken (", in_use,
                        " in use); the first returns in ", Left(ms_left));
  }
  absl::string_view acquire_name() const override { return "sem_acquire"; }

 private:
  const SemaphoreKeys keys_;
  const int permits_;
};

class ReadWriteCalls final : public KindCalls {
 public:
  ReadWriteCalls(const policy::Policy& p, absl::string_view key, bool read)
      : keys_(p.key_prefix, key), read_(read), exclusive_(ExclusiveOf(p)) {}

  PrimitiveCall Acquire(absl::string_view token, int64_t ttl_ms, int count) const override {
    // A waiting writer's claim lasts one lease: the waiter refreshes it well
    // within that (LockCore caps its sleeps), and one that died holds new
    // readers back no longer than a holder that died would.
    return read_ ? RwReadAcquire(keys_, token, ttl_ms, count)
                 : RwWriteAcquire(keys_, token, ttl_ms, count, ttl_ms, exclusive_);
  }
  PrimitiveCall Release(absl::string_view token, int count_after) const override {
    return read_ ? RwReadRelease(keys_, token) : RwWriteRelease(keys_, token, count_after);
  }
  PrimitiveCall Cancel(absl::string_view token, int64_t marker_ms) const override {
    return RwCancel(keys_, token, marker_ms);
  }
  PrimitiveCall Inspect() const override { return RwInspect(keys_); }
  absl::StatusOr<LockState> ParseInspect(const redisReply& r, absl::string_view mine,
                                         int mine_count) const override {
    absl::StatusOr<ReadWriteState> rw = ParseRwInspect(r);
    if (!rw.ok()) return rw.status();
    LockState st;
    if (!rw->writer.owner.empty()) {
      st = OwnerLockState(rw->writer);
    } else {
      ShowShared(rw->readers, mine, mine_count, &st);
      st.last_fencing_token = rw->writer.last_fence;
    }
    st.waiting = static_cast<int64_t>(rw->waiting_writers.size());
    return st;
  }
  const std::string& lease_key() const override {
    return read_ ? keys_.readers() : keys_.writer();
  }
  bool lease_in_zset() const override { return read_; }
  const std::string& channel() const override { return keys_.channel(); }
  bool levels_in_redis() const override { return !read_; }
  bool busy_leaves_trace() const override { return !read_; }
  bool exclusive() const override { return !read_; }
  // The write release (and the last claim withdrawn) lets every waiting
  // reader in at once; the last read release lets one writer in, and the
  // others find it taken and wait again.
  ReleaseNotifier::WakeMode wake() const override { return ReleaseNotifier::WakeMode::kAll; }
  std::string BusyText(absl::string_view key, const policy::Policy& p, int64_t ms_left,
                       int64_t why) const override {
    const std::string what = absl::StrCat(read_ ? "read" : "write", " lock \"", key,
                                          "\" (policy ", p.name, ")");
    if (why == AcquireReply::kWriterHolds) {
      return absl::StrCat(what, " is write-held by another owner for ", Left(ms_left),
                          " more");
    }
    if (why == AcquireReply::kWriterWaits) {
      return absl::StrCat(what, ": a writer is waiting (writer preference), its claim "
                          "ends in ", Left(ms_left), " unless it keeps trying");
    }
    return absl::StrCat(what, " is read-held; the last read lease ends in ", Left(ms_left));
  }
  absl::string_view acquire_name() const override {
    return read_ ? "rw_read_acquire" : "rw_write_acquire";
  }

 private:
  const ReadWriteKeys keys_;
  const bool read_;
  const ExclusiveOptions exclusive_;
};

class FairCalls final : public KindCalls {
 public:
  FairCalls(const policy::Policy& p, absl::string_view key)
      : keys_(p.key_prefix, key), exclusive_(ExclusiveOf(p)) {}

  PrimitiveCall Acquire(absl::string_view token, int64_t ttl_ms, int count) const override {
    // A place in the queue lasts one lease: a waiter that died leaves the
    // queue after it, so the queue never stalls longer than a dead holder
    // would stall a mutex.
    return FairAcquire(keys_, token, ttl_ms, count, ttl_ms, exclusive_);
  }
  // The head becomes the owner inside the release (fair_release.lua's
  // handoff) and learns it from the message: the lock is never free while
  // someone waits, and a handoff costs no call of the head's.
  PrimitiveCall Release(absl::string_view token, int count_after) const override {
    return FairRelease(keys_, token, count_after, /*handoff=*/true, exclusive_);
  }
  PrimitiveCall Cancel(absl::string_view token, int64_t marker_ms) const override {
    return FairCancel(keys_, token, marker_ms);
  }
  PrimitiveCall Inspect() const override { return FairInspect(keys_); }
  absl::StatusOr<LockState> ParseInspect(const redisReply& r, absl::string_view,
                                         int) const override {
    absl::StatusOr<FairState> fair = ParseFairInspect(r);
    if (!fair.ok()) return fair.status();
    LockState st = OwnerLockState(fair->owner);
    st.waiting = static_cast<int64_t>(fair->queue.size());
    return st;
  }
  const std::string& lease_key() const override { return keys_.owner(); }
  bool lease_in_zset() const override { return false; }
  const std::string& channel() const override { return keys_.channel(); }
  std::string wait_channel(absl::string_view token) const override {
    return keys_.WaiterChannel(token);
  }
  bool levels_in_redis() const override { return true; }
  bool busy_leaves_trace() const override { return true; }
  bool exclusive() const override { return true; }
  // A release names the one waiter that may now proceed (the head).
  ReleaseNotifier::WakeMode wake() const override { return ReleaseNotifier::WakeMode::kAddressed; }
  std::string BusyText(absl::string_view key, const policy::Policy& p, int64_t ms_left,
                       int64_t place) const override {
    return absl::StrCat("fair lock \"", key, "\" (policy ", p.name, "): place ", place,
                        " in line; the turn may come in ", Left(ms_left));
  }
  absl::string_view acquire_name() const override { return "fair_acquire"; }

 private:
  const FairKeys keys_;
  const ExclusiveOptions exclusive_;
};

}  // namespace

LockState OwnerLockState(const OwnerState& o) {
  LockState st;
  st.owner_token = o.owner;
  st.held = !o.owner.empty();
  st.remaining = st.held ? LeaseLeft(o.pttl_ms) : absl::ZeroDuration();
  st.hold_count = o.hold_count;
  st.fencing_token = o.fence;
  st.last_fencing_token = o.last_fence;
  st.holders = st.held ? 1 : 0;
  return st;
}

absl::StatusOr<std::unique_ptr<const KindCalls>> KindCalls::For(const policy::Policy& p,
                                                                absl::string_view key,
                                                                Access access) {
  if (access != Access::kDefault && p.kind != policy::LockKind::kReadWrite) {
    return absl::InvalidArgumentError(absl::StrCat(
        access == Access::kRead ? "a read" : "a write", " lock on policy \"", p.name,
        "\", which is of kind \"", util::ToAbsl(policy::LockKindName(p.kind)),
        "\": read and write sides exist on \"read_write\" policies only"));
  }
  switch (p.kind) {
    case policy::LockKind::kMutex:
      return nullptr;
    case policy::LockKind::kSemaphore:
      return std::make_unique<const SemaphoreCalls>(p, key);
    case policy::LockKind::kReadWrite:
      return std::make_unique<const ReadWriteCalls>(p, key, access == Access::kRead);
    case policy::LockKind::kFair:
      return std::make_unique<const FairCalls>(p, key);
  }
  return absl::InternalError("unknown policy kind");
}

PrimitiveCall FinalReleaseOf(const policy::Policy& policy, absl::string_view key,
                             Access access, absl::string_view token) {
  absl::StatusOr<std::unique_ptr<const KindCalls>> calls = KindCalls::For(policy, key, access);
  if (!calls.ok() || *calls == nullptr) return PrimitiveCall{};
  return (*calls)->Release(token, 0);
}

}  // namespace lock::internal
