// Test certificates for TLS servers and clients, made with the `openssl` CLI.
//
//   ASSIGN_OR_RETURN(TlsFiles tls, MakeTlsFiles("/tmp/certs"));
//   // redis-server --tls-cert-file tls.server_cert --tls-key-file
//   //   tls.server_key --tls-ca-cert-file tls.ca_cert ...
//
// Everything is signed by one throwaway CA (ca.crt) except other-ca.crt, an
// unrelated CA a client can be pointed at to see verification fail. Keys are
// EC (prime256v1): the whole set takes some tens of milliseconds. Nothing
// here is fit for anything but tests.
#ifndef INTEGRATION_HARNESS_TLS_FILES_H_
#define INTEGRATION_HARNESS_TLS_FILES_H_

#include <string>

#include "absl/status/statusor.h"

namespace lock::harness {

// Absolute paths of the files MakeTlsFiles() wrote.
struct TlsFiles {
  std::string dir;
  std::string ca_cert;  // ca.crt: the CA every cert below is signed by
  std::string ca_key;   // ca.key
  // server.crt: CN=localhost, subjectAltName IP:127.0.0.1, DNS:localhost,
  // valid for ten years. No extendedKeyUsage, so Redis can present it as a
  // client certificate too (replication, cluster bus, Sentinel links).
  std::string server_cert;
  std::string server_key;
  // client.crt: CN=redis-lock test client, for mutual TLS.
  std::string client_cert;
  std::string client_key;
  // other-ca.crt: a second CA that signed none of these certificates.
  std::string other_ca_cert;
  // expired-server.crt: like server.crt but valid only on 2020-01-01 (UTC);
  // its key is server_key.
  std::string expired_server_cert;
  std::string expired_server_key;
  // wrong-host-server.crt: signed by the CA, valid, but for
  // DNS:not-this-host.example only; its key is server_key.
  std::string wrong_host_server_cert;
  std::string wrong_host_server_key;
};

// Writes the files above into `dir` (created if missing), running `openssl`
// from $PATH or the system directories. A second call for the same
// directory in the same process returns the first call's files (made again
// if any of them has gone). Thread-safe. kNotFound without an openssl
// binary; kInternal, with openssl's stderr, when a step fails.
absl::StatusOr<TlsFiles> MakeTlsFiles(const std::string& dir);

}  // namespace lock::harness

#endif  // INTEGRATION_HARNESS_TLS_FILES_H_
