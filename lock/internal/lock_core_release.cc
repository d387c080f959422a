// LockCore (lock_core.h), part two: release, re-entry levels, lease changes
// and reading a lock's state. Part one (lock_core.cc) creates locks and
// acquires them.
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lock/errors.h"
#include "lock/internal/lock_core.h"
#include "lock/internal/primitive_calls.h"
#include "lock/internal/quorum.h"
#include "lock/internal/renewal.h"
#include "lock/internal/script_values.h"
#include "lock/redis/script.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace lock::internal {

absl::StatusOr<bool> LockCore::RunRelease(absl::string_view token,
                                           int count_after, int64_t keep_ms) {
  if (kind_) {
    // Never Redlock (Create refuses it) and never kept (hold_at_least is
    // for mutexes only).
    const PrimitiveCall call = kind_->Release(token, count_after);
    return CallOwned(*call.script, call.KeyViews(), call.ArgViews());
  }
  char count_buf[24], keep_buf[24];
  const absl::string_view keys[] = {keys_.owner()};
  const absl::string_view args[] = {token, util::Decimal(count_after, count_buf),
                                    keys_.channel(), util::Decimal(keep_ms, keep_buf)};
  return CallOwned(scripts::k_release, keys, args);
}

absl::StatusOr<bool> LockCore::CallOwned(const scripts::EmbeddedScript& script,
                                          absl::Span<const absl::string_view> keys,
                                          absl::Span<const absl::string_view> args) {
  if (backend_->redlock()) {
    // Done everywhere it was held; it counts as held until now only if a
    // quorum still had it — read by the same rule as a renewal's replies.
    return QuorumAnswer(CallAll(script, keys, args), backend_->quorum());
  }
  ASSIGN_OR_RETURN(redis::ReplyPtr reply, Call(script, keys, args));
  ASSIGN_OR_RETURN(int64_t r, IntReply(*reply, script.name));
  return r >= 1;
}

absl::Status LockCore::ReleaseLocked(int count_after, bool owner_stays) {
  std::shared_ptr<HoldState> h = hold_;
  if (kind_ && !kind_->levels_in_redis() && count_after > 0) {
    // A shared hold's re-entry levels are this instance's count only: Redis
    // keeps one entry per permit or read hold, so an inner level needs no
    // round trip. Renewal and the last release check the hold.
    count_.store(count_after);
    return absl::OkStatus();
  }
  int64_t keep_ms = 0;
  if (count_after == 0) {
    // Renewal stops before the release is sent, so it can never run after.
    h->released.store(true);
    keep_ms = h->KeepAfterReleaseMs();
  }
  absl::StatusOr<bool> released = RunRelease(h->token, count_after, keep_ms);
  if (!released.ok()) {
    // The hold stays in place locally, so the caller may retry the release;
    // until then it is renewed (and checked) as before — the release may
    // not have reached Redis. If it did, the next renewal finds the key
    // gone and announces the loss.
    if (count_after == 0 && owner_stays) {
      h->released.store(false);
      // A new epoch: the renewal entries dropped while it counted as
      // released must not come back alongside the one planned now.
      RenewalManager::Global().Reschedule(h, h->ChangeLease(h->lease_ms.load()),
                                                    /*sent_ns=*/0);
    } else if (count_after == 0) {
      // Nobody is left to retry: renewal stays off and the lease runs out
      // after its ttl, never kept alive by a hold without an owner.
      RenewalManager::Global().Untrack(h.get());
      counters_.active.fetch_sub(1, std::memory_order_relaxed);
      count_.store(0);
      if (TracingEnabled()) {
        DeferLocked([h, s = released.status()] { h->TraceEnd("release_failed", s); });
      }
    }
    return released.status();
  }
  if (!*released) {
    DropLostHoldLocked("release found the hold gone");
    return NotHeldError(absl::StrCat(
        "lock \"", key_, "\" was no longer held by this owner (its lease "
        "expired or another owner took it); nothing was deleted"));
  }
  count_.store(count_after);
  if (count_after == 0) {
    RenewalManager::Global().Untrack(h.get());
    counters_.active.fetch_sub(1, std::memory_order_relaxed);
    Count(counters_.released);
    const absl::Duration held = Since(h->acquired_at_ns);
    counters_.hold_time.Observe(held);
    if (auto cb = Callback()) {
      DeferLocked([cb, policy = policy_, key = key_, held] {
        cb->OnReleased(policy->name, key, held);
      });
    }
    if (TracingEnabled()) DeferLocked([h] { h->TraceEnd("released", absl::OkStatus()); });
  }
  return absl::OkStatus();
}

absl::Status LockCore::ReleaseOwnedBy(absl::string_view owner_token) {
  // The other kinds give the hold back with their cancel, which finds the
  // token on either side of a read_write lock (and, on a fair lock, tells
  // the next in line).
  absl::StatusOr<bool> released =
      kind_ ? [&]() -> absl::StatusOr<bool> {
        ASSIGN_OR_RETURN(int64_t r, RunCancel(std::string(owner_token)));
        return r == 1;
      }()
            : RunRelease(owner_token, 0, 0);
  if (!released.ok()) return Annotate(released.status(), "release");
  if (!*released) {
    return NotHeldError(absl::StrCat("lock \"", key_,
                                     "\" is not held by owner ", owner_token,
                                     "; nothing was deleted"));
  }
  return absl::OkStatus();
}

absl::Status LockCore::ReleaseLevelOwnedBy(absl::string_view owner_token) {
  if (kind_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "releasing one level of lock \"", key_, "\" (policy ", policy_->name,
        ", kind ", util::ToAbsl(policy::LockKindName(policy_->kind)),
        ") by owner token: that is the mutex's UnlockByValue; a shared hold's "
        "levels are counted by the instance holding it, not in Redis. "
        "RedisLock::ReleaseOwnedBy (lockctl release --force) gives the whole "
        "hold back"));
  }
  const absl::string_view keys[] = {keys_.owner()};
  const absl::string_view args[] = {owner_token, keys_.channel()};
  absl::StatusOr<bool> released = CallOwned(scripts::k_release_level, keys, args);
  if (!released.ok()) return Annotate(released.status(), "release");
  if (!*released) {
    return NotHeldError(absl::StrCat("lock \"", key_,
                                     "\" is not held by owner ", owner_token,
                                     "; nothing was released"));
  }
  return absl::OkStatus();
}

absl::Status LockCore::Release() {
  OpScope scope(this);
  const int count = count_.load();
  if (count == 0) {
    return NotHeldError(
        absl::StrCat("lock \"", key_, "\" is not held by this instance"));
  }
  absl::Status s = ReleaseLocked(count - 1);
  return s.ok() || IsNotHeld(s) ? s : Annotate(s, "release");
}

absl::Status LockCore::Renew(absl::Duration ttl) {
  // Redis takes whole milliseconds: under 1ms the lease would be 0 (PEXPIRE
  // 0 deletes the key) or silently rounded up.
  if (ttl < absl::Milliseconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "renew of lock \"", key_, "\": ttl must be at least 1ms (Redis keeps "
        "leases in whole milliseconds), got ", absl::FormatDuration(ttl)));
  }
  OpScope scope(this);
  if (count_.load() == 0) {
    return NotHeldError(
        absl::StrCat("lock \"", key_, "\" is not held by this instance"));
  }
  absl::Status s = SetLeaseLocked(ttl);
  return s.ok() || IsNotHeld(s) ? s : Annotate(s, "renew");
}

absl::Status LockCore::SetLeaseLocked(absl::Duration ttl) {
  // Validity is kept in the unit Redis gets (whole ms), never more.
  const int64_t ttl_ms = Millis(ttl);
  char ttl_buf[24];
  const absl::string_view keys[] = {lease_key()};
  const absl::string_view args[] = {hold_->token, util::Decimal(ttl_ms, ttl_buf)};
  // From here on this is the hold's lease: renewals already planned or in
  // flight for the old one no longer move its validity (their replies may
  // arrive after this call's), and renewal follows the new length.
  const uint64_t epoch = hold_->ChangeLease(ttl_ms);
  const int64_t sent_at = SteadyNowNs();
  absl::Status s = RunExtendScriptLocked(keys, args);
  if (IsNotHeld(s)) {
    DropLostHoldLocked("renew found the hold gone");
    return NotHeldError(absl::StrCat(
        "lock \"", key_, "\" was lost before it could be renewed (its lease "
        "expired or another owner took it)"));
  }
  const int64_t until =
      backend_->redlock()
          ? RedlockValidUntilNs(sent_at, ttl_ms * 1'000'000, backend_->drift_factor)
          : sent_at + ttl_ms * 1'000'000;
  if (s.ok()) {
    hold_->SetValidUntil(epoch, until);
  } else {
    // Maybe applied, maybe not: the lease in Redis is the old one or the
    // new one, so only the shorter of the two is sure.
    std::lock_guard<std::mutex> lock(hold_->lease_mu());
    hold_->valid_until_ns.store(std::min(hold_->valid_until_ns.load(), until));
  }
  RenewalManager::Global().Reschedule(hold_, epoch, s.ok() ? sent_at : 0);
  return s;
}

absl::Status LockCore::RunExtendScriptLocked(absl::Span<const absl::string_view> keys,
                                         absl::Span<const absl::string_view> args) {
  if (backend_->redlock()) {
    ASSIGN_OR_RETURN(bool held, CallOwned(scripts::k_extend, keys, args));
    return held ? absl::OkStatus() : NotHeldError("extend: no quorum holds it");
  }
  ASSIGN_OR_RETURN(redis::Topology::RunResult run,
                   backend_->homes[0]->Run(hold_->extend_script(), keys, args,
                                           {.timeout = policy_->script_timeout,
                                            .wait_replicas = backend_->min_replicas_ack,
                                            .wait_timeout = backend_->replica_ack_timeout}));
  ASSIGN_OR_RETURN(int64_t r, IntReply(*run.reply, "extend"));
  if (r != 1) return NotHeldError("extend: not held");
  if (run.replicas_acked < backend_->min_replicas_ack) {
    backend_->homes[0]->Invalidate(lease_key(), nullptr);  // maybe demoted
    return absl::UnavailableError(absl::StrCat(
        "lock \"", key_, "\": the extension reached only ", run.replicas_acked,
        " of the required ", backend_->min_replicas_ack, " replicas"));
  }
  return absl::OkStatus();
}

absl::Status LockCore::EnableAutoRenew() {
  // A fork() child must not renew (nor think it renews) its parent's hold.
  if (absl::Status s = backend_->homes[0]->CheckProcess(); !s.ok()) {
    return Annotate(s, "auto-renew");
  }
  OpScope scope(this);
  if (count_.load() == 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "auto-renew of lock \"", key_, "\": not held by this instance"));
  }
  if (!hold_->renewing.exchange(true)) {
    RenewalManager::Global().Renew(hold_);
  }
  return absl::OkStatus();
}

absl::StatusOr<LockState> LockCore::Inspect() {
  if (kind_) {
    const PrimitiveCall call = kind_->Inspect();
    absl::StatusOr<redis::ReplyPtr> reply = Call(*call.script, call.KeyViews(), {});
    if (!reply.ok()) return Annotate(reply.status(), "inspect");
    const std::shared_ptr<HoldState> mine = hold();
    absl::StatusOr<LockState> st =
        kind_->ParseInspect(**reply, mine ? absl::string_view(mine->token) : "", hold_count());
    return st.ok() ? st : Annotate(st.status(), "inspect");
  }
  const absl::string_view keys[] = {keys_.owner(), keys_.fence()};
  absl::StatusOr<redis::ReplyPtr> reply = Call(scripts::k_inspect, keys, {});
  if (!reply.ok()) return Annotate(reply.status(), "inspect");
  absl::StatusOr<OwnerState> owner = ParseMutexInspect(**reply);
  if (!owner.ok()) return owner.status();
  return OwnerLockState(*owner);
}

absl::StatusOr<bool> LockCore::IsLocked() {
  OpScope scope(this);
  if (count_.load() == 0) return false;
  ASSIGN_OR_RETURN(LockState st, Inspect());
  return st.owner_token == hold_->token;
}

}  // namespace lock::internal
