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

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "lock/internal/keys.h"
#include "lock/redis/connection.h"
#include "lock/redis/reply.h"
#include "tools/lockctl/cli.h"
#include "tools/lockctl/commands.h"
#include "tools/lockctl/kinds.h"

namespace lockctl {
namespace {

constexpr char kStatusHelp[] =
    "usage: lockctl status POLICY KEY [--config FILE|DIR] [--json]\n"
    "\n"
    "Shows one lock as Redis has it now: held or free, the owner token (and\n"
    "the host and pid it names), the lease left, the re-entry count, the\n"
    "fencing token of the current hold and the last one ever issued for the\n"
    "key. A run-once job's key that was released but is kept until\n"
    "hold_at_least has passed shows as \"released (kept for hold_at_least)\".\n"
    "\n"
    "Other kinds show what is theirs: a semaphore its permits in use and each\n"
    "holder with its lease left; a read_write lock its writer (lease, re-entry\n"
    "count, fencing token) or its readers, and the writers waiting (their\n"
    "claims hold back new readers); a fair lock its owner and its queue in\n"
    "order, with the time each place has left.\n"
    "\n"
    "  --config FILE|DIR  policy configuration (default: $LOCK_CONFIG)\n"
    "  --json             one JSON object instead of text\n"
    "\n"
    "Exit codes: 0 shown (held or free), 1 bad configuration, unknown policy "
    "or\n"
    "invalid key, 2 usage error, 3 Redis unreachable or failing.\n";

constexpr char kListHelp[] =
    "usage: lockctl list POLICY [--match PATTERN] [--limit N] [--config "
    "FILE|DIR]\n"
    "                    [--json]\n"
    "\n"
    "Lists the locks held under the policy's key prefix, with owner and lease\n"
    "left. Keys are found with SCAN (never KEYS, which blocks Redis) matching\n"
    "{<prefix><PATTERN>}; fencing counters and cancel markers are skipped.\n"
    "For a semaphore, read_write or fair policy it scans for that kind's keys\n"
    "and shows one line per lock holding or queueing anything: \"3/8 permits\",\n"
    "\"writer TOKEN\", \"2 readers, 1 writer waiting\", \"held by TOKEN, 4 queued\".\n"
    "Policies whose prefixes overlap (one starts with the other) on the same\n"
    "Redis see each other's locks.\n"
    "\n"
    "  --match PATTERN    Redis glob over the key without prefix (default "
    "\"*\")\n"
    "  --limit N          show at most N locks (default 1000)\n"
    "  --config FILE|DIR  policy configuration (default: $LOCK_CONFIG)\n"
    "  --json             one JSON object instead of a table\n"
    "\n"
    "Exit codes: 0 listed (also when none is held), 1 bad configuration or\n"
    "unknown policy, 2 usage error, 3 Redis unreachable or failing.\n";

constexpr char kReleaseHelp[] =
    "usage: lockctl release POLICY KEY --owner TOKEN [--config FILE|DIR] "
    "[--json]\n"
    "       lockctl release POLICY KEY --force [--yes] [--config FILE|DIR] "
    "[--json]\n"
    "\n"
    "--owner TOKEN  releases the lock only if TOKEN holds it (every re-entry\n"
    "               level); otherwise nothing is touched and lockctl says who\n"
    "               holds it.\n"
    "--force        releases the lock whoever holds it: reads the current\n"
    "               owner, asks for confirmation on the terminal (unless\n"
    "               --yes), then releases it owner-checked against what it\n"
    "               read, so a hold taken in between is never removed. Prints\n"
    "               what it removed, and logs it (owner, fence) to stderr. "
    "The\n"
    "               holder loses the lock while it may still be writing: its\n"
    "               fenced writes will be refused once a new holder wrote.\n"
    "--yes          do not ask (required when stdin is not a terminal)\n"
    "\n"
    "Other kinds: --owner TOKEN gives back that token's hold (a semaphore\n"
    "permit, a reader, the writer, a fair lock's owner) or takes it out of\n"
    "the line (a waiting writer's claim, a place in a fair queue); --force\n"
    "gives back every hold it read (each checked against its token) and\n"
    "leaves waiters alone.\n"
    "\n"
    "Waiters are woken as on a normal release. Without --owner or --force\n"
    "nothing is done.\n"
    "\n"
    "Exit codes: 0 released, 1 not held by that owner / not held at all /\n"
    "changed hands meanwhile / declined, or bad configuration, 2 usage error\n"
    "(including neither --owner nor --force), 3 Redis unreachable or "
    "failing.\n";

absl::StatusOr<lock::LockState> InspectKey(const PolicyContext& ctx,
                                           const std::string& key) {
  absl::StatusOr<std::unique_ptr<lock::RedisLock>> lk =
      ctx.locker->NewLock(ctx.policy->name, key);
  if (!lk.ok()) return lk.status();
  return (*lk)->Inspect();
}

std::string RedisKey(const PolicyContext& ctx, const std::string& key) {
  return std::string(lock::internal::LockKeys(ctx.policy->key_prefix, key).owner());
}

std::string FenceText(const lock::LockState& st) {
  if (!st.held) return absl::StrCat("last issued ", st.last_fencing_token);
  return absl::StrCat(
      st.fencing_token,
      st.hold_count == 0 ? " (the released hold)" : " (this hold)",
      "; last issued ", st.last_fencing_token);
}

void PrintLockText(const PolicyContext& ctx, const LockView& v) {
  const lock::LockState& st = v.state;
  std::vector<std::vector<std::string>> rows = {
      {"lock", absl::StrCat(v.policy, " / ", v.key)},
      {"redis key", absl::StrCat(v.redis_key, " on ", ctx.Where())},
      {"state", StateName(st)},
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
  rows.push_back({"fencing token", FenceText(st)});
  std::cout << RenderTable(rows);
}

// Redis glob metacharacters in a literal (the policy's prefix) are escaped.
std::string EscapeGlob(const std::string& literal) {
  std::string out;
  for (char c : literal) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// The lock key whose `key_of` key is `redis_key` under `prefix` (say the
// owner hash {P K}), or nullopt when `redis_key` is no such key of that prefix
// (a fencing counter or a cancel marker, say). Every such key is a head, the
// lock key, then a tail, found by comparing the keys of "" and "?".
std::optional<std::string> LockKeyOf(const RedisKeyOf& key_of, const std::string& prefix,
                                     absl::string_view redis_key) {
  const std::string bare = key_of(prefix, "");
  const std::string probe = key_of(prefix, "?");
  const size_t at =
      std::mismatch(bare.begin(), bare.end(), probe.begin()).first - bare.begin();
  const absl::string_view head = absl::string_view(bare).substr(0, at);
  const absl::string_view tail = absl::string_view(bare).substr(at);
  absl::string_view key = redis_key;
  if (!absl::ConsumePrefix(&key, head) || !absl::ConsumeSuffix(&key, tail) ||
      !lock::internal::ValidateKey(key).ok() || key_of(prefix, key) != redis_key) {
    return std::nullopt;
  }
  return std::string(key);
}

// The keys of the locks of the policy's kind whose key matches the glob
// `match`, sorted, each once: a SCAN for each key that shows such a lock
// exists (PresenceKeys), with the glob in place of the key and the prefix
// taken literally.
absl::StatusOr<std::vector<std::string>> ScanLockKeys(lock::redis::Connection& conn,
                                                      const PolicyContext& ctx,
                                                      const std::string& match) {
  const std::string& prefix = ctx.policy->key_prefix;
  const absl::Duration timeout =
      std::max(ctx.policy->script_timeout, absl::Seconds(1));
  std::vector<std::string> keys;
  for (const RedisKeyOf& key_of : PresenceKeys(ctx.policy->kind)) {
    const std::string pattern = key_of(EscapeGlob(prefix), match);
    std::string cursor = "0";
    do {
      absl::StatusOr<lock::redis::ReplyPtr> r = conn.Command(
          {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}, timeout);
      if (!r.ok()) return r.status();
      const redisReply& reply = **r;
      if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 2 ||
          reply.element[0]->type != REDIS_REPLY_STRING ||
          reply.element[1]->type != REDIS_REPLY_ARRAY) {
        return absl::InternalError("SCAN: unexpected reply shape");
      }
      cursor = std::string(lock::redis::ReplyText(*reply.element[0]));
      for (size_t i = 0; i < reply.element[1]->elements; ++i) {
        // Only the keys asked for. The fencing counter {P K}:fence and cancel
        // markers {P K}:cancel:<token> do not match the pattern (checked
        // anyway rather than trusted), while a lock key such as
        // "order:cancel:7" or "x:fence" is a lock like any other.
        std::optional<std::string> key = LockKeyOf(
            key_of, prefix, lock::redis::ReplyText(*reply.element[1]->element[i]));
        if (key.has_value()) keys.push_back(*std::move(key));
      }
    } while (cursor != "0");
  }
  std::sort(keys.begin(), keys.end());
  // SCAN may repeat a key, and a lock may have several of the keys scanned.
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
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
int ListPrimitives(const Args& args, const PolicyContext& ctx,
                   lock::redis::Connection& conn, const std::vector<std::string>& keys,
                   const std::string& match, int limit) {
  std::vector<PrimitiveView> locks;
  size_t not_shown = 0;
  for (const std::string& key : keys) {
    absl::StatusOr<PrimitiveView> v = InspectPrimitive(conn, ctx, key);
    if (!v.ok()) return Fail(v.status());
    if (!IsActive(*v)) continue;  // released or expired since the SCAN
    if (static_cast<int>(locks.size()) >= limit) {
      ++not_shown;
      continue;
    }
    locks.push_back(*std::move(v));
  }
  if (args.Has("json")) {
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
                     const std::string& redis_key, const std::string& role,
                     const std::string& owner, int64_t fence, int64_t count,
                     absl::Duration ttl_left) {
  const char* user = std::getenv("USER");
  char host[256] = {};
  (void)gethostname(host, sizeof(host) - 1);
  std::cerr << "lockctl: "
            << absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::Now(),
                                absl::UTCTimeZone())
            << " force-release policy=" << ctx.policy->name << " key=" << key
            << " redis_key=" << redis_key << " redis=" << ctx.target->addrs[0]
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
int ReleasePrimitive(const Args& args, const PolicyContext& ctx,
                     const std::string& key, const std::optional<std::string>& owner) {
  absl::StatusOr<std::unique_ptr<lock::redis::Connection>> conn =
      ConnectTo(*ctx.target);
  if (!conn.ok()) return Fail(conn.status());
  absl::StatusOr<PrimitiveView> before = InspectPrimitive(**conn, ctx, key);
  if (!before.ok()) return Fail(before.status());
  const bool force = !owner.has_value();
  const std::string what = absl::StrCat(ctx.policy->name, " / ", key, " (",
                                        before->redis_key, " on ", ctx.Where(), ")");
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
  if (force && !args.Has("yes")) {
    std::vector<std::vector<std::string>> rows;
    for (const Participant& p : targets) rows.push_back({"  " + RoleName(p.role), Describe(p)});
    if (!Confirm(what, rows)) return kExitRefused;
  }

  std::vector<Participant> released, gone;
  for (const Participant& p : targets) {
    absl::StatusOr<bool> r = ReleaseParticipant(**conn, ctx, key, p);
    if (!r.ok()) return Fail(r.status());
    (*r ? released : gone).push_back(p);
    if (*r && force) {
      LogForceRelease(ctx, key, before->redis_key, RoleName(p.role), p.token, p.fence,
                      p.hold_count, absl::Milliseconds(p.ms_left));
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
  if (args.Has("json")) {
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

}  // namespace

int Status(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args =
      ParseArgs(argv, {.values = {"config"}, .flags = {"json"}});
  if (!args.ok())
    return UsageError("status", std::string(args.status().message()));
  if (args->help) {
    std::cout << kStatusHelp;
    return kExitOk;
  }
  if (args->positional.size() != 2)
    return UsageError("status", "status needs POLICY and KEY");
  const std::string& key = args->positional[1];
  if (absl::Status c = ConfigPath(*args).status(); !c.ok()) {
    return UsageError("status", std::string(c.message()));
  }
  absl::StatusOr<PolicyContext> ctx = OpenPolicy(*args, args->positional[0]);
  if (!ctx.ok()) return Fail(ctx.status());
  if (ctx->policy->kind != policy::LockKind::kMutex) {
    absl::StatusOr<std::unique_ptr<lock::redis::Connection>> conn =
        ConnectTo(*ctx->target);
    if (!conn.ok()) return Fail(conn.status());
    absl::StatusOr<PrimitiveView> v = InspectPrimitive(**conn, *ctx, key);
    if (!v.ok()) return Fail(v.status());
    if (args->Has("json")) {
      std::cout << PrimitiveJson(*v).dump(2) << "\n";
    } else {
      std::cout << StatusText(*v, ctx->Where());
    }
    return kExitOk;
  }
  absl::StatusOr<lock::LockState> st = InspectKey(*ctx, key);
  if (!st.ok()) return Fail(st.status());
  LockView view{ctx->policy->name, key, RedisKey(*ctx, key), *st};
  if (args->Has("json")) {
    std::cout << LockViewJson(view).dump(2) << "\n";
  } else {
    PrintLockText(*ctx, view);
  }
  return kExitOk;
}

int List(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(
      argv, {.values = {"config", "match", "limit"}, .flags = {"json"}});
  if (!args.ok())
    return UsageError("list", std::string(args.status().message()));
  if (args->help) {
    std::cout << kListHelp;
    return kExitOk;
  }
  if (args->positional.size() != 1)
    return UsageError("list", "list needs one POLICY");
  int limit = 1000;
  if (auto l = args->Value("limit");
      l && (!absl::SimpleAtoi(*l, &limit) || limit < 1)) {
    return UsageError("list",
                      "--limit needs a positive number, got \"" + *l + "\"");
  }
  const std::string match = args->Value("match").value_or("*");
  if (match.empty() || match.find_first_of("{}") != std::string::npos) {
    return UsageError("list", "--match must be non-empty and without braces");
  }
  if (absl::Status c = ConfigPath(*args).status(); !c.ok()) {
    return UsageError("list", std::string(c.message()));
  }
  absl::StatusOr<PolicyContext> ctx = OpenPolicy(*args, args->positional[0]);
  if (!ctx.ok()) return Fail(ctx.status());

  absl::StatusOr<std::unique_ptr<lock::redis::Connection>> conn =
      ConnectTo(*ctx->target);
  if (!conn.ok()) return Fail(conn.status());
  absl::StatusOr<std::vector<std::string>> keys = ScanLockKeys(**conn, *ctx, match);
  if (!keys.ok()) return Fail(keys.status());
  if (ctx->policy->kind != policy::LockKind::kMutex) {
    return ListPrimitives(*args, *ctx, **conn, *keys, match, limit);
  }

  std::vector<LockView> locks;
  size_t not_shown = 0;
  for (const std::string& key : *keys) {
    absl::StatusOr<lock::LockState> st = InspectKey(*ctx, key);
    if (!st.ok()) return Fail(st.status());
    if (!st->held) continue;  // released since the SCAN
    if (static_cast<int>(locks.size()) >= limit) {
      ++not_shown;
      continue;
    }
    locks.push_back({ctx->policy->name, key, RedisKey(*ctx, key), *st});
  }

  if (args->Has("json")) {
    nlohmann::json out = ListJson(*ctx, match, not_shown);
    for (const LockView& v : locks) out["locks"].push_back(LockViewJson(v));
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  if (!locks.empty()) {
    std::vector<std::vector<std::string>> rows = {
        {"KEY", "STATE", "HOST", "PID", "TTL", "COUNT", "FENCE", "OWNER"}};
    for (const LockView& v : locks) {
      const OwnerParts o = SplitOwner(v.state.owner_token);
      rows.push_back({v.key, v.state.hold_count == 0 ? "kept" : "held",
                      o.host.empty() ? "-" : o.host, o.pid.empty() ? "-" : o.pid,
                      FormatTtl(v.state.remaining),
                      absl::StrCat(v.state.hold_count),
                      absl::StrCat(v.state.fencing_token), v.state.owner_token});
    }
    std::cout << RenderTable(rows);
  }
  std::cout << ListFooter(*ctx, locks.size(), not_shown, limit, match);
  return kExitOk;
}

int Release(const std::vector<std::string>& argv) {
  absl::StatusOr<Args> args = ParseArgs(
      argv, {.values = {"config", "owner"}, .flags = {"force", "yes", "json"}});
  if (!args.ok())
    return UsageError("release", std::string(args.status().message()));
  if (args->help) {
    std::cout << kReleaseHelp;
    return kExitOk;
  }
  if (args->positional.size() != 2) {
    return UsageError("release", "release needs POLICY and KEY");
  }
  const std::optional<std::string> owner = args->Value("owner");
  const bool force = args->Has("force");
  if (!owner && !force) {
    return UsageError(
        "release",
        "refusing to release without --owner TOKEN (release only if "
        "that owner holds it) or --force (whoever holds it)");
  }
  if (owner && force)
    return UsageError("release", "give --owner or --force, not both");
  if (owner && owner->empty())
    return UsageError("release", "--owner needs a token");
  if (force && !args->Has("yes") && !StdinIsTty()) {
    return UsageError(
        "release",
        "--force asks for confirmation on a terminal; stdin is not "
        "one, so add --yes to confirm up front");
  }
  if (absl::Status c = ConfigPath(*args).status(); !c.ok()) {
    return UsageError("release", std::string(c.message()));
  }
  const std::string& key = args->positional[1];
  absl::StatusOr<PolicyContext> ctx = OpenPolicy(*args, args->positional[0]);
  if (!ctx.ok()) return Fail(ctx.status());
  if (ctx->policy->kind != policy::LockKind::kMutex) {
    return ReleasePrimitive(*args, *ctx, key, owner);
  }
  absl::StatusOr<std::unique_ptr<lock::RedisLock>> lk =
      ctx->locker->NewLock(ctx->policy->name, key);
  if (!lk.ok()) return Fail(lk.status());
  const std::string redis_key = RedisKey(*ctx, key);
  const std::string what = absl::StrCat(ctx->policy->name, " / ", key, " (",
                                        redis_key, " on ", ctx->Where(), ")");

  // --force releases exactly the owner it read here (and showed), so a hold
  // taken after this read is never removed.
  lock::LockState before;
  if (force) {
    absl::StatusOr<lock::LockState> st = (*lk)->Inspect();
    if (!st.ok()) return Fail(st.status());
    before = *st;
  }
  const std::string token = force ? before.owner_token : *owner;
  if (force) {
    if (!before.held) {
      std::cerr << "lockctl: " << what << " is not held; nothing to release\n";
      return kExitRefused;
    }
    if (!args->Has("yes") &&
        !Confirm(what, {{"  owner", before.owner_token},
                        {"  state", StateName(before)},
                        {"  fencing token", absl::StrCat(before.fencing_token)},
                        {"  ttl left", FormatTtl(before.remaining)}})) {
      return kExitRefused;
    }
  }

  absl::Status s = (*lk)->ReleaseOwnedBy(token);
  if (lock::IsNotHeld(s)) {
    absl::StatusOr<lock::LockState> now = (*lk)->Inspect();
    std::string current = "unknown";
    if (now.ok()) {
      current = now->held ? absl::StrCat("held by ", now->owner_token) : "free";
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
  if (!s.ok()) return Fail(s);

  const lock::LockState& st = before;
  if (force) {
    LogForceRelease(*ctx, key, redis_key, /*role=*/"", st.owner_token,
                    st.fencing_token, st.hold_count, st.remaining);
  }
  if (args->Has("json")) {
    nlohmann::json out = {{"released", true},
                          {"forced", force},
                          {"policy", ctx->policy->name},
                          {"key", key},
                          {"redis_key", redis_key},
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

}  // namespace lockctl
