#include "tools/lockctl/locks.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "lock/internal/keys.h"
#include "lock/internal/kind_calls.h"
#include "lock/internal/primitive_calls.h"
#include "lock/redis/reply.h"
#include "tools/lockctl/kinds.h"
#include "tools/lockctl/reach.h"

namespace lockctl {
namespace {

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

}  // namespace

absl::StatusOr<MutexView> InspectMutex(const PolicyContext& ctx, const std::string& key) {
  if (absl::Status s = lock::internal::ValidateKey(key); !s.ok()) return s;
  Reach& reach = *ctx.reach;
  const lock::internal::LockKeys keys(ctx.policy->key_prefix, key);
  const lock::internal::PrimitiveCall call = lock::internal::MutexInspect(keys);
  MutexView v;
  v.lock = {ctx.policy->name, key, std::string(keys.owner()), {}};
  v.quorum = reach.quorum();
  absl::Status first_error;
  int answered = 0;
  for (size_t home = 0; home < reach.homes(); ++home) {
    MasterState& m = v.masters.emplace_back();
    absl::StatusOr<Answer> a = reach.Run(home, call);
    absl::StatusOr<lock::internal::OwnerState> owner =
        a.ok() ? lock::internal::ParseMutexInspect(*a->reply) : a.status();
    if (!owner.ok()) {
      // Only a Redlock target gets here with more to read: its masters are
      // its configured addresses.
      m.addr = home < ctx.target->addrs.size() ? ctx.target->addrs[home] : "?";
      m.error = owner.status();
      if (first_error.ok()) first_error = m.error;
      continue;
    }
    ++answered;
    m.addr = a->addr;
    m.state = lock::internal::OwnerLockState(*owner);
  }
  if (answered < v.quorum) return first_error;
  // The owner most masters name (the first one named on a tie).
  for (const MasterState& m : v.masters) {
    if (!m.error.ok() || !m.state.held) continue;
    int votes = 0;
    for (const MasterState& o : v.masters) {
      votes += o.error.ok() && o.state.owner_token == m.state.owner_token;
    }
    if (votes > v.agreeing) {
      v.agreeing = votes;
      v.lock.state = m.state;
    }
  }
  for (const MasterState& m : v.masters) {
    if (!m.error.ok()) continue;
    if (m.state.held && m.state.owner_token == v.lock.state.owner_token) {
      v.lock.state.remaining = std::min(v.lock.state.remaining, m.state.remaining);
    }
    v.lock.state.last_fencing_token =
        std::max(v.lock.state.last_fencing_token, m.state.last_fencing_token);
  }
  v.where = reach.redlock() ? reach.Describe() : reach.Where(v.masters[0].addr, keys.owner());
  return v;
}

// The keys of the locks of the policy's kind whose key matches the glob
// `match`, sorted, each once: on every master of the target (each cluster
// master, each Redlock master), a SCAN for each key that shows such a lock
// exists (PresenceKeys), with the glob in place of the key and the prefix
// taken literally.
absl::StatusOr<std::vector<std::string>> ScanLockKeys(const PolicyContext& ctx,
                                                      const std::string& match) {
  const std::string& prefix = ctx.policy->key_prefix;
  absl::StatusOr<std::vector<Master>> masters = ctx.reach->Masters();
  if (!masters.ok()) return masters.status();
  std::vector<std::string> keys;
  for (const Master& master : *masters) {
    for (const RedisKeyOf& key_of : PresenceKeys(ctx.policy->kind)) {
      const std::string pattern = key_of(EscapeGlob(prefix), match);
      std::string cursor = "0";
      do {
        absl::StatusOr<lock::redis::ReplyPtr> r =
            ctx.reach->CommandOn(master, {"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
        if (!r.ok()) return r.status();
        const redisReply& reply = **r;
        if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 2 ||
            reply.element[0]->type != REDIS_REPLY_STRING ||
            reply.element[1]->type != REDIS_REPLY_ARRAY) {
          return absl::InternalError(absl::StrCat("SCAN on ", master.addr,
                                                  ": unexpected reply shape"));
        }
        cursor = std::string(lock::redis::ReplyText(*reply.element[0]));
        for (size_t i = 0; i < reply.element[1]->elements; ++i) {
          // Only the keys asked for. The fencing counter {P K}:fence and
          // cancel markers {P K}:cancel:<token> do not match the pattern
          // (checked anyway rather than trusted), while a lock key such as
          // "order:cancel:7" or "x:fence" is a lock like any other.
          std::optional<std::string> key = LockKeyOf(
              key_of, prefix, lock::redis::ReplyText(*reply.element[1]->element[i]));
          if (key.has_value()) keys.push_back(*std::move(key));
        }
      } while (cursor != "0");
    }
  }
  std::sort(keys.begin(), keys.end());
  // SCAN may repeat a key, a lock may have several of the keys scanned, and
  // every Redlock master holds its own copy.
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}
}  // namespace lockctl
