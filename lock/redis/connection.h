// One synchronous connection to one Redis server: TCP, TLS (OpenSSL) or a
// unix socket; hiredis' reader parses the replies.
//
//   ConnectionOptions o{.addr = "127.0.0.1:6379", .password = "s3cret"};
//   ASSIGN_OR_RETURN(auto conn, Connection::Open(o));
//   ASSIGN_OR_RETURN(ReplyPtr r, conn->Command({"GET", "k"}, absl::Milliseconds(600)));
//
// Error channels (hiredis has two, and they mean different things):
//  - transport failure (connect refused, TLS handshake, I/O error, timeout):
//    kUnavailable with the address and the cause; the connection is then
//    broken() for good and must be discarded (a late reply would answer the
//    next command).
//  - an error reply from the server: kFailedPrecondition (or kPermissionDenied
//    for authentication) carrying the server's text; the connection stays fine.
//
// A Connection is not thread-safe; ConnectionPool hands each one to a single
// thread at a time.
#ifndef LOCK_REDIS_CONNECTION_H_
#define LOCK_REDIS_CONNECTION_H_

#include <initializer_list>
#include <memory>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "lock/redis/errors.h"
#include "lock/redis/reply.h"
#include "lock/redis/tls.h"
#include "lock/redis/tls_session.h"

namespace lock::redis {

struct ConnectionOptions {
  // "host:port", or "unix:/path/to/redis.sock".
  std::string addr = "127.0.0.1:6379";
  // Upper bound on TCP connect plus the AUTH/SELECT handshake commands.
  absl::Duration connect_timeout = absl::Milliseconds(500);
  // ACL user; empty means the "default" user (plain AUTH <password>).
  std::string username;
  // Empty means no AUTH. Never included in any message.
  std::string password;
  int db = 0;
  // TLS to this server (the target's context, shared); nullptr = plaintext.
  // Not for unix sockets: Redis serves TLS on TCP only.
  std::shared_ptr<const TlsContext> tls;
};

// Makes `reader` refuse array replies announcing more elements than any
// legitimate reply here has (hiredis would reserve the whole table up front:
// 13 hostile bytes could reserve gigabytes). Every Connection's reader has it.
void BoundArrayReplies(redisReader* reader);

class Connection {
 public:
  // Connects and runs the full handshake (AUTH, SELECT). A failure is also
  // reported to the log sink (lock/observe.h: connection_error).
  static absl::StatusOr<std::unique_ptr<Connection>> Open(
      const ConnectionOptions& options);

  // Sends one command (binary safe, argv form) and waits at most `timeout`
  // for its reply. A transport failure breaks the connection; an error reply
  // does not. The reply of a successful call is never an error reply.
  absl::StatusOr<ReplyPtr> Command(absl::Span<const absl::string_view> argv,
                                   absl::Duration timeout);
  absl::StatusOr<ReplyPtr> Command(std::initializer_list<absl::string_view> argv,
                                   absl::Duration timeout) {
    return Command(absl::MakeConstSpan(argv.begin(), argv.size()), timeout);
  }

  // Like Command, but an error reply comes back as a reply
  // (REDIS_REPLY_ERROR), for callers that act on it (MOVED, ASK, NOSCRIPT).
  absl::StatusOr<ReplyPtr> RawCommand(absl::Span<const absl::string_view> argv,
                                      absl::Duration timeout);

  // Pipelining: queue several commands, then read their replies in order.
  // Replies that are server errors are returned as error replies here (the
  // caller inspects each); transport failures break the connection.
  absl::Status Append(absl::Span<const absl::string_view> argv);
  absl::StatusOr<ReplyPtr> ReadReply(absl::Duration timeout);
  // Writes what Append queued now, waiting at most `timeout`, so that
  // requests on several connections can be in flight at once.
  absl::Status Send(absl::Duration timeout);

  // Non-blocking use, for a subscriber connection driven by poll(): send
  // what Append queued, read what the socket has, and take complete replies
  // one by one (nullptr when none is complete yet).
  int fd() const { return fd_; }
  absl::Status Flush();
  absl::Status ReadAvailable();
  absl::StatusOr<ReplyPtr> NextBufferedReply();

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool broken() const { return broken_; }
  // False when an idle connection has already been closed by the server
  // (restart, CLIENT KILL, idle timeout): one non-blocking poll, no round
  // trip. A healthy idle connection has nothing to read (over TLS, nothing
  // but session tickets, which this consumes).
  bool LooksAlive();
  const std::string& addr() const { return addr_; }

 private:
  static absl::StatusOr<std::unique_ptr<Connection>> OpenAndHandshake(
      const ConnectionOptions& options);
  Connection(int fd, std::unique_ptr<TlsSession> tls, std::string addr,
             absl::Duration connect_timeout);
  absl::Status Handshake(absl::Time deadline);
  absl::Status SetTimeout(absl::Duration timeout);
  absl::Status WriteAll(absl::Duration timeout, absl::string_view doing);
  // Reads what the socket has into the reader, waiting at most the socket's
  // timeout.
  absl::Status ReadSome(absl::string_view doing);
  absl::Status Feed(const char* data, size_t size, absl::string_view doing);
  absl::StatusOr<ReplyPtr> TakeReply(absl::string_view doing);
  absl::StatusOr<ReplyPtr> ReadReplyFor(absl::Duration timeout,
                                        absl::string_view doing);
  absl::Status Fail(absl::string_view doing, absl::string_view cause);
  absl::Status Closed(absl::string_view doing,
                      absl::string_view cause = "connection closed by the server");
  absl::Status TimedOut(absl::string_view doing);

  const int fd_;
  const std::unique_ptr<TlsSession> tls_;  // nullptr on plaintext
  const std::unique_ptr<redisReader, void (*)(redisReader*)> reader_;
  const std::string addr_;
  const absl::Duration connect_timeout_;
  absl::Duration current_timeout_ = absl::InfiniteDuration();  // the socket's
  bool broken_ = false;
  bool replied_ = false;  // a reply came: the server speaks this protocol
  std::string out_;       // requests queued by Append, not yet written
};

}  // namespace lock::redis

#endif  // LOCK_REDIS_CONNECTION_H_
