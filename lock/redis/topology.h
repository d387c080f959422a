// Where a lock's keys live and how to reach them, for each Redis deployment.
// This is the one interface the lock engine uses to run its scripts:
//
//   standalone  one server
//   sentinel    the master that the sentinels name, verified with ROLE and
//               rediscovered after a failover (connection errors, READONLY)
//   cluster     the master owning the keys' hash slot, from CLUSTER SLOTS;
//               MOVED refreshes the map and retries, ASK retries once on the
//               importing node after ASKING; bounded redirects
//
// A Redlock target is several independent standalone topologies; the quorum
// logic lives in RedisLock. All keys of one lock share one hash slot (see
// lock/internal/keys.h), so a script always runs on a single node.
//
// Thread-safe.
#ifndef LOCK_REDIS_TOPOLOGY_H_
#define LOCK_REDIS_TOPOLOGY_H_

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "lock/internal/process.h"
#include "lock/redis/connection.h"
#include "lock/redis/pool.h"
#include "lock/scripts/embedded.h"

namespace lock::redis {

// CRC16 hash slot of a key, honouring {hash tags}, as Redis Cluster does.
int KeySlot(absl::string_view key);

class Topology {
 public:
  virtual ~Topology() = default;

  struct RunOptions {
    absl::Duration timeout = absl::Milliseconds(600);
    // After a successful script, WAIT for this many replicas to acknowledge
    // (0 = don't); the count reached is returned through `replicas_acked`.
    int wait_replicas = 0;
    absl::Duration wait_timeout = absl::Milliseconds(100);
    // Send the script text (EVAL) rather than its SHA-1: for calls whose
    // NOSCRIPT answer might never be read (see EvalScript).
    bool always_eval = false;
    // The caller's own bound on the whole call (CallOptions::deadline):
    // every step (routing, connecting, the script, a NOSCRIPT retry,
    // redirects, WAIT) gets at most what is left of it; `timeout` still
    // bounds each step. A call whose deadline passed before anything was
    // sent fails without sending.
    std::chrono::steady_clock::time_point deadline =
        std::chrono::steady_clock::time_point::max();
  };
  struct RunResult {
    ReplyPtr reply;
    int replicas_acked = 0;
  };

  // Runs `script` on the master serving `keys[0]`'s slot. Server error
  // replies come back as errors (mapped by ServerError); redirects and
  // failovers are followed transparently. `outcome_unknown` (optional) is
  // set when the request may have been applied although no reply came.
  absl::StatusOr<RunResult> Run(const scripts::EmbeddedScript& script,
                                absl::Span<const absl::string_view> keys,
                                absl::Span<const absl::string_view> args,
                                const RunOptions& options,
                                bool* outcome_unknown = nullptr);

  // The pool of the master serving `key` now (for pipelines).
  virtual absl::StatusOr<std::shared_ptr<ConnectionPool>> PoolFor(
      absl::string_view key, absl::Duration timeout) = 0;

  // Every master holding keys now, each once, in slot order: the one node,
  // the master the sentinels name, each master of the cluster's slot map
  // (read again when stale). For what no single key routes to: lockctl's
  // SCAN over all locks, and counting subscribers, which PUBSUB NUMSUB
  // reports per node.
  virtual absl::StatusOr<std::vector<std::shared_ptr<ConnectionPool>>> Masters(
      absl::Duration timeout) = 0;

  // A call for `key` failed: a transport error, or an error reply (MOVED,
  // ASK, READONLY, ...). The topology refreshes what it knows as needed and
  // says whether the call should be retried, and where for an ASK (to be
  // sent once after ASKING; empty otherwise).
  struct Retry {
    bool retry = false;
    std::string ask;
  };
  virtual Retry Invalidate(absl::string_view key, const redisReply* error_reply) = 0;

  // Where to subscribe to release channels (messages published by scripts
  // on the masters reach this connection).
  virtual absl::StatusOr<ConnectionOptions> SubscriberOptions(absl::Duration timeout) = 0;

  // "standalone 127.0.0.1:6379", for messages.
  virtual std::string Describe() const = 0;

  // kFailedPrecondition in a fork() child of the process that built this
  // topology (Run and RunOnEach refuse to work there, before touching any
  // pool, socket or mutex of the parent); OK otherwise.
  absl::Status CheckProcess() const {
    if (!internal::ForkedSince(built_by_)) return absl::OkStatus();
    return internal::ForkedError("Redis " + Describe(), built_by_);
  }

 protected:
  // The pool for an explicit address (cluster ASK targets).
  virtual absl::StatusOr<std::shared_ptr<ConnectionPool>> PoolAt(const std::string& addr) = 0;

 private:
  const pid_t built_by_ = internal::ProcessId();
};

// Runs `script` once on each of `homes` (a Redlock target's independent
// masters). On masters with a ready pooled connection every request is
// written before any reply is read, from the calling thread, so N masters
// cost about one round trip rather than N and no other thread is woken.
// Masters that need a new connection are run on threads of their own, each
// within the whole `timeout`, while the calling thread reads the others'
// replies: one unreachable master delays only its own answer. Results
// come in the order of `homes`, each as Topology::Run would give it: error
// replies mapped by ServerError; a redirect, TRYAGAIN or NOSCRIPT answer
// (nothing was executed) is retried through Run.
std::vector<absl::StatusOr<ReplyPtr>> RunOnEach(
    absl::Span<const std::shared_ptr<Topology>> homes,
    const scripts::EmbeddedScript& script, absl::Span<const absl::string_view> keys,
    absl::Span<const absl::string_view> args, absl::Duration timeout);

class StandaloneTopology : public Topology {
 public:
  explicit StandaloneTopology(PoolOptions options);
  explicit StandaloneTopology(std::shared_ptr<ConnectionPool> pool) : pool_(std::move(pool)) {}
  absl::StatusOr<std::shared_ptr<ConnectionPool>> PoolFor(absl::string_view,
                                                          absl::Duration) override {
    return pool_;
  }
  absl::StatusOr<std::vector<std::shared_ptr<ConnectionPool>>> Masters(
      absl::Duration) override {
    return std::vector<std::shared_ptr<ConnectionPool>>{pool_};
  }
  // One server: nowhere else to go (a READONLY here means the configured
  // address is a replica, which retrying cannot fix).
  Retry Invalidate(absl::string_view, const redisReply*) override { return {}; }
  absl::StatusOr<ConnectionOptions> SubscriberOptions(absl::Duration) override {
    return pool_->options().connection;
  }
  std::string Describe() const override;

 protected:
  absl::StatusOr<std::shared_ptr<ConnectionPool>> PoolAt(const std::string&) override {
    return pool_;
  }

 private:
  const std::shared_ptr<ConnectionPool> pool_;
};

struct SentinelOptions {
  std::vector<std::string> sentinels;  // host:port
  std::string master_name;
  PoolOptions data;  // for the master: auth, db, timeouts, size, TLS (addr unused)
  // AUTH to the sentinels themselves (Redis 6.2+: sentinel requirepass /
  // ACL); empty password = none. TLS and timeouts are data's.
  std::string sentinel_username;
  std::string sentinel_password;
};

class SentinelTopology : public Topology {
 public:
  explicit SentinelTopology(SentinelOptions options);
  absl::StatusOr<std::shared_ptr<ConnectionPool>> PoolFor(absl::string_view key,
                                                          absl::Duration timeout) override;
  absl::StatusOr<std::vector<std::shared_ptr<ConnectionPool>>> Masters(
      absl::Duration timeout) override;
  Retry Invalidate(absl::string_view key, const redisReply* error_reply) override;
  absl::StatusOr<ConnectionOptions> SubscriberOptions(absl::Duration timeout) override;
  std::string Describe() const override;

 protected:
  absl::StatusOr<std::shared_ptr<ConnectionPool>> PoolAt(const std::string& addr) override;

 private:
  absl::StatusOr<std::shared_ptr<ConnectionPool>> Discover(absl::Duration timeout);

  const SentinelOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<ConnectionPool> master_;  // null until (re)discovered
  std::string last_master_;                 // the address found last; "" before
};

struct ClusterOptions {
  std::vector<std::string> seeds;  // host:port
  PoolOptions data;                // per node: auth, timeouts, size
};

class ClusterTopology : public Topology {
 public:
  explicit ClusterTopology(ClusterOptions options);
  absl::StatusOr<std::shared_ptr<ConnectionPool>> PoolFor(absl::string_view key,
                                                          absl::Duration timeout) override;
  absl::StatusOr<std::vector<std::shared_ptr<ConnectionPool>>> Masters(
      absl::Duration timeout) override;
  Retry Invalidate(absl::string_view key, const redisReply* error_reply) override;
  absl::StatusOr<ConnectionOptions> SubscriberOptions(absl::Duration timeout) override;
  std::string Describe() const override;

 protected:
  absl::StatusOr<std::shared_ptr<ConnectionPool>> PoolAt(const std::string& addr) override;

 private:
  absl::Status RefreshLocked(absl::Duration timeout);
  std::shared_ptr<ConnectionPool> PoolAtLocked(const std::string& addr);

  const ClusterOptions options_;
  mutable std::mutex mu_;
  std::vector<std::string> slot_owner_;  // 16384 addresses; empty = unknown
  absl::flat_hash_map<std::string, std::shared_ptr<ConnectionPool>> pools_;
  bool stale_ = true;
  std::string answered_last_;              // the node the map was last read from
  absl::flat_hash_set<std::string> silent_;  // did not answer when last asked
};

}  // namespace lock::redis

#endif  // LOCK_REDIS_TOPOLOGY_H_
