// Rendering resolved policies and targets back as configuration JSON.
#include <string>

#include "absl/strings/str_cat.h"
#include "policy/config.h"
#include "policy/internal/errors.h"

namespace policy {

using internal::FormatConfigDuration;

nlohmann::json ExplainPolicy(const Policy& p) {
  nlohmann::json out = {
      {"redis", p.redis},
      {"key_prefix", p.key_prefix},
      {"kind", LockKindName(p.kind)},
      {"ttl", FormatConfigDuration(p.ttl)},
      {"on_busy", OnBusyName(p.on_busy)},
      {"wait",
       {{"timeout", FormatConfigDuration(p.wait.timeout)},
        {"notify", p.wait.notify}}},
      {"retry",
       {{"max_attempts", p.retry.max_attempts},
        {"initial_delay", FormatConfigDuration(p.retry.initial_delay)},
        {"max_delay", FormatConfigDuration(p.retry.max_delay)},
        {"multiplier", p.retry.multiplier},
        {"jitter", p.retry.jitter}}},
      {"renewal",
       {{"enabled", p.renewal.enabled},
        {"threshold", p.renewal.threshold},
        {"on_failure", OnRenewalFailureName(p.renewal.on_failure)}}},
      {"script_timeout", FormatConfigDuration(p.script_timeout)},
      {"fencing", p.fencing},
      {"fencing_retention", FormatConfigDuration(p.fencing_retention)},
      {"reentrant", p.reentrant},
      {"hold_at_least", FormatConfigDuration(p.hold_at_least)},
  };
  // Only where set: a semaphore's count (0 = not set, never valid JSON).
  if (p.permits != 0) out["permits"] = p.permits;
  if (!p.extends.empty()) out["extends"] = p.extends;
  return out;
}

std::string ExplainKind(const Policy& p) {
  const std::string lease = absl::StrCat("its lease (ttl ", FormatConfigDuration(p.ttl), ")");
  // Fencing tokens exist for exclusive holds only: shared holds run side by
  // side, so no order among them could refuse a stale one's writes.
  const std::string exclusive_fence =
      p.fencing ? "gets a fencing token that only goes up (pass it to fenced writes)"
                : "gets no fencing token (\"fencing\": false)";
  switch (p.kind) {
    case LockKind::kMutex:
      return absl::StrCat(
          "mutex: one holder at a time; it holds the lock until it releases it or ", lease,
          " ends without renewal. Each hold ", exclusive_fence, ".");
    case LockKind::kReadWrite:
      return absl::StrCat(
          "read_write: any number of readers hold it together, or one writer alone; each "
          "hold until it is released or ", lease,
          " ends. Writer preference: while a writer waits (its claim lasts as long as it "
          "keeps trying) no new reader is admitted, so a stream of readers cannot starve "
          "writers. Only the write hold is exclusive: it ", exclusive_fence,
          "; read holds get none.");
    case LockKind::kSemaphore:
      return absl::StrCat(
          "semaphore: up to ", p.permits, p.permits == 1 ? " holder" : " holders",
          " at once, each holding one permit until it releases it or ", lease,
          " ends (a dead holder's permit comes back then, never earlier). No hold is "
          "exclusive, so none gets a fencing token. Lowering \"permits\" takes no permit "
          "away: holders above the new count keep theirs until they release or expire, "
          "and no permit is granted until fewer than the new count are held.");
    case LockKind::kFair:
      return absl::StrCat(
          "fair: a mutex granted in request order: waiters queue, and a release tells "
          "the head of the queue, which takes it next. A waiter keeps its place while it "
          "keeps retrying; a dead waiter leaves the queue when its place's lease ends. "
          "The holder holds it until it releases it or ", lease, " ends; each hold ",
          exclusive_fence, ".");
  }
  return std::string(LockKindName(p.kind));
}

nlohmann::json ExplainTarget(const RedisTarget& t) {
  // Built field by field on purpose: t.password, t.sentinel_password and
  // t.tls.key_pem must never be rendered.
  nlohmann::json out = {
      {"mode", RedisModeName(t.mode)},
      {"db", t.db},
      {"username", t.username},
      {"password_env", t.password_env},
      {"connect_timeout", FormatConfigDuration(t.connect_timeout)},
      {"pool_size", t.pool_size},
  };
  // Mode-specific fields only where the parser accepts them.
  if (t.mode != RedisMode::kRedlock) {
    out["min_replicas_ack"] = t.min_replicas_ack;
    out["replica_ack_timeout"] = FormatConfigDuration(t.replica_ack_timeout);
  }
  if (t.mode == RedisMode::kSentinel) {
    out["sentinels"] = t.sentinels;
    out["master_name"] = t.master_name;
    out["sentinel_username"] = t.sentinel_username;
    out["sentinel_password_env"] = t.sentinel_password_env;
  } else {
    out["addrs"] = t.addrs;
  }
  if (t.mode == RedisMode::kRedlock) out["drift_factor"] = t.drift_factor;
  // The paths only, never the PEM texts (key_pem is a secret). Left out
  // when nothing was set, as a configuration without "tls" reads.
  if (t.tls != TlsOptions()) {
    out["tls"] = {
        {"enabled", t.tls.enabled},
        {"ca_file", t.tls.ca_file},
        {"cert_file", t.tls.cert_file},
        {"key_file", t.tls.key_file},
        {"server_name", t.tls.server_name},
        {"verify_peer", t.tls.verify_peer},
    };
  }
  return out;
}

nlohmann::json ExplainSnapshot(const Snapshot& snapshot) {
  nlohmann::json out = {{"redis", nlohmann::json::object()},
                        {"policies", nlohmann::json::object()}};
  for (const std::string& name : snapshot.TargetNames()) {
    out["redis"][name] = ExplainTarget(*snapshot.FindTarget(name));
  }
  for (const std::string& name : snapshot.PolicyNames()) {
    out["policies"][name] = ExplainPolicy(*snapshot.FindPolicy(name));
  }
  return out;
}

}  // namespace policy
