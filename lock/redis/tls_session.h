// One TLS session over a connected socket: Connection's TLS side. The
// handshake runs on the non-blocking socket, polled by the caller until its
// deadline; reads and writes then run on the blocking socket, each bounded
// by the socket's timeouts (kWantRead / kWantWrite then mean the timeout
// ran out, unless `interrupted`), so no SSL call blocks without a bound.
#ifndef LOCK_REDIS_TLS_SESSION_H_
#define LOCK_REDIS_TLS_SESSION_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "lock/redis/tls.h"

typedef struct ssl_st SSL;
typedef struct x509_st X509;
typedef struct evp_pkey_st EVP_PKEY;

namespace lock::redis {

class TlsSession {
 public:
  struct Io {
    enum Kind { kDone, kWantRead, kWantWrite, kClosed, kError } kind;
    int bytes = 0;       // kDone: bytes read or written
    bool interrupted = false;  // kWant*: by a signal (EINTR): call again
    std::string cause;   // kError: what OpenSSL said
  };

  // Prepares the client side of a handshake with `host` (the address's
  // host; the context's server_name wins when set) as SNI and expected name.
  static absl::StatusOr<std::unique_ptr<TlsSession>> Start(const TlsContext& context, int fd,
                                                           const std::string& host);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  Io Handshake();
  // The server asked for a client certificate and the context has none:
  // with TLS 1.3 the server's refusal comes after the client's handshake
  // is done, as a reset at the first command, which alone explains nothing.
  bool client_certificate_missing() const { return client_certificate_missing_; }
  // OpenSSL's client certificate callback of a context without one: notes
  // the request on the session and sends no certificate.
  static int OnCertificateRequest(SSL* ssl, X509** x509, EVP_PKEY** pkey);
  Io Read(char* buf, size_t size);
  Io Write(const char* data, size_t size);

 private:
  explicit TlsSession(SSL* ssl) : ssl_(ssl) {}
  Io Result(int n, bool handshake);

  SSL* const ssl_;
  bool client_certificate_missing_ = false;
};

// The reasons in OpenSSL's error queue, "; "-joined, and clears it.
std::string OpenSslErrors();

}  // namespace lock::redis

#endif  // LOCK_REDIS_TLS_SESSION_H_
