#include "lock/redis/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "lock/redis/tls_session.h"
#include "util/errno.h"

namespace lock::redis {
namespace {

std::atomic<int64_t> g_handshakes{0};

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct CtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

std::unique_ptr<BIO, BioDeleter> MemoryBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioDeleter>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Every certificate in `pem`, in order; empty when there is none.
std::vector<std::unique_ptr<X509, X509Deleter>> ReadCertificates(const std::string& pem) {
  std::vector<std::unique_ptr<X509, X509Deleter>> certs;
  auto bio = MemoryBio(pem);
  while (bio != nullptr) {
    X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr);
    if (x == nullptr) break;
    // Fills the certificate's extension cache now, on this one thread.
    // Every handshake on the context reads the same X509 objects; left
    // empty, the first handshakes fill the cache while others read it
    // through OpenSSL's lock-free fast path, an acquire load in
    // uninstrumented code that TSan cannot see (a false report, but one
    // that hides real ones). Purpose -1 checks nothing else.
    X509_check_purpose(x, -1, 0);
    certs.emplace_back(x);
  }
  ERR_clear_error();  // the end of the text reads as an error
  return certs;
}

// Writes go out with MSG_NOSIGNAL: a server that went away must not raise
// SIGPIPE in the application (OpenSSL's socket BIO uses write()). The rest
// of the socket BIO's behaviour is kept.
int SendNoSignal(BIO* bio, const char* data, int len) {
  int fd = -1;
  BIO_get_fd(bio, &fd);
  errno = 0;
  const ssize_t n = send(fd, data, static_cast<size_t>(len), MSG_NOSIGNAL);
  BIO_clear_retry_flags(bio);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    BIO_set_retry_write(bio);
  }
  return static_cast<int>(n);
}

BIO_METHOD* NoSignalSocketMethod() {
  static BIO_METHOD* method = [] {
    const BIO_METHOD* socket = BIO_s_socket();
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK |
                                     BIO_TYPE_DESCRIPTOR,
                                 "socket without SIGPIPE");
    BIO_meth_set_write(m, SendNoSignal);
    BIO_meth_set_read(m, BIO_meth_get_read(socket));
    BIO_meth_set_puts(m, BIO_meth_get_puts(socket));
    BIO_meth_set_ctrl(m, BIO_meth_get_ctrl(socket));
    BIO_meth_set_create(m, BIO_meth_get_create(socket));
    BIO_meth_set_destroy(m, BIO_meth_get_destroy(socket));
    return m;
  }();
  return method;
}

}  // namespace

std::string OpenSslErrors() {
  std::string text;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    // "error:0A000086:SSL routines::certificate verify failed": the reason
    // is the part after the last colon.
    std::string_view s(buf);
    const size_t colon = s.rfind(':');
    if (colon != std::string_view::npos) s.remove_prefix(colon + 1);
    if (!text.empty()) text += "; ";
    text += s;
  }
  return text;
}

absl::StatusOr<std::shared_ptr<const TlsContext>> TlsContext::Create(const TlsConfig& config) {
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, CtxDeleter> ctx(SSL_CTX_new(TLS_client_method()));
  if (ctx == nullptr) {
    return absl::InternalError(absl::StrCat("TLS: cannot create a context: ", OpenSslErrors()));
  }
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Whole records per read() rather than header, then body: half the
  // system calls per reply.
  SSL_CTX_set_read_ahead(ctx.get(), 1);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (config.verify_peer) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (config.ca_pem.empty()) {
      if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            "TLS: cannot load the system's trust store: ", OpenSslErrors()));
      }
    } else {
      auto cas = ReadCertificates(config.ca_pem);
      if (cas.empty()) {
        return absl::InvalidArgumentError("TLS: the CA text holds no PEM certificate");
      }
      X509_STORE* store = SSL_CTX_get_cert_store(ctx.get());
      for (const auto& ca : cas) X509_STORE_add_cert(store, ca.get());
    }
  } else {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  }
  if (config.cert_pem.empty() != config.key_pem.empty()) {
    return absl::InvalidArgumentError(
        "TLS: a client certificate needs its key, and a key its certificate");
  }
  if (config.cert_pem.empty()) {
    SSL_CTX_set_client_cert_cb(ctx.get(), TlsSession::OnCertificateRequest);
  } else {
    auto chain = ReadCertificates(config.cert_pem);
    if (chain.empty()) {
      return absl::InvalidArgumentError("TLS: the client certificate text holds no PEM certificate");
    }
    if (SSL_CTX_use_certificate(ctx.get(), chain.front().get()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS: client certificate refused: ", OpenSslErrors()));
    }
    for (size_t i = 1; i < chain.size(); ++i) {
      // add1: the context takes its own reference.
      SSL_CTX_add1_chain_cert(ctx.get(), chain[i].get());
    }
    auto bio = MemoryBio(config.key_pem);
    std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
        PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    if (key == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS: the client key is not a PEM private key: ", OpenSslErrors()));
    }
    if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
        SSL_CTX_check_private_key(ctx.get()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "TLS: the client key does not match its certificate: ", OpenSslErrors()));
    }
  }
  return std::shared_ptr<const TlsContext>(
      new TlsContext(ctx.release(), config.server_name, config.verify_peer));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

int64_t TlsHandshakes() { return g_handshakes.load(std::memory_order_relaxed); }

// ---- TlsSession -------------------------------------------------------------

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

absl::StatusOr<std::unique_ptr<TlsSession>> TlsSession::Start(const TlsContext& context, int fd,
                                                              const std::string& host) {
  ERR_clear_error();
  std::unique_ptr<TlsSession> session(new TlsSession(SSL_new(context.ssl_ctx())));
  SSL* ssl = session->ssl_;
  if (ssl == nullptr) {
    return absl::InternalError(absl::StrCat("TLS: ", OpenSslErrors()));
  }
  BIO* bio = BIO_new(NoSignalSocketMethod());
  if (bio == nullptr) return absl::InternalError(absl::StrCat("TLS: ", OpenSslErrors()));
  BIO_set_fd(bio, fd, BIO_NOCLOSE);
  SSL_set_bio(ssl, bio, bio);
  const std::string& name = context.server_name().empty() ? host : context.server_name();
  in6_addr ip;
  const bool is_ip = inet_pton(AF_INET, name.c_str(), &ip) == 1 ||
                     inet_pton(AF_INET6, name.c_str(), &ip) == 1;
  // SNI carries host names only (RFC 6066).
  if (!is_ip && !name.empty()) SSL_set_tlsext_host_name(ssl, name.c_str());
  if (context.verify_peer() && !name.empty()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    const int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str())
                         : SSL_set1_host(ssl, name.c_str());
    if (ok != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("TLS: cannot verify against the name \"", name, "\""));
    }
  }
  SSL_set_app_data(ssl, session.get());
  SSL_set_connect_state(ssl);
  return session;
}

int TlsSession::OnCertificateRequest(SSL* ssl, X509**, EVP_PKEY**) {
  static_cast<TlsSession*>(SSL_get_app_data(ssl))->client_certificate_missing_ = true;
  return 0;
}

TlsSession::Io TlsSession::Result(int n, bool handshake) {
  if (n > 0) return {Io::kDone, n, false, {}};
  const int err = SSL_get_error(ssl_, n);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      return {Io::kWantRead, 0, errno == EINTR, {}};
    case SSL_ERROR_WANT_WRITE:
      return {Io::kWantWrite, 0, errno == EINTR, {}};
    case SSL_ERROR_ZERO_RETURN:
      return {Io::kClosed, 0, false, {}};
    default:
      break;
  }
  std::string cause;
  if (handshake && SSL_get_verify_result(ssl_) != X509_V_OK) {
    cause = absl::StrCat("certificate verify failed: ",
                         X509_verify_cert_error_string(SSL_get_verify_result(ssl_)));
    ERR_clear_error();
  } else {
    cause = OpenSslErrors();
  }
  if (cause.empty()) {
    if (err == SSL_ERROR_SYSCALL && errno != 0) {
      cause = util::ErrnoText(errno);
    } else {
      return {Io::kClosed, 0, false, {}};  // EOF without close_notify
    }
  }
  return {Io::kError, 0, false, std::move(cause)};
}

TlsSession::Io TlsSession::Handshake() {
  ERR_clear_error();
  errno = 0;
  const int n = SSL_do_handshake(ssl_);
  if (n == 1) {
    g_handshakes.fetch_add(1, std::memory_order_relaxed);
    return {Io::kDone, 1, false, {}};
  }
  return Result(n, /*handshake=*/true);
}

TlsSession::Io TlsSession::Read(char* buf, size_t size) {
  ERR_clear_error();
  errno = 0;
  return Result(SSL_read(ssl_, buf, static_cast<int>(size)), false);
}

TlsSession::Io TlsSession::Write(const char* data, size_t size) {
  ERR_clear_error();
  errno = 0;
  return Result(SSL_write(ssl_, data, static_cast<int>(size)), false);
}

}  // namespace lock::redis
