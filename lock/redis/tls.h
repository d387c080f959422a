// TLS for connections to Redis, from OpenSSL (hiredis 0.14 has none).
//
// A TlsContext is built once per Redis target from PEM text read when the
// configuration was loaded (policy::TlsOptions), and shared by every
// connection to that target's nodes, sentinels included. Connection does the
// handshake and the encrypted reads and writes; hiredis only parses replies.
//
//   ASSIGN_OR_RETURN(auto tls, TlsContext::Create({.ca_pem = ca}));
//   Connection::Open({.addr = "127.0.0.1:6380", .tls = tls});
#ifndef LOCK_REDIS_TLS_H_
#define LOCK_REDIS_TLS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace lock::redis {

struct TlsConfig {
  // CA certificates (PEM) that may sign the servers' certificates; empty
  // means the system's default trust store.
  std::string ca_pem;
  // Client certificate (chain, PEM) and its private key, for servers that
  // require one (tls-auth-clients yes); both or neither.
  std::string cert_pem;
  std::string key_pem;
  // Sent as SNI and matched against the server's certificate; empty means
  // the host of each address (an IP address is matched as an IP).
  std::string server_name;
  // False skips certificate and name verification: encryption without
  // knowing who is at the other end. For tests and nothing else.
  bool verify_peer = true;
};

class TlsContext {
 public:
  // kInvalidArgument naming what is wrong with the PEM text (the policy
  // layer has checked the files already; this catches code-built configs).
  static absl::StatusOr<std::shared_ptr<const TlsContext>> Create(const TlsConfig& config);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* ssl_ctx() const { return ctx_; }
  const std::string& server_name() const { return server_name_; }
  bool verify_peer() const { return verify_peer_; }

 private:
  TlsContext(SSL_CTX* ctx, std::string server_name, bool verify_peer)
      : ctx_(ctx), server_name_(std::move(server_name)), verify_peer_(verify_peer) {}

  SSL_CTX* const ctx_;
  const std::string server_name_;
  const bool verify_peer_;
};

// TLS handshakes completed by this process (every connection's first one);
// a pool that keeps its connections does one per connection, not per lock.
int64_t TlsHandshakes();

}  // namespace lock::redis

#endif  // LOCK_REDIS_TLS_H_
