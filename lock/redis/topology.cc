#include "lock/redis/topology.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <optional>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lock/internal/observe.h"
#include "lock/redis/script.h"
#include "util/key_slot.h"
#include "util/status_macros.h"

namespace lock::redis {
namespace {

constexpr int kSlots = 16384;
// Enough for a MOVED, an ASK and a failover in one call; more means the
// cluster is reconfiguring faster than we can follow.
constexpr int kMaxRedirects = 5;

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381" → {slot, addr}.
bool ParseRedirect(absl::string_view text, int* slot, std::string* addr) {
  std::vector<absl::string_view> parts = absl::StrSplit(text, ' ');
  if (parts.size() < 3 || !absl::SimpleAtoi(parts[1], slot)) return false;
  *addr = std::string(parts[2]);
  if (absl::StartsWith(*addr, ":")) return false;  // unknown endpoint
  return true;
}

PoolOptions WithAddr(PoolOptions o, const std::string& addr) {
  o.connection.addr = addr;
  return o;
}

std::string Text(const redisReply& r) {
  if (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS) {
    return std::string(r.str, r.len);
  }
  if (r.type == REDIS_REPLY_INTEGER) return absl::StrCat(r.integer);
  return "";
}

}  // namespace

int KeySlot(absl::string_view key) { return ::util::KeySlot(key); }

absl::StatusOr<Topology::RunResult> Topology::Run(
    const scripts::EmbeddedScript& script,
    absl::Span<const absl::string_view> keys,
    absl::Span<const absl::string_view> args, const RunOptions& options,
    bool* outcome_unknown) {
  if (outcome_unknown != nullptr) *outcome_unknown = false;
  if (absl::Status s = CheckProcess(); !s.ok()) return s;
  const absl::string_view key = keys.empty() ? absl::string_view() : keys[0];
  std::string ask;
  absl::Status last;
  // Each step gets the per-step timeout, or less when the caller's deadline
  // is nearer; nothing is sent once it passed.
  const auto budget = [&options]() -> absl::StatusOr<absl::Duration> {
    if (options.deadline == std::chrono::steady_clock::time_point::max()) {
      return options.timeout;
    }
    const absl::Duration left =
        absl::FromChrono(options.deadline - std::chrono::steady_clock::now());
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError("the caller's deadline passed before the call");
    }
    return std::min(options.timeout, left);
  };
  // A slot being migrated answers TRYAGAIN to multi-key scripts until the
  // move completes; those waits get their own, longer budget.
  const auto tryagain_deadline =
      std::chrono::steady_clock::now() + 5 * absl::ToChronoNanoseconds(options.timeout);
  auto tryagain_pause = std::chrono::milliseconds(5);
  for (int hop = 0; hop < kMaxRedirects;) {
    ASSIGN_OR_RETURN(absl::Duration step, budget());
    ASSIGN_OR_RETURN(std::shared_ptr<ConnectionPool> pool,
                     ask.empty() ? PoolFor(key, step) : PoolAt(ask));
    ASSIGN_OR_RETURN(step, budget());
    absl::StatusOr<PooledConnection> borrowed = pool->Borrow(step);
    if (!borrowed.ok()) {
      // Could not even connect: the node may be dead (a master killed, not
      // gracefully failed over). Without this only a failure on an already
      // open connection asked for the new master, and a dead one that
      // refuses connections would be tried forever. Nothing was sent.
      Invalidate(key, nullptr);
      return borrowed.status();
    }
    PooledConnection conn = *std::move(borrowed);
    if (!ask.empty()) {
      absl::StatusOr<ReplyPtr> asking = conn->Command({"ASKING"}, step);
      if (!asking.ok()) return asking.status();
    }
    // ASKING covers the one command after it: an EVALSHA answered NOSCRIPT
    // by the importing node (which may never have seen the script) would
    // leave the EVAL fallback without it, and the pair would bounce between
    // ASK and NOSCRIPT. After ASKING the script text goes at once.
    ASSIGN_OR_RETURN(step, budget());
    absl::StatusOr<ReplyPtr> reply = RunScriptReply(*conn, script, keys, args, step,
                                                    options.always_eval || !ask.empty(),
                                                    options.deadline);
    if (!reply.ok()) {
      // A transport failure: the node may be gone (failover, slot moved).
      Invalidate(key, nullptr);
      if (outcome_unknown != nullptr) *outcome_unknown = conn->broken();
      return absl::Status(reply.status().code(),
                          absl::StrCat(reply.status().message(), " (script ",
                                       script.name, ")"));
    }
    const redisReply& r = **reply;
    if (r.type == REDIS_REPLY_ERROR) {
      const absl::string_view text = ReplyText(r);
      last = ServerError(text, pool->addr(), absl::StrCat("script ", script.name));
      // These mean "not executed here": safe to retry.
      const ErrorReply kind = ClassifyError(text);
      if (kind == ErrorReply::kTryAgain &&
          std::chrono::steady_clock::now() + tryagain_pause < tryagain_deadline) {
        std::this_thread::sleep_for(tryagain_pause);
        tryagain_pause = std::min(tryagain_pause * 2, std::chrono::milliseconds(100));
        continue;  // same node (after ASKING again if it was an ASK target)
      }
      if (kind == ErrorReply::kMoved || kind == ErrorReply::kAsk ||
          kind == ErrorReply::kReadOnly) {
        Retry next = Invalidate(key, &r);
        if (next.retry) {
          ask = std::move(next.ask);
          ++hop;
          continue;
        }
      }
      return last;
    }
    RunResult out{*std::move(reply), 0};
    if (options.wait_replicas > 0) {
      // WAIT blocks on the server for its own timeout: a nearer deadline
      // shortens that too, so the reply comes back before it.
      absl::Duration wait_timeout = options.wait_timeout, socket = options.timeout;
      if (options.deadline != std::chrono::steady_clock::time_point::max()) {
        const absl::Duration left =
            absl::FromChrono(options.deadline - std::chrono::steady_clock::now());
        wait_timeout = std::clamp(left - absl::Milliseconds(1), absl::Milliseconds(1),
                                  wait_timeout);
        socket = std::clamp(left, absl::Milliseconds(1), socket);
      }
      const WaitCall wait(options.wait_replicas, wait_timeout);
      absl::StatusOr<ReplyPtr> w = conn->Command(wait.argv(), socket + wait_timeout);
      if (w.ok() && (*w)->type == REDIS_REPLY_INTEGER) {
        out.replicas_acked = static_cast<int>((*w)->integer);
      }
    }
    return out;
  }
  return absl::UnavailableError(absl::StrCat(
      Describe(), ": gave up after ", kMaxRedirects,
      " redirects for key \"", key, "\": ", last.message()));
}

std::vector<absl::StatusOr<ReplyPtr>> RunOnEach(
    absl::Span<const std::shared_ptr<Topology>> homes,
    const scripts::EmbeddedScript& script, absl::Span<const absl::string_view> keys,
    absl::Span<const absl::string_view> args, absl::Duration timeout) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point deadline = Clock::now() + absl::ToChronoNanoseconds(timeout);
  // What is left of the call's budget; a reply already waiting in the
  // socket is still read when the budget ran out behind a slower home.
  const auto left = [&deadline] {
    return std::max(absl::FromChrono(deadline - Clock::now()), absl::Milliseconds(1));
  };
  const absl::string_view key = keys.empty() ? absl::string_view() : keys[0];
  const auto in_script = [&script](const absl::Status& s) {
    return absl::Status(s.code(), absl::StrCat(s.message(), " (script ", script.name, ")"));
  };
  const ScriptCall call(script, keys, args);

  std::vector<absl::StatusOr<ReplyPtr>> out(homes.size());
  struct InFlight {
    std::shared_ptr<ConnectionPool> pool;
    std::optional<PooledConnection> conn;
  };
  std::vector<InFlight> flight(homes.size());
  const auto send = [&](size_t i, PooledConnection conn) {
    absl::Status sent = conn->Append(call.argv());
    if (sent.ok()) sent = conn->Send(left());
    if (!sent.ok()) {
      homes[i]->Invalidate(key, nullptr);
      out[i] = in_script(sent);
      return;
    }
    flight[i].conn.emplace(std::move(conn));
  };
  // Requests go first to the masters with a ready connection; the others
  // are connected to in parallel, each bounded by the whole budget: one
  // master that swallows connections (a blackholed host) must not use up
  // the time of the others, or a live quorum is refused.
  std::vector<size_t> unconnected, busy;
  for (size_t i = 0; i < homes.size(); ++i) {
    if (absl::Status s = homes[i]->CheckProcess(); !s.ok()) {
      out[i] = s;
      continue;
    }
    absl::StatusOr<std::shared_ptr<ConnectionPool>> pool = homes[i]->PoolFor(key, left());
    if (!pool.ok()) {
      out[i] = pool.status();
      continue;
    }
    flight[i].pool = *std::move(pool);
    std::optional<PooledConnection> idle = flight[i].pool->TryBorrowIdle();
    if (idle.has_value()) {
      send(i, *std::move(idle));
    } else if (flight[i].pool->open_connections() == 0) {
      unconnected.push_back(i);  // has to connect first
    } else {
      busy.push_back(i);  // connected, every connection lent out: wait here
    }
  }
  const auto read_in_flight = [&] {
    for (size_t i = 0; i < homes.size(); ++i) {
      if (!flight[i].conn.has_value()) continue;
      absl::StatusOr<ReplyPtr> reply = (*flight[i].conn)->ReadReply(left());
      if (!reply.ok()) {
        homes[i]->Invalidate(key, nullptr);
        out[i] = in_script(reply.status());
        continue;
      }
      if ((*reply)->type != REDIS_REPLY_ERROR) {
        out[i] = *std::move(reply);
        continue;
      }
      const absl::string_view text = ReplyText(**reply);
      if (NotExecutedHere(text)) {
        // The full path (EVAL, redirects, waits) takes it from here.
        flight[i].conn.reset();
        absl::StatusOr<Topology::RunResult> r =
            homes[i]->Run(script, keys, args, {.timeout = left()});
        out[i] = r.ok() ? absl::StatusOr<ReplyPtr>(std::move(r->reply))
                        : absl::StatusOr<ReplyPtr>(r.status());
        continue;
      }
      out[i] = ServerError(text, flight[i].pool->addr(), absl::StrCat("script ", script.name));
    }
  };
  // The masters that must connect first are each run on their own thread,
  // within the whole budget, while this thread serves the others: a master
  // that swallows connections delays only itself. Each task writes only its
  // own master's slot of `out`. Short-lived threads, joined before
  // returning: a master has no open connection only on the first calls or
  // after a failure, so a lock operation on a healthy quorum starts none,
  // and nothing outlives a fork.
  const absl::Duration budget = left();
  std::vector<std::thread> connecting;
  connecting.reserve(unconnected.size());
  for (size_t i : unconnected) {
    connecting.emplace_back([&, i] {
      absl::StatusOr<Topology::RunResult> r =
          homes[i]->Run(script, keys, args, {.timeout = budget});
      out[i] = r.ok() ? absl::StatusOr<ReplyPtr>(std::move(r->reply))
                      : absl::StatusOr<ReplyPtr>(r.status());
    });
  }
  // Connected masters whose connections are all lent out: their pool hands
  // one back within the calls in flight, so waiting for it here costs no
  // thread.
  for (size_t i : busy) {
    absl::StatusOr<PooledConnection> conn = flight[i].pool->Borrow(left());
    if (!conn.ok()) {
      out[i] = conn.status();
      continue;
    }
    send(i, *std::move(conn));
  }
  read_in_flight();
  for (std::thread& t : connecting) t.join();
  return out;
}

// ---- standalone -------------------------------------------------------------

StandaloneTopology::StandaloneTopology(PoolOptions options)
    : pool_(std::make_shared<ConnectionPool>(std::move(options))) {}

std::string StandaloneTopology::Describe() const {
  return absl::StrCat("standalone ", pool_->addr());
}

// ---- sentinel ---------------------------------------------------------------

SentinelTopology::SentinelTopology(SentinelOptions options)
    : options_(std::move(options)) {}

std::string SentinelTopology::Describe() const {
  return absl::StrCat("sentinel master \"", options_.master_name, "\" via ",
                      absl::StrJoin(options_.sentinels, ","));
}

absl::StatusOr<std::shared_ptr<ConnectionPool>> SentinelTopology::Discover(
    absl::Duration timeout) {
  std::vector<std::string> problems;
  for (const std::string& sentinel : options_.sentinels) {
    ConnectionOptions s{.addr = sentinel,
                        .connect_timeout = options_.data.connection.connect_timeout,
                        .username = options_.sentinel_username,
                        .password = options_.sentinel_password,
                        .tls = options_.data.connection.tls};
    absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(s);
    if (!conn.ok()) {
      problems.push_back(std::string(conn.status().message()));
      continue;
    }
    absl::StatusOr<ReplyPtr> r = (*conn)->Command(
        {"SENTINEL", "get-master-addr-by-name", options_.master_name}, timeout);
    if (!r.ok() || (*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2) {
      problems.push_back(r.ok() ? absl::StrCat("sentinel ", sentinel,
                                               " does not know master \"",
                                               options_.master_name, "\"")
                                : std::string(r.status().message()));
      continue;
    }
    const std::string addr =
        absl::StrCat(Text(*(*r)->element[0]), ":", Text(*(*r)->element[1]));
    // Sentinels can lag a failover: only a node that says it is the master
    // is one (a demoted master answers writes with READONLY).
    PoolOptions data = WithAddr(options_.data, addr);
    absl::StatusOr<std::unique_ptr<Connection>> node = Connection::Open(data.connection);
    absl::StatusOr<ReplyPtr> role =
        node.ok() ? (*node)->Command({"ROLE"}, timeout) : node.status();
    if (!role.ok()) {
      problems.push_back(std::string(role.status().message()));
      continue;
    }
    if ((*role)->type != REDIS_REPLY_ARRAY || (*role)->elements == 0 ||
        Text(*(*role)->element[0]) != "master") {
      problems.push_back(absl::StrCat("sentinel ", sentinel, " names ", addr,
                                      " as master, but it is not (yet) one"));
      continue;
    }
    if (master_ == nullptr || master_->addr() != addr) {
      master_ = std::make_shared<ConnectionPool>(std::move(data));
    }
    if (!last_master_.empty() && last_master_ != addr) {
      internal::Log(LogSeverity::kWarning, "sentinel_failover",
                    absl::StrCat("sentinel master \"", options_.master_name, "\" moved from ",
                                 last_master_, " to ", addr, " (named by sentinel ", sentinel,
                                 ")"),
                    {.redis = Describe()});
    }
    last_master_ = addr;
    return master_;
  }
  return absl::UnavailableError(absl::StrCat(
      Describe(), ": no sentinel named a reachable master: ",
      absl::StrJoin(problems, "; ")));
}

absl::StatusOr<std::shared_ptr<ConnectionPool>> SentinelTopology::PoolFor(
    absl::string_view, absl::Duration timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  if (master_ != nullptr) return master_;
  return Discover(timeout);
}

absl::StatusOr<std::vector<std::shared_ptr<ConnectionPool>>> SentinelTopology::Masters(
    absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::shared_ptr<ConnectionPool> master, PoolFor("", timeout));
  return std::vector<std::shared_ptr<ConnectionPool>>{std::move(master)};
}

absl::StatusOr<std::shared_ptr<ConnectionPool>> SentinelTopology::PoolAt(
    const std::string&) {
  return PoolFor("", options_.data.connection.connect_timeout);
}

Topology::Retry SentinelTopology::Invalidate(absl::string_view,
                                             const redisReply* error_reply) {
  // A dead connection or READONLY both hint at a failover: ask again.
  if (error_reply == nullptr ||
      ClassifyError(ReplyText(*error_reply)) == ErrorReply::kReadOnly) {
    std::lock_guard<std::mutex> lock(mu_);
    master_ = nullptr;
    return {.retry = error_reply != nullptr};
  }
  return {};
}

absl::StatusOr<ConnectionOptions> SentinelTopology::SubscriberOptions(
    absl::Duration timeout) {
  ASSIGN_OR_RETURN(std::shared_ptr<ConnectionPool> pool, PoolFor("", timeout));
  return pool->options().connection;
}

// ---- cluster ----------------------------------------------------------------

ClusterTopology::ClusterTopology(ClusterOptions options)
    : options_(std::move(options)), slot_owner_(kSlots) {}

std::string ClusterTopology::Describe() const {
  return absl::StrCat("cluster via ", absl::StrJoin(options_.seeds, ","));
}

std::shared_ptr<ConnectionPool> ClusterTopology::PoolAtLocked(const std::string& addr) {
  std::shared_ptr<ConnectionPool>& pool = pools_[addr];
  if (pool == nullptr) pool = std::make_shared<ConnectionPool>(WithAddr(options_.data, addr));
  return pool;
}

absl::Status ClusterTopology::RefreshLocked(absl::Duration timeout) {
  // Ask the node that answered last time first, then the others we know,
  // then the seeds; nodes that did not answer when last asked go last. A
  // hung master would otherwise cost every refresh its full timeout, with
  // mu_ held: every route, the live masters' renewals among them, waits.
  std::vector<std::string> candidates;
  const auto add = [&](const std::string& addr) {
    if (std::find(candidates.begin(), candidates.end(), addr) == candidates.end()) {
      candidates.push_back(addr);
    }
  };
  if (!answered_last_.empty()) add(answered_last_);
  for (const auto& [addr, pool] : pools_) add(addr);
  for (const std::string& s : options_.seeds) add(s);
  std::stable_partition(candidates.begin(), candidates.end(),
                        [&](const std::string& addr) { return !silent_.contains(addr); });
  std::vector<std::string> problems;
  for (const std::string& addr : candidates) {
    absl::StatusOr<PooledConnection> conn = PoolAtLocked(addr)->Borrow(timeout);
    absl::StatusOr<ReplyPtr> r =
        conn.ok() ? (*conn)->Command({"CLUSTER", "SLOTS"}, timeout) : conn.status();
    if (!r.ok() || (*r)->type != REDIS_REPLY_ARRAY) {
      problems.push_back(r.ok() ? absl::StrCat(addr, ": bad CLUSTER SLOTS reply")
                                : std::string(r.status().message()));
      silent_.insert(addr);
      continue;
    }
    silent_.erase(addr);
    answered_last_ = addr;
    std::fill(slot_owner_.begin(), slot_owner_.end(), std::string());
    absl::flat_hash_set<std::string> masters;
    for (size_t i = 0; i < (*r)->elements; ++i) {
      const redisReply& range = *(*r)->element[i];
      if (range.type != REDIS_REPLY_ARRAY || range.elements < 3 ||
          range.element[2]->type != REDIS_REPLY_ARRAY ||
          range.element[2]->elements < 2) {
        continue;
      }
      const int64_t first = range.element[0]->integer;
      const int64_t last = range.element[1]->integer;
      const redisReply& master = *range.element[2];
      std::string host = Text(*master.element[0]);
      if (host.empty()) host = addr.substr(0, addr.rfind(':'));  // "" = same host
      const std::string owner = absl::StrCat(host, ":", Text(*master.element[1]));
      masters.insert(owner);
      for (int64_t s = std::max<int64_t>(0, first); s <= last && s < kSlots; ++s) {
        slot_owner_[s] = owner;
      }
    }
    stale_ = false;
    const int64_t served = kSlots - std::count(slot_owner_.begin(), slot_owner_.end(), "");
    internal::Log(LogSeverity::kInfo, "cluster_slots_refreshed",
                  absl::StrCat("slot map read from ", addr, ": ", masters.size(),
                               masters.size() == 1 ? " master serves " : " masters serve ",
                               served, " of ", kSlots, " slots"),
                  {.redis = Describe()});
    return absl::OkStatus();
  }
  return absl::UnavailableError(absl::StrCat(Describe(), ": no node answered CLUSTER SLOTS: ",
                                             absl::StrJoin(problems, "; ")));
}

absl::StatusOr<std::shared_ptr<ConnectionPool>> ClusterTopology::PoolFor(
    absl::string_view key, absl::Duration timeout) {
  const int slot = KeySlot(key);
  std::lock_guard<std::mutex> lock(mu_);
  if (stale_ || slot_owner_[slot].empty()) RETURN_IF_ERROR(RefreshLocked(timeout));
  if (slot_owner_[slot].empty()) {
    return absl::UnavailableError(absl::StrCat(Describe(), ": hash slot ", slot,
                                               " has no master (cluster incomplete)"));
  }
  return PoolAtLocked(slot_owner_[slot]);
}

absl::StatusOr<std::vector<std::shared_ptr<ConnectionPool>>> ClusterTopology::Masters(
    absl::Duration timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stale_) RETURN_IF_ERROR(RefreshLocked(timeout));
  std::vector<std::shared_ptr<ConnectionPool>> out;
  std::vector<std::string> seen;
  for (const std::string& owner : slot_owner_) {
    if (owner.empty() || std::find(seen.begin(), seen.end(), owner) != seen.end()) continue;
    seen.push_back(owner);
    out.push_back(PoolAtLocked(owner));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<ConnectionPool>> ClusterTopology::PoolAt(
    const std::string& addr) {
  std::lock_guard<std::mutex> lock(mu_);
  return PoolAtLocked(addr);
}

Topology::Retry ClusterTopology::Invalidate(absl::string_view,
                                            const redisReply* error_reply) {
  std::lock_guard<std::mutex> lock(mu_);
  stale_ = true;  // refresh the whole map on the next call
  if (error_reply == nullptr) return {};
  int slot = 0;
  std::string addr;
  if (ParseRedirect(ReplyText(*error_reply), &slot, &addr) && slot >= 0 &&
      slot < kSlots) {
    if (ClassifyError(ReplyText(*error_reply)) == ErrorReply::kAsk) {
      return {.retry = true, .ask = addr};  // one-off, the map stays
    }
    slot_owner_[slot] = addr;  // MOVED: permanent
  }
  return {.retry = true};  // MOVED, or READONLY from a demoted node
}

absl::StatusOr<ConnectionOptions> ClusterTopology::SubscriberOptions(
    absl::Duration timeout) {
  // Classic PUBLISH reaches every node of a cluster: any node will do.
  std::lock_guard<std::mutex> lock(mu_);
  if (stale_) RETURN_IF_ERROR(RefreshLocked(timeout));
  for (const std::string& owner : slot_owner_) {
    if (!owner.empty()) return WithAddr(options_.data, owner).connection;
  }
  return WithAddr(options_.data, options_.seeds.front()).connection;
}

}  // namespace lock::redis
