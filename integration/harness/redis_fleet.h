// Redis topologies built from RedisServer nodes: independent masters
// (Redlock), a master with replicas watched by Sentinels, and a Redis Cluster.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<RedisFleet> fleet,
//                    RedisFleet::Sentinel(/*replicas=*/1, /*sentinels=*/3));
//   UseSentinels(fleet->sentinel_addrs(), fleet->master_name());
//   RETURN_IF_ERROR(fleet->Failover(absl::Seconds(30)));  // a new master
//
//   ASSIGN_OR_RETURN(fleet, RedisFleet::Cluster(/*masters=*/3));
//   RETURN_IF_ERROR(fleet->MoveSlot(RedisFleet::KeySlot("k"), 1));
//
// Every factory returns once the topology is fully usable (see each one), by
// polling the servers against a deadline, never by sleeping a fixed time.
// Errors name the step that did not happen and carry the tail of every
// node's log. Nodes run on the backend RedisServer picks (process, or a
// container under LOCK_TEST_BACKEND=container) and are all stopped by the
// destructor.
//
// Node indexes are fixed at creation and never change meaning:
//   Masters(n):  node(0..n-1) the masters.
//   Sentinel():  node(0) the first master, node(1..replicas) its replicas;
//                sentinel(0..sentinels-1).
//   Cluster(m, r): node(0..m-1) the first masters of shards 0..m-1; the
//                replicas of shard s are node(m + s*r .. m + s*r + r-1).
// Roles change (failovers); shard membership does not: "master_index" in
// the cluster helpers is the shard, served by whichever of its nodes is the
// master at the time.
//
// TLS: `base.tls` makes every node of any topology a TLS server
// (RedisServerOptions::tls) with certificates from one MakeTlsFiles()
// directory the fleet makes (or `base.tls_dir`), so that nodes trust each
// other: replicas replicate over TLS, sentinels monitor the master's TLS
// port (SENTINEL GET-MASTER-ADDR-BY-NAME answers it) and reach replicas and
// each other over TLS, and a cluster runs `tls-cluster yes`. addrs(),
// sentinel_addrs() and PolicyTargetJson() name TLS ports. The harness
// itself keeps talking plaintext to each node's plain_addr().
//
// Redis 7.0 with `tls-cluster yes` answers CLUSTER SLOTS / NODES and MOVED /
// ASK redirections with the TLS ports to a client on a TLS connection and
// with the plaintext ports to one on a plaintext connection (CLUSTER SHARDS
// lists both), and MIGRATE connects over TLS, so MoveSlot() migrates to the
// target's TLS port.
//
// Thread-safety: node(i)/sentinel(i) are RedisServers (thread-safe). The
// topology operations (Failover, MoveSlot, ...) serialize among themselves.
#ifndef INTEGRATION_HARNESS_REDIS_FLEET_H_
#define INTEGRATION_HARNESS_REDIS_FLEET_H_

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "integration/harness/redis_server.h"
#include "integration/harness/tls_files.h"

namespace lock::harness {

// Calls `probe` until it returns OK, every `interval`, for at most `timeout`
// (at least once). On timeout: kDeadlineExceeded with the probe's last error.
absl::Status PollUntilOk(absl::Duration timeout,
                         absl::FunctionRef<absl::Status()> probe,
                         absl::Duration interval = absl::Milliseconds(20));

// "ROLE" of a server: "master", "slave" or "sentinel", or kUnavailable.
absl::StatusOr<std::string> RoleOf(RedisServer& server,
                                   absl::Duration timeout = absl::Seconds(1));

// `text` with every line prefixed "[name] ", for merged log dumps.
std::string PrefixLines(absl::string_view name, absl::string_view text);

class RedisFleet {
 public:
  enum class Kind { kStandalone, kMasters, kSentinel, kCluster };

  // One server; a fleet only so that tools treat every mode alike.
  static absl::StatusOr<std::unique_ptr<RedisFleet>> Standalone(
      RedisServerOptions base = {});

  // `n` (>= 1) independent masters, named master-0.., each started from
  // `base`. Ready when each answers PING.
  static absl::StatusOr<std::unique_ptr<RedisFleet>> Masters(
      int n, RedisServerOptions base = {});

  // One master (redis-0) with `replicas` (>= 1) replicas (redis-1..) and
  // `sentinels` (>= 1) sentinels (sentinel-0..) monitoring it under
  // `master_name` with quorum min(2, sentinels), down-after-milliseconds
  // 1000 and failover-timeout 3000. A `base.password` protects the data
  // nodes (requirepass, masterauth, sentinel auth-pass), not the sentinels.
  // A `sentinel_password` protects the sentinels (their requirepass; they
  // authenticate to each other with `sentinel sentinel-pass`), and
  // PolicyTargetJson() then names "sentinel_password_env":
  // "REDIS_SENTINEL_PASSWORD". Ready when every replica is in sync and every
  // sentinel reports the master, all replicas (link ok) and all other
  // sentinels.
  static absl::StatusOr<std::unique_ptr<RedisFleet>> Sentinel(
      int replicas = 1, int sentinels = 3, std::string master_name = "mymaster",
      RedisServerOptions base = {}, std::string sentinel_password = "");

  // A cluster of `masters` (>= 3) shards with `replicas_per_master` (>= 0)
  // replicas each (cluster-0..), the 16384 slots split evenly in order.
  // Ready when every node reports cluster_state:ok, every replica is in sync
  // and all nodes agree on the slot map and the roles.
  static absl::StatusOr<std::unique_ptr<RedisFleet>> Cluster(
      int masters = 3, int replicas_per_master = 1,
      RedisServerOptions base = {});

  RedisFleet(const RedisFleet&) = delete;
  RedisFleet& operator=(const RedisFleet&) = delete;

  // Stops every node (in parallel) and removes their directories.
  ~RedisFleet();

  Kind kind() const { return kind_; }

  // --- All kinds ----------------------------------------------------------
  // Data nodes (not sentinels), by index; see the top of the file.
  int size() const { return static_cast<int>(nodes_.size()); }
  RedisServer& node(int i) { return *nodes_.at(i); }
  // host:port of every data node, by index. For Masters(): the Redlock set.
  std::vector<std::string> addrs() const;
  // Index of the data node serving `addr` ("host:port"), or -1.
  int IndexOf(absl::string_view addr) const;

  // Every node's log (data nodes, then sentinels), each line prefixed with
  // the node's name. For failing tests: see RedisFleetTest in redis_test.h.
  std::string Logs() const;

  // The policy-config "redis" target for this topology, as one JSON object:
  // {"mode": "sentinel", "sentinels": [...], "master_name": "mymaster"} etc.
  // (policy/schema.json, $defs/target). A TLS fleet adds
  // "tls": {"ca_file": ..., "cert_file": ..., "key_file": ...} (the CA and
  // the client certificate of tls_files()).
  std::string PolicyTargetJson() const;

  // The certificates every node uses, or nullptr for a plaintext fleet.
  const TlsFiles* tls_files() const {
    return tls_files_.has_value() ? &*tls_files_ : nullptr;
  }

  // --- Sentinel -------------------------------------------------------------
  int sentinel_count() const { return static_cast<int>(sentinels_.size()); }
  RedisServer& sentinel(int i) { return *sentinels_.at(i); }
  std::vector<std::string> sentinel_addrs() const;
  const std::string& master_name() const { return master_name_; }

  // The master's address as the first sentinel that answers reports it.
  absl::StatusOr<std::string> MasterAddr();
  // The data node index of that address.
  absl::StatusOr<int> MasterIndex();

  // SENTINEL FAILOVER, then waits until every sentinel that answers reports
  // the same new master and that node answers ROLE as master. The old
  // master, if up, is turned into a replica by the sentinels some seconds
  // later (Sentinel waits ~8 s before reconfiguring it); poll RoleOf() for
  // that. kDeadlineExceeded if not done in `timeout`; kFailedPrecondition
  // when no sentinel answers or the topology is not a Sentinel one.
  absl::Status Failover(absl::Duration timeout = absl::Seconds(30));

  // --- Cluster --------------------------------------------------------------
  // Every node's address; clients need any one of them.
  std::vector<std::string> seed_addrs() const { return addrs(); }
  int shard_count() const { return shards_; }
  // The shard (0..shard_count()-1) of data node `i`.
  int ShardOf(int i) const;

  // CRC16 (XMODEM) of the key, or of its {hash tag}, mod 16384: the same
  // answer as CLUSTER KEYSLOT, without a server.
  static int KeySlot(absl::string_view key);

  // Data node index of the current master of `shard`, or of `slot`'s owner,
  // as the first reachable node sees it.
  absl::StatusOr<int> MasterOf(int shard);
  absl::StatusOr<int> NodeIndexForSlot(int slot);
  absl::StatusOr<RedisServer*> NodeForSlot(int slot);

  // Promotes a replica of shard `master_index`: CLUSTER FAILOVER on it
  // (FORCE when the master does not answer), then waits until it reports
  // role master and the cluster has converged (WaitForClusterConverged).
  // kFailedPrecondition if the shard has no replica that is up.
  absl::Status Failover(int master_index,
                        absl::Duration timeout = absl::Seconds(30));

  // Moves `slot` with its keys to shard `to_master_index` with the real
  // migration protocol, so that clients see ASK while it runs and MOVED
  // afterwards: BeginMoveSlot, MigrateSlotKeys in batches of 100 until none
  // are left, FinishMoveSlot. A no-op when the shard already owns the slot.
  absl::Status MoveSlot(int slot, int to_master_index,
                        absl::Duration timeout = absl::Seconds(30));

  // The steps of MoveSlot, for tests that look at a migration in progress.
  // Begin: SETSLOT IMPORTING on the target, then MIGRATING on the source.
  absl::Status BeginMoveSlot(int slot, int to_master_index);
  // MIGRATEs up to `max_keys` keys of the slot; returns how many moved
  // (0 when none are left).
  absl::StatusOr<int> MigrateSlotKeys(int slot, int max_keys);
  // SETSLOT NODE on the target, the source, then every other master; waits
  // for convergence. kFailedPrecondition while keys are left on the source.
  absl::Status FinishMoveSlot(int slot,
                              absl::Duration timeout = absl::Seconds(30));

  // Waits until every node that answers reports cluster_state:ok and all of
  // them agree on the slot map, the roles and the pending migrations.
  absl::Status WaitForClusterConverged(absl::Duration timeout);

 private:
  struct Migration {
    int source = -1;  // data node indexes
    int target = -1;
  };

  explicit RedisFleet(Kind kind) : kind_(kind) {}

  // For a `base.tls` fleet: makes the shared certificates (in a directory
  // the fleet owns unless base->tls_dir names one) and points base at them.
  absl::Status PrepareTls(RedisServerOptions* base);

  absl::Status WaitForSentinelsReady(absl::Duration timeout);
  absl::Status SetUpCluster(int masters, int replicas_per_master);
  // The cluster as one reachable node sees it.
  absl::StatusOr<std::string> ClusterNodesFromAnyNode();
  absl::StatusOr<int> ShardMasterLocked(int shard);
  absl::StatusOr<int> SlotOwnerLocked(int slot);
  absl::Status CheckCluster() const;
  // The migration BeginMoveSlot started for `slot`, or kFailedPrecondition.
  // Requires ops_mu_.
  absl::StatusOr<Migration> MigrationLocked(int slot) const;
  absl::Status CheckSentinel() const;
  // `status` with the tail of every node's log appended.
  absl::Status WithLogs(const absl::Status& status) const;

  const Kind kind_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<std::unique_ptr<RedisServer>> sentinels_;
  std::string master_name_;  // Sentinel only.
  std::string password_;     // base.password, for MIGRATE AUTH.
  std::string sentinel_password_;  // Sentinel only.
  int shards_ = 0;           // Cluster only.
  int replicas_per_master_ = 0;
  std::vector<std::string> node_ids_;  // Cluster: CLUSTER MYID by index.
  std::optional<TlsFiles> tls_files_;  // TLS fleets.
  std::string owned_tls_dir_;          // Removed by the destructor.

  std::mutex ops_mu_;  // Serializes topology operations.
  std::map<int, Migration> migrations_;  // Guarded by ops_mu_; by slot.
};

}  // namespace lock::harness

#endif  // INTEGRATION_HARNESS_REDIS_FLEET_H_
