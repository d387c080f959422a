#include "lock/internal/lock_core.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "lock/errors.h"
#include "lock/internal/async_runtime.h"
#include "lock/internal/parallel.h"
#include "lock/internal/primitive_calls.h"
#include "lock/internal/quorum.h"
#include "lock/internal/renewal.h"
#include "lock/internal/reworded.h"
#include "lock/internal/script_values.h"
#include "lock/internal/token.h"
#include "lock/redis/script.h"
#include "policy/backoff.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace lock::internal {
namespace {

// Backoff jitter only spreads waiters apart; it needs no secrecy. A
// generator compiled into this file (unlike abseil's, from an uninstrumented
// system library) keeps ThreadSanitizer able to see what it touches.
double UnitRandom() {
  thread_local std::mt19937_64 gen(std::random_device{}());
  return std::uniform_real_distribution<double>(0.0, 1.0)(gen);
}

// Sleeps until `until`, or until `stop` is requested (at once, not at the
// end of the sleep).
void SleepUntil(std::chrono::steady_clock::time_point until, const std::stop_token& stop) {
  if (!stop.stop_possible()) {
    std::this_thread::sleep_until(until);
    return;
  }
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(mu);
  cv.wait_until(lock, stop, until, [] { return false; });
}

// The lock.outcome of a "lock.acquire" span (lock/observe.h).
std::string_view AcquireOutcome(const absl::Status& s) {
  if (s.ok()) return "acquired";
  if (IsBusy(s)) return "busy";
  if (lock::IsSkipped(s)) return "skipped";
  if (lock::IsDeadlineExceeded(s)) return "deadline_exceeded";
  if (lock::IsCancelled(s)) return "cancelled";
  return "error";
}

}  // namespace

void LockCore::TraceAcquire(int64_t start_ns, int attempts, bool reentry,
                            std::string_view outcome, const absl::Status& status) const {
  const int64_t fence = outcome == "acquired" ? fencing_token() : 0;
  const SpanAttribute attributes[] = {
      {"lock.policy", std::string_view(policy_->name)},
      {"lock.key", std::string_view(key_)},
      {"lock.kind", policy::LockKindName(policy_->kind)},
      {"lock.attempts", int64_t{attempts}},
      {"lock.wait_seconds", absl::ToDoubleSeconds(Since(start_ns))},
      {"lock.reentry", reentry},
      {"lock.outcome", outcome},
      {"lock.fencing_token", fence},
  };
  // The token only once acquired: the last attribute.
  const size_t n = std::size(attributes) - (outcome == "acquired" ? 0 : 1);
  EmitSpan("lock.acquire", start_ns, status, absl::MakeConstSpan(attributes, n));
}

absl::StatusOr<std::unique_ptr<LockCore>> LockCore::Create(
    std::shared_ptr<const Backend> backend,
    std::shared_ptr<const policy::Policy> policy, absl::string_view key, Access access) {
  // Every lock instance is built here (With, WithOptions, NewLock,
  // UnlockByValue, internal::NewRedisLock).
  RETURN_IF_ERROR(ValidateKey(key));
  if (backend == nullptr || backend->homes.empty()) {
    return absl::InvalidArgumentError("lock backend has no Redis to talk to");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<const KindCalls> kind,
                   KindCalls::For(*policy, key, access));
  if (kind != nullptr && backend->redlock()) {
    // Independent masters would each keep permits, readers or a queue of
    // their own: a quorum of them granting bounds neither the holders by
    // `permits`, nor readers against writers, nor the order of a queue.
    return absl::UnimplementedError(absl::StrCat(
        "policy \"", policy->name, "\" is of kind \"",
        util::ToAbsl(policy::LockKindName(policy->kind)), "\" on redis target \"",
        policy->redis,
        "\", a Redlock quorum of independent masters: only mutexes run there; "
        "semaphores, read_write and fair locks need a standalone, Sentinel or "
        "Cluster target"));
  }
  return std::unique_ptr<LockCore>(new LockCore(std::move(backend), std::move(policy),
                                                std::string(key), std::move(kind), access));
}

namespace {

// The backend of a (pool, notifier) pair, shared by every lock created on
// that pair. The renewal manager pipelines the holds of one topology
// together; a topology per lock made every renewal its own round trip
// (10,000 held locks: 10,000 round trips per renewal period, not 20).
std::shared_ptr<const Backend> SharedBackend(
    std::shared_ptr<redis::ConnectionPool> pool,
    std::shared_ptr<ReleaseNotifier> notifier) {
  using Key = std::pair<const void*, const void*>;
  static std::mutex mu;
  static auto* backends = new absl::flat_hash_map<Key, std::weak_ptr<const Backend>>;
  static size_t sweep_at = 64;
  // A live backend keeps its pool and notifier alive, so their addresses
  // cannot be reused by others while an entry for them still resolves.
  const Key key(pool.get(), notifier.get());
  std::lock_guard<std::mutex> lock(mu);
  std::weak_ptr<const Backend>& slot = (*backends)[key];
  if (std::shared_ptr<const Backend> b = slot.lock()) return b;
  auto backend = std::make_shared<Backend>();
  backend->homes.push_back(std::make_shared<redis::StandaloneTopology>(std::move(pool)));
  backend->notifier = std::move(notifier);
  slot = backend;
  if (backends->size() >= sweep_at) {
    absl::erase_if(*backends, [](const auto& e) { return e.second.expired(); });
    sweep_at = std::max<size_t>(64, 2 * backends->size());
  }
  return backend;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LockCore>> LockCore::Create(
    std::shared_ptr<redis::ConnectionPool> pool,
    std::shared_ptr<const policy::Policy> policy, absl::string_view key,
    std::shared_ptr<ReleaseNotifier> notifier) {
  return Create(SharedBackend(std::move(pool), std::move(notifier)), std::move(policy), key);
}

LockCore::LockCore(std::shared_ptr<const Backend> backend,
                   std::shared_ptr<const policy::Policy> policy, std::string key,
                   std::unique_ptr<const KindCalls> kind, Access access)
    : backend_(std::move(backend)),
      policy_(std::move(policy)),
      key_(std::move(key)),
      keys_(policy_->key_prefix, key_),
      kind_(std::move(kind)),
      counters_(CountersFor(policy_->name)),
      access_(access) {
  counters_.kind.store(static_cast<int>(policy_->kind), std::memory_order_relaxed);
}

absl::string_view LockCore::lease_key() const {
  return kind_ ? absl::string_view(kind_->lease_key()) : keys_.owner();
}

absl::string_view LockCore::channel() const {
  return kind_ ? absl::string_view(kind_->channel()) : keys_.channel();
}

LockCore::~LockCore() {
  OpScope scope(this);
  if (count_.load() > 0) ReleaseLocked(0, /*owner_stays=*/false).IgnoreError();
}

LockCore::OpScope::OpScope(LockCore* lock) : lock_(lock) { lock_->op_mu_.lock(); }

LockCore::OpScope::~OpScope() {
  std::vector<std::function<void()>> deferred = std::move(lock_->deferred_);
  lock_->deferred_.clear();
  lock_->op_mu_.unlock();
  for (auto& fn : deferred) fn();
}

void LockCore::DropLostHoldLocked(const std::string& why) {
  std::shared_ptr<HoldState> h = hold_;
  const absl::Status status = LostError(why);
  if (h->SetLost()) DeferLocked([h, status] { h->AnnounceLost(status); });
  h->released.store(true);
  RenewalManager::Global().Untrack(h.get());
  counters_.active.fetch_sub(1, std::memory_order_relaxed);
  count_.store(0);
  if (TracingEnabled()) DeferLocked([h, status] { h->TraceEnd("lost", status); });
}

absl::Status LockCore::Annotate(const absl::Status& s,
                                 absl::string_view op) const {
  return Reworded(s, absl::StrCat(op, " of lock \"", key_, "\" (policy ", policy_->name,
                                  "): ", s.message()));
}

std::shared_ptr<HoldState> LockCore::hold() const {
  if (count_.load() == 0) return nullptr;
  std::lock_guard<std::mutex> lock(hold_mu_);
  return hold_;
}

std::string LockCore::owner_token() const {
  auto h = hold();
  return h ? h->token : "";
}

int64_t LockCore::fencing_token() const {
  auto h = hold();
  return h ? h->fence : 0;
}

absl::Duration LockCore::remaining() const {
  auto h = hold();
  if (h == nullptr) return absl::ZeroDuration();
  int64_t left = h->valid_until_ns.load() - SteadyNowNs();
  return left > 0 ? absl::Nanoseconds(left) : absl::ZeroDuration();
}

absl::StatusOr<redis::ReplyPtr> LockCore::Call(
    const scripts::EmbeddedScript& script,
    absl::Span<const absl::string_view> keys,
    absl::Span<const absl::string_view> args, bool* outcome_unknown) {
  const int64_t start = SteadyNowNs();
  absl::StatusOr<redis::Topology::RunResult> r = backend_->homes[0]->Run(
      script, keys, args, {.timeout = policy_->script_timeout}, outcome_unknown);
  counters_.script_call.Observe(Since(start));
  if (!r.ok()) return r.status();
  return std::move(r->reply);
}

std::vector<absl::StatusOr<redis::ReplyPtr>> LockCore::CallAll(
    const scripts::EmbeddedScript& script,
    absl::Span<const absl::string_view> keys,
    absl::Span<const absl::string_view> args,
    std::chrono::steady_clock::time_point deadline) {
  const int64_t start = SteadyNowNs();
  absl::Duration timeout = policy_->script_timeout;
  if (deadline != std::chrono::steady_clock::time_point::max()) {
    timeout = std::clamp(absl::FromChrono(deadline - std::chrono::steady_clock::now()),
                         absl::Milliseconds(1), timeout);
  }
  std::vector<absl::StatusOr<redis::ReplyPtr>> out =
      redis::RunOnEach(backend_->homes, script, keys, args, timeout);
  counters_.script_call.Observe(Since(start));
  return out;
}

std::string LockCore::AcquireTokenLocked() const {
  // Every fresh acquisition gets its own token (see the class comment).
  return count_.load() == 0 ? NewOwnerToken() : hold_->token;
}

absl::StatusOr<LockCore::Attempt> LockCore::AttemptLocked(
    const std::string& token, std::chrono::steady_clock::time_point deadline) {
  const int count = count_.load();
  if (count > 0 && !policy_->reentrant) {
    return absl::FailedPreconditionError(absl::StrCat(
        "lock \"", key_, "\" is already held by this instance and policy ",
        policy_->name, " is not reentrant"));
  }
  const bool fresh = count == 0;
  const std::string marker = keys_.CancelMarker(token);
  char ttl_buf[24], count_buf[24], retention_buf[24];
  const absl::string_view keys[] = {keys_.owner(), keys_.fence(), marker};
  // Redlock masters are asked for no token: none is issued there (see
  // AttemptQuorumLocked), so a fence record would only be litter.
  const bool fencing = policy_->fencing && !backend_->redlock();
  const absl::string_view args[] = {
      token, util::Decimal(Millis(policy_->ttl), ttl_buf),
      util::Decimal(count + 1, count_buf), fencing ? "1" : "0",
      util::Decimal(Millis(policy_->fencing_retention), retention_buf)};
  if (backend_->redlock()) return AttemptQuorumLocked(count, token, keys, args, deadline);
  // The other kinds run their own acquire: same reply shape.
  PrimitiveCall kind_call;
  std::vector<absl::string_view> kind_keys, kind_args;
  if (kind_) {
    kind_call = kind_->Acquire(token, Millis(policy_->ttl), count + 1);
    kind_keys = kind_call.KeyViews();
    kind_args = kind_call.ArgViews();
  }
  const int64_t sent_at = SteadyNowNs();
  bool unknown = false;
  const int64_t call_start = sent_at;
  // The caller's deadline, not script_timeout, bounds this call: if it ends
  // the call, the caller is owed its answer then, not after a cancel.
  const bool deadline_bounds_call =
      deadline != std::chrono::steady_clock::time_point::max() &&
      deadline < std::chrono::steady_clock::now() +
                     absl::ToChronoNanoseconds(policy_->script_timeout);
  absl::StatusOr<redis::Topology::RunResult> run = backend_->homes[0]->Run(
      kind_ ? *kind_call.script : scripts::k_acquire,
      kind_ ? absl::MakeConstSpan(kind_keys) : absl::MakeConstSpan(keys),
      kind_ ? absl::MakeConstSpan(kind_args) : absl::MakeConstSpan(args),
      {.timeout = policy_->script_timeout,
       .wait_replicas = backend_->min_replicas_ack,
       .wait_timeout = backend_->replica_ack_timeout,
       .deadline = deadline},
      &unknown);
  counters_.script_call.Observe(Since(call_start));
  absl::StatusOr<redis::ReplyPtr> reply =
      run.ok() ? absl::StatusOr<redis::ReplyPtr>(std::move(run->reply))
               : absl::StatusOr<redis::ReplyPtr>(run.status());
  if (!reply.ok()) {
    absl::Status cause = reply.status();
    if (fresh && unknown) {
      // The request may have reached Redis and taken the lock with nobody
      // knowing; undo it rather than leave it held for a whole TTL.
      CancelLostAcquire(token, &cause, /*in_background=*/deadline_bounds_call);
    }
    return cause;
  }
  ASSIGN_OR_RETURN(auto r, TripleReply(**reply, kind_ ? kind_->acquire_name() : "acquire"));
  if (r[0] == 1 && fresh && run->replicas_acked < backend_->min_replicas_ack) {
    // Granted by a master that could not show the grant on enough replicas:
    // a failover now could hand the lock to someone else, so give it back.
    (void)RunRelease(token, 0, 0);
    return absl::UnavailableError(absl::StrCat(
        "lock \"", key_, "\" was granted by the master but only ",
        run->replicas_acked, " of the required ", backend_->min_replicas_ack,
        " replicas acknowledged it within ",
        absl::FormatDuration(backend_->replica_ack_timeout),
        "; released again to avoid a double grant after a failover"));
  }
  if (r[0] == 1 && !fresh && run->replicas_acked < backend_->min_replicas_ack) {
    // The re-entry refreshed the lease on a master that could not show it
    // on its replicas: keep the hold and its validity as they were.
    backend_->homes[0]->Invalidate(lease_key(), nullptr);  // maybe demoted
    return absl::UnavailableError(absl::StrCat(
        "re-entry of lock \"", key_, "\": only ", run->replicas_acked, " of the required ",
        backend_->min_replicas_ack, " replicas acknowledged it within ",
        absl::FormatDuration(backend_->replica_ack_timeout),
        "; the hold stays at ", count, count == 1 ? " level" : " levels"));
  }
  if (r[0] == 1) {
    if (fresh) {
      StartHoldLocked(token, r[1], sent_at, sent_at + r[2] * 1'000'000);
    } else {
      hold_->valid_until_ns.store(
          std::max(hold_->valid_until_ns.load(), sent_at + r[2] * 1'000'000));
    }
    count_.store(count + 1);
    return Attempt{Outcome::kHeld, absl::ZeroDuration()};
  }
  if (r[0] == 0) {
    return Attempt{Outcome::kBusy, absl::Milliseconds(std::max<int64_t>(0, r[1])), r[2],
                   sent_at};
  }
  if (r[0] == -2) {
    DropLostHoldLocked("re-entry found the hold gone");
    return LostError(absl::StrCat(
        "cannot re-enter: this instance's hold expired or passed to another "
        "owner before the re-entry (",
        count, count == 1 ? " level was" : " levels were", " still open)"));
  }
  // Tokens are fresh per acquisition, so a cancel marker can only match a
  // token that was never reused; reaching this means a broken invariant.
  return absl::InternalError("acquire refused by a cancel marker of a new token");
}

absl::StatusOr<LockCore::Attempt> LockCore::AttemptQuorumLocked(
    int count, const std::string& token, absl::Span<const absl::string_view> keys,
    absl::Span<const absl::string_view> args, std::chrono::steady_clock::time_point deadline) {
  // Redlock: ask every master at once; held when a quorum granted it with
  // validity left after the time spent and the clock-drift allowance.
  const int64_t sent_at = SteadyNowNs();
  std::vector<absl::StatusOr<redis::ReplyPtr>> replies =
      CallAll(scripts::k_acquire, keys, args, deadline);
  int granted = 0, busy = 0, failed = 0;
  int64_t other_left_ms = std::numeric_limits<int64_t>::max();
  absl::Status error;
  // Where a round without a quorum must cancel: masters that granted, and
  // those that failed (the acquire may still land). One that answered busy
  // took nothing.
  std::vector<int> to_cancel;
  for (int i = 0; i < static_cast<int>(replies.size()); ++i) {
    auto& reply = replies[i];
    absl::StatusOr<std::array<int64_t, 3>> r =
        reply.ok() ? TripleReply(**reply, "acquire") : reply.status();
    if (r.ok() && (*r)[0] == -1) {
      // Tokens are fresh per attempt, so this is a broken invariant.
      r = absl::InternalError("acquire refused by a cancel marker of this token");
    }
    // -2 (a re-entry that found the hold gone) is a "no", which the
    // re-entry branch below counts: neither granted, busy nor failed.
    if (!r.ok()) {
      ++failed;
      error = r.status();
      to_cancel.push_back(i);
    } else if ((*r)[0] == 1) {
      ++granted;
      to_cancel.push_back(i);
    } else if ((*r)[0] == 0) {
      ++busy;
      other_left_ms = std::min(other_left_ms, std::max<int64_t>(0, (*r)[1]));
    }
  }
  // Validity is measured from the round's send, less the drift allowance;
  // a grant whose round took longer than that is no grant.
  const int64_t valid_until = RedlockValidUntilNs(
      sent_at, Millis(policy_->ttl) * 1'000'000, backend_->drift_factor);
  const int n = static_cast<int>(replies.size());
  if (granted >= backend_->quorum() && valid_until > SteadyNowNs()) {
    if (count == 0) {
      // No fencing token is monotonic across independent masters.
      StartHoldLocked(token, /*fence=*/0, sent_at, valid_until);
    } else {
      hold_->valid_until_ns.store(valid_until);
    }
    count_.store(count + 1);
    return Attempt{Outcome::kHeld, absl::ZeroDuration()};
  }
  if (count > 0) {
    if (Tally(n, backend_->quorum(), granted, n - granted - failed) ==
        QuorumVerdict::kUnknown) {
      return absl::UnavailableError(absl::StrCat(
          "re-entry: only ", granted, " of ", n, " masters answered yes (quorum ",
          backend_->quorum(), "), ", failed, " did not answer; last: ", error.message()));
    }
    DropLostHoldLocked("re-entry found no quorum");
    return LostError(absl::StrCat("cannot re-enter: only ", granted, " of ", n,
                                  " masters still grant this hold (quorum ",
                                  backend_->quorum(), ")"));
  }
  // No quorum: undo whatever was granted, and cancel on the masters that
  // errored or timed out, where the acquire may still land (the cancel
  // marker refuses it then). The marker refuses this token for a lease, so
  // a waiter's next attempt comes with a token of its own (AcquireStep).
  const std::string marker = keys_.CancelMarker(token);
  char ttl_buf[24];
  const absl::string_view cancel_keys[] = {keys_.owner(), marker};
  const absl::string_view cancel_args[] = {
      token, util::Decimal(Millis(policy_->ttl), ttl_buf), keys_.channel()};
  if (!to_cancel.empty()) {
    ParallelFor(static_cast<int>(to_cancel.size()), [&](int i) {
      (void)backend_->homes[to_cancel[i]]->Run(
          scripts::k_cancel, cancel_keys, cancel_args,
          {.timeout = policy_->script_timeout, .always_eval = true});
    });
  }
  if (busy + granted >= backend_->quorum() || busy > 0) {
    return Attempt{Outcome::kBusy,
                   other_left_ms == std::numeric_limits<int64_t>::max()
                       ? absl::ZeroDuration()
                       : absl::Milliseconds(other_left_ms)};
  }
  return absl::UnavailableError(absl::StrCat(
      "only ", granted, " of ", n, " redlock masters granted the lock (quorum ",
      backend_->quorum(), "); the others failed, last: ", error.message()));
}

void LockCore::StartHoldLocked(const std::string& token, int64_t fence,
                                int64_t sent_at_ns, int64_t valid_until_ns) {
  auto h = std::make_shared<HoldState>();
  h->homes = backend_->homes;
  h->quorum = backend_->quorum();
  h->drift_factor = backend_->drift_factor;
  h->min_replicas_ack = backend_->min_replicas_ack;
  h->replica_ack_timeout = backend_->replica_ack_timeout;
  h->policy = policy_;
  h->group = backend_->group;
  h->key = key_;
  h->owner_key = std::string(lease_key());
  h->channel = std::string(channel());
  h->lease_in_zset = kind_ != nullptr && kind_->lease_in_zset();
  h->access = access_;
  h->token = token;
  h->fence = fence;
  h->acquired_at_ns = sent_at_ns;
  h->counters = &counters_;
  h->valid_until_ns.store(valid_until_ns);
  h->lease_ms.store(Millis(policy_->ttl));
  {
    std::lock_guard<std::mutex> lock(hold_mu_);
    hold_ = h;
  }
  RenewalManager::Global().Track(h);
  Count(counters_.active);
}

PrimitiveCall LockCore::CancelCall(const std::string& token) const {
  // The other kinds undo their own hold (or withdraw a claim or a place).
  if (kind_) return kind_->Cancel(token, Millis(policy_->ttl));
  return PrimitiveCall{&scripts::k_cancel,
                       {std::string(keys_.owner()), keys_.CancelMarker(token)},
                       {token, absl::StrCat(Millis(policy_->ttl)), std::string(keys_.channel())}};
}

namespace {
// A cancel by its text: its NOSCRIPT answer might never be read (EvalScript).
absl::StatusOr<int64_t> SendCancel(redis::Topology& home, const PrimitiveCall& call,
                                   absl::Duration timeout) {
  ASSIGN_OR_RETURN(redis::Topology::RunResult run,
                   home.Run(*call.script, call.KeyViews(), call.ArgViews(),
                            {.timeout = timeout, .always_eval = true}));
  return IntReply(*run.reply, call.script->name);
}
}  // namespace

absl::StatusOr<int64_t> LockCore::RunCancel(const std::string& token) {
  return SendCancel(*backend_->homes[0], CancelCall(token), policy_->script_timeout);
}

void LockCore::CancelLostAcquire(const std::string& token, absl::Status* cause,
                                 bool in_background) {
  if (in_background) {
    // The caller's deadline ended the call: it gets its answer now, and the cancel
    // (with the policy's own script_timeout) runs on the library's threads.
    // It carries what it needs, so this instance may be gone by then.
    AsyncRuntime::Get().Post([home = backend_->homes[0], call = CancelCall(token),
                              timeout = policy_->script_timeout] {
      (void)SendCancel(*home, call, timeout);
    });
    *cause = absl::Status(cause->code(),
                          absl::StrCat(cause->message(),
                                       "; the unanswered acquire is being cancelled"));
    return;
  }
  const absl::Status s = RunCancel(token).status();
  *cause = absl::Status(
      cause->code(),
      s.ok() ? absl::StrCat(cause->message(),
                            "; the unanswered acquire was cancelled")
             : absl::StrCat(cause->message(),
                            "; its cancel got no answer either (", s.message(),
                            "): if neither reaches Redis and the acquire was "
                            "applied, the lock stays taken until its ttl of ",
                            absl::FormatDuration(policy_->ttl), " expires"));
}

bool LockCore::TakeHandoffLocked(const std::string& token, const std::string& message,
                                 int64_t sent_at_ns) {
  if (backend_->min_replicas_ack > 0) return false;
  absl::StatusOr<FairReleaseMessage> m = ParseFairReleaseMessage(message);
  if (!m.ok() || !m->handed_off || m->next != token) return false;
  // The release made this token the owner for what its place in the queue
  // had left: one ttl from the last attempt, by the server's clock, which
  // read it after `sent_at_ns`. Renewal, planned from that moment, extends
  // it to a full lease as for any hold.
  StartHoldLocked(token, m->fence, sent_at_ns,
                  sent_at_ns + Millis(policy_->ttl) * 1'000'000);
  count_.store(1);
  return true;
}

void LockCore::WithdrawLocked(const std::string& token) {
  // Left in place, a writer's claim would keep readers out, and a place at
  // the head of a fair queue would stall it, until they expire.
  if (kind_ && kind_->busy_leaves_trace()) (void)RunCancel(token);
}

absl::StatusOr<bool> LockCore::TryAcquire() {
  if (!TracingEnabled()) return TryAcquireOnce();
  const int64_t start_ns = SteadyNowNs();
  const bool reentry = count_.load() > 0;
  absl::StatusOr<bool> got = TryAcquireOnce();
  // Try's busy is `false`, not an error: the span's status is what the
  // caller got.
  TraceAcquire(start_ns, 1, reentry, !got.ok() ? "error" : *got ? "acquired" : "busy",
               got.status());
  return got;
}

absl::StatusOr<bool> LockCore::TryAcquireOnce() {
  OpScope scope(this);
  const bool fresh = count_.load() == 0;
  const std::string token = AcquireTokenLocked();
  absl::StatusOr<Attempt> a = AttemptLocked(token);
  if (!a.ok()) {
    if (fresh) WithdrawLocked(token);
    Count(counters_.errors);
    return Annotate(a.status(), "acquire");
  }
  if (a->outcome == Outcome::kBusy) {
    if (fresh) WithdrawLocked(token);
    Count(counters_.busy);
    return false;
  }
  if (count_.load() == 1) Count(counters_.acquired);
  return true;
}

absl::Status LockCore::Acquire(const CallOptions& call) {
  AcquireRun run;
  absl::Status s;
  {
    OpScope scope(this);
    BeginAcquireLocked(run, call);
    while (true) {
      Step step = AcquireStepLocked(run);
      if (!step.done && !step.again) {
        std::string message;
        bool woken = false;
        if (run.watch != nullptr && run.watch->active()) {
          woken = run.watch->WaitUntil(run.seen, step.until, kind_ ? &message : nullptr,
                                       run.stop);
        } else {
          SleepUntil(step.until, run.stop);
        }
        step = AfterWaitLocked(run, woken, message);
      }
      if (step.done) {
        s = std::move(step.status);
        break;
      }
    }
    run.watch.reset();
  }
  // Callbacks run with no lock of ours held: they may use this lock.
  return EndAcquire(run, std::move(s));
}

absl::Status LockCore::EndAcquire(AcquireRun& run, absl::Status s) {
  EndWait(run);  // an asynchronous wait ended by an abort
  if (TracingEnabled()) TraceAcquire(run.start_ns, run.attempt, !run.fresh, AcquireOutcome(s), s);
  const std::shared_ptr<LockCallback> cb = Callback();
  if (s.ok()) {
    if (run.fresh) {
      Count(counters_.acquired);
      counters_.acquire_wait.Observe(Since(run.start_ns));
      if (cb) cb->OnAcquired(policy_->name, key_, Since(run.start_ns));
    }
    return s;
  }
  Count(IsBusy(s) ? counters_.busy : lock::IsSkipped(s) ? counters_.skipped
                                                          : counters_.errors);
  if (cb) cb->OnAcquireFailed(policy_->name, key_, s);
  return s;
}

void LockCore::BeginAcquire(AcquireRun& run, const CallOptions& call) {
  OpScope scope(this);
  BeginAcquireLocked(run, call);
}

LockCore::Step LockCore::AcquireStep(AcquireRun& run) {
  OpScope scope(this);
  return AcquireStepLocked(run);
}

LockCore::Step LockCore::AfterWait(AcquireRun& run, bool woken, const std::string& message) {
  OpScope scope(this);
  return AfterWaitLocked(run, woken, message);
}

std::string LockCore::BusyText(const Attempt& busy) const {
  if (kind_) {
    return kind_->BusyText(key_, *policy_, absl::ToInt64Milliseconds(busy.busy_remaining),
                           busy.detail);
  }
  return absl::StrCat("lock \"", key_, "\" (policy ", policy_->name,
                      ") is held by another owner for ",
                      absl::FormatDuration(
                          absl::Trunc(busy.busy_remaining, absl::Milliseconds(1))),
                      " more");
}

void LockCore::BeginAcquireLocked(AcquireRun& run, const CallOptions& call) {
  const policy::Policy& p = *policy_;
  using Clock = AcquireRun::Clock;
  run.stop = call.stop;
  const Clock::time_point start = Clock::now();
  run.start_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch())
                     .count();
  const bool wait = p.on_busy == policy::OnBusy::kWait;
  run.max_attempts = wait ? p.retry.max_attempts : 1;
  run.wait_deadline = p.wait.timeout == absl::InfiniteDuration()
                          ? Clock::time_point::max()
                          : start + absl::ToChronoNanoseconds(p.wait.timeout);
  // The caller's deadline on the steady clock, read once: a wall clock
  // step later neither shortens nor stretches it.
  run.call_deadline = Clock::time_point::max();
  if (call.deadline != absl::InfiniteFuture()) {
    const absl::Duration left = call.deadline - absl::Now();
    run.call_deadline =
        left <= absl::ZeroDuration() ? start : start + absl::ToChronoNanoseconds(left);
  }
  run.fresh = count_.load() == 0;
  run.token = AcquireTokenLocked();
  // A busy attempt of some kinds leaves a trace that keeps this waiter's
  // turn for one lease (a writer's claim, a place in a fair queue); the
  // next attempt refreshes it, so no sleep may come close to that lease.
  run.max_sleep = kind_ && kind_->busy_leaves_trace() ? p.ttl / 3 : absl::InfiniteDuration();
  run.addressed = kind_ && kind_->wake() == ReleaseNotifier::WakeMode::kAddressed;
  if (run.addressed && wait && p.wait.notify && backend_->notifier != nullptr) {
    // Reachable from the first attempt on: a release may hand this waiter
    // the lock as soon as that attempt queued it.
    run.watch = backend_->notifier->WatchIfSubscribed(kind_->wait_channel(run.token),
                                                      kind_->wake(), run.token);
  }
}

LockCore::Step LockCore::HeldLocked(AcquireRun& run) {
  if (!run.stop.stop_requested()) return Step{.done = true};
  // Asked to stop while the granting call was in flight: the caller will
  // not use the lock, so it is given back before saying so.
  const int count = count_.load();
  const absl::Status released = ReleaseLocked(count - 1, /*owner_stays=*/false);
  return Step{.done = true,
              .status = CancelledError(absl::StrCat(
                  "acquire of lock \"", key_, "\" (policy ", policy_->name,
                  ") cancelled by the caller's stop request; the lock was granted as "
                  "the request came and ",
                  released.ok() ? "was released again"
                                : absl::StrCat("its release failed (", released.message(),
                                               "), so it expires after its ttl")))};
}

LockCore::Step LockCore::AcquireStepLocked(AcquireRun& run) {
  using Clock = AcquireRun::Clock;
  const policy::Policy& p = *policy_;
  if (run.stop.stop_requested()) {
    return Step{.done = true, .status = GiveUpLocked(run, GiveUp::kCancelled)};
  }
  if (run.call_deadline != Clock::time_point::max() && Clock::now() >= run.call_deadline) {
    return Step{.done = true, .status = GiveUpLocked(run, GiveUp::kDeadline)};
  }
  // Read before the attempt: a release published between the attempt and
  // the wait after it moves it, so that wait ends at once.
  run.seen = run.watch ? run.watch->generation() : 0;
  absl::StatusOr<Attempt> a = AttemptLocked(run.token, run.call_deadline);
  ++run.attempt;
  if (!a.ok()) {
    if (run.fresh) WithdrawLocked(run.token);
    if (Clock::now() >= run.call_deadline) {
      return Step{.done = true,
                  .status = DeadlineExceededError(absl::StrCat(
                      "acquire of lock \"", key_, "\" (policy ", p.name,
                      "): the caller's deadline passed during a Redis call: ",
                      a.status().message()))};
    }
    return Step{.done = true, .status = Annotate(a.status(), "acquire")};
  }
  if (a->outcome == Outcome::kHeld) return HeldLocked(run);
  run.busy = *a;
  if (run.fresh && backend_->redlock()) {
    // A Redlock round without a quorum may have left cancel markers of this
    // token on masters that did not answer; they would refuse it again.
    run.token = AcquireTokenLocked();
  }
  if (run.attempt >= run.max_attempts) {
    return Step{.done = true, .status = GiveUpLocked(run, GiveUp::kRules)};
  }
  Clock::time_point now = Clock::now();
  // Whichever comes first ends the wait: the policy's or the caller's.
  const Clock::time_point deadline = std::min(run.wait_deadline, run.call_deadline);
  const auto over = [&]() -> std::optional<Step> {
    if (now < deadline) return std::nullopt;
    return Step{.done = true,
                .status = GiveUpLocked(run, now >= run.wait_deadline ? GiveUp::kRules
                                                                     : GiveUp::kDeadline)};
  };
  if (std::optional<Step> end = over()) return *end;
  if (run.watch == nullptr && p.wait.notify && backend_->notifier != nullptr) {
    // Subscribed only once the lock proved busy, so an uncontended acquire
    // never pays for it. The backoff delay still comes before the next
    // attempt (N attempts are N-1 delays, as in the Go library): a release
    // after the subscription wakes it, and one that slipped in before is
    // found by the next attempt when the delay ends. The confirmation is
    // never awaited past what is left of the wait: a subscriber connection
    // that hangs must not stretch a short wait to script_timeout.
    const absl::Duration left = deadline == Clock::time_point::max()
                                    ? absl::InfiniteDuration()
                                    : absl::FromChrono(deadline - now);
    run.watch = backend_->notifier->Subscribe(
        kind_ ? kind_->wait_channel(run.token) : std::string(channel()),
        std::min(p.script_timeout, left),
        kind_ ? kind_->wake() : ReleaseNotifier::WakeMode::kOne, run.token);
    run.seen = run.watch->subscribed_at();
    now = Clock::now();
    if (std::optional<Step> end = over()) return *end;
    // A fair release names the next in line, and may already have handed
    // this waiter the lock: a message sent before the subscription named
    // nobody here, and the lock would sit with us unused until our next
    // attempt. So the first wait of a fair waiter is a second attempt,
    // at once (it finds the lock its own, or keeps its place, and any
    // release from now on wakes it).
    if (run.watch->active() && run.addressed) return Step{.again = true};
  }
  // Sleep the backoff, but never past the holder's lease (a crashed holder
  // publishes nothing; a semaphore's first permit to return) nor past the
  // deadline.
  const auto delay = std::min(
      {absl::ToChronoNanoseconds(
           policy::BackoffDelay(p.retry, run.attempt - 1, UnitRandom())),
       absl::ToChronoNanoseconds(run.busy.busy_remaining + absl::Milliseconds(1)),
       absl::ToChronoNanoseconds(run.max_sleep),
       std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now)});
  run.waiting = true;
  Count(counters_.waiting);
  return Step{.until = now + delay};
}

void LockCore::EndWait(AcquireRun& run) {
  if (!run.waiting) return;
  run.waiting = false;
  counters_.waiting.fetch_sub(1, std::memory_order_relaxed);
}

LockCore::Step LockCore::AfterWaitLocked(AcquireRun& run, bool woken,
                                         const std::string& message) {
  EndWait(run);
  // A drop of the subscriber connection wakes every waiter so that it falls
  // back to its timer: no release ended that wait.
  const bool by_release = woken && !run.watch->DroppedSince(run.seen);
  Count(by_release ? counters_.waits_woken_by_notify : counters_.waits_woken_by_timer);
  if (run.fresh && !message.empty() &&
      TakeHandoffLocked(run.token, message, run.busy.sent_at_ns)) {
    return HeldLocked(run);
  }
  return Step{};  // not done: the next AcquireStep attempts again
}

absl::Status LockCore::GiveUpLocked(AcquireRun& run, GiveUp why) {
  const policy::Policy& p = *policy_;
  if (run.fresh && run.attempt > 0) WithdrawLocked(run.token);
  const std::string spent = absl::StrCat(
      run.attempt, run.attempt == 1 ? " attempt" : " attempts", " in ",
      absl::FormatDuration(absl::Trunc(Since(run.start_ns), absl::Milliseconds(1))));
  if (why == GiveUp::kCancelled) {
    return CancelledError(absl::StrCat("acquire of lock \"", key_, "\" (policy ", p.name,
                                       ") cancelled by the caller's stop request after ",
                                       spent, "; nothing is held"));
  }
  if (why == GiveUp::kDeadline) {
    return DeadlineExceededError(absl::StrCat(
        "acquire of lock \"", key_, "\" (policy ", p.name,
        "): the caller's deadline passed after ", spent,
        run.attempt > 0 ? absl::StrCat(" (", BusyText(run.busy), ")") : "",
        "; nothing is held"));
  }
  const std::string msg = absl::StrCat(BusyText(run.busy), "; gave up after ", spent);
  if (p.on_busy == policy::OnBusy::kSkip) return SkippedError(msg);
  if (p.on_busy != policy::OnBusy::kWait) return BusyError(msg);
  if (run.attempt >= run.max_attempts) {
    return AttemptsExhaustedError(
        absl::StrCat(msg, " (retry.max_attempts ", run.max_attempts, " reached)"));
  }
  return WaitTimedOutError(absl::StrCat(
      msg, " (wait.timeout ", absl::FormatDuration(p.wait.timeout), " passed)"));
}

}  // namespace lock::internal
