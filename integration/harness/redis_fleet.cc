#include "integration/harness/redis_fleet.h"

#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "util/key_slot.h"
#include "util/status_macros.h"

namespace lock::harness {
namespace {

constexpr int kSlots = ::util::kClusterSlots;
constexpr int kLogTailLines = 20;
constexpr int kMigrateBatch = 100;
// Readiness of a whole topology; generous for a loaded 2-core machine.
constexpr absl::Duration kReadyTimeout = absl::Seconds(40);
// Polls must not hang on a paused node.
constexpr absl::Duration kPollTimeout = absl::Milliseconds(500);
constexpr absl::Duration kMigrateTimeout = absl::Seconds(5);

using Nodes = std::vector<std::unique_ptr<RedisServer>>;

// Starts all servers at once (a container takes a while to launch); on any
// error the ones that did start are stopped again.
absl::StatusOr<Nodes> StartAll(std::vector<RedisServerOptions> options) {
  Nodes nodes(options.size());
  std::vector<absl::Status> errors(options.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < options.size(); ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::unique_ptr<RedisServer>> server =
          RedisServer::Start(std::move(options[i]));
      if (server.ok()) {
        nodes[i] = *std::move(server);
      } else {
        errors[i] = server.status();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const absl::Status& error : errors) RETURN_IF_ERROR(error);
  return nodes;
}

void StopAll(Nodes& nodes) {
  std::vector<std::thread> threads;
  for (std::unique_ptr<RedisServer>& node : nodes) {
    threads.emplace_back([&node] { node.reset(); });
  }
  for (std::thread& thread : threads) thread.join();
}

// INFO output as field -> value.
absl::flat_hash_map<std::string, std::string> ParseInfo(
    absl::string_view info) {
  absl::flat_hash_map<std::string, std::string> fields;
  for (absl::string_view line : absl::StrSplit(info, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    fields[line.substr(0, colon)] = std::string(line.substr(colon + 1));
  }
  return fields;
}

// A flat [field, value, field, value...] reply (SENTINEL MASTER etc.).
absl::flat_hash_map<std::string, std::string> ParsePairs(
    const RedisReply& reply) {
  absl::flat_hash_map<std::string, std::string> fields;
  for (size_t i = 0; i + 1 < reply.elements.size(); i += 2) {
    fields[reply.elements[i].str] = reply.elements[i + 1].str;
  }
  return fields;
}

std::string Get(const absl::flat_hash_map<std::string, std::string>& fields,
                const std::string& key) {
  auto it = fields.find(key);
  return it == fields.end() ? "" : it->second;
}

absl::Status ReplicaInSync(RedisServer& replica) {
  ASSIGN_OR_RETURN(RedisReply info,
                   replica.Query({"INFO", "replication"}, kPollTimeout));
  if (Get(ParseInfo(info.str), "master_link_status") != "up") {
    return absl::UnavailableError(
        absl::StrCat(replica.name(), ": replication link not up yet"));
  }
  return absl::OkStatus();
}

std::string LastLines(absl::string_view text, int count) {
  std::vector<absl::string_view> lines =
      absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.size() > static_cast<size_t>(count)) {
    lines.erase(lines.begin(), lines.end() - count);
  }
  return absl::StrJoin(lines, "\n");
}

// One line of CLUSTER NODES.
struct ClusterNode {
  std::string id;
  std::vector<std::string> flags;
  std::string master;               // "-" for masters
  std::vector<std::string> slots;   // "a-b" / "a"; no migration markers
  bool Has(absl::string_view flag) const {
    return std::find(flags.begin(), flags.end(), flag) != flags.end();
  }
  bool failed() const { return Has("fail") || Has("fail?"); }
  bool OwnsSlot(int slot) const {
    for (const std::string& range : slots) {
      std::pair<std::string, std::string> bounds =
          absl::StrSplit(range, absl::MaxSplits('-', 1));
      int first = 0;
      int last = 0;
      if (!absl::SimpleAtoi(bounds.first, &first)) continue;
      if (bounds.second.empty()) {
        last = first;
      } else if (!absl::SimpleAtoi(bounds.second, &last)) {
        continue;
      }
      if (first <= slot && slot <= last) return true;
    }
    return false;
  }
};

std::vector<ClusterNode> ParseClusterNodes(absl::string_view text) {
  std::vector<ClusterNode> nodes;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<std::string> fields =
        absl::StrSplit(absl::StripAsciiWhitespace(line), ' ', absl::SkipEmpty());
    if (fields.size() < 8) continue;
    ClusterNode node;
    node.id = fields[0];
    node.flags = absl::StrSplit(fields[2], ',');
    node.master = fields[3];
    for (size_t i = 8; i < fields.size(); ++i) {
      if (!absl::StartsWith(fields[i], "[")) node.slots.push_back(fields[i]);
    }
    nodes.push_back(std::move(node));
  }
  return nodes;
}

// What all nodes must agree on: who is master of what, with which slots.
std::string CanonicalView(const std::vector<ClusterNode>& nodes) {
  std::vector<std::string> lines;
  for (const ClusterNode& node : nodes) {
    const bool master = node.Has("master");
    lines.push_back(absl::StrCat(node.id, " ", master ? "master" : "slave",
                                 " ", master ? "-" : node.master, " ",
                                 absl::StrJoin(node.slots, ",")));
  }
  std::sort(lines.begin(), lines.end());
  return absl::StrJoin(lines, "\n");
}

// A JSON string literal.
std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, "\\u00",
                      absl::Hex(static_cast<int>(c), absl::kZeroPad2));
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

std::string JsonList(const std::vector<std::string>& items) {
  std::vector<std::string> quoted;
  for (const std::string& item : items) quoted.push_back(JsonString(item));
  return absl::StrCat("[", absl::StrJoin(quoted, ", "), "]");
}

// A config value that survives redis.conf's shell-like splitting.
std::string Quote(absl::string_view value) {
  return absl::StrCat("\"", absl::CHexEscape(value), "\"");
}

}  // namespace

absl::Status PollUntilOk(absl::Duration timeout,
                         absl::FunctionRef<absl::Status()> probe,
                         absl::Duration interval) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    absl::Status status = probe();
    if (status.ok()) return status;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("not done within ", absl::FormatDuration(timeout),
                       "; last: ", status.ToString()));
    }
    absl::SleepFor(interval);
  }
}

absl::StatusOr<std::string> RoleOf(RedisServer& server,
                                   absl::Duration timeout) {
  ASSIGN_OR_RETURN(RedisReply role, server.Query({"ROLE"}, timeout));
  if (role.elements.empty()) {
    return absl::InternalError(absl::StrCat(server.name(), ": empty ROLE"));
  }
  return role.elements[0].str;
}

std::string PrefixLines(absl::string_view name, absl::string_view text) {
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&out, "[", name, "] ", line, "\n");
  }
  return out;
}

// --- Construction -----------------------------------------------------------

absl::StatusOr<std::unique_ptr<RedisFleet>> RedisFleet::Standalone(
    RedisServerOptions base) {
  if (base.name == RedisServerOptions().name) base.name = "redis-0";
  std::unique_ptr<RedisFleet> fleet(new RedisFleet(Kind::kStandalone));
  fleet->password_ = base.password;
  RETURN_IF_ERROR(fleet->PrepareTls(&base));
  ASSIGN_OR_RETURN(fleet->nodes_, StartAll({std::move(base)}));
  return fleet;
}

absl::StatusOr<std::unique_ptr<RedisFleet>> RedisFleet::Masters(
    int n, RedisServerOptions base) {
  if (n < 1) return absl::InvalidArgumentError("Masters: n must be >= 1");
  std::unique_ptr<RedisFleet> fleet(new RedisFleet(Kind::kMasters));
  fleet->password_ = base.password;
  RETURN_IF_ERROR(fleet->PrepareTls(&base));
  std::vector<RedisServerOptions> options;
  for (int i = 0; i < n; ++i) {
    RedisServerOptions node = base;
    node.name = absl::StrCat("master-", i);
    options.push_back(std::move(node));
  }
  ASSIGN_OR_RETURN(fleet->nodes_, StartAll(std::move(options)));
  return fleet;
}

absl::StatusOr<std::unique_ptr<RedisFleet>> RedisFleet::Sentinel(
    int replicas, int sentinels, std::string master_name,
    RedisServerOptions base, std::string sentinel_password) {
  if (replicas < 1 || sentinels < 1 || master_name.empty()) {
    return absl::InvalidArgumentError(
        "Sentinel: needs >= 1 replica, >= 1 sentinel and a master name");
  }
  std::unique_ptr<RedisFleet> fleet(new RedisFleet(Kind::kSentinel));
  fleet->master_name_ = master_name;
  fleet->password_ = base.password;
  fleet->sentinel_password_ = sentinel_password;
  RETURN_IF_ERROR(fleet->PrepareTls(&base));

  RedisServerOptions data = base;
  // Redis 7 delays a diskless full sync by 5 s by default, to batch
  // replicas; a test has no use for that.
  data.extra_config.insert(data.extra_config.begin(),
                           {"repl-diskless-sync-delay", "0"});
  if (!base.password.empty()) {
    data.extra_config.insert(data.extra_config.begin(),
                             {"masterauth", Quote(base.password)});
  }
  RedisServerOptions master = data;
  master.name = "redis-0";
  ASSIGN_OR_RETURN(Nodes first, StartAll({std::move(master)}));
  const int master_port = first[0]->port();
  fleet->nodes_ = std::move(first);

  std::vector<RedisServerOptions> replica_options;
  for (int i = 1; i <= replicas; ++i) {
    RedisServerOptions replica = data;
    replica.name = absl::StrCat("redis-", i);
    replica.extra_config.push_back(
        {"replicaof", absl::StrCat("127.0.0.1 ", master_port)});
    replica_options.push_back(std::move(replica));
  }
  ASSIGN_OR_RETURN(Nodes started, StartAll(std::move(replica_options)));
  for (auto& node : started) fleet->nodes_.push_back(std::move(node));
  // Sentinels learn the replicas from the master's INFO when they connect
  // and then only every 10 s: start them once the replicas are attached.
  for (int i = 1; i <= replicas; ++i) {
    absl::Status synced = PollUntilOk(
        kReadyTimeout, [&] { return ReplicaInSync(fleet->node(i)); });
    if (!synced.ok()) return fleet->WithLogs(synced);
  }

  std::vector<RedisServerOptions> sentinel_options;
  for (int i = 0; i < sentinels; ++i) {
    RedisServerOptions sentinel;
    sentinel.name = absl::StrCat("sentinel-", i);
    sentinel.sentinel = true;
    sentinel.backend = base.backend;
    sentinel.start_timeout = base.start_timeout;
    // A TLS sentinel serves clients on its TLS port and, by
    // tls-replication, talks TLS to the nodes and to the other sentinels
    // (announcing its TLS port to them).
    sentinel.tls = base.tls;
    sentinel.tls_auth_clients = base.tls_auth_clients;
    sentinel.tls_dir = base.tls_dir;
    // The harness's own connections AUTH with `password`.
    sentinel.password = sentinel_password;
    const std::string& name = master_name;
    sentinel.extra_config = {
        {"sentinel monitor",
         absl::StrCat(name, " 127.0.0.1 ", master_port, " ",
                      std::min(2, sentinels))},
        {"sentinel down-after-milliseconds", name + " 1000"},
        {"sentinel failover-timeout", name + " 3000"},
        {"sentinel parallel-syncs", name + " 1"},
    };
    if (!base.password.empty()) {
      sentinel.extra_config.push_back(
          {"sentinel auth-pass", name + " " + Quote(base.password)});
    }
    if (!sentinel_password.empty()) {
      sentinel.extra_config.push_back(
          {"sentinel sentinel-pass", Quote(sentinel_password)});
    }
    sentinel_options.push_back(std::move(sentinel));
  }
  ASSIGN_OR_RETURN(fleet->sentinels_, StartAll(std::move(sentinel_options)));
  RETURN_IF_ERROR(fleet->WaitForSentinelsReady(kReadyTimeout));
  return fleet;
}

absl::Status RedisFleet::WaitForSentinelsReady(absl::Duration timeout) {
  const size_t replicas = nodes_.size() - 1;
  const std::string others = absl::StrCat(sentinels_.size() - 1);
  absl::Status status = PollUntilOk(timeout, [&]() -> absl::Status {
    for (auto& sentinel : sentinels_) {
      ASSIGN_OR_RETURN(
          RedisReply master,
          sentinel->Query({"SENTINEL", "MASTER", master_name_}, kPollTimeout));
      const auto fields = ParsePairs(master);
      if (Get(fields, "flags") != "master" ||
          Get(fields, "num-other-sentinels") != others) {
        return absl::UnavailableError(absl::StrCat(
            sentinel->name(), ": master flags ", Get(fields, "flags"),
            ", other sentinels ", Get(fields, "num-other-sentinels"),
            " (want ", others, ")"));
      }
      ASSIGN_OR_RETURN(RedisReply known,
                       sentinel->Query({"SENTINEL", "REPLICAS", master_name_},
                                       kPollTimeout));
      size_t ok = 0;
      for (const RedisReply& replica : known.elements) {
        const auto replica_fields = ParsePairs(replica);
        if (Get(replica_fields, "flags") == "slave" &&
            Get(replica_fields, "master-link-status") == "ok") {
          ++ok;
        }
      }
      if (ok != replicas) {
        return absl::UnavailableError(
            absl::StrCat(sentinel->name(), ": knows ", ok, " healthy of ",
                         replicas, " replicas"));
      }
    }
    return absl::OkStatus();
  });
  return status.ok() ? status : WithLogs(status);
}

absl::StatusOr<std::unique_ptr<RedisFleet>> RedisFleet::Cluster(
    int masters, int replicas_per_master, RedisServerOptions base) {
  if (masters < 3 || replicas_per_master < 0) {
    return absl::InvalidArgumentError(
        "Cluster: needs >= 3 masters and >= 0 replicas per master");
  }
  std::unique_ptr<RedisFleet> fleet(new RedisFleet(Kind::kCluster));
  fleet->password_ = base.password;
  RETURN_IF_ERROR(fleet->PrepareTls(&base));
  fleet->shards_ = masters;
  fleet->replicas_per_master_ = replicas_per_master;
  std::vector<RedisServerOptions> options;
  const int total = masters * (1 + replicas_per_master);
  for (int i = 0; i < total; ++i) {
    RedisServerOptions node = base;
    node.name = absl::StrCat("cluster-", i);
    node.cluster = true;
    node.extra_config.insert(
        node.extra_config.begin(),
        {{"repl-diskless-sync-delay", "0"},
         // Keep shard membership fixed: replicas never wander off to
         // another master on their own.
         {"cluster-allow-replica-migration", "no"}});
    if (!base.password.empty()) {
      node.extra_config.insert(node.extra_config.begin(),
                               {"masterauth", Quote(base.password)});
    }
    options.push_back(std::move(node));
  }
  ASSIGN_OR_RETURN(fleet->nodes_, StartAll(std::move(options)));
  absl::Status status = fleet->SetUpCluster(masters, replicas_per_master);
  if (!status.ok()) return fleet->WithLogs(status);
  return fleet;
}

absl::Status RedisFleet::SetUpCluster(int masters, int replicas_per_master) {
  const int total = size();
  for (int i = 0; i < total; ++i) {
    ASSIGN_OR_RETURN(std::string id, node(i).Exec({"CLUSTER", "MYID"}));
    node_ids_.push_back(id);
    // Distinct epochs up front, as redis-cli does: no collisions to resolve.
    RETURN_IF_ERROR(
        node(i)
            .Exec({"CLUSTER", "SET-CONFIG-EPOCH", absl::StrCat(i + 1)})
            .status());
  }
  for (int shard = 0; shard < masters; ++shard) {
    const int first = shard * kSlots / masters;
    const int last = (shard + 1) * kSlots / masters - 1;
    RETURN_IF_ERROR(node(shard)
                        .Exec({"CLUSTER", "ADDSLOTSRANGE", absl::StrCat(first),
                               absl::StrCat(last)})
                        .status());
  }
  for (int i = 1; i < total; ++i) {
    RETURN_IF_ERROR(node(i)
                        .Exec({"CLUSTER", "MEET", node(0).host(),
                               absl::StrCat(node(0).port()),
                               absl::StrCat(node(0).cluster_bus_port())})
                        .status());
  }
  RETURN_IF_ERROR(PollUntilOk(kReadyTimeout, [&]() -> absl::Status {
    for (int i = 0; i < total; ++i) {
      ASSIGN_OR_RETURN(RedisReply nodes,
                       node(i).Query({"CLUSTER", "NODES"}, kPollTimeout));
      int known = 0;
      for (const ClusterNode& seen : ParseClusterNodes(nodes.str)) {
        if (!seen.Has("handshake") && !seen.Has("noaddr")) ++known;
      }
      if (known != total) {
        return absl::UnavailableError(absl::StrCat(
            node(i).name(), ": knows ", known, " of ", total, " nodes"));
      }
    }
    return absl::OkStatus();
  }));
  for (int i = masters; i < total; ++i) {
    const int shard = ShardOf(i);
    RETURN_IF_ERROR(PollUntilOk(kReadyTimeout, [&] {
      return node(i)
          .Query({"CLUSTER", "REPLICATE", node_ids_[shard]}, kPollTimeout)
          .status();
    }));
  }
  for (int i = masters; i < total; ++i) {
    RETURN_IF_ERROR(
        PollUntilOk(kReadyTimeout, [&] { return ReplicaInSync(node(i)); }));
  }
  return WaitForClusterConverged(kReadyTimeout);
}

RedisFleet::~RedisFleet() {
  StopAll(sentinels_);
  StopAll(nodes_);
  if (!owned_tls_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(owned_tls_dir_, ignored);
  }
}

absl::Status RedisFleet::PrepareTls(RedisServerOptions* base) {
  if (!base->tls) return absl::OkStatus();
  if (base->tls_dir.empty()) {
    const char* env = std::getenv("TEST_TMPDIR");
    std::string dir = absl::StrCat(env != nullptr && *env != '\0' ? env : "/tmp",
                                   "/redis-tls-XXXXXX");
    if (mkdtemp(dir.data()) == nullptr) {
      return absl::InternalError(absl::StrCat("mkdtemp ", dir));
    }
    owned_tls_dir_ = dir;
    base->tls_dir = dir;
  }
  ASSIGN_OR_RETURN(tls_files_, MakeTlsFiles(base->tls_dir));
  return absl::OkStatus();
}

// --- All kinds --------------------------------------------------------------

std::vector<std::string> RedisFleet::addrs() const {
  std::vector<std::string> out;
  for (const auto& node : nodes_) out.push_back(node->addr());
  return out;
}

int RedisFleet::IndexOf(absl::string_view addr) const {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i]->addr() == addr) return static_cast<int>(i);
  }
  return -1;
}

std::string RedisFleet::Logs() const {
  std::string out;
  for (const auto* group : {&nodes_, &sentinels_}) {
    for (const auto& node : *group) {
      absl::StrAppend(&out, PrefixLines(node->name(), node->Log()));
    }
  }
  return out;
}

absl::Status RedisFleet::WithLogs(const absl::Status& status) const {
  std::string logs;
  for (const auto* group : {&nodes_, &sentinels_}) {
    for (const auto& node : *group) {
      if (node == nullptr) continue;
      absl::StrAppend(&logs, PrefixLines(node->name(),
                                         LastLines(node->Log(), kLogTailLines)));
    }
  }
  return absl::Status(status.code(), absl::StrCat(status.message(),
                                                  "\nnode logs (tails):\n",
                                                  logs));
}

std::string RedisFleet::PolicyTargetJson() const {
  std::string json;
  switch (kind_) {
    case Kind::kStandalone:
      json = absl::StrCat(R"({"mode": "standalone", "addrs": )",
                          JsonList(addrs()));
      break;
    case Kind::kMasters:
      json = absl::StrCat(R"({"mode": "redlock", "addrs": )",
                          JsonList(addrs()));
      break;
    case Kind::kSentinel:
      json = absl::StrCat(R"({"mode": "sentinel", "sentinels": )",
                          JsonList(sentinel_addrs()), R"(, "master_name": ")",
                          master_name_, "\"");
      break;
    case Kind::kCluster:
      json = absl::StrCat(R"({"mode": "cluster", "addrs": )",
                          JsonList(addrs()));
      break;
  }
  if (!password_.empty()) {
    absl::StrAppend(&json, R"(, "password_env": "REDIS_PASSWORD")");
  }
  if (!sentinel_password_.empty()) {
    absl::StrAppend(&json,
                    R"(, "sentinel_password_env": "REDIS_SENTINEL_PASSWORD")");
  }
  if (tls_files_.has_value()) {
    absl::StrAppend(&json, R"(, "tls": {"ca_file": )",
                    JsonString(tls_files_->ca_cert), R"(, "cert_file": )",
                    JsonString(tls_files_->client_cert), R"(, "key_file": )",
                    JsonString(tls_files_->client_key), "}");
  }
  return json + "}";
}

// --- Sentinel ---------------------------------------------------------------

absl::Status RedisFleet::CheckSentinel() const {
  if (kind_ != Kind::kSentinel) {
    return absl::FailedPreconditionError("not a Sentinel topology");
  }
  return absl::OkStatus();
}

std::vector<std::string> RedisFleet::sentinel_addrs() const {
  std::vector<std::string> out;
  for (const auto& sentinel : sentinels_) out.push_back(sentinel->addr());
  return out;
}

absl::StatusOr<std::string> RedisFleet::MasterAddr() {
  RETURN_IF_ERROR(CheckSentinel());
  absl::Status last;
  for (auto& sentinel : sentinels_) {
    absl::StatusOr<RedisReply> reply =
        sentinel->Query({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name_},
                        kPollTimeout);
    if (reply.ok() && reply->elements.size() == 2) {
      return absl::StrCat(reply->elements[0].str, ":",
                          reply->elements[1].str);
    }
    last = reply.ok() ? absl::InternalError("unexpected reply")
                      : reply.status();
  }
  return absl::UnavailableError(
      absl::StrCat("no sentinel reports master ", master_name_, ": ",
                   last.message()));
}

absl::StatusOr<int> RedisFleet::MasterIndex() {
  ASSIGN_OR_RETURN(std::string addr, MasterAddr());
  const int index = IndexOf(addr);
  if (index < 0) {
    return absl::InternalError(
        absl::StrCat("sentinels report an unknown master ", addr));
  }
  return index;
}

absl::Status RedisFleet::Failover(absl::Duration timeout) {
  RETURN_IF_ERROR(CheckSentinel());
  std::lock_guard<std::mutex> lock(ops_mu_);
  const absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(const std::string old_master, MasterAddr());
  // NOGOODSLAVE: the sentinel's view of the replicas is not fresh enough
  // yet; it will be within a second or two.
  absl::Status started = PollUntilOk(deadline - absl::Now(), [&] {
    absl::Status last = absl::UnavailableError("no sentinel answered");
    for (auto& sentinel : sentinels_) {
      absl::StatusOr<RedisReply> reply = sentinel->Query(
          {"SENTINEL", "FAILOVER", master_name_}, kPollTimeout);
      if (reply.ok() || absl::StrContains(reply.status().message(), "INPROG")) {
        return absl::OkStatus();
      }
      last = reply.status();
    }
    return last;
  }, absl::Milliseconds(100));
  if (!started.ok()) return WithLogs(started);
  absl::Status done = PollUntilOk(deadline - absl::Now(), [&]() -> absl::Status {
    std::string agreed;
    for (auto& sentinel : sentinels_) {
      absl::StatusOr<RedisReply> reply = sentinel->Query(
          {"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name_}, kPollTimeout);
      if (!reply.ok()) continue;  // A killed or paused sentinel.
      if (reply->elements.size() != 2) {
        return absl::UnavailableError(sentinel->name() + ": no master");
      }
      const std::string addr =
          absl::StrCat(reply->elements[0].str, ":", reply->elements[1].str);
      if (addr == old_master) {
        return absl::UnavailableError(sentinel->name() + ": still " + addr);
      }
      if (!agreed.empty() && addr != agreed) {
        return absl::UnavailableError(absl::StrCat(
            sentinel->name(), ": reports ", addr, ", another ", agreed));
      }
      agreed = addr;
    }
    if (agreed.empty()) return absl::UnavailableError("no sentinel answers");
    const int index = IndexOf(agreed);
    if (index < 0) return absl::InternalError("unknown new master " + agreed);
    ASSIGN_OR_RETURN(std::string role, RoleOf(node(index)));
    if (role != "master") {
      return absl::UnavailableError(
          absl::StrCat(node(index).name(), " (", agreed, ") is still ", role));
    }
    return absl::OkStatus();
  }, absl::Milliseconds(50));
  return done.ok() ? done : WithLogs(done);
}

// --- Cluster ----------------------------------------------------------------

absl::Status RedisFleet::CheckCluster() const {
  if (kind_ != Kind::kCluster) {
    return absl::FailedPreconditionError("not a Cluster topology");
  }
  return absl::OkStatus();
}

int RedisFleet::ShardOf(int i) const {
  if (kind_ != Kind::kCluster || i < 0 || i >= size()) return -1;
  if (i < shards_) return i;
  return (i - shards_) / std::max(1, replicas_per_master_);
}

int RedisFleet::KeySlot(absl::string_view key) { return ::util::KeySlot(key); }

absl::StatusOr<std::string> RedisFleet::ClusterNodesFromAnyNode() {
  absl::Status last = absl::UnavailableError("no node");
  for (auto& node : nodes_) {
    if (node->pid() < 0 || node->paused()) continue;
    absl::StatusOr<RedisReply> reply =
        node->Query({"CLUSTER", "NODES"}, kPollTimeout);
    if (reply.ok()) return reply->str;
    last = reply.status();
  }
  return absl::UnavailableError(
      absl::StrCat("no cluster node answers: ", last.message()));
}

absl::StatusOr<int> RedisFleet::ShardMasterLocked(int shard) {
  RETURN_IF_ERROR(CheckCluster());
  if (shard < 0 || shard >= shards_) {
    return absl::InvalidArgumentError(absl::StrCat("no shard ", shard));
  }
  ASSIGN_OR_RETURN(std::string text, ClusterNodesFromAnyNode());
  int fallback = -1;
  for (const ClusterNode& seen : ParseClusterNodes(text)) {
    auto it = std::find(node_ids_.begin(), node_ids_.end(), seen.id);
    if (it == node_ids_.end() || !seen.Has("master") || seen.failed()) {
      continue;
    }
    const int index = static_cast<int>(it - node_ids_.begin());
    if (ShardOf(index) != shard) continue;
    if (!seen.slots.empty()) return index;
    fallback = index;  // A master that has given all its slots away.
  }
  if (fallback >= 0) return fallback;
  return absl::UnavailableError(
      absl::StrCat("shard ", shard, " has no healthy master"));
}

absl::StatusOr<int> RedisFleet::SlotOwnerLocked(int slot) {
  RETURN_IF_ERROR(CheckCluster());
  if (slot < 0 || slot >= kSlots) {
    return absl::InvalidArgumentError(absl::StrCat("no slot ", slot));
  }
  ASSIGN_OR_RETURN(std::string text, ClusterNodesFromAnyNode());
  for (const ClusterNode& seen : ParseClusterNodes(text)) {
    if (!seen.Has("master") || !seen.OwnsSlot(slot)) continue;
    auto it = std::find(node_ids_.begin(), node_ids_.end(), seen.id);
    if (it != node_ids_.end()) return static_cast<int>(it - node_ids_.begin());
  }
  return absl::UnavailableError(absl::StrCat("slot ", slot, " has no owner"));
}

absl::StatusOr<int> RedisFleet::MasterOf(int shard) {
  std::lock_guard<std::mutex> lock(ops_mu_);
  return ShardMasterLocked(shard);
}

absl::StatusOr<int> RedisFleet::NodeIndexForSlot(int slot) {
  std::lock_guard<std::mutex> lock(ops_mu_);
  return SlotOwnerLocked(slot);
}

absl::StatusOr<RedisServer*> RedisFleet::NodeForSlot(int slot) {
  ASSIGN_OR_RETURN(int index, NodeIndexForSlot(slot));
  return &node(index);
}

absl::Status RedisFleet::WaitForClusterConverged(absl::Duration timeout) {
  RETURN_IF_ERROR(CheckCluster());
  absl::Status status = PollUntilOk(timeout, [&]() -> absl::Status {
    std::string agreed;
    std::string agreed_by;
    for (auto& node : nodes_) {
      if (node->pid() < 0 || node->paused()) continue;
      ASSIGN_OR_RETURN(RedisReply info,
                       node->Query({"CLUSTER", "INFO"}, kPollTimeout));
      const std::string state = Get(ParseInfo(info.str), "cluster_state");
      if (state != "ok") {
        return absl::UnavailableError(
            absl::StrCat(node->name(), ": cluster_state:", state));
      }
      ASSIGN_OR_RETURN(RedisReply nodes,
                       node->Query({"CLUSTER", "NODES"}, kPollTimeout));
      std::string view = CanonicalView(ParseClusterNodes(nodes.str));
      if (agreed_by.empty()) {
        agreed = std::move(view);
        agreed_by = node->name();
      } else if (view != agreed) {
        return absl::UnavailableError(absl::StrCat(
            node->name(), " and ", agreed_by, " disagree:\n", view, "\nvs\n",
            agreed));
      }
    }
    if (agreed_by.empty()) return absl::UnavailableError("no node is up");
    return absl::OkStatus();
  }, absl::Milliseconds(50));
  return status.ok() ? status : WithLogs(status);
}

absl::Status RedisFleet::Failover(int master_index, absl::Duration timeout) {
  RETURN_IF_ERROR(CheckCluster());
  std::lock_guard<std::mutex> lock(ops_mu_);
  const absl::Time deadline = absl::Now() + timeout;
  ASSIGN_OR_RETURN(const int master, ShardMasterLocked(master_index));
  ASSIGN_OR_RETURN(std::string text, ClusterNodesFromAnyNode());
  int replica = -1;
  for (const ClusterNode& seen : ParseClusterNodes(text)) {
    auto it = std::find(node_ids_.begin(), node_ids_.end(), seen.id);
    if (it == node_ids_.end() || !seen.Has("slave") || seen.failed() ||
        seen.master != node_ids_[master]) {
      continue;
    }
    const int index = static_cast<int>(it - node_ids_.begin());
    if (node(index).pid() >= 0 && !node(index).paused()) {
      replica = index;
      break;
    }
  }
  if (replica < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "shard ", master_index, " (master ", node(master).name(),
        ") has no replica that is up"));
  }
  const bool master_answers =
      node(master).Query({"PING"}, kPollTimeout).ok();
  std::vector<std::string> command = {"CLUSTER", "FAILOVER"};
  if (!master_answers) command.push_back("FORCE");
  RETURN_IF_ERROR(node(replica).Exec(command).status());
  absl::Status promoted = PollUntilOk(deadline - absl::Now(), [&]() -> absl::Status {
    ASSIGN_OR_RETURN(std::string role, RoleOf(node(replica)));
    if (role != "master") {
      return absl::UnavailableError(node(replica).name() + " is still " + role);
    }
    return absl::OkStatus();
  }, absl::Milliseconds(50));
  if (!promoted.ok()) return WithLogs(promoted);
  RETURN_IF_ERROR(WaitForClusterConverged(deadline - absl::Now()));
  ASSIGN_OR_RETURN(const int now_master, ShardMasterLocked(master_index));
  if (now_master != replica) {
    return absl::InternalError(absl::StrCat("after failover shard ",
                                            master_index, " is served by ",
                                            node(now_master).name()));
  }
  return absl::OkStatus();
}

absl::Status RedisFleet::MoveSlot(int slot, int to_master_index,
                                  absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  {
    std::lock_guard<std::mutex> lock(ops_mu_);
    ASSIGN_OR_RETURN(const int owner, SlotOwnerLocked(slot));
    if (ShardOf(owner) == to_master_index && !migrations_.count(slot)) {
      return absl::OkStatus();
    }
  }
  RETURN_IF_ERROR(BeginMoveSlot(slot, to_master_index));
  while (true) {
    ASSIGN_OR_RETURN(int moved, MigrateSlotKeys(slot, kMigrateBatch));
    if (moved == 0) break;
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("slot ", slot, ": keys still migrating"));
    }
  }
  return FinishMoveSlot(slot, deadline - absl::Now());
}

absl::Status RedisFleet::BeginMoveSlot(int slot, int to_master_index) {
  RETURN_IF_ERROR(CheckCluster());
  std::lock_guard<std::mutex> lock(ops_mu_);
  if (migrations_.count(slot)) {
    return absl::FailedPreconditionError(
        absl::StrCat("slot ", slot, " is already migrating"));
  }
  ASSIGN_OR_RETURN(const int source, SlotOwnerLocked(slot));
  ASSIGN_OR_RETURN(const int target, ShardMasterLocked(to_master_index));
  if (source == target) {
    return absl::FailedPreconditionError(absl::StrCat(
        "slot ", slot, " already belongs to shard ", to_master_index));
  }
  const std::string slot_text = absl::StrCat(slot);
  // Importing first: once the source says MIGRATING, clients that follow
  // its ASK must find the target ready.
  RETURN_IF_ERROR(node(target)
                      .Exec({"CLUSTER", "SETSLOT", slot_text, "IMPORTING",
                             node_ids_[source]})
                      .status());
  RETURN_IF_ERROR(node(source)
                      .Exec({"CLUSTER", "SETSLOT", slot_text, "MIGRATING",
                             node_ids_[target]})
                      .status());
  migrations_[slot] = Migration{source, target};
  return absl::OkStatus();
}

absl::StatusOr<RedisFleet::Migration> RedisFleet::MigrationLocked(int slot) const {
  auto it = migrations_.find(slot);
  if (it == migrations_.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("slot ", slot, " is not migrating (BeginMoveSlot)"));
  }
  return it->second;
}

absl::StatusOr<int> RedisFleet::MigrateSlotKeys(int slot, int max_keys) {
  RETURN_IF_ERROR(CheckCluster());
  std::lock_guard<std::mutex> lock(ops_mu_);
  ASSIGN_OR_RETURN(const Migration migration, MigrationLocked(slot));
  RedisServer& source = node(migration.source);
  RedisServer& target = node(migration.target);
  ASSIGN_OR_RETURN(RedisReply keys,
                   source.Query({"CLUSTER", "GETKEYSINSLOT",
                                 absl::StrCat(slot), absl::StrCat(max_keys)}));
  if (keys.elements.empty()) return 0;
  std::vector<std::string> migrate = {
      "MIGRATE", target.host(), absl::StrCat(target.port()), "", "0",
      absl::StrCat(absl::ToInt64Milliseconds(kMigrateTimeout))};
  if (!password_.empty()) migrate.insert(migrate.end(), {"AUTH", password_});
  migrate.push_back("KEYS");
  for (const RedisReply& key : keys.elements) migrate.push_back(key.str);
  RETURN_IF_ERROR(source.Exec(migrate).status());
  return static_cast<int>(keys.elements.size());
}

absl::Status RedisFleet::FinishMoveSlot(int slot, absl::Duration timeout) {
  RETURN_IF_ERROR(CheckCluster());
  std::lock_guard<std::mutex> lock(ops_mu_);
  ASSIGN_OR_RETURN(const Migration migration, MigrationLocked(slot));
  const std::string slot_text = absl::StrCat(slot);
  ASSIGN_OR_RETURN(std::string left,
                   node(migration.source)
                       .Exec({"CLUSTER", "COUNTKEYSINSLOT", slot_text}));
  if (left != "0") {
    return absl::FailedPreconditionError(absl::StrCat(
        "slot ", slot, ": ", left, " keys not migrated yet (MigrateSlotKeys)"));
  }
  const std::vector<std::string> assign = {"CLUSTER", "SETSLOT", slot_text,
                                           "NODE", node_ids_[migration.target]};
  // Target first, so that the slot is never owned by nobody; then the
  // source, whose MOVED replies then point at the target; then the others
  // (gossip would tell them too, later).
  RETURN_IF_ERROR(node(migration.target).Exec(assign).status());
  RETURN_IF_ERROR(node(migration.source).Exec(assign).status());
  for (int i = 0; i < size(); ++i) {
    if (i == migration.source || i == migration.target) continue;
    if (node(i).pid() < 0 || node(i).paused()) continue;
    absl::StatusOr<std::string> role = RoleOf(node(i));
    if (role.ok() && *role == "master") {
      node(i).Query(assign, kPollTimeout).IgnoreError();
    }
  }
  migrations_.erase(slot);
  const absl::Time deadline = absl::Now() + timeout;
  RETURN_IF_ERROR(WaitForClusterConverged(timeout));
  return PollUntilOk(deadline - absl::Now(), [&]() -> absl::Status {
    ASSIGN_OR_RETURN(int owner, SlotOwnerLocked(slot));
    if (owner != migration.target) {
      return absl::UnavailableError(absl::StrCat(
          "slot ", slot, " still owned by ", node(owner).name()));
    }
    return absl::OkStatus();
  });
}

}  // namespace lock::harness
