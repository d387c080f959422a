#include "tools/lockctl/kinds.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lock/internal/keys.h"
#include "lock/redis/script.h"

namespace lockctl {
namespace {

using lock::internal::FairKeys;
using lock::internal::Lease;
using lock::internal::OwnerState;
using lock::internal::PrimitiveCall;
using lock::internal::ReadWriteKeys;
using lock::internal::SemaphoreKeys;

// The reply to `call` from the master holding its keys; `addr` (optional)
// gets that master's address.
absl::StatusOr<lock::redis::ReplyPtr> Run(Reach& reach, const PrimitiveCall& call,
                                          std::string* addr = nullptr) {
  absl::StatusOr<Answer> a = reach.Run(0, call);
  if (!a.ok()) return a.status();
  if (addr != nullptr) *addr = std::move(a->addr);
  return std::move(a->reply);
}

std::string Left(int64_t ms) { return FormatTtl(absl::Milliseconds(ms)); }

std::string Plural(size_t n, absl::string_view one, absl::string_view many) {
  return absl::StrCat(n, " ", n == 1 ? one : many);
}

nlohmann::json LeasesJson(const std::vector<Lease>& leases) {
  nlohmann::json out = nlohmann::json::array();
  for (const Lease& l : leases) out.push_back({{"token", l.token}, {"ttl_ms", l.ms_left}});
  return out;
}

// An exclusive hold (the writer, the fair owner); null when free.
nlohmann::json OwnerJson(const OwnerState& o) {
  if (o.owner.empty()) return nullptr;
  return {{"token", o.owner},
          {"ttl_ms", o.pttl_ms},
          {"hold_count", o.hold_count},
          {"fencing_token", o.fence}};
}

// The rows `status` shows for an exclusive hold, as the mutex's.
void OwnerRows(absl::string_view title, const OwnerState& o,
               std::vector<std::vector<std::string>>* rows) {
  if (o.owner.empty()) {
    rows->push_back({"fencing token", absl::StrCat("last issued ", o.last_fence)});
    return;
  }
  rows->push_back({std::string(title), o.owner});
  rows->push_back({"  ttl left", Left(o.pttl_ms)});
  rows->push_back({"  reentry count", absl::StrCat(o.hold_count)});
  rows->push_back({"  fencing token", absl::StrCat(o.fence, " (this hold); last issued ",
                                                   o.last_fence)});
}

std::string StateName(const PrimitiveView& v) {
  switch (v.kind) {
    case policy::LockKind::kSemaphore:
      return v.sem.in_use > 0 ? "held" : "free";
    case policy::LockKind::kReadWrite:
      if (!v.rw.writer.owner.empty()) return "write-held";
      return v.rw.readers.empty() ? "free" : "read-held";
    case policy::LockKind::kFair:
      return v.fair.owner.owner.empty() ? "free" : "held";
    case policy::LockKind::kMutex:
      break;
  }
  return "?";
}

}  // namespace

std::vector<RedisKeyOf> PresenceKeys(policy::LockKind kind) {
  switch (kind) {
    case policy::LockKind::kMutex:
      return {[](absl::string_view p, absl::string_view k) {
        return std::string(lock::internal::LockKeys(p, k).owner());
      }};
    case policy::LockKind::kSemaphore:
      return {[](absl::string_view p, absl::string_view k) {
        return SemaphoreKeys(p, k).holders();
      }};
    case policy::LockKind::kReadWrite:
      return {
          [](absl::string_view p, absl::string_view k) { return ReadWriteKeys(p, k).writer(); },
          [](absl::string_view p, absl::string_view k) { return ReadWriteKeys(p, k).readers(); },
          [](absl::string_view p, absl::string_view k) {
            return ReadWriteKeys(p, k).writers_waiting();
          }};
    case policy::LockKind::kFair:
      return {[](absl::string_view p, absl::string_view k) { return FairKeys(p, k).owner(); },
              [](absl::string_view p, absl::string_view k) { return FairKeys(p, k).queue(); }};
  }
  return {};
}

absl::StatusOr<PrimitiveView> InspectPrimitive(const PolicyContext& ctx,
                                               const std::string& key) {
  if (absl::Status s = lock::internal::ValidateKey(key); !s.ok()) return s;
  Reach& reach = *ctx.reach;
  if (reach.redlock()) {
    return absl::UnimplementedError(absl::StrCat(
        "policy ", ctx.policy->name, " is a ", std::string(policy::LockKindName(ctx.policy->kind)),
        " on a Redlock target; the library serves only mutexes on Redlock targets"));
  }
  const std::string& prefix = ctx.policy->key_prefix;
  PrimitiveView v;
  v.policy = ctx.policy->name;
  v.key = key;
  // The mutex's owner hash is the bare tag {P K} (keys.h).
  v.redis_key = std::string(lock::internal::LockKeys(prefix, key).owner());
  v.kind = ctx.policy->kind;
  v.permits = ctx.policy->permits;
  switch (v.kind) {
    case policy::LockKind::kSemaphore: {
      absl::StatusOr<lock::redis::ReplyPtr> r =
          Run(reach, lock::internal::SemInspect(SemaphoreKeys(prefix, key)), &v.addr);
      if (!r.ok()) return r.status();
      absl::StatusOr<lock::internal::SemaphoreState> st = lock::internal::ParseSemInspect(**r);
      if (!st.ok()) return st.status();
      v.sem = *std::move(st);
      break;
    }
    case policy::LockKind::kReadWrite: {
      absl::StatusOr<lock::redis::ReplyPtr> r =
          Run(reach, lock::internal::RwInspect(ReadWriteKeys(prefix, key)), &v.addr);
      if (!r.ok()) return r.status();
      absl::StatusOr<lock::internal::ReadWriteState> st = lock::internal::ParseRwInspect(**r);
      if (!st.ok()) return st.status();
      v.rw = *std::move(st);
      break;
    }
    case policy::LockKind::kFair: {
      absl::StatusOr<lock::redis::ReplyPtr> r =
          Run(reach, lock::internal::FairInspect(FairKeys(prefix, key)), &v.addr);
      if (!r.ok()) return r.status();
      absl::StatusOr<lock::internal::FairState> st = lock::internal::ParseFairInspect(**r);
      if (!st.ok()) return st.status();
      v.fair = *std::move(st);
      break;
    }
    case policy::LockKind::kMutex:
      return absl::InternalError("a mutex is inspected through the library");
  }
  return v;
}

bool IsActive(const PrimitiveView& v) { return !Participants(v).empty(); }

std::string Summary(const PrimitiveView& v) {
  switch (v.kind) {
    case policy::LockKind::kSemaphore:
      return absl::StrCat(v.sem.in_use, "/", v.permits, " permits");
    case policy::LockKind::kReadWrite: {
      std::string s = !v.rw.writer.owner.empty()
                          ? absl::StrCat("writer ", v.rw.writer.owner)
                      : v.rw.readers.empty() ? "free"
                                             : Plural(v.rw.readers.size(), "reader", "readers");
      if (!v.rw.waiting_writers.empty()) {
        absl::StrAppend(&s, ", ",
                        Plural(v.rw.waiting_writers.size(), "writer", "writers"),
                        " waiting");
      }
      return s;
    }
    case policy::LockKind::kFair: {
      std::string s = v.fair.owner.owner.empty()
                          ? "free"
                          : absl::StrCat("held by ", v.fair.owner.owner);
      if (!v.fair.queue.empty()) absl::StrAppend(&s, ", ", v.fair.queue.size(), " queued");
      return s;
    }
    case policy::LockKind::kMutex:
      break;
  }
  return "";
}

std::string StatusText(const PrimitiveView& v, const std::string& where) {
  std::vector<std::vector<std::string>> rows = {
      {"lock", absl::StrCat(v.policy, " / ", v.key)},
      {"kind", std::string(policy::LockKindName(v.kind))},
      {"hash tag", absl::StrCat(v.redis_key, " on ", where)},
      {"state", StateName(v)},
  };
  switch (v.kind) {
    case policy::LockKind::kSemaphore:
      rows.push_back({"permits", absl::StrCat(v.sem.in_use, "/", v.permits, " in use")});
      for (const Lease& h : v.sem.holders) {
        rows.push_back({"holder", absl::StrCat(h.token, " (", Left(h.ms_left), " left)")});
      }
      break;
    case policy::LockKind::kReadWrite:
      rows.push_back({"preference", "writer (a waiting writer holds back new readers)"});
      OwnerRows("writer", v.rw.writer, &rows);
      for (const Lease& r : v.rw.readers) {
        rows.push_back({"reader", absl::StrCat(r.token, " (", Left(r.ms_left), " left)")});
      }
      for (const Lease& w : v.rw.waiting_writers) {
        rows.push_back(
            {"waiting writer", absl::StrCat(w.token, " (claim ", Left(w.ms_left), " left)")});
      }
      break;
    case policy::LockKind::kFair:
      OwnerRows("owner", v.fair.owner, &rows);
      for (size_t i = 0; i < v.fair.queue.size(); ++i) {
        rows.push_back({absl::StrCat("queued ", i + 1),
                        absl::StrCat(v.fair.queue[i].token, " (place ",
                                     Left(v.fair.queue[i].ms_left), " left)")});
      }
      break;
    case policy::LockKind::kMutex:
      break;
  }
  return RenderTable(rows);
}

nlohmann::json PrimitiveJson(const PrimitiveView& v) {
  nlohmann::json j = {{"policy", v.policy},
                      {"key", v.key},
                      {"kind", policy::LockKindName(v.kind)},
                      {"redis_key", v.redis_key},
                      {"state", StateName(v)},
                      {"summary", Summary(v)}};
  switch (v.kind) {
    case policy::LockKind::kSemaphore:
      j["permits"] = v.permits;
      j["in_use"] = v.sem.in_use;
      j["holders"] = LeasesJson(v.sem.holders);
      break;
    case policy::LockKind::kReadWrite:
      j["preference"] = "writer";
      j["writer"] = OwnerJson(v.rw.writer);
      j["readers"] = LeasesJson(v.rw.readers);
      j["waiting_writers"] = LeasesJson(v.rw.waiting_writers);
      j["last_fencing_token"] = v.rw.writer.last_fence;
      break;
    case policy::LockKind::kFair: {
      j["owner"] = OwnerJson(v.fair.owner);
      nlohmann::json queue = LeasesJson(v.fair.queue);
      for (size_t i = 0; i < queue.size(); ++i) queue[i]["place"] = i + 1;
      j["queue"] = std::move(queue);
      j["last_fencing_token"] = v.fair.owner.last_fence;
      break;
    }
    case policy::LockKind::kMutex:
      break;
  }
  return j;
}

std::string RoleName(Participant::Role role) {
  switch (role) {
    case Participant::kPermit: return "permit";
    case Participant::kReader: return "reader";
    case Participant::kWriter: return "writer";
    case Participant::kWaitingWriter: return "waiting writer";
    case Participant::kOwner: return "owner";
    case Participant::kWaiter: return "waiter";
  }
  return "?";
}

std::vector<Participant> Participants(const PrimitiveView& v) {
  std::vector<Participant> out;
  auto exclusive = [&out](Participant::Role role, const OwnerState& o) {
    if (o.owner.empty()) return;
    out.push_back({.role = role, .token = o.owner, .ms_left = o.pttl_ms,
                   .hold_count = o.hold_count, .fence = o.fence});
  };
  auto shared = [&out](Participant::Role role, const std::vector<Lease>& leases) {
    for (size_t i = 0; i < leases.size(); ++i) {
      out.push_back({.role = role, .token = leases[i].token, .ms_left = leases[i].ms_left,
                     .place = role == Participant::kWaiter ? static_cast<int>(i) + 1 : 0});
    }
  };
  switch (v.kind) {
    case policy::LockKind::kSemaphore:
      shared(Participant::kPermit, v.sem.holders);
      break;
    case policy::LockKind::kReadWrite:
      exclusive(Participant::kWriter, v.rw.writer);
      shared(Participant::kReader, v.rw.readers);
      shared(Participant::kWaitingWriter, v.rw.waiting_writers);
      break;
    case policy::LockKind::kFair:
      exclusive(Participant::kOwner, v.fair.owner);
      shared(Participant::kWaiter, v.fair.queue);
      break;
    case policy::LockKind::kMutex:
      break;
  }
  return out;
}

std::string Describe(const Participant& p) {
  switch (p.role) {
    case Participant::kPermit:
      return absl::StrCat("permit of ", p.token, " (", Left(p.ms_left), " left)");
    case Participant::kReader:
      return absl::StrCat("reader ", p.token, " (", Left(p.ms_left), " left)");
    case Participant::kWriter:
    case Participant::kOwner:
      return absl::StrCat(RoleName(p.role), " ", p.token, " (fencing token ", p.fence,
                          ", reentry count ", p.hold_count, ", ", Left(p.ms_left), " left)");
    case Participant::kWaitingWriter:
      return absl::StrCat("waiting writer ", p.token, " (claim ", Left(p.ms_left), " left)");
    case Participant::kWaiter:
      return absl::StrCat("waiter ", p.token, " (place ", p.place, " in the queue, ",
                          Left(p.ms_left), " left)");
  }
  return p.token;
}

nlohmann::json ParticipantJson(const Participant& p) {
  nlohmann::json j = {{"token", p.token}, {"role", RoleName(p.role)}, {"ttl_ms", p.ms_left}};
  if (p.role == Participant::kWriter || p.role == Participant::kOwner) {
    j["hold_count"] = p.hold_count;
    j["fencing_token"] = p.fence;
  }
  if (p.role == Participant::kWaiter) j["place"] = p.place;
  return j;
}

absl::StatusOr<bool> ReleaseParticipant(const PolicyContext& ctx,
                                        const std::string& key,
                                        const Participant& p) {
  const std::string& prefix = ctx.policy->key_prefix;
  // The cancel scripts leave a marker refusing a late acquire of the token,
  // for as long as the engine's own cancel does (one ttl).
  const int64_t marker_ms = std::max<int64_t>(1, absl::ToInt64Milliseconds(ctx.policy->ttl));
  PrimitiveCall call;
  switch (p.role) {
    case Participant::kPermit:
      call = lock::internal::SemRelease(SemaphoreKeys(prefix, key), p.token);
      break;
    case Participant::kReader:
    case Participant::kWriter:
    case Participant::kWaitingWriter:
      // One script for either side and a claim: tokens are unique per
      // acquisition (rw_cancel.lua).
      call = lock::internal::RwCancel(ReadWriteKeys(prefix, key), p.token, marker_ms);
      break;
    case Participant::kOwner:
      // Every level at once; the head of the queue is told, not handed the
      // lock: it takes it with its own call, so a dead head gets nothing.
      call = lock::internal::FairRelease(FairKeys(prefix, key), p.token,
                                         /*hold_count_after=*/0);
      break;
    case Participant::kWaiter:
      call = lock::internal::FairCancel(FairKeys(prefix, key), p.token, marker_ms);
      break;
  }
  absl::StatusOr<lock::redis::ReplyPtr> r = Run(*ctx.reach, call);
  if (!r.ok()) return r.status();
  absl::StatusOr<int64_t> n = lock::internal::ParseIntegerReply(**r, call.script->name);
  if (!n.ok()) return n.status();
  // A place is left either way (0: the marker was set); a place whose holder
  // got the lock meanwhile was released with it (1).
  return !p.holds() || *n >= 1;
}

}  // namespace lockctl
