// The lock policy model: what a named policy and a Redis target mean once the
// JSON configuration has been parsed, validated and resolved.
//
//   const policy::Policy* p = snapshot->FindPolicy("order-close");
//   if (p->on_busy == policy::OnBusy::kSkip) { ... }
//
// Every default lives in the struct itself; the JSON loader (config.h) starts
// from a default-constructed struct and overlays the `defaults` block, the
// `extends` chain and finally the policy's own fields. A Policy is a plain
// value: copy it freely. Values reached through a Snapshot are immutable.
#ifndef POLICY_POLICY_H_
#define POLICY_POLICY_H_

#include <array>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace policy {

// What a lock attempt does when the key is held by another owner.
enum class OnBusy {
  kWait,  // "wait": retry (pub/sub wake-up + backoff) within wait/retry limits.
  kSkip,  // "skip": return a distinct "skipped" result at once (ShedLock style:
          // a run-once job that another node is already running).
  kFail,  // "fail": return "busy" at once.
};
inline constexpr std::array<OnBusy, 3> kAllOnBusy = {
    OnBusy::kWait, OnBusy::kSkip, OnBusy::kFail};

// What auto-renewal does when it cannot extend the lease any more.
enum class OnRenewalFailure {
  kSignal,  // "signal": mark the Held lost and request its stop_token, so the
            // critical section can stop writing (and With() returns IsLost).
  kIgnore,  // "ignore": only report it (callback and stats); the critical
            // section is not told. For work that is safe to finish twice.
};
inline constexpr std::array<OnRenewalFailure, 2> kAllOnRenewalFailure = {
    OnRenewalFailure::kSignal, OnRenewalFailure::kIgnore};

// Which synchronizer a policy's locks are (docs/POLICIES.md "Kinds",
// docs/DESIGN.md section 4 for their Redis layout). The engine takes only
// kMutex so far: the others are refused by lock::With/NewLock until it
// supports them, never silently run as a mutex.
enum class LockKind {
  kMutex,      // "mutex": one owner at a time (the default).
  kReadWrite,  // "read_write": shared readers or one writer; writer
               // preference (a waiting writer holds back new readers).
  kSemaphore,  // "semaphore": up to `permits` holders at once, each permit
               // with its own lease.
  kFair,       // "fair": a mutex granted in request order (FIFO queue).
};
inline constexpr std::array<LockKind, 4> kAllLockKinds = {
    LockKind::kMutex, LockKind::kReadWrite, LockKind::kSemaphore,
    LockKind::kFair};

// The largest "permits" a semaphore policy may have.
inline constexpr int kMaxPermits = 1000000;

// How waiting for a busy lock is bounded. Waiting ends at whichever comes
// first: `timeout` or RetryPolicy::max_attempts.
struct WaitPolicy {
  // Total time one acquisition may spend waiting for a busy lock, measured on
  // a steady clock from the first attempt. 0 = a single attempt, no waiting.
  absl::Duration timeout = absl::Seconds(10);
  // Wake up as soon as the holder publishes a release instead of sleeping the
  // full backoff delay. The backoff still runs as a fallback (lost messages,
  // holders that crashed and let the TTL expire).
  bool notify = true;

  friend bool operator==(const WaitPolicy&, const WaitPolicy&) = default;
};

// How acquisition attempts are spaced. See backoff.h for the one function that
// turns these fields into a delay.
struct RetryPolicy {
  // Number of attempts, not retries: 1 = try once and never retry.
  int max_attempts = 1000;
  // Delay before the second attempt (retry index 0).
  absl::Duration initial_delay = absl::Milliseconds(50);
  // Upper bound of the exponential part of the delay, before jitter.
  absl::Duration max_delay = absl::Seconds(1);
  // Growth per retry: the n-th delay (n counted from 0) is
  // min(max_delay, initial_delay * multiplier^n). 1 = constant delay.
  double multiplier = 2.0;
  // Random spread as a fraction of the delay: the delay is scaled by a
  // uniform factor between 1 - jitter and 1 + jitter. 0 = no jitter; spreading
  // waiters apart avoids thundering herds on release.
  double jitter = 0.5;

  friend bool operator==(const RetryPolicy&, const RetryPolicy&) = default;
};

// Automatic lease extension while a lock is held.
struct RenewalPolicy {
  // Extend the lease in the background while the critical section runs.
  // When false the lock simply expires after `ttl` unless Extend() is called.
  bool enabled = true;
  // Renew when this fraction of the TTL is left (0.3 of 30s = renew when 9s
  // remain). Exclusive range (0, 1). threshold * ttl must exceed the
  // policy's script_timeout, or a slow renewal call would outlive the lease.
  double threshold = 0.3;
  // What happens when renewal fails for good (the key expired, changed
  // owner, or Redis stayed unreachable until the lease ran out).
  OnRenewalFailure on_failure = OnRenewalFailure::kSignal;

  friend bool operator==(const RenewalPolicy&, const RenewalPolicy&) = default;
};

// One named lock policy, fully resolved (defaults and `extends` applied).
struct Policy {
  // --- Identity ---
  // The policy's name: the key of its entry in "policies".
  std::string name;
  // Name of the Redis target (an entry of "redis") the lock lives on.
  std::string redis = "default";
  // Prepended to every lock key of this policy (inside the hash tag, see
  // docs/DESIGN.md section 4). Printable ASCII without '{' or '}', at most 128
  // bytes. "" = no prefix.
  std::string key_prefix;

  // --- Affects correctness ---
  // Which synchronizer this is. Default: a mutex (the behaviour before kinds
  // existed).
  LockKind kind = LockKind::kMutex;
  // kSemaphore only, and required there: how many holders at once, 1..
  // kMaxPermits. 0 = not set (every other kind). Lowering it leaves holders
  // above the new count their permits until they release or expire; no new
  // permit is granted until fewer than `permits` are held.
  int permits = 0;
  // Lease length: how long the key lives without renewal. Must be > 0.
  absl::Duration ttl = absl::Seconds(30);
  // What to do when the lock is held by somebody else.
  OnBusy on_busy = OnBusy::kWait;
  // Bounds for on_busy == kWait.
  WaitPolicy wait;
  // Spacing and number of acquisition attempts (used by kWait).
  RetryPolicy retry;
  // Automatic extension of the lease.
  RenewalPolicy renewal;
  // Deadline of every single Redis call (acquire, release, extend) made for
  // this policy. Must be > 0 and shorter than ttl.
  absl::Duration script_timeout = absl::Milliseconds(600);
  // Issue a strictly increasing fencing token on every fresh acquisition:
  // max(last token + 1, the Redis server's clock in microseconds). false =
  // fencing_token() is 0 and no fence key is written at all.
  bool fencing = true;
  // How long the key's fence record ({P K}:fence) lives after the last
  // fresh acquisition. It only guards against small backward steps of the
  // server clock (and several acquisitions within one microsecond); tokens
  // stay monotonic after it expires because they follow the clock. Keeps
  // Redis free of one key per resource ever locked. Must be > ttl; unused
  // when fencing is false.
  absl::Duration fencing_retention = absl::Hours(24);
  // The same lock instance may acquire again while holding (count kept in
  // Redis). Reentrancy is per lock instance, never per key or thread.
  bool reentrant = true;
  // Keep the key at least this long after acquisition, even if released
  // earlier: a run-once job finishing in 1s is not re-run by another node
  // whose clock fires a little later. 0 = release deletes the key at once.
  absl::Duration hold_at_least = absl::ZeroDuration();
  // Name of the policy this one was declared to inherit from ("" = none).
  // Informational once resolved: the inherited fields are already applied.
  std::string extends;

  friend bool operator==(const Policy&, const Policy&) = default;
};

// Topology of a Redis target.
enum class RedisMode {
  kStandalone,  // "standalone": one server, exactly one address.
  kSentinel,    // "sentinel": master discovered through sentinels.
  kCluster,     // "cluster": Redis Cluster, addrs are seed nodes.
  kRedlock,     // "redlock": independent masters, quorum n/2+1.
};
inline constexpr std::array<RedisMode, 4> kAllRedisModes = {
    RedisMode::kStandalone, RedisMode::kSentinel, RedisMode::kCluster,
    RedisMode::kRedlock};

// TLS to every node of a Redis target: data nodes, sentinels, cluster nodes.
//
// How the configuration fills it: a "tls" object turns TLS on unless it says
// "enabled": false. Relative file paths are resolved against the directory of
// the configuration file (the working directory for a configuration that is
// no file) and held made absolute, so a later chdir or a reload finds the same
// files. The files are read and checked (PEM, key matches certificate) when
// the configuration is loaded, so a bad rotation is a reload error instead of
// failing handshakes; Registry::Watch reloads when they change.
struct TlsOptions {
  bool enabled = false;
  // The files as configured (relative paths resolved, see below). Empty = not given.
  std::string ca_file;      // CA bundle to verify servers with; empty = the system's default trust store
  std::string cert_file;    // client certificate (chain) for mutual TLS; with key_file
  std::string key_file;
  // SNI and the name the server certificate must match; empty = the host of each address (an IP is matched as an IP).
  std::string server_name;
  bool verify_peer = true;
  // The PEM contents of the files, read when the configuration was loaded. key_pem is a secret: never printed.
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  friend bool operator==(const TlsOptions&, const TlsOptions&) = default;
};

// Where and how to connect for one named Redis target.
struct RedisTarget {
  // The target's name: the key of its entry in "redis".
  std::string name;
  RedisMode mode = RedisMode::kStandalone;
  // "host:port", "[ipv6]:port" or "unix:/path/to/socket". standalone: exactly
  // one; cluster: seed nodes (>= 1); redlock: the independent masters (>= 2,
  // an odd count >= 3 recommended); sentinel: unused.
  std::vector<std::string> addrs;
  // Logical database selected after connecting. Must be 0 in cluster mode.
  int db = 0;
  // ACL user for AUTH ("" = the default user). Needs password_env.
  std::string username;
  // Name of the environment variable holding the password ("" = no AUTH).
  // Secrets never live in the JSON itself.
  std::string password_env;
  // The password read from password_env when the configuration was loaded.
  // Never printed: not in errors, not in ExplainTarget().
  std::string password;

  // TCP/unix connect deadline per connection attempt.
  absl::Duration connect_timeout = absl::Milliseconds(500);
  // Connections kept per Redis node (1..1024).
  int pool_size = 8;

  // sentinel mode: the sentinels ("host:port", >= 1) and the monitored
  // master's name.
  std::vector<std::string> sentinels;
  std::string master_name;
  // sentinel mode: AUTH towards the sentinels themselves, which have ACLs
  // of their own (the data node's username/password do not apply to them).
  // Same rules as username / password_env / password: the user needs the
  // password variable, a missing variable is a load error, and the password
  // is never printed.
  std::string sentinel_username;
  std::string sentinel_password_env;
  std::string sentinel_password;

  // TLS to every node of the target (data nodes, sentinels, cluster nodes).
  // Not with "unix:" addresses: Redis serves TLS only on TCP.
  TlsOptions tls;

  // redlock mode: clock drift allowance as a fraction of the TTL (plus 2ms)
  // subtracted from the validity time, as in the Redlock paper. [0, 0.1].
  double drift_factor = 0.01;

  // After acquiring, WAIT for this many replicas to acknowledge the write
  // (0 = don't wait). Narrows, but does not close, the failover window in
  // which an acknowledged lock is lost. For masters with replicas (sentinel).
  int min_replicas_ack = 0;
  // Deadline of that WAIT. Must be > 0: WAIT with 0 blocks forever.
  absl::Duration replica_ack_timeout = absl::Milliseconds(100);

  friend bool operator==(const RedisTarget&, const RedisTarget&) = default;
};

// Names as spelled in the JSON configuration ("wait", "signal", "sentinel").
std::string_view OnBusyName(OnBusy on_busy);
std::string_view OnRenewalFailureName(OnRenewalFailure on_failure);
std::string_view RedisModeName(RedisMode mode);
std::string_view LockKindName(LockKind kind);

// Inverse of the *Name functions; nullopt for anything else (case-sensitive).
std::optional<OnBusy> OnBusyFromName(std::string_view name);
std::optional<OnRenewalFailure> OnRenewalFailureFromName(std::string_view name);
std::optional<RedisMode> RedisModeFromName(std::string_view name);
std::optional<LockKind> LockKindFromName(std::string_view name);

// Number of Redlock masters that must agree: n/2 + 1.
int RedlockQuorum(int masters);
int RedlockQuorum(const RedisTarget& target);

// An immutable, fully validated and resolved configuration. Lookups are map
// lookups (O(log n), no allocation); no JSON is touched after parsing. Pointers
// returned by Find* stay valid as long as the Snapshot lives (hold the
// shared_ptr). Thread-safe: it is never modified after construction.
class Snapshot {
 public:
  // `policies` and `targets` must already be valid and resolved; ParseConfig
  // is the normal way to get a Snapshot. Public so that tests and tools can
  // build one from structs.
  Snapshot(std::vector<Policy> policies, std::vector<RedisTarget> targets,
           std::vector<std::string> sources);

  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;

  // nullptr when there is no such name.
  const Policy* FindPolicy(std::string_view name) const;
  const RedisTarget* FindTarget(std::string_view name) const;

  // Sorted names.
  std::vector<std::string> PolicyNames() const;
  std::vector<std::string> TargetNames() const;

  // Names of the sources (files) this snapshot was parsed from, in order.
  const std::vector<std::string>& sources() const { return sources_; }

 private:
  // std::less<> lets std::string_view look up std::string keys without a
  // copy. (abseil's hash maps would want absl::string_view, which in
  // Debian's build is not std::string_view.) Ordered, so names come sorted.
  std::map<std::string, Policy, std::less<>> policies_;
  std::map<std::string, RedisTarget, std::less<>> targets_;
  std::vector<std::string> sources_;
};

// One configuration text and the name errors use for it (usually its path).
struct ConfigSource {
  std::string name;
  std::string text;
  // The directory relative file paths in this source (TLS files) are
  // resolved against: the configuration file's own directory. "" = the
  // working directory, for a text that is no file.
  std::string directory = {};
};

}  // namespace policy

#endif  // POLICY_POLICY_H_
