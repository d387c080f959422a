#include "lock/internal/target.h"

#include "absl/strings/str_cat.h"

namespace lock::internal {

absl::StatusOr<redis::ConnectionOptions> ConnectionOptionsFor(const policy::RedisTarget& target) {
  redis::ConnectionOptions o{
      .addr = target.addrs.empty() ? std::string() : target.addrs.front(),
      .connect_timeout = target.connect_timeout,
      .username = target.username,
      .password = target.password,
      .db = target.db};
  if (target.tls.enabled) {
    absl::StatusOr<std::shared_ptr<const redis::TlsContext>> tls =
        redis::TlsContext::Create({.ca_pem = target.tls.ca_pem,
                                   .cert_pem = target.tls.cert_pem,
                                   .key_pem = target.tls.key_pem,
                                   .server_name = target.tls.server_name,
                                   .verify_peer = target.tls.verify_peer});
    if (!tls.ok()) {
      return absl::Status(tls.status().code(), absl::StrCat("redis target \"", target.name,
                                                            "\": ", tls.status().message()));
    }
    o.tls = *std::move(tls);
  }
  return o;
}

absl::StatusOr<std::vector<std::shared_ptr<redis::Topology>>> HomesFor(
    const policy::RedisTarget& target) {
  absl::StatusOr<redis::ConnectionOptions> connection = ConnectionOptionsFor(target);
  if (!connection.ok()) return connection.status();
  const redis::PoolOptions data{.connection = *std::move(connection),
                                .max_size = target.pool_size};
  auto standalone = [&data](const std::string& addr) {
    redis::PoolOptions o = data;
    o.connection.addr = addr;
    return std::make_shared<redis::StandaloneTopology>(o);
  };
  std::vector<std::shared_ptr<redis::Topology>> homes;
  switch (target.mode) {
    case policy::RedisMode::kStandalone:
      homes.push_back(standalone(target.addrs.at(0)));
      break;
    case policy::RedisMode::kSentinel:
      homes.push_back(std::make_shared<redis::SentinelTopology>(
          redis::SentinelOptions{.sentinels = target.sentinels,
                                 .master_name = target.master_name,
                                 .data = data,
                                 .sentinel_username = target.sentinel_username,
                                 .sentinel_password = target.sentinel_password}));
      break;
    case policy::RedisMode::kCluster:
      homes.push_back(std::make_shared<redis::ClusterTopology>(
          redis::ClusterOptions{target.addrs, data}));
      break;
    case policy::RedisMode::kRedlock:
      for (const std::string& addr : target.addrs) homes.push_back(standalone(addr));
      break;
  }
  return homes;
}

}  // namespace lock::internal
