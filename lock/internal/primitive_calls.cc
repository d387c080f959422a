#include "lock/internal/primitive_calls.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace lock::internal {
namespace {

PrimitiveCall Make(const scripts::EmbeddedScript& script, std::vector<std::string> keys,
                   std::vector<std::string> args) {
  return PrimitiveCall{&script, std::move(keys), std::move(args)};
}

std::string Ms(int64_t ms) { return absl::StrCat(ms); }

std::vector<std::string> Fencing(const ExclusiveOptions& e) {
  return {e.fencing ? "1" : "0", Ms(e.fence_retention_ms)};
}

std::vector<std::string> Cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

absl::Status Shape(absl::string_view what, absl::string_view want) {
  return absl::InternalError(absl::StrCat(what, ": unexpected reply shape (want ", want, ")"));
}

bool IsInt(const redisReply* r) { return r != nullptr && r->type == REDIS_REPLY_INTEGER; }
bool IsArray(const redisReply* r, size_t n) {
  return r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == n;
}
std::string Str(const redisReply& r) { return std::string(r.str, r.len); }

// {token, ms, token, ms, ...}
absl::StatusOr<std::vector<Lease>> Leases(const redisReply* r, absl::string_view what) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) {
    return Shape(what, "a list of token, ms pairs");
  }
  std::vector<Lease> out;
  for (size_t i = 0; i < r->elements; i += 2) {
    if (r->element[i]->type != REDIS_REPLY_STRING || !IsInt(r->element[i + 1])) {
      return Shape(what, "a list of token, ms pairs");
    }
    out.push_back({Str(*r->element[i]), r->element[i + 1]->integer});
  }
  return out;
}

// The first five elements: owner, pttl, count, fence, last fence.
absl::StatusOr<OwnerState> Owner(const redisReply& r, absl::string_view what) {
  if (r.element[0]->type != REDIS_REPLY_STRING) return Shape(what, "an owner first");
  for (size_t i = 1; i < 5; ++i) {
    if (!IsInt(r.element[i])) return Shape(what, "owner, then 4 integers");
  }
  return OwnerState{Str(*r.element[0]), r.element[1]->integer, r.element[2]->integer,
                    r.element[3]->integer, r.element[4]->integer};
}

}  // namespace

std::vector<absl::string_view> PrimitiveCall::KeyViews() const {
  return std::vector<absl::string_view>(keys.begin(), keys.end());
}
std::vector<absl::string_view> PrimitiveCall::ArgViews() const {
  return std::vector<absl::string_view>(args.begin(), args.end());
}

// --- mutex ---

PrimitiveCall MutexInspect(const LockKeys& keys) {
  return Make(scripts::k_inspect, {std::string(keys.owner()), std::string(keys.fence())}, {});
}
PrimitiveCall MutexRelease(const LockKeys& keys, absl::string_view token) {
  return Make(scripts::k_release, {std::string(keys.owner())},
              {std::string(token), "0", std::string(keys.channel()), "0"});
}

// --- semaphore ---

PrimitiveCall SemAcquire(const SemaphoreKeys& keys, absl::string_view token,
                         int64_t ttl_ms, int hold_count, int permits) {
  return Make(scripts::k_sem_acquire, {keys.holders(), keys.CancelMarker(token)},
              {std::string(token), Ms(ttl_ms), absl::StrCat(hold_count),
               absl::StrCat(permits)});
}
PrimitiveCall SemRelease(const SemaphoreKeys& keys, absl::string_view token) {
  return Make(scripts::k_sem_release, {keys.holders()}, {std::string(token), keys.channel()});
}
PrimitiveCall SemExtend(const SemaphoreKeys& keys, absl::string_view token,
                        int64_t lease_ms, bool renew) {
  std::vector<std::string> args = {std::string(token), Ms(lease_ms)};
  if (renew) args.push_back("renew");
  return Make(scripts::k_lease_extend, {keys.holders()}, std::move(args));
}
PrimitiveCall SemCancel(const SemaphoreKeys& keys, absl::string_view token,
                        int64_t marker_ms) {
  return Make(scripts::k_sem_cancel, {keys.holders(), keys.CancelMarker(token)},
              {std::string(token), Ms(marker_ms), keys.channel()});
}
PrimitiveCall SemInspect(const SemaphoreKeys& keys) {
  return Make(scripts::k_sem_inspect, {keys.holders()}, {});
}

// --- read_write ---

PrimitiveCall RwReadAcquire(const ReadWriteKeys& keys, absl::string_view token,
                            int64_t ttl_ms, int hold_count) {
  return Make(scripts::k_rw_read_acquire,
              {keys.writer(), keys.readers(), keys.writers_waiting(), keys.CancelMarker(token)},
              {std::string(token), Ms(ttl_ms), absl::StrCat(hold_count)});
}
PrimitiveCall RwWriteAcquire(const ReadWriteKeys& keys, absl::string_view token,
                             int64_t ttl_ms, int hold_count, int64_t claim_ms,
                             const ExclusiveOptions& exclusive) {
  return Make(scripts::k_rw_write_acquire,
              {keys.writer(), keys.readers(), keys.writers_waiting(), keys.fence(),
               keys.CancelMarker(token)},
              Cat(Cat({std::string(token), Ms(ttl_ms), absl::StrCat(hold_count)},
                      Fencing(exclusive)),
                  {Ms(claim_ms)}));
}
PrimitiveCall RwReadRelease(const ReadWriteKeys& keys, absl::string_view token) {
  return Make(scripts::k_rw_read_release, {keys.readers()},
              {std::string(token), keys.channel()});
}
PrimitiveCall RwWriteRelease(const ReadWriteKeys& keys, absl::string_view token,
                             int hold_count_after) {
  return Make(scripts::k_release, {keys.writer()},
              {std::string(token), absl::StrCat(hold_count_after), keys.channel(), "0"});
}
PrimitiveCall RwReadExtend(const ReadWriteKeys& keys, absl::string_view token,
                           int64_t lease_ms, bool renew) {
  std::vector<std::string> args = {std::string(token), Ms(lease_ms)};
  if (renew) args.push_back("renew");
  return Make(scripts::k_lease_extend, {keys.readers()}, std::move(args));
}
PrimitiveCall RwWriteExtend(const ReadWriteKeys& keys, absl::string_view token,
                            int64_t lease_ms, bool renew) {
  std::vector<std::string> args = {std::string(token), Ms(lease_ms)};
  if (renew) args.push_back("renew");
  return Make(scripts::k_extend, {keys.writer()}, std::move(args));
}
PrimitiveCall RwClaimExtend(const ReadWriteKeys& keys, absl::string_view token,
                            int64_t claim_ms) {
  return Make(scripts::k_lease_extend, {keys.writers_waiting()},
              {std::string(token), Ms(claim_ms), "renew"});
}
PrimitiveCall RwCancel(const ReadWriteKeys& keys, absl::string_view token,
                       int64_t marker_ms) {
  return Make(scripts::k_rw_cancel,
              {keys.writer(), keys.readers(), keys.writers_waiting(), keys.CancelMarker(token)},
              {std::string(token), Ms(marker_ms), keys.channel()});
}
PrimitiveCall RwInspect(const ReadWriteKeys& keys) {
  return Make(scripts::k_rw_inspect,
              {keys.writer(), keys.readers(), keys.writers_waiting(), keys.fence()}, {});
}

// --- fair ---

PrimitiveCall FairAcquire(const FairKeys& keys, absl::string_view token,
                          int64_t ttl_ms, int hold_count, int64_t queue_lease_ms,
                          const ExclusiveOptions& exclusive) {
  return Make(scripts::k_fair_acquire,
              {keys.owner(), keys.queue(), keys.timeouts(), keys.fence(),
               keys.CancelMarker(token)},
              Cat(Cat({std::string(token), Ms(ttl_ms), absl::StrCat(hold_count)},
                      Fencing(exclusive)),
                  {Ms(queue_lease_ms)}));
}
PrimitiveCall FairRelease(const FairKeys& keys, absl::string_view token,
                          int hold_count_after, bool handoff,
                          const ExclusiveOptions& exclusive) {
  std::vector<std::string> args = {std::string(token), absl::StrCat(hold_count_after),
                                   keys.channel()};
  if (handoff) args = Cat(Cat(std::move(args), {"handoff"}), Fencing(exclusive));
  return Make(scripts::k_fair_release,
              {keys.owner(), keys.queue(), keys.timeouts(), keys.fence()}, std::move(args));
}
PrimitiveCall FairExtend(const FairKeys& keys, absl::string_view token, int64_t lease_ms,
                         bool renew) {
  std::vector<std::string> args = {std::string(token), Ms(lease_ms)};
  if (renew) args.push_back("renew");
  return Make(scripts::k_extend, {keys.owner()}, std::move(args));
}
PrimitiveCall FairPlaceExtend(const FairKeys& keys, absl::string_view token,
                              int64_t queue_lease_ms) {
  return Make(scripts::k_lease_extend, {keys.timeouts(), keys.queue()},
              {std::string(token), Ms(queue_lease_ms), "renew"});
}
PrimitiveCall FairCancel(const FairKeys& keys, absl::string_view token, int64_t marker_ms) {
  return Make(scripts::k_fair_cancel,
              {keys.owner(), keys.queue(), keys.timeouts(), keys.CancelMarker(token)},
              {std::string(token), Ms(marker_ms), keys.channel()});
}
PrimitiveCall FairInspect(const FairKeys& keys) {
  return Make(scripts::k_fair_inspect,
              {keys.owner(), keys.queue(), keys.timeouts(), keys.fence()}, {});
}

// --- replies ---

absl::StatusOr<AcquireReply> ParseAcquireReply(const redisReply& r, absl::string_view what) {
  if (!IsArray(&r, 3) || !IsInt(r.element[0]) || !IsInt(r.element[1]) ||
      !IsInt(r.element[2])) {
    return Shape(what, "3 integers");
  }
  const int64_t status = r.element[0]->integer;
  if (status < AcquireReply::kGone || status > AcquireReply::kHeld) {
    return absl::InternalError(absl::StrCat(what, ": unknown status ", status));
  }
  return AcquireReply{static_cast<AcquireReply::Status>(status), r.element[1]->integer,
                      r.element[2]->integer};
}

absl::StatusOr<int64_t> ParseIntegerReply(const redisReply& r, absl::string_view what) {
  if (!IsInt(&r)) return Shape(what, "an integer");
  return r.integer;
}

absl::StatusOr<OwnerState> ParseMutexInspect(const redisReply& r) {
  if (!IsArray(&r, 5)) return Shape("inspect", "5 elements");
  return Owner(r, "inspect");
}

absl::StatusOr<SemaphoreState> ParseSemInspect(const redisReply& r) {
  if (!IsArray(&r, 2) || !IsInt(r.element[0])) return Shape("sem_inspect", "{count, list}");
  absl::StatusOr<std::vector<Lease>> holders = Leases(r.element[1], "sem_inspect");
  if (!holders.ok()) return holders.status();
  return SemaphoreState{r.element[0]->integer, *std::move(holders)};
}

absl::StatusOr<ReadWriteState> ParseRwInspect(const redisReply& r) {
  if (!IsArray(&r, 7)) return Shape("rw_inspect", "7 elements");
  absl::StatusOr<OwnerState> writer = Owner(r, "rw_inspect");
  if (!writer.ok()) return writer.status();
  absl::StatusOr<std::vector<Lease>> readers = Leases(r.element[5], "rw_inspect");
  if (!readers.ok()) return readers.status();
  absl::StatusOr<std::vector<Lease>> waiting = Leases(r.element[6], "rw_inspect");
  if (!waiting.ok()) return waiting.status();
  return ReadWriteState{*std::move(writer), *std::move(readers), *std::move(waiting)};
}

absl::StatusOr<FairState> ParseFairInspect(const redisReply& r) {
  if (!IsArray(&r, 6)) return Shape("fair_inspect", "6 elements");
  absl::StatusOr<OwnerState> owner = Owner(r, "fair_inspect");
  if (!owner.ok()) return owner.status();
  absl::StatusOr<std::vector<Lease>> queue = Leases(r.element[5], "fair_inspect");
  if (!queue.ok()) return queue.status();
  return FairState{*std::move(owner), *std::move(queue)};
}

absl::StatusOr<FairReleaseMessage> ParseFairReleaseMessage(absl::string_view message) {
  const size_t space = message.find(' ');
  if (space == absl::string_view::npos) return FairReleaseMessage{std::string(message)};
  FairReleaseMessage out{std::string(message.substr(0, space)), true, 0};
  if (out.next.empty() || !absl::SimpleAtoi(message.substr(space + 1), &out.fence)) {
    return absl::InternalError(absl::StrCat("fair release message \"", message,
                                            "\": want \"<token>\" or \"<token> <fence>\""));
  }
  return out;
}

}  // namespace lock::internal
