#include "lock/redis/connection.h"

#include <poll.h>
#include <sys/time.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

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

absl::Status TransportError(const redisContext* ctx, absl::string_view addr,
                            absl::string_view doing) {
  if (ctx == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("redis ", addr, ": ", doing, ": cannot allocate context"));
  }
  absl::string_view cause = ctx->errstr;
  if (ctx->err == REDIS_ERR_IO &&
      (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT ||
       cause == std::strerror(EAGAIN))) {
    return absl::UnavailableError(absl::StrCat(
        "redis ", addr, ": ", doing, ": timed out waiting for the server"));
  }
  if (ctx->err == REDIS_ERR_OOM) {
    return absl::UnavailableError(absl::StrCat(
        "redis ", addr, ": ", doing, ": reply rejected (it announced an array "
        "of more than ", kMaxArrayElements, " elements, or memory ran out); "
        "connection dropped"));
  }
  if (ctx->err == REDIS_ERR_EOF) {
    return absl::UnavailableError(absl::StrCat(
        "redis ", addr, ": ", doing, ": connection closed by the server"));
  }
  return absl::UnavailableError(
      absl::StrCat("redis ", addr, ": ", doing, ": ", cause));
}

absl::StatusOr<std::unique_ptr<Connection>> Connection::Open(
    const ConnectionOptions& options) {
  ASSIGN_OR_RETURN(Endpoint ep, ParseAddr(options.addr));
  timeval tv = TimeoutTimeval(options.connect_timeout);
  ContextPtr ctx(ep.unix_socket
                     ? redisConnectUnixWithTimeout(ep.host.c_str(), tv)
                     : redisConnectWithTimeout(ep.host.c_str(), ep.port, tv));
  if (ctx == nullptr || ctx->err != 0) {
    return TransportError(ctx.get(), options.addr, "connect");
  }
  if (!ep.unix_socket) redisEnableKeepAlive(ctx.get());
  BoundArrayReplies(ctx->reader);
  std::unique_ptr<Connection> conn(
      new Connection(std::move(ctx), options.addr));
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

bool Connection::LooksAlive() const {
  if (broken_) return false;
  pollfd p{ctx_->fd, POLLIN | POLLRDHUP, 0};
  return poll(&p, 1, 0) == 0;
}

absl::Status Connection::SetTimeout(absl::Duration timeout) {
  if (timeout == current_timeout_) return absl::OkStatus();
  if (redisSetTimeout(ctx_.get(), TimeoutTimeval(timeout)) != REDIS_OK) {
    return Fail("set timeout");
  }
  current_timeout_ = timeout;
  return absl::OkStatus();
}

absl::Status Connection::Fail(absl::string_view doing) {
  broken_ = true;
  return TransportError(ctx_.get(), addr_, doing);
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
  // The request is formatted here, in one pass into a buffer the connection
  // keeps, rather than by redisAppendCommandArgv: hiredis builds it with
  // printf-style sds calls that cost more client CPU than everything else
  // in an acquire+release pair put together (callgrind).
  size_t len = 1 + DecimalLength(argv.size()) + 2;
  for (absl::string_view a : argv) len += 1 + DecimalLength(a.size()) + 2 + a.size() + 2;
  request_.resize(len);
  char* p = PutHeader(request_.data(), '*', argv.size());
  for (absl::string_view a : argv) {
    p = PutHeader(p, '$', a.size());
    if (!a.empty()) std::memcpy(p, a.data(), a.size());
    p += a.size();
    *p++ = '\r';
    *p++ = '\n';
  }
  if (redisAppendFormattedCommand(ctx_.get(), request_.data(), len) != REDIS_OK) {
    return Fail(argv.empty() ? "append" : argv[0]);
  }
  return absl::OkStatus();
}

absl::Status Connection::Flush() {
  int done = 0;
  while (!done) {
    if (redisBufferWrite(ctx_.get(), &done) != REDIS_OK) return Fail("write");
  }
  return absl::OkStatus();
}

absl::Status Connection::Send(absl::Duration timeout) {
  RETURN_IF_ERROR(SetTimeout(timeout));
  return Flush();
}

absl::Status Connection::ReadAvailable() {
  if (redisBufferRead(ctx_.get()) != REDIS_OK) return Fail("read");
  return absl::OkStatus();
}

absl::StatusOr<ReplyPtr> Connection::NextBufferedReply() {
  void* raw = nullptr;
  if (redisGetReplyFromReader(ctx_.get(), &raw) != REDIS_OK) {
    return Fail("parse reply");
  }
  return ReplyPtr(static_cast<redisReply*>(raw));
}

absl::StatusOr<ReplyPtr> Connection::ReadReply(absl::Duration timeout) {
  return ReadReplyFor(timeout, "read reply");
}

absl::StatusOr<ReplyPtr> Connection::ReadReplyFor(absl::Duration timeout,
                                                  absl::string_view doing) {
  RETURN_IF_ERROR(SetTimeout(timeout));
  void* raw = nullptr;
  if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) {
    return Fail(doing);
  }
  return ReplyPtr(static_cast<redisReply*>(raw));
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
