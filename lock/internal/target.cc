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

}  // namespace lock::internal
