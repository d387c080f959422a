// lockctl status, list and release: looking at and cleaning up the locks of
// one policy in its Redis. Everything goes through the library's own scripts
// (inspect, owner-checked release) except the SCAN that finds the keys.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lock/internal/keys.h"
#include "lock/internal/kind_calls.h"
#include "lock/internal/primitive_calls.h"
#include "lock/redis/reply.h"
#include "tools/lockctl/cli.h"
#include "tools/lockctl/commands.h"
#include "tools/lockctl/kinds.h"
#include "tools/lockctl/locks.h"

ABSL_FLAG(std::string, match, "*",
          "PATTERN: Redis glob over the key without prefix");
ABSL_FLAG(int, limit, 1000, "N: show at most N locks");
ABSL_FLAG(std::string, owner, "",
          "TOKEN: release only if TOKEN holds the lock");
ABSL_FLAG(bool, force, false,
          "release the lock whoever holds it (asks first, unless --yes)");
ABSL_FLAG(bool, yes, false,
          "do not ask (required when stdin is not a terminal)");

namespace lockctl {
namespace {

// "held", "free", "released (kept for hold_at_least)", and on a Redlock
// target whether a quorum of masters agrees: "held (3 of 3 masters, quorum
// 2)", "no quorum (1 of 3 masters, quorum 2)".
std::string MutexStateName(const MutexView& v) {
  if (v.masters.size() == 1) return StateName(v.lock.state);
  const std::string count =
      absl::StrCat(" (", v.agreeing, " of ", v.masters.size(), " masters, quorum ", v.quorum, ")");
  if (v.agreeing == 0) return "free" + count;
  return (v.quorum_holds() ? StateName(v.lock.state) : "no quorum") + count;
}

// One master's line in a Redlock status: "held by this owner (29.9s left)".
std::string MasterText(const MutexView& v, const MasterState& m) {
  if (!m.error.ok()) return absl::StrCat("no answer: ", m.error.message());
  if (!m.state.held) return "free";
  const std::string whose = m.state.owner_token == v.lock.state.owner_token
                                ? "this owner"
                                : m.state.owner_token;
  return absl::StrCat(m.state.hold_count == 0 ? "kept for hold_at_least, by " : "held by ",
                      whose, " (", FormatTtl(m.state.remaining), " left)");
}

nlohmann::json MutexJson(const PolicyContext& ctx, const MutexView& v) {
  nlohmann::json j = LockViewJson(v.lock);
  if (v.masters.size() == 1) {
    // A standalone target's output is as it always was.
    if (ctx.reach->mode() != policy::RedisMode::kStandalone) j["master"] = v.masters[0].addr;
    return j;
  }
  j["held"] = v.quorum_holds() && v.lock.state.hold_count > 0;
  j["quorum"] = v.quorum;
  j["masters_holding"] = v.agreeing;
  j["masters"] = nlohmann::json::array();
  for (const MasterState& m : v.masters) {
    nlohmann::json mj = {{"addr", m.addr}};
    if (!m.error.ok()) {
      mj["error"] = std::string(m.error.message());
    } else {
      mj["state"] = m.state.held ? (m.state.hold_count == 0 ? "kept" : "held") : "free";
      if (m.state.held) {
        mj["owner"] = m.state.owner_token;
        mj["ttl_ms"] = absl::ToInt64Milliseconds(m.state.remaining);
        mj["hold_count"] = m.state.hold_count;
      }
    }
    j["masters"].push_back(std::move(mj));
  }
  return j;
}

std::string FenceText(const MutexView& v) {
  const lock::LockState& st = v.lock.state;
  if (v.masters.size() > 1 && st.last_fencing_token == 0) {
    return "none (Redlock targets issue no fencing tokens)";
  }
  if (!st.held) return absl::StrCat("last issued ", st.last_fencing_token);
  return absl::StrCat(
      st.fencing_token,
      st.hold_count == 0 ? " (the released hold)" : " (this hold)",
      "; last issued ", st.last_fencing_token);
}

void PrintLockText(const MutexView& v) {
  const lock::LockState& st = v.lock.state;
  std::vector<std::vector<std::string>> rows = {
      {"lock", absl::StrCat(v.lock.policy, " / ", v.lock.key)},
      {"redis key", absl::StrCat(v.lock.redis_key, " on ", v.where)},
      {"state", MutexStateName(v)},
  };
  if (st.held) {
    rows.push_back({"owner", st.owner_token});
    const OwnerParts o = SplitOwner(st.owner_token);
    if (!o.host.empty()) {
      rows.push_back({"  host", o.host});
      rows.push_back({"  pid", o.pid});
    }
    rows.push_back({"ttl left", FormatTtl(st.remaining)});
    rows.push_back({"reentry count", absl::StrCat(st.hold_count)});
  }
  rows.push_back({"fencing token", FenceText(v)});
  if (v.masters.size() > 1) {
    for (const MasterState& m : v.masters) {
      rows.push_back({absl::StrCat("master ", m.addr), MasterText(v, m)});
    }
  }
  std::cout << RenderTable(rows);
}


// "under policy jobs (prefix "job:", match "*") on 127.0.0.1:6379 db 0".
std::string Scope(const PolicyContext& ctx, const std::string& match) {
  return absl::StrCat("under policy ", ctx.policy->name, " (prefix \"",
                      ctx.policy->key_prefix, "\", match \"", match, "\") on ",
                      ctx.Where());
}

// `list`'s text around the table, and the frame of its JSON.
std::string ListFooter(const PolicyContext& ctx, size_t n, size_t not_shown,
                       int limit, const std::string& match) {
  if (n == 0) return absl::StrCat("no locks held ", Scope(ctx, match), "\n");
  std::string out = absl::StrCat(n, n == 1 ? " lock " : " locks ", Scope(ctx, match), "\n");
  if (not_shown > 0) {
    absl::StrAppend(&out, not_shown, " more not shown (--limit ", limit, ")\n");
  }
  return out;
}
nlohmann::json ListJson(const PolicyContext& ctx, const std::string& match,
                        size_t not_shown) {
  return {{"policy", ctx.policy->name},
          {"key_prefix", ctx.policy->key_prefix},
          {"match", match},
          {"redis", ctx.Where()},
          {"locks", nlohmann::json::array()},
          {"not_shown", not_shown}};
}

// list for the kinds beyond the mutex: one line per lock that holds or
// queues anything, with its summary.
int ListPrimitives(const PolicyContext& ctx,
                   const std::vector<std::string>& keys,
                   const std::string& match, int limit) {
  std::vector<PrimitiveView> locks;
  size_t not_shown = 0;
  for (const std::string& key : keys) {
    absl::StatusOr<PrimitiveView> v = InspectPrimitive(ctx, key);
    if (!v.ok()) return Fail(v.status());
    if (!IsActive(*v)) continue;  // released or expired since the SCAN
    if (static_cast<int>(locks.size()) >= limit) {
      ++not_shown;
      continue;
    }
    locks.push_back(*std::move(v));
  }
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json out = ListJson(ctx, match, not_shown);
    out["kind"] = policy::LockKindName(ctx.policy->kind);
    for (const PrimitiveView& v : locks) out["locks"].push_back(PrimitiveJson(v));
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (!locks.empty()) {
    std::vector<std::vector<std::string>> rows = {{"KEY", "KIND", "SUMMARY"}};
    for (const PrimitiveView& v : locks) {
      rows.push_back({v.key, std::string(policy::LockKindName(v.kind)), Summary(v)});
    }
    std::cout << RenderTable(rows);
  }
  std::cout << ListFooter(ctx, locks.size(), not_shown, limit, match);
  return kExitOk;
}

// Asks on the terminal before a forced release; true when confirmed.
bool Confirm(const std::string& what,
             const std::vector<std::vector<std::string>>& rows) {
  std::cerr << "about to force-release " << what << "\n"
            << RenderTable(rows)
            << "Its holder loses the lock even if it is still working. "
               "Release it? [y/N] "
            << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer != "y" && answer != "Y" && answer != "yes") {
    std::cerr << "lockctl: not released\n";
    return false;
  }
  return true;
}

// The audit trail of a forced release: who removed whose hold, on stderr so
// that it reaches the operator's log even when stdout is parsed. `role` is
// left out for a mutex (its only hold is the owner's).
void LogForceRelease(const PolicyContext& ctx, const std::string& key,
                     const std::string& redis_key, const std::string& addr,
                     const std::string& role, const std::string& owner, int64_t fence,
                     int64_t count, absl::Duration ttl_left) {
  const char* user = std::getenv("USER");
  char host[256] = {};
  (void)gethostname(host, sizeof(host) - 1);
  std::cerr << "lockctl: "
            << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(),
                                absl::UTCTimeZone())
            << " force-release policy=" << ctx.policy->name << " key=" << key
            << " redis_key=" << redis_key << " redis=" << addr
            << " db=" << ctx.target->db
            << (role.empty() ? "" : " role=") << role << " owner=" << owner
            << " fence=" << fence << " count=" << count
            << " ttl_left=" << FormatTtl(ttl_left)
            << " by=" << (user != nullptr ? user : "?") << "@" << host
            << " pid=" << getpid() << "\n";
}

// release for the kinds beyond the mutex: `owner` gives back that token's
// hold (a permit, a reader, the writer, the fair owner) or takes it out of
// the line (a writer's claim, a fair waiter); --force gives back every hold
// it read, each checked against its token, so a hold taken in between is
// never removed.
int ReleasePrimitive(const PolicyContext& ctx, const std::string& key,
                     const std::optional<std::string>& owner) {
  absl::StatusOr<PrimitiveView> before = InspectPrimitive(ctx, key);
  if (!before.ok()) return Fail(before.status());
  const bool force = !owner.has_value();
  const std::string what =
      absl::StrCat(ctx.policy->name, " / ", key, " (", before->redis_key, " on ",
                   ctx.reach->Where(before->addr, before->redis_key), ")");
  std::vector<Participant> targets;
  for (const Participant& p : Participants(*before)) {
    if (force ? p.holds() : p.token == *owner) targets.push_back(p);
  }
  if (targets.empty()) {
    if (force) {
      std::cerr << "lockctl: " << what << " is not held; nothing to release\n";
    } else {
      std::cerr << "lockctl: " << what << " is not held by owner " << *owner
                << " (no hold or place of that token); nothing was deleted; it is "
                << Summary(*before) << "\n";
    }
    return kExitRefused;
  }
  if (force && !absl::GetFlag(FLAGS_yes)) {
    std::vector<std::vector<std::string>> rows;
    for (const Participant& p : targets) rows.push_back({"  " + RoleName(p.role), Describe(p)});
    if (!Confirm(what, rows)) return kExitRefused;
  }

  std::vector<Participant> released, gone;
  for (const Participant& p : targets) {
    absl::StatusOr<bool> r = ReleaseParticipant(ctx, key, p);
    if (!r.ok()) return Fail(r.status());
    (*r ? released : gone).push_back(p);
    if (*r && force) {
      LogForceRelease(ctx, key, before->redis_key, before->addr, RoleName(p.role), p.token,
                      p.fence, p.hold_count, absl::Milliseconds(p.ms_left));
    }
  }
  // A fair release tells the head of the queue that it may take the lock.
  std::string told;
  if (before->kind == policy::LockKind::kFair && !before->fair.queue.empty() &&
      !released.empty() && released[0].role == Participant::kOwner) {
    told = before->fair.queue[0].token;
  }
  for (const Participant& p : gone) {
    std::cerr << "lockctl: " << what << ": the " << RoleName(p.role) << " " << p.token
              << " was released or expired after it was inspected; nothing of it was "
                 "deleted\n";
  }
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json out = {{"released", gone.empty()},
                          {"forced", force},
                          {"policy", ctx.policy->name},
                          {"key", key},
                          {"kind", policy::LockKindName(ctx.policy->kind)},
                          {"redis_key", before->redis_key},
                          {"removed", nlohmann::json::array()}};
    if (owner) out["owner"] = *owner;
    for (const Participant& p : released) out["removed"].push_back(ParticipantJson(p));
    if (!told.empty()) out["next_told"] = told;
    std::cout << out.dump(2) << "\n";
  } else {
    for (const Participant& p : released) {
      std::cout << (force ? "force-released " : "released ") << what << ": removed "
                << Describe(p) << "\n";
    }
    if (!told.empty()) std::cout << "the next in line, " << told << ", was told\n";
  }
  return gone.empty() ? kExitOk : kExitRefused;
}

// What a mutex release did on one master.
struct MasterRelease {
  std::string addr;
  std::string token;  // the owner released there (--force: the one read there)
  absl::StatusOr<bool> released = false;
  lock::LockState before;  // --force: what was read there
};

// Releases `token` on every master where it holds the lock (--owner), or on
// each master the owner read there (--force, from `before`), owner-checked
// by the release script, so a hold taken in between is never removed.
std::vector<MasterRelease> ReleaseOnMasters(const PolicyContext& ctx, const MutexView& before,
                                            const std::string& key,
                                            const std::optional<std::string>& owner) {
  const lock::internal::LockKeys keys(ctx.policy->key_prefix, key);
  std::vector<MasterRelease> out;
  for (size_t home = 0; home < before.masters.size(); ++home) {
    const MasterState& m = before.masters[home];
    if (!owner.has_value() && (!m.error.ok() || !m.state.held)) continue;
    MasterRelease& r = out.emplace_back();
    r.addr = m.addr;
    r.token = owner.value_or(m.state.owner_token);
    r.before = m.state;
    absl::StatusOr<Answer> a = ctx.reach->Run(home, lock::internal::MutexRelease(keys, r.token));
    absl::StatusOr<int64_t> n =
        a.ok() ? lock::internal::ParseIntegerReply(*a->reply, "release") : a.status();
    r.released = n.ok() ? absl::StatusOr<bool>(*n >= 1) : absl::StatusOr<bool>(n.status());
    if (a.ok()) r.addr = a->addr;
  }
  return out;
}

// release of a mutex on a Redlock target: every master reports for itself.
// Exit 0 when released somewhere and no master failed, 1 when nothing was
// released, 3 when a master did not answer.
int ReportRedlockRelease(const PolicyContext& ctx, const MutexView& before,
                         const std::string& what,
                         const std::vector<MasterRelease>& results,
                         bool force) {
  int released = 0;
  bool failed = false;
  nlohmann::json masters = nlohmann::json::array();
  for (const MasterRelease& r : results) {
    nlohmann::json mj = {{"addr", r.addr}, {"owner", r.token}};
    std::string line;
    if (!r.released.ok()) {
      failed = true;
      mj["error"] = std::string(r.released.status().message());
      line = absl::StrCat("no answer: ", r.released.status().message());
    } else if (*r.released) {
      ++released;
      mj["released"] = true;
      line = absl::StrCat(force ? "force-released owner " : "released owner ", r.token);
      if (force) {
        LogForceRelease(ctx, before.lock.key, before.lock.redis_key, r.addr, "", r.token,
                        r.before.fencing_token, r.before.hold_count, r.before.remaining);
      }
    } else {
      mj["released"] = false;
      line = absl::StrCat("not held by ", r.token, " there; nothing deleted");
    }
    masters.push_back(std::move(mj));
    if (!absl::GetFlag(FLAGS_json)) {
      std::cout << "redlock master " << r.addr << ": " << line << "\n";
    }
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << nlohmann::json({{"released", released > 0},
                                 {"forced", force},
                                 {"policy", ctx.policy->name},
                                 {"key", before.lock.key},
                                 {"redis_key", before.lock.redis_key},
                                 {"quorum", before.quorum},
                                 {"masters_released", released},
                                 {"masters", std::move(masters)}})
                     .dump(2)
              << "\n";
  } else {
    std::cout << what << ": released on " << released << " of " << before.masters.size()
              << " masters (quorum " << before.quorum << ")\n";
  }
  if (failed) return kExitRedis;
  return released > 0 ? kExitOk : kExitRefused;
}

int ReleaseMutex(const PolicyContext& ctx, const std::string& key,
                 const std::optional<std::string>& owner) {
  const bool force = !owner.has_value();
  absl::StatusOr<MutexView> before = InspectMutex(ctx, key);
  if (!before.ok()) return Fail(before.status());
  const std::string what = absl::StrCat(ctx.policy->name, " / ", key, " (",
                                        before->lock.redis_key, " on ", before->where, ")");
  const lock::LockState& st = before->lock.state;
  const bool redlock = before->masters.size() > 1;
  if (force) {
    if (!st.held) {
      std::cerr << "lockctl: " << what << " is not held; nothing to release\n";
      return kExitRefused;
    }
    std::vector<std::vector<std::string>> rows = {
        {"  owner", st.owner_token},
        {"  state", MutexStateName(*before)},
        {"  fencing token", absl::StrCat(st.fencing_token)},
        {"  ttl left", FormatTtl(st.remaining)}};
    if (redlock) {
      rows.resize(2);
      for (const MasterState& m : before->masters) {
        rows.push_back({absl::StrCat("  master ", m.addr), MasterText(*before, m)});
      }
    }
    if (!absl::GetFlag(FLAGS_yes) && !Confirm(what, rows)) return kExitRefused;
  }
  const std::vector<MasterRelease> results = ReleaseOnMasters(ctx, *before, key, owner);
  if (redlock) return ReportRedlockRelease(ctx, *before, what, results, force);

  const MasterRelease& r = results.at(0);
  if (!r.released.ok()) return Fail(r.released.status());
  const std::string& token = r.token;
  if (!*r.released) {
    absl::StatusOr<MutexView> now = InspectMutex(ctx, key);
    std::string current = "unknown";
    if (now.ok()) {
      current = now->lock.state.held ? absl::StrCat("held by ", now->lock.state.owner_token)
                                     : "free";
    }
    if (force) {
      std::cerr << "lockctl: " << what
                << " changed hands after it was inspected (owner " << token
                << "); nothing was deleted; it is now " << current
                << "; run again to release the new holder\n";
    } else {
      std::cerr << "lockctl: " << what << " is not held by owner " << token
                << "; nothing was deleted; it is " << current << "\n";
    }
    return kExitRefused;
  }
  if (force) {
    LogForceRelease(ctx, key, before->lock.redis_key, r.addr, /*role=*/"", st.owner_token,
                    st.fencing_token, st.hold_count, st.remaining);
  }
  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json out = {{"released", true},
                          {"forced", force},
                          {"policy", ctx.policy->name},
                          {"key", key},
                          {"redis_key", before->lock.redis_key},
                          {"owner", token}};
    if (force) {
      out["fencing_token"] = st.fencing_token;
      out["hold_count"] = st.hold_count;
      out["ttl_ms"] = absl::ToInt64Milliseconds(st.remaining);
    }
    std::cout << out.dump(2) << "\n";
  } else if (force) {
    std::cout << "force-released " << what << ": removed owner "
              << st.owner_token << " (fencing token " << st.fencing_token
              << ", reentry count " << st.hold_count << ", "
              << FormatTtl(st.remaining) << " left)\n";
  } else {
    std::cout << "released " << what << " held by " << token << "\n";
  }
  return kExitOk;
}

int Status(const std::vector<std::string>& positional) {
  if (positional.size() != 2)
    return UsageError("status", "status needs POLICY and KEY");
  const std::string& key = positional[1];
  absl::StatusOr<std::string> config = ConfigPath();
  if (!config.ok()) {
    return UsageError("status", std::string(config.status().message()));
  }
  absl::StatusOr<PolicyContext> ctx = OpenPolicy(*config, positional[0]);
  if (!ctx.ok()) return Fail(ctx.status());
  if (ctx->policy->kind != policy::LockKind::kMutex) {
    absl::StatusOr<PrimitiveView> v = InspectPrimitive(*ctx, key);
    if (!v.ok()) return Fail(v.status());
    if (absl::GetFlag(FLAGS_json)) {
      std::cout << PrimitiveJson(*v).dump(2) << "\n";
    } else {
      std::cout << StatusText(*v, ctx->reach->Where(v->addr, v->redis_key));
    }
    return kExitOk;
  }
  absl::StatusOr<MutexView> v = InspectMutex(*ctx, key);
  if (!v.ok()) return Fail(v.status());
  if (absl::GetFlag(FLAGS_json)) {
    std::cout << MutexJson(*ctx, *v).dump(2) << "\n";
  } else {
    PrintLockText(*v);
  }
  return kExitOk;
}

int List(const std::vector<std::string>& positional) {
  if (positional.size() != 1)
    return UsageError("list", "list needs one POLICY");
  const int limit = absl::GetFlag(FLAGS_limit);
  if (absl::Status s = CheckFlag(FLAGS_limit, limit >= 1, "a positive number");
      !s.ok()) {
    return UsageError("list", std::string(s.message()));
  }
  const std::string match = absl::GetFlag(FLAGS_match);
  if (match.empty() || match.find_first_of("{}") != std::string::npos) {
    return UsageError("list", "--match must be non-empty and without braces");
  }
  absl::StatusOr<std::string> config = ConfigPath();
  if (!config.ok()) {
    return UsageError("list", std::string(config.status().message()));
  }
  absl::StatusOr<PolicyContext> ctx = OpenPolicy(*config, positional[0]);
  if (!ctx.ok()) return Fail(ctx.status());

  absl::StatusOr<std::vector<std::string>> keys = ScanLockKeys(*ctx, match);
  if (!keys.ok()) return Fail(keys.status());
  if (ctx->policy->kind != policy::LockKind::kMutex) {
    return ListPrimitives(*ctx, *keys, match, limit);
  }
  std::vector<MutexView> locks;
  size_t not_shown = 0;
  for (const std::string& key : *keys) {
    absl::StatusOr<MutexView> v = InspectMutex(*ctx, key);
    if (!v.ok()) return Fail(v.status());
    if (!v->lock.state.held) continue;  // released since the SCAN
    if (static_cast<int>(locks.size()) >= limit) {
      ++not_shown;
      continue;
    }
    locks.push_back(*std::move(v));
  }

  if (absl::GetFlag(FLAGS_json)) {
    nlohmann::json out = ListJson(*ctx, match, not_shown);
    for (const MutexView& v : locks) out["locks"].push_back(MutexJson(*ctx, v));
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (!locks.empty()) {
    const bool redlock = ctx->reach->redlock();
    std::vector<std::vector<std::string>> rows = {
        {"KEY", "STATE", "HOST", "PID", "TTL", "COUNT", "FENCE", "OWNER"}};
    // A Redlock lock is held only where a quorum of masters agrees.
    if (redlock) rows[0].insert(rows[0].begin() + 2, "MASTERS");
    for (const MutexView& v : locks) {
      const lock::LockState& st = v.lock.state;
      const OwnerParts o = SplitOwner(st.owner_token);
      std::vector<std::string> row = {
          v.lock.key,
          !v.quorum_holds() ? "no quorum" : st.hold_count == 0 ? "kept" : "held",
          o.host.empty() ? "-" : o.host, o.pid.empty() ? "-" : o.pid,
          FormatTtl(st.remaining), absl::StrCat(st.hold_count),
          absl::StrCat(st.fencing_token), st.owner_token};
      if (redlock) {
        row.insert(row.begin() + 2, absl::StrCat(v.agreeing, "/", v.masters.size()));
      }
      rows.push_back(std::move(row));
    }
    std::cout << RenderTable(rows);
  }
  std::cout << ListFooter(*ctx, locks.size(), not_shown, limit, match);
  return kExitOk;
}

int Release(const std::vector<std::string>& positional) {
  if (positional.size() != 2) {
    return UsageError("release", "release needs POLICY and KEY");
  }
  const std::string owner_flag = absl::GetFlag(FLAGS_owner);
  const std::optional<std::string> owner =
      owner_flag.empty() ? std::nullopt : std::optional(owner_flag);
  const bool force = absl::GetFlag(FLAGS_force);
  if (!owner && !force) {
    return UsageError(
        "release",
        "refusing to release without --owner TOKEN (release only if "
        "that owner holds it) or --force (whoever holds it)");
  }
  if (owner && force)
    return UsageError("release", "give --owner or --force, not both");
  if (force && !absl::GetFlag(FLAGS_yes) && !StdinIsTty()) {
    return UsageError(
        "release",
        "--force asks for confirmation on a terminal; stdin is not "
        "one, so add --yes to confirm up front");
  }
  absl::StatusOr<std::string> config = ConfigPath();
  if (!config.ok()) {
    return UsageError("release", std::string(config.status().message()));
  }
  const std::string& key = positional[1];
  absl::StatusOr<PolicyContext> ctx = OpenPolicy(*config, positional[0]);
  if (!ctx.ok()) return Fail(ctx.status());
  if (ctx->policy->kind != policy::LockKind::kMutex) {
    return ReleasePrimitive(*ctx, key, owner);
  }
  return ReleaseMutex(*ctx, key, owner);
}

}  // namespace

Command StatusCommand() {
  return {
      .name = "status",
      .usage =
          "usage: lockctl status POLICY KEY [--config FILE|DIR] [--json]\n",
      .about = R"text(
Shows one lock as Redis has it now: held or free, the owner token (and
the host and pid it names), the lease left, the re-entry count, the
fencing token of the current hold and the last one ever issued for the
key. A run-once job's key that was released but is kept until
hold_at_least has passed shows as "released (kept for hold_at_least)".

Other kinds show what is theirs: a semaphore its permits in use and each
holder with its lease left; a read_write lock its writer (lease, re-entry
count, fencing token) or its readers, and the writers waiting (their
claims hold back new readers); a fair lock its owner and its queue in
order, with the time each place has left. --json prints one JSON object.
)text",
      .flags = {Opt(FLAGS_config), Opt(FLAGS_json)},
      .exit_codes = R"text(
Exit codes: 0 shown (held or free), 1 bad configuration, unknown policy or
invalid key, 2 usage error, 3 Redis unreachable or failing.
)text",
      .run = Status,
  };
}

Command ListCommand() {
  return {
      .name = "list",
      .usage = R"text(
usage: lockctl list POLICY [--match PATTERN] [--limit N] [--config FILE|DIR]
                    [--json]
)text",
      .about = R"text(
Lists the locks held under the policy's key prefix, with owner and lease
left. Keys are found with SCAN (never KEYS, which blocks Redis) matching
{<prefix><PATTERN>}; fencing counters and cancel markers are skipped.
For a semaphore, read_write or fair policy it scans for that kind's keys
and shows one line per lock holding or queueing anything: "3/8 permits",
"writer TOKEN", "2 readers, 1 writer waiting", "held by TOKEN, 4 queued".
Policies whose prefixes overlap (one starts with the other) on the same
Redis see each other's locks. --json prints one JSON object instead of
the table.
)text",
      .flags = {Opt(FLAGS_match), Opt(FLAGS_limit), Opt(FLAGS_config),
                Opt(FLAGS_json)},
      .exit_codes = R"text(
Exit codes: 0 listed (also when none is held), 1 bad configuration or
unknown policy, 2 usage error, 3 Redis unreachable or failing.
)text",
      .run = List,
  };
}

Command ReleaseCommand() {
  return {
      .name = "release",
      .usage = R"text(
usage: lockctl release POLICY KEY --owner TOKEN [--config FILE|DIR] [--json]
       lockctl release POLICY KEY --force [--yes] [--config FILE|DIR] [--json]
)text",
      .about = R"text(
--owner TOKEN releases the lock only if TOKEN holds it (every re-entry
level); otherwise nothing is touched and lockctl says who holds it.

--force releases the lock whoever holds it: reads the current owner, asks
for confirmation on the terminal (unless --yes), then releases it
owner-checked against what it read, so a hold taken in between is never
removed. Prints what it removed, and logs it (owner, fence) to stderr.
The holder loses the lock while it may still be writing: its fenced
writes will be refused once a new holder wrote.

Other kinds: --owner TOKEN gives back that token's hold (a semaphore
permit, a reader, the writer, a fair lock's owner) or takes it out of
the line (a waiting writer's claim, a place in a fair queue); --force
gives back every hold it read (each checked against its token) and
leaves waiters alone.

Waiters are woken as on a normal release. Without --owner or --force
nothing is done.
)text",
      .flags = {Opt(FLAGS_owner), Opt(FLAGS_force), Opt(FLAGS_yes),
                Opt(FLAGS_config), Opt(FLAGS_json)},
      .exit_codes = R"text(
Exit codes: 0 released, 1 not held by that owner / not held at all /
changed hands meanwhile / declined, or bad configuration, 2 usage error
(including neither --owner nor --force), 3 Redis unreachable or failing.
)text",
      .run = Release,
  };
}

}  // namespace lockctl
