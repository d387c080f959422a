#include "lock/lock.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <numeric>
#include <span>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "lock/compat.h"
#include "lock/internal/async.h"
#include "lock/internal/counters.h"
#include "lock/internal/fork.h"
#include "lock/internal/held.h"
#include "lock/internal/hold_state.h"
#include "lock/internal/keys.h"
#include "lock/internal/lock_core.h"
#include "lock/internal/notifier.h"
#include "lock/internal/observe.h"
#include "lock/internal/process.h"
#include "lock/internal/renewal.h"
#include "lock/internal/reworded.h"
#include "lock/internal/target.h"
#include "lock/redis/script.h"
#include "lock/scripts/embedded.h"
#include "policy/validate.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace lock {

using internal::CheckNotHeldHere;
using internal::HeldHereScope;
using internal::ReleaseAll;
using internal::RunHeld;
using util::ToAbsl;

// ---- Locker ----------------------------------------------------------------

namespace {
absl::StatusOr<policy::Policy> ResolveOptions(const LockOptions& options,
                                              const policy::Snapshot& snapshot);

absl::StatusOr<std::shared_ptr<const policy::Policy>> FindPolicy(
    const std::shared_ptr<const policy::Snapshot>& snapshot,
    std::string_view name) {
  const policy::Policy* p = snapshot->FindPolicy(name);
  if (p == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("unknown lock policy \"", ToAbsl(name), "\"; known: ",
                     absl::StrJoin(snapshot->PolicyNames(), ", ")));
  }
  // Shares the snapshot's lifetime: a reload never changes a policy that a
  // lock already uses.
  return std::shared_ptr<const policy::Policy>(snapshot, p);
}
}  // namespace

namespace {
uint64_t NextGroup() {
  static std::atomic<uint64_t> next{0};
  return next.fetch_add(1) + 1;
}
}  // namespace

struct Locker::Impl {
  explicit Impl(std::shared_ptr<policy::Registry> r) : registry(std::move(r)) {}

  absl::StatusOr<std::shared_ptr<const internal::Backend>> BackendFor(
      const policy::Snapshot& snapshot, const policy::Policy& policy);
  absl::StatusOr<std::unique_ptr<RedisLock>> MakeLock(
      std::shared_ptr<const policy::Policy> policy,
      const policy::Snapshot& snapshot, std::string_view key,
      internal::Access access = internal::Access::kDefault);
  // A lock under the named policy (NewLock, NewReadLock, NewWriteLock).
  absl::StatusOr<std::unique_ptr<RedisLock>> MakeNamedLock(std::string_view policy,
                                                           std::string_view key,
                                                           internal::Access access);
  // kFailedPrecondition in a fork() child of the process that built it.
  absl::Status CheckProcess() const;
  // Acquire + run `fn` with a Held, refusing a key this thread holds in an
  // enclosing With of the same Locker.
  absl::Status AcquireAndRun(RedisLock& lock, const CallOptions& call,
                             const std::function<absl::Status(Held&)>& fn);

  const std::shared_ptr<policy::Registry> registry;
  const pid_t built_by = internal::ProcessId();
  // Marks the holds of this Locker's locks (HoldState::group), so that
  // lock::Shutdown releases the process-wide Locker's and no other's.
  const uint64_t group = NextGroup();
  struct TargetBackend {
    policy::RedisTarget target;
    std::shared_ptr<const internal::Backend> backend;
  };
  std::mutex backends_mu;
  absl::flat_hash_map<std::string, TargetBackend> backends;  // by target name
};

Locker::Locker(std::shared_ptr<policy::Registry> registry)
    : impl_(std::make_unique<Impl>(std::move(registry))) {}

Locker::~Locker() {
  // Its pending asynchronous acquires would outlive it; they end now.
  internal::AbortAsyncAcquires(
      impl_->group, CancelledError("the lock::Locker that started this acquire was destroyed"));
}

const std::shared_ptr<policy::Registry>& Locker::registry() const {
  return impl_->registry;
}

absl::StatusOr<std::unique_ptr<Locker>> Locker::Create(
    std::shared_ptr<policy::Registry> registry) {
  internal::InstallForkHandlers();
  return std::unique_ptr<Locker>(new Locker(std::move(registry)));
}

absl::StatusOr<std::shared_ptr<const internal::Backend>> Locker::Impl::BackendFor(
    const policy::Snapshot& snapshot, const policy::Policy& policy) {
  const policy::RedisTarget* found = snapshot.FindTarget(policy.redis);
  if (found == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "policy \"", policy.name, "\" names redis target \"", policy.redis,
        "\", which is not configured; known: ",
        absl::StrJoin(snapshot.TargetNames(), ", ")));
  }
  const policy::RedisTarget& target = *found;
  std::lock_guard<std::mutex> lock(backends_mu);
  auto it = backends.find(target.name);
  if (it != backends.end() && it->second.target == target) return it->second.backend;
  // New or changed by a reload: locks still using the old backend keep it.
  auto backend = std::make_shared<internal::Backend>();
  ASSIGN_OR_RETURN(backend->homes, internal::HomesFor(target));
  backend->min_replicas_ack = target.min_replicas_ack;
  backend->replica_ack_timeout = target.replica_ack_timeout;
  backend->drift_factor = target.drift_factor;
  backend->group = group;
  // Releases are published on every master; waiters listen on the first
  // home only. When it is down they fall back to backoff polling
  // (docs/DESIGN.md section 9, Redlock).
  std::shared_ptr<redis::Topology> first = backend->homes.front();
  const absl::Duration timeout = target.connect_timeout;
  backend->notifier = std::make_shared<internal::ReleaseNotifier>(
      [first, timeout] { return first->SubscriberOptions(timeout); });
  backends[target.name] = TargetBackend{target, backend};
  return std::shared_ptr<const internal::Backend>(backend);
}

absl::StatusOr<std::unique_ptr<RedisLock>> Locker::Impl::MakeLock(
    std::shared_ptr<const policy::Policy> policy,
    const policy::Snapshot& snapshot, std::string_view key, internal::Access access) {
  ASSIGN_OR_RETURN(std::shared_ptr<const internal::Backend> backend,
                   BackendFor(snapshot, *policy));
  return internal::NewRedisLock(std::move(backend), std::move(policy), key, access);
}

absl::StatusOr<std::unique_ptr<RedisLock>> Locker::Impl::MakeNamedLock(
    std::string_view policy, std::string_view key, internal::Access access) {
  RETURN_IF_ERROR(CheckProcess());
  std::shared_ptr<const policy::Snapshot> snapshot = registry->snapshot();
  ASSIGN_OR_RETURN(auto p, FindPolicy(snapshot, policy));
  return MakeLock(std::move(p), *snapshot, key, access);
}

absl::Status Locker::Impl::CheckProcess() const {
  if (!internal::ForkedSince(built_by)) return absl::OkStatus();
  return internal::ForkedError("this lock::Locker", built_by);
}

absl::StatusOr<std::unique_ptr<RedisLock>> Locker::NewLock(
    std::string_view policy, std::string_view key) {
  return impl_->MakeNamedLock(policy, key, internal::Access::kDefault);
}

absl::StatusOr<std::unique_ptr<RedisLock>> Locker::NewReadLock(std::string_view policy,
                                                               std::string_view key) {
  return impl_->MakeNamedLock(policy, key, internal::Access::kRead);
}

absl::StatusOr<std::unique_ptr<RedisLock>> Locker::NewWriteLock(std::string_view policy,
                                                                std::string_view key) {
  return impl_->MakeNamedLock(policy, key, internal::Access::kWrite);
}

namespace {
absl::StatusOr<policy::Policy> ResolveOptions(const LockOptions& options,
                                              const policy::Snapshot& snapshot) {
  // Options given in code pass the very checks a policy file gets, named
  // "LockOptions: /policies/options/<field>". A script_timeout left at its
  // default counts as not set and is fitted to a short lease
  // (lock::Lock(key, absl::Seconds(1), fn) works, as in Go).
  ASSIGN_OR_RETURN(policy::Policy resolved,
                   policy::ResolvePolicy(options, snapshot, "LockOptions"));
  if (resolved.name.empty()) resolved.name = "(options)";
  return resolved;
}
}  // namespace

absl::StatusOr<std::unique_ptr<RedisLock>> Locker::NewLock(
    std::string_view key, const LockOptions& options) {
  RETURN_IF_ERROR(impl_->CheckProcess());
  std::shared_ptr<const policy::Snapshot> snapshot = impl_->registry->snapshot();
  ASSIGN_OR_RETURN(policy::Policy resolved, ResolveOptions(options, *snapshot));
  return impl_->MakeLock(std::make_shared<policy::Policy>(std::move(resolved)),
                  *snapshot, key);
}

absl::Status Locker::Impl::AcquireAndRun(RedisLock& lock, const CallOptions& call,
                                         const std::function<absl::Status(Held&)>& fn) {
  RETURN_IF_ERROR(CheckNotHeldHere(this, lock.policy(), lock.key()));
  RETURN_IF_ERROR(lock.Acquire(call));
  RedisLock* const taken[] = {&lock};
  HeldHereScope scope(this, taken);
  Held held = internal::HeldAccess::Make(&lock, internal::LockAccess::Core(lock).hold());
  return RunHeld(taken, held, fn);
}

namespace {
// The fn() forms of every With: the critical section ignores its Held.
std::function<absl::Status(Held&)> IgnoringHeld(const std::function<absl::Status()>& fn) {
  return [&fn](Held&) { return fn(); };
}
}  // namespace

absl::Status Locker::With(std::string_view policy, std::string_view key,
                          const std::function<absl::Status(Held&)>& fn) {
  return With(policy, key, CallOptions{}, fn);
}

absl::Status Locker::With(std::string_view policy, std::string_view key,
                          const std::function<absl::Status()>& fn) {
  return With(policy, key, CallOptions{}, IgnoringHeld(fn));
}

absl::Status Locker::With(std::string_view policy, std::string_view key,
                          const CallOptions& call,
                          const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::unique_ptr<RedisLock> lock, NewLock(policy, key));
  return impl_->AcquireAndRun(*lock, call, fn);
}

absl::Status Locker::With(std::string_view policy, std::string_view key,
                          const CallOptions& call, const std::function<absl::Status()>& fn) {
  return With(policy, key, call, IgnoringHeld(fn));
}

absl::Status Locker::WithRead(std::string_view policy, std::string_view key,
                              const std::function<absl::Status(Held&)>& fn) {
  return WithRead(policy, key, CallOptions{}, fn);
}

absl::Status Locker::WithRead(std::string_view policy, std::string_view key,
                              const std::function<absl::Status()>& fn) {
  return WithRead(policy, key, CallOptions{}, IgnoringHeld(fn));
}

absl::Status Locker::WithRead(std::string_view policy, std::string_view key,
                              const CallOptions& call,
                              const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::unique_ptr<RedisLock> lock, NewReadLock(policy, key));
  return impl_->AcquireAndRun(*lock, call, fn);
}

absl::Status Locker::WithRead(std::string_view policy, std::string_view key,
                              const CallOptions& call, const std::function<absl::Status()>& fn) {
  return WithRead(policy, key, call, IgnoringHeld(fn));
}

absl::Status Locker::WithWrite(std::string_view policy, std::string_view key,
                               const std::function<absl::Status(Held&)>& fn) {
  return WithWrite(policy, key, CallOptions{}, fn);
}

absl::Status Locker::WithWrite(std::string_view policy, std::string_view key,
                               const std::function<absl::Status()>& fn) {
  return WithWrite(policy, key, CallOptions{}, IgnoringHeld(fn));
}

absl::Status Locker::WithWrite(std::string_view policy, std::string_view key,
                               const CallOptions& call,
                               const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::unique_ptr<RedisLock> lock, NewWriteLock(policy, key));
  return impl_->AcquireAndRun(*lock, call, fn);
}

absl::Status Locker::WithWrite(std::string_view policy, std::string_view key,
                               const CallOptions& call,
                               const std::function<absl::Status()>& fn) {
  return WithWrite(policy, key, call, IgnoringHeld(fn));
}

absl::Status Locker::WithOptions(std::string_view key,
                                 const LockOptions& options,
                                 const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::unique_ptr<RedisLock> lock, NewLock(key, options));
  return impl_->AcquireAndRun(*lock, CallOptions{}, fn);
}

absl::Status Locker::WithAll(std::string_view policy, const std::vector<std::string>& keys,
                             const std::function<absl::Status(Held&)>& fn) {
  return WithAll(policy, keys, CallOptions{}, fn);
}

absl::Status Locker::WithAll(std::string_view policy, const std::vector<std::string>& keys,
                             const CallOptions& call,
                             const std::function<absl::Status()>& fn) {
  return WithAll(policy, keys, call, IgnoringHeld(fn));
}

absl::Status Locker::WithAll(std::string_view policy, const std::vector<std::string>& keys,
                             const CallOptions& call,
                             const std::function<absl::Status(Held&)>& fn) {
  RETURN_IF_ERROR(impl_->CheckProcess());
  // One snapshot for the whole set: a reload in the middle cannot give its
  // keys different prefixes or targets.
  std::shared_ptr<const policy::Snapshot> snapshot = impl_->registry->snapshot();
  ASSIGN_OR_RETURN(std::shared_ptr<const policy::Policy> p, FindPolicy(snapshot, policy));
  const std::string context = absl::StrCat("WithAll on policy \"", p->name, "\"");
  if (p->kind != policy::LockKind::kMutex) {
    return absl::InvalidArgumentError(absl::StrCat(
        context, ": its kind is \"", ToAbsl(policy::LockKindName(p->kind)),
        "\"; WithAll takes \"mutex\" policies only, since it holds each key exclusively"));
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": the set of keys is empty"));
  }
  // Every key is checked before any is taken: a bad one leaves nothing held.
  for (size_t i = 0; i < keys.size(); ++i) {
    absl::Status valid = internal::ValidateKey(keys[i]);
    if (!valid.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(context, ": key #", i, " \"",
                                                     absl::CHexEscape(keys[i]),
                                                     "\": ", valid.message()));
    }
    RETURN_IF_ERROR(CheckNotHeldHere(impl_.get(), *p, keys[i]));
  }

  // Keys are taken in the order of their Redis keys, never the caller's:
  // with one global order, whoever holds a key only ever waits for keys
  // after it, so no two callers (threads or processes, taking {a,b} and
  // {b,a}) can each hold what the other waits for. All keys share one
  // key_prefix, so ordering by key orders by key_prefix + key. A stable
  // sort keeps the first of duplicates, which are then dropped.
  std::vector<size_t> order(keys.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&keys](size_t a, size_t b) { return keys[a] < keys[b]; });
  order.erase(std::unique(order.begin(), order.end(),
                          [&keys](size_t a, size_t b) { return keys[a] == keys[b]; }),
              order.end());

  // wait.timeout bounds the whole set, not each key: every key after the
  // first runs on a copy of the policy whose timeout is what is left (0 =
  // one attempt), else n keys could wait n times the timeout.
  const bool bounded =
      p->on_busy == policy::OnBusy::kWait && p->wait.timeout != absl::InfiniteDuration();
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline =
      bounded ? Clock::now() + absl::ToChronoNanoseconds(p->wait.timeout) : Clock::time_point();
  std::vector<std::unique_ptr<RedisLock>> locks;
  std::vector<RedisLock*> taken;
  locks.reserve(order.size());
  taken.reserve(order.size());
  for (size_t i : order) {
    std::shared_ptr<const policy::Policy> key_policy = p;
    if (bounded && !taken.empty()) {
      auto left = std::make_shared<policy::Policy>(*p);
      left->wait.timeout = std::max(absl::ZeroDuration(), absl::FromChrono(deadline - Clock::now()));
      key_policy = std::move(left);
    }
    absl::StatusOr<std::unique_ptr<RedisLock>> lock =
        impl_->MakeLock(std::move(key_policy), *snapshot, keys[i]);
    absl::Status acquired = lock.ok() ? (*lock)->Acquire(call) : lock.status();
    if (!acquired.ok()) {
      const absl::Status released = ReleaseAll(taken);
      return internal::Reworded(acquired, absl::StrCat(
          context, ": key #", i, " \"", keys[i], "\" (", taken.size() + 1, " of ",
          order.size(), " in lock order): ", acquired.message(),
          bounded && IsWaitTimedOut(acquired)
              ? absl::StrCat("; wait.timeout ", absl::FormatDuration(p->wait.timeout),
                             " bounds the whole set")
              : "",
          taken.empty() ? ""
          : released.ok()
              ? absl::StrCat("; the ", taken.size(), " keys taken before it were released")
              : absl::StrCat("; releasing the ", taken.size(),
                             " keys taken before it failed (", released.message(),
                             "): they expire after their ttl")));
    }
    taken.push_back(lock->get());
    locks.push_back(*std::move(lock));
  }

  HeldHereScope scope(impl_.get(), taken);
  // Held lists the keys in the caller's order: `order` sorted back.
  std::vector<size_t> by_caller(order.size());
  std::iota(by_caller.begin(), by_caller.end(), size_t{0});
  std::sort(by_caller.begin(), by_caller.end(),
            [&order](size_t a, size_t b) { return order[a] < order[b]; });
  std::vector<internal::HeldPart> parts;
  parts.reserve(order.size());
  for (size_t j : by_caller) {
    parts.push_back({taken[j], internal::LockAccess::Core(*taken[j]).hold()});
  }
  Held held = internal::HeldAccess::Make(std::move(parts));
  return RunHeld(taken, held, fn);
}

absl::Status Locker::WithAll(std::string_view policy, const std::vector<std::string>& keys,
                             const std::function<absl::Status()>& fn) {
  return WithAll(policy, keys, CallOptions{}, IgnoringHeld(fn));
}

void Locker::AcquireAsync(std::string_view policy, std::string_view key,
                          const CallOptions& call,
                          std::function<void(absl::StatusOr<Lease>)> done) {
  absl::StatusOr<std::unique_ptr<RedisLock>> lock = NewLock(policy, key);
  if (!lock.ok()) {
    return internal::Complete(call.executor, std::move(done),
                              absl::StatusOr<Lease>(lock.status()));
  }
  internal::StartAsyncAcquire(*std::move(lock), impl_->group, call, std::move(done));
}

void Locker::WithAsync(std::string_view policy, std::string_view key, const CallOptions& call,
                       std::function<absl::Status(Held&)> fn,
                       std::function<void(absl::Status)> done) {
  AcquireAsync(policy, key, call,
               [fn = std::move(fn), done = std::move(done)](absl::StatusOr<Lease> lease) {
                 // Runs where `done` is to run (the library's thread or the
                 // caller's executor), and so does fn.
                 absl::Status s = lease.ok() ? internal::RunLeased(*lease, fn) : lease.status();
                 if (done) done(std::move(s));
               });
}

absl::Status Locker::UnlockByValue(std::string_view policy,
                                   std::string_view key,
                                   std::string_view owner_token) {
  ASSIGN_OR_RETURN(std::unique_ptr<RedisLock> lock, NewLock(policy, key));
  return lock->ReleaseLevelOwnedBy(owner_token);
}

absl::Status Locker::FencedSet(std::string_view policy,
                               std::string_view resource_key,
                               std::string_view value, int64_t fencing_token) {
  RETURN_IF_ERROR(impl_->CheckProcess());
  // Checked before any Redis call: a token below 1 cannot fence anything.
  // 0 is what Held::fencing_token() returns under a "fencing": false policy
  // (or in Redlock mode); accepting it would let such a holder's write pass
  // a fresh resource, and a stale one's always win against other 0 writers.
  if (fencing_token == 0) {
    // A semaphore's holds never get a token: say so rather than blame the
    // fencing setting. (Only the local snapshot is read: still no Redis.)
    const std::shared_ptr<const policy::Policy> named = impl_->registry->FindPolicy(policy);
    if (named != nullptr && named->kind == policy::LockKind::kSemaphore) {
      return absl::FailedPreconditionError(absl::StrCat(
          "FencedSet on policy \"", ToAbsl(policy), "\" to \"", ToAbsl(resource_key),
          "\": fencing token 0 is what a semaphore hold carries: its permits are "
          "shared by up to ", named->permits, " holders at once, so no hold is "
          "exclusive and none gets a fencing token; a fenced write needs an "
          "exclusive lock (a \"mutex\" policy with fencing on) and its "
          "Held::fencing_token()"));
    }
    if (named != nullptr && named->kind == policy::LockKind::kReadWrite && named->fencing) {
      return absl::FailedPreconditionError(absl::StrCat(
          "FencedSet on policy \"", ToAbsl(policy), "\" to \"", ToAbsl(resource_key),
          "\": fencing token 0 is what a read hold carries: readers share the "
          "lock, so none gets a fencing token; write under WithWrite and pass "
          "its Held::fencing_token()"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "FencedSet on policy \"", ToAbsl(policy), "\" to \"", ToAbsl(resource_key),
        "\": fencing token 0 means no fencing token was issued (the policy "
        "has \"fencing\": false, or the lock is a Redlock quorum), so a "
        "fenced write cannot protect anything; enable fencing in the policy "
        "and pass Held::fencing_token()"));
  }
  if (fencing_token < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "FencedSet on policy \"", ToAbsl(policy), "\" to \"", ToAbsl(resource_key),
        "\": fencing token must be >= 1, got ", fencing_token,
        "; pass Held::fencing_token()"));
  }
  std::shared_ptr<const policy::Snapshot> snapshot = impl_->registry->snapshot();
  ASSIGN_OR_RETURN(auto p, FindPolicy(snapshot, policy));
  ASSIGN_OR_RETURN(std::shared_ptr<const internal::Backend> backend,
                   impl_->BackendFor(*snapshot, *p));
  if (backend->redlock()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "FencedSet on policy \"", p->name, "\": its redis target \"", p->redis,
        "\" is a Redlock quorum of independent masters, which issue no "
        "monotonic fencing tokens; a fenced write there would only pretend "
        "to protect the resource"));
  }
  char token[24];
  const absl::string_view keys[] = {ToAbsl(resource_key)};
  const absl::string_view args[] = {ToAbsl(value), util::Decimal(fencing_token, token)};
  // A target that asks for min_replicas_ack gets it for the resource too: a
  // write on the master alone is lost by a failover right after it, while
  // the lock's own writes were waited for.
  ASSIGN_OR_RETURN(redis::Topology::RunResult run,
                   backend->homes[0]->Run(scripts::k_fenced_set, keys, args,
                                          {.timeout = p->script_timeout,
                                           .wait_replicas = backend->min_replicas_ack,
                                           .wait_timeout = backend->replica_ack_timeout}));
  const redis::ReplyPtr& reply = run.reply;
  const redisReply& r = *reply;
  if (r.type != REDIS_REPLY_ARRAY || r.elements != 2 ||
      r.element[0]->type != REDIS_REPLY_INTEGER ||
      r.element[1]->type != REDIS_REPLY_INTEGER) {
    return absl::InternalError("fenced_set: unexpected reply shape");
  }
  if (r.element[0]->integer == 1 && run.replicas_acked < backend->min_replicas_ack) {
    // Written, and not to be undone (a later holder may build on it): the
    // caller learns that a failover could still lose it.
    return absl::UnavailableError(absl::StrCat(
        "write to \"", ToAbsl(resource_key), "\" was accepted by the master but only ",
        run.replicas_acked, " of the required ", backend->min_replicas_ack,
        " replicas acknowledged it within ", absl::FormatDuration(backend->replica_ack_timeout),
        "; a failover now could lose it, so its outcome is unknown"));
  }
  if (r.element[0]->integer == 1) return absl::OkStatus();
  return StaleFenceError(absl::StrCat(
      "write to \"", ToAbsl(resource_key), "\" refused: fencing token ",
      fencing_token, " is older than ", r.element[1]->integer,
      ", already written by a later holder"));
}

// ---- Process-wide layer ----------------------------------------------------

namespace {

// Held only to read or swap the pointer (never while a Locker is built or
// destroyed), so the fork handlers may take it.
std::mutex g_mu;
std::shared_ptr<Locker> g_locker;  // guarded by g_mu

absl::Status Install(absl::StatusOr<std::unique_ptr<policy::Registry>> registry) {
  if (!registry.ok()) return registry.status();
  ASSIGN_OR_RETURN(std::unique_ptr<Locker> locker,
                   Locker::Create(std::shared_ptr<policy::Registry>(
                       *std::move(registry))));
  InitWith(std::move(locker));
  return absl::OkStatus();
}

}  // namespace

absl::Status Init(const std::string& config_path, const InitOptions& options) {
  absl::StatusOr<std::unique_ptr<policy::Registry>> registry =
      policy::Registry::Load(config_path);
  if (registry.ok() && options.watch) {
    (*registry)->Watch(options.watch_interval,
                       [on_reload = options.on_reload, config_path](const absl::Status& s) {
                         internal::AddConfigReload(s.ok());
                         if (s.ok()) {
                           internal::Log(LogSeverity::kInfo, "policy_reload_accepted",
                                         absl::StrCat("edited configuration ", config_path,
                                                      " is in use"));
                         } else {
                           internal::Log(LogSeverity::kError, "policy_reload_refused",
                                         absl::StrCat("edited configuration refused, the "
                                                      "working policies stay: ",
                                                      s.message()));
                         }
                         if (on_reload) on_reload(s);
                       });
  }
  return Install(std::move(registry));
}

absl::Status InitFromJson(std::string_view json) {
  return Install(policy::Registry::FromJson(json));
}

void InitWith(std::shared_ptr<Locker> locker) {
  std::shared_ptr<Locker> old;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    old = std::exchange(g_locker, std::move(locker));
  }
  // Destroyed outside g_mu: it may close connections and join a thread.
}

namespace internal {
// A child keeps the parent's Locker installed, so that the process-wide
// calls answer "lock::Init again after fork" until it does.
void ProcessLayerForkPrepare() { g_mu.lock(); }
void ProcessLayerForkParent() { g_mu.unlock(); }
void ProcessLayerForkChild() { g_mu.unlock(); }
}  // namespace internal

namespace internal {
struct LockerAccess {
  static uint64_t Group(const Locker& locker) { return locker.impl_->group; }
};
}  // namespace internal

void Shutdown(absl::Duration deadline) {
  std::shared_ptr<Locker> old;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    old = std::move(g_locker);
  }
  // Only the process-wide Locker's locks: a Locker built and injected
  // elsewhere keeps its own (and its renewals) until it is done with them.
  if (old != nullptr) {
    internal::AbortAsyncAcquires(
        internal::LockerAccess::Group(*old),
        CancelledError("lock::Shutdown ended this pending acquire; nothing is held"));
  }
  internal::RenewalManager::Global().Shutdown(
      old == nullptr ? 0 : internal::LockerAccess::Group(*old), deadline);
}

absl::StatusOr<std::shared_ptr<Locker>> Default() {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_locker != nullptr) return g_locker;
  }
  const char* path = std::getenv("LOCK_CONFIG");
  if (path == nullptr || *path == '\0') {
    return absl::FailedPreconditionError(
        "the lock library has no policies: call lock::Init(path) or "
        "lock::InitFromJson(json), or set LOCK_CONFIG to a policy file");
  }
  absl::Status s = Init(path);
  if (!s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("LOCK_CONFIG=", path, ": ", s.message()));
  }
  std::lock_guard<std::mutex> lock(g_mu);
  return g_locker;
}

absl::Status With(std::string_view policy, std::string_view key,
                  const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->With(policy, key, fn);
}

absl::Status With(std::string_view policy, std::string_view key,
                  const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->With(policy, key, fn);
}

absl::Status WithRead(std::string_view policy, std::string_view key,
                      const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithRead(policy, key, fn);
}

absl::Status WithRead(std::string_view policy, std::string_view key,
                      const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithRead(policy, key, fn);
}

absl::Status WithWrite(std::string_view policy, std::string_view key,
                       const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithWrite(policy, key, fn);
}

absl::Status WithWrite(std::string_view policy, std::string_view key,
                       const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithWrite(policy, key, fn);
}

absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                     const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithAll(policy, keys, fn);
}

absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                     const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithAll(policy, keys, fn);
}

absl::Status With(std::string_view policy, std::string_view key, const CallOptions& call,
                  const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->With(policy, key, call, fn);
}

absl::Status With(std::string_view policy, std::string_view key, const CallOptions& call,
                  const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->With(policy, key, call, fn);
}

absl::Status WithRead(std::string_view policy, std::string_view key, const CallOptions& call,
                      const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithRead(policy, key, call, fn);
}

absl::Status WithRead(std::string_view policy, std::string_view key, const CallOptions& call,
                      const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithRead(policy, key, call, fn);
}

absl::Status WithWrite(std::string_view policy, std::string_view key, const CallOptions& call,
                       const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithWrite(policy, key, call, fn);
}

absl::Status WithWrite(std::string_view policy, std::string_view key, const CallOptions& call,
                       const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithWrite(policy, key, call, fn);
}

absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                     const CallOptions& call, const std::function<absl::Status(Held&)>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithAll(policy, keys, call, fn);
}

absl::Status WithAll(std::string_view policy, const std::vector<std::string>& keys,
                     const CallOptions& call, const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithAll(policy, keys, call, fn);
}

void AcquireAsync(std::string_view policy, std::string_view key, const CallOptions& call,
                  std::function<void(absl::StatusOr<Lease>)> done) {
  absl::StatusOr<std::shared_ptr<Locker>> locker = Default();
  if (!locker.ok()) {
    return internal::Complete(call.executor, std::move(done),
                              absl::StatusOr<Lease>(locker.status()));
  }
  (*locker)->AcquireAsync(policy, key, call, std::move(done));
}

void WithAsync(std::string_view policy, std::string_view key, const CallOptions& call,
               std::function<absl::Status(Held&)> fn, std::function<void(absl::Status)> done) {
  absl::StatusOr<std::shared_ptr<Locker>> locker = Default();
  if (!locker.ok()) {
    return internal::Complete(call.executor, std::move(done), locker.status());
  }
  (*locker)->WithAsync(policy, key, call, std::move(fn), std::move(done));
}

absl::Status LockWithOptions(std::string_view key, const LockOptions& options,
                             const std::function<absl::Status()>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->WithOptions(key, options, [&fn](Held&) { return fn(); });
}

absl::Status Lock(std::string_view key, absl::Duration ttl,
                  const std::function<absl::Status()>& fn) {
  LockOptions options;
  options.ttl = ttl;
  return LockWithOptions(key, options, fn);
}

absl::Status LockWithRetry(std::string_view key, absl::Duration ttl,
                           const std::function<absl::Status()>& fn,
                           const RetryStrategy& strategy) {
  LockOptions options;
  options.ttl = ttl;
  options.retry.max_attempts = strategy.max_attempts;
  options.retry.initial_delay = strategy.delay;
  options.retry.max_delay = strategy.delay;
  options.retry.multiplier = 1.0;
  options.wait.timeout = absl::Hours(24);  // the attempts bound the wait
  return LockWithOptions(key, options, fn);
}

absl::Status LockWithToken(std::string_view key, absl::Duration ttl,
                           const std::function<absl::Status(int64_t)>& fn) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  LockOptions options;
  options.ttl = ttl;
  return locker->WithOptions(
      key, options, [&fn](Held& held) { return fn(held.fencing_token()); });
}

absl::StatusOr<std::unique_ptr<RedisLock>> NewLock(std::string_view key,
                                                   const LockOptions& options) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->NewLock(key, options);
}

absl::Status FencedSet(std::string_view policy, std::string_view resource_key,
                       std::string_view value, int64_t fencing_token) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  return locker->FencedSet(policy, resource_key, value, fencing_token);
}

absl::Status UnlockByValue(std::string_view key, std::string_view owner_token) {
  ASSIGN_OR_RETURN(std::shared_ptr<Locker> locker, Default());
  ASSIGN_OR_RETURN(std::unique_ptr<RedisLock> lock,
                   locker->NewLock(key, LockOptions{}));
  return lock->ReleaseLevelOwnedBy(owner_token);
}

}  // namespace lock
