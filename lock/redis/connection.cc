#include "lock/redis/connection.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lock/internal/observe.h"
#include "util/errno.h"
#include "util/status_macros.h"
#include "util/strings.h"

namespace lock::redis {
namespace {

struct Endpoint {
  std::string host;  // or the socket path when unix
  int port = 0;
  bool unix_socket = false;
};

absl::StatusOr<Endpoint> ParseAddr(absl::string_view addr) {
  if (absl::StartsWith(addr, "unix:")) {
    return Endpoint{std::string(addr.substr(5)), 0, true};
  }
  size_t colon = addr.rfind(':');
  int port = 0;
  if (colon == absl::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(addr.substr(colon + 1), &port) || port <= 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "redis address \"", addr, "\" is not host:port or unix:/path"));
  }
  absl::string_view host = addr.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1]:6379
  }
  return Endpoint{std::string(host), port, false};
}

// hiredis sizes an array reply's element table from the announced count,
// before a single element arrives: a corrupt or hostile "*700000000" would
// reserve gigabytes. Lock replies have at most 5 elements, and the largest
// arrays we ever read (CLUSTER SLOTS, pub/sub) are far below this bound; a
// bigger announcement becomes a reader error and the connection is dropped.
constexpr int kMaxArrayElements = 1 << 16;

// What a connection keeps of its request buffer between calls: lock
// requests are far smaller; see WriteAll.
constexpr size_t kKeptRequestBuffer = 16 * 1024;

const redisReplyObjectFunctions* g_hiredis_functions = nullptr;

void* BoundedCreateArray(const redisReadTask* task, int elements) {
  if (elements < 0 || elements > kMaxArrayElements) return nullptr;
  return g_hiredis_functions->createArray(task, elements);
}

timeval TimeoutTimeval(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return timeval{0, 0};  // no timeout
  timeval tv = absl::ToTimeval(d);
  if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;  // 0 would mean "none"
  return tv;
}

void SetBlocking(int fd, bool blocking) {
  const int flags = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, blocking ? flags & ~O_NONBLOCK : flags | O_NONBLOCK);
}

// Waits until `fd` is ready for `events` or `deadline` passes.
bool WaitReady(int fd, short events, absl::Time deadline) {
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    pollfd p{fd, events, 0};
    const int ms = left == absl::InfiniteDuration()
                       ? -1
                       : static_cast<int>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))));
    const int n = poll(&p, 1, ms);
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // let the I/O call report it
  }
}

absl::Time DeadlineAfter(absl::Duration timeout) {
  return timeout == absl::InfiniteDuration() ? absl::InfiniteFuture() : absl::Now() + timeout;
}

// Keep-alive as hiredis' redisEnableKeepAlive set it: a peer that vanished
// without a FIN (a partition, a dead host) is noticed in ~30 s even on a
// connection that sits idle in a pool.
void EnableKeepAlive(int fd) {
  int on = 1, idle = 15, interval = 5, count = 3;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

// A connected, non-blocking socket to `ep`, or why not, by `deadline`.
// Each address a host name resolves to is tried in turn.
int ConnectSocket(const Endpoint& ep, absl::Time deadline, std::string* cause) {
  auto attempt = [&](int family, const sockaddr* sa, socklen_t len) -> int {
    const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *cause = util::ErrnoText(errno);
      return -1;
    }
    if (connect(fd, sa, len) == 0) return fd;
    if (errno == EINPROGRESS || errno == EAGAIN) {
      if (!WaitReady(fd, POLLOUT, deadline)) {
        *cause = "timed out waiting for the server";
        close(fd);
        return -1;
      }
      int err = 0;
      socklen_t err_len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len);
      if (err == 0) return fd;
      errno = err;
    }
    *cause = util::ErrnoText(errno);
    close(fd);
    return -1;
  };
  if (ep.unix_socket) {
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (ep.host.size() >= sizeof sa.sun_path) {
      *cause = "socket path too long";
      return -1;
    }
    std::memcpy(sa.sun_path, ep.host.c_str(), ep.host.size() + 1);
    return attempt(AF_UNIX, reinterpret_cast<const sockaddr*>(&sa), sizeof sa);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string port = absl::StrCat(ep.port);
  if (const int rc = getaddrinfo(ep.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    *cause = absl::StrCat("cannot resolve \"", ep.host, "\": ", gai_strerror(rc));
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = attempt(a->ai_family, a->ai_addr, a->ai_addrlen);
  }
  freeaddrinfo(found);
  if (fd >= 0) EnableKeepAlive(fd);
  return fd;
}

}  // namespace

void BoundArrayReplies(redisReader* reader) {
  static redisReplyObjectFunctions* bounded = [reader] {
    g_hiredis_functions = reader->fn;  // hiredis' defaults, shared by all
    auto* f = new redisReplyObjectFunctions(*reader->fn);
    f->createArray = BoundedCreateArray;
    return f;
  }();
  reader->fn = bounded;
}

Connection::Connection(int fd, std::unique_ptr<TlsSession> tls, std::string addr,
                       absl::Duration connect_timeout)
    : fd_(fd),
      tls_(std::move(tls)),
      reader_(redisReaderCreate(), redisReaderFree),
      addr_(std::move(addr)),
      connect_timeout_(connect_timeout) {
  BoundArrayReplies(reader_.get());
}

Connection::~Connection() { close(fd_); }

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const ConnectionOptions& options) {
  absl::StatusOr<std::unique_ptr<Connection>> conn = OpenAndHandshake(options);
  if (!conn.ok() && internal::LogEnabled()) {
    // Once a second per address at most: while a node is down every call
    // that needs a connection fails to make one.
    internal::LogLimited(LogSeverity::kWarning, "connection_error", options.addr,
                         util::ToStd(conn.status().message()), {.redis = options.addr});
  }
  return conn;
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::OpenAndHandshake(
    const ConnectionOptions& options) {
  ASSIGN_OR_RETURN(Endpoint ep, ParseAddr(options.addr));
  if (options.tls != nullptr && ep.unix_socket) {
    return absl::InvalidArgumentError(absl::StrCat(
        "redis ", options.addr, ": TLS over a unix socket: Redis serves TLS on TCP only"));
  }
  const absl::Time deadline = DeadlineAfter(options.connect_timeout);
  std::string cause;
  const int fd = ConnectSocket(ep, deadline, &cause);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("redis ", options.addr, ": connect: ", cause));
  }
  std::unique_ptr<TlsSession> tls;
  if (options.tls != nullptr) {
    absl::StatusOr<std::unique_ptr<TlsSession>> session =
        TlsSession::Start(*options.tls, fd, ep.host);
    if (!session.ok()) {
      close(fd);
      return session.status();
    }
    tls = *std::move(session);
  }
  std::unique_ptr<Connection> conn(
      new Connection(fd, std::move(tls), options.addr, options.connect_timeout));
  // The TLS handshake is polled, so that connect_timeout bounds all of it.
  if (conn->tls_ != nullptr) RETURN_IF_ERROR(conn->Handshake(deadline));
  // Then reads and writes block, each bounded by the socket's timeouts
  // (SetTimeout): one system call per read or write, as hiredis did, TLS or
  // not. A deadline polled after a would-block read costs two more per reply.
  SetBlocking(fd, true);
  if (!options.password.empty()) {
    absl::StatusOr<ReplyPtr> auth =
        options.username.empty()
            ? conn->Command({"AUTH", options.password}, options.connect_timeout)
            : conn->Command({"AUTH", options.username, options.password},
                            options.connect_timeout);
    if (!auth.ok()) return auth.status();
  }
  if (options.db != 0) {
    std::string db = absl::StrCat(options.db);
    RETURN_IF_ERROR(
        conn->Command({"SELECT", db}, options.connect_timeout).status());
  }
  return conn;
}

absl::Status Connection::Handshake(absl::Time deadline) {
  while (true) {
    TlsSession::Io io = tls_->Handshake();
    switch (io.kind) {
      case TlsSession::Io::kDone:
        return absl::OkStatus();
      case TlsSession::Io::kWantRead:
      case TlsSession::Io::kWantWrite:
        if (!WaitReady(fd_, io.kind == TlsSession::Io::kWantRead ? POLLIN : POLLOUT, deadline)) {
          return TimedOut("TLS handshake");
        }
        continue;
      case TlsSession::Io::kClosed:
        return Fail("TLS handshake",
                    "connection closed by the server (is this a TLS port? "
                    "does the server require a client certificate?)");
      case TlsSession::Io::kError:
        // A plaintext server answers a ClientHello with an error line.
        if (absl::StrContains(io.cause, "wrong version number") ||
            absl::StrContains(io.cause, "packet length too long")) {
          io.cause += " (the server does not speak TLS on this port)";
        }
        return Fail("TLS handshake", io.cause);
    }
  }
}

bool Connection::LooksAlive() {
  if (broken_) return false;
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) == 0) return true;
  if (tls_ == nullptr || (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) return false;
  // Over TLS an idle connection may have been sent session tickets after the
  // handshake: consumed here, they leave it alive. Anything else is not.
  char scratch[512];
  SetBlocking(fd_, false);
  const TlsSession::Io io = tls_->Read(scratch, sizeof scratch);
  SetBlocking(fd_, true);
  if (io.kind == TlsSession::Io::kWantRead) return true;
  broken_ = true;
  return false;
}

absl::Status Connection::SetTimeout(absl::Duration timeout) {
  if (timeout == current_timeout_) return absl::OkStatus();
  const timeval tv = TimeoutTimeval(timeout);
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    return Fail("set timeout", util::ErrnoText(errno));
  }
  current_timeout_ = timeout;
  return absl::OkStatus();
}

absl::Status Connection::Fail(absl::string_view doing, absl::string_view cause) {
  broken_ = true;
  return absl::UnavailableError(absl::StrCat(
      "redis ", addr_, ": ", doing, ": ", cause,
      tls_ != nullptr && tls_->client_certificate_missing() && !replied_
          ? " (the server asked for a client certificate and the target has none: "
            "tls.cert_file, tls.key_file)"
          : ""));
}

absl::Status Connection::TimedOut(absl::string_view doing) {
  return Fail(doing, "timed out waiting for the server");
}

absl::Status Connection::Closed(absl::string_view doing, absl::string_view cause) {
  // A TLS port drops a plaintext client at its first bytes, with a FIN or
  // a reset: said so, or the cause alone would explain nothing.
  if (replied_ || tls_ != nullptr) return Fail(doing, cause);
  return Fail(doing, absl::StrCat(cause, " before any reply (if this is a TLS port, "
                                         "the target needs \"tls\")"));
}

namespace {

size_t DecimalLength(size_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

char* PutHeader(char* p, char kind, size_t v) {
  *p++ = kind;
  p = std::to_chars(p, p + 20, static_cast<uint64_t>(v)).ptr;  // <= 20 digits
  *p++ = '\r';
  *p++ = '\n';
  return p;
}

}  // namespace

absl::Status Connection::Append(absl::Span<const absl::string_view> argv) {
  if (broken_) {
    return absl::UnavailableError(
        absl::StrCat("redis ", addr_, ": connection is broken"));
  }
  // The request is formatted here, in one pass straight into the output
  // buffer: hiredis builds it with printf-style sds calls that cost more
  // client CPU than everything else in an acquire+release pair put
  // together (callgrind).
  size_t len = 1 + DecimalLength(argv.size()) + 2;
  for (absl::string_view a : argv) len += 1 + DecimalLength(a.size()) + 2 + a.size() + 2;
  const size_t at = out_.size();
  out_.resize(at + len);
  char* p = PutHeader(out_.data() + at, '*', argv.size());
  for (absl::string_view a : argv) {
    p = PutHeader(p, '$', a.size());
    if (!a.empty()) std::memcpy(p, a.data(), a.size());
    p += a.size();
    *p++ = '\r';
    *p++ = '\n';
  }
  return absl::OkStatus();
}

absl::Status Connection::WriteAll(absl::Duration timeout, absl::string_view doing) {
  RETURN_IF_ERROR(SetTimeout(timeout));
  size_t sent = 0;
  while (sent < out_.size()) {
    const char* data = out_.data() + sent;
    const size_t size = out_.size() - sent;
    if (tls_ == nullptr) {
      const ssize_t n = send(fd_, data, size, MSG_NOSIGNAL);
      if (n >= 0) {
        sent += static_cast<size_t>(n);
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        return TimedOut(doing);
      } else if (errno != EINTR) {
        return Fail(doing, util::ErrnoText(errno));
      }
      continue;
    }
    TlsSession::Io io = tls_->Write(data, size);
    switch (io.kind) {
      case TlsSession::Io::kDone:
        sent += static_cast<size_t>(io.bytes);
        break;
      case TlsSession::Io::kWantRead:
      case TlsSession::Io::kWantWrite:
        // A blocking socket wants again only when its timeout ran out.
        if (io.interrupted) break;
        return TimedOut(doing);
      case TlsSession::Io::kClosed:
        return Closed(doing);
      case TlsSession::Io::kError:
        return Fail(doing, io.cause);
    }
  }
  // A renewal pipeline can be megabytes: keep a small buffer for the next
  // request, not the largest one ever sent (hiredis freed its buffer too).
  if (out_.capacity() > kKeptRequestBuffer) {
    std::string().swap(out_);
  } else {
    out_.clear();
  }
  return absl::OkStatus();
}

absl::Status Connection::Feed(const char* data, size_t size, absl::string_view doing) {
  if (redisReaderFeed(reader_.get(), data, size) != REDIS_OK) {
    return Fail(doing, "cannot buffer the reply");
  }
  return absl::OkStatus();
}

absl::Status Connection::ReadSome(absl::string_view doing) {
  char buf[16 * 1024];
  while (true) {
    if (tls_ == nullptr) {
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n > 0) return Feed(buf, static_cast<size_t>(n), doing);
      if (n == 0) return Closed(doing);
      if (errno == ECONNRESET) return Closed(doing, util::ErrnoText(errno));
      if (errno == EAGAIN || errno == EWOULDBLOCK) return TimedOut(doing);
      if (errno != EINTR) return Fail(doing, util::ErrnoText(errno));
      continue;
    }
    TlsSession::Io io = tls_->Read(buf, sizeof buf);
    switch (io.kind) {
      case TlsSession::Io::kDone:
        return Feed(buf, static_cast<size_t>(io.bytes), doing);
      case TlsSession::Io::kWantRead:
      case TlsSession::Io::kWantWrite:
        if (io.interrupted) continue;
        return TimedOut(doing);
      case TlsSession::Io::kClosed:
        return Closed(doing);
      case TlsSession::Io::kError:
        return Fail(doing, io.cause);
    }
  }
}

absl::StatusOr<ReplyPtr> Connection::TakeReply(absl::string_view doing) {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
    if (reader_->err == REDIS_ERR_OOM) {
      return Fail(doing, absl::StrCat("reply rejected (it announced an array of more than ",
                                      kMaxArrayElements,
                                      " elements, or memory ran out); connection dropped"));
    }
    return Fail(doing, absl::StrCat("protocol error: ", reader_->errstr));
  }
  if (raw != nullptr) replied_ = true;
  return ReplyPtr(static_cast<redisReply*>(raw));
}

absl::Status Connection::Flush() {
  // A subscriber's requests are small; the connect timeout bounds them.
  return WriteAll(connect_timeout_, "write");
}

absl::Status Connection::Send(absl::Duration timeout) {
  return WriteAll(timeout, "write");
}

absl::Status Connection::ReadAvailable() {
  char buf[16 * 1024];
  if (tls_ == nullptr) {
    const ssize_t n = recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) return Feed(buf, static_cast<size_t>(n), "read");
    if (n == 0) return Closed("read");
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return absl::OkStatus();
    return Fail("read", util::ErrnoText(errno));
  }
  // Until OpenSSL wants the socket again, without blocking: nothing
  // decrypted may stay in its buffers, where the caller's poll() would not
  // see it.
  SetBlocking(fd_, false);
  absl::Status status;
  bool more = true;
  while (more && status.ok()) {
    TlsSession::Io io = tls_->Read(buf, sizeof buf);
    switch (io.kind) {
      case TlsSession::Io::kDone:
        status = Feed(buf, static_cast<size_t>(io.bytes), "read");
        break;
      case TlsSession::Io::kWantRead:
      case TlsSession::Io::kWantWrite:
        more = io.interrupted;
        break;
      case TlsSession::Io::kClosed:
        status = Closed("read");
        break;
      case TlsSession::Io::kError:
        status = Fail("read", io.cause);
        break;
    }
  }
  SetBlocking(fd_, true);
  return status;
}

absl::StatusOr<ReplyPtr> Connection::NextBufferedReply() {
  return TakeReply("parse reply");
}

absl::StatusOr<ReplyPtr> Connection::ReadReply(absl::Duration timeout) {
  return ReadReplyFor(timeout, "read reply");
}

absl::StatusOr<ReplyPtr> Connection::ReadReplyFor(absl::Duration timeout,
                                                  absl::string_view doing) {
  if (broken_) {
    return absl::UnavailableError(
        absl::StrCat("redis ", addr_, ": connection is broken"));
  }
  // Whatever Append queued goes out first (pipelines send it with Send).
  if (!out_.empty()) RETURN_IF_ERROR(WriteAll(timeout, doing));
  RETURN_IF_ERROR(SetTimeout(timeout));
  while (true) {
    ASSIGN_OR_RETURN(ReplyPtr reply, TakeReply(doing));
    if (reply != nullptr) return reply;
    RETURN_IF_ERROR(ReadSome(doing));
  }
}

absl::StatusOr<ReplyPtr> Connection::RawCommand(
    absl::Span<const absl::string_view> argv, absl::Duration timeout) {
  RETURN_IF_ERROR(Append(argv));
  return ReadReplyFor(timeout, argv.empty() ? absl::string_view("command") : argv[0]);
}

absl::StatusOr<ReplyPtr> Connection::Command(
    absl::Span<const absl::string_view> argv, absl::Duration timeout) {
  absl::string_view name = argv.empty() ? absl::string_view("command") : argv[0];
  absl::StatusOr<ReplyPtr> reply = RawCommand(argv, timeout);
  if (!reply.ok()) return reply.status();
  if ((*reply)->type == REDIS_REPLY_ERROR) {
    return ServerError(ReplyText(**reply), addr_, name);
  }
  return reply;
}

}  // namespace lock::redis
