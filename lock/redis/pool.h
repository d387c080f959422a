// A bounded, thread-safe pool of connections to one Redis server.
//
//   ConnectionPool pool(PoolOptions{.connection = {.addr = "127.0.0.1:6379"}});
//   ASSIGN_OR_RETURN(PooledConnection conn, pool.Borrow(absl::Milliseconds(600)));
//   ASSIGN_OR_RETURN(ReplyPtr r, conn->Command({"PING"}, absl::Milliseconds(600)));
//   // conn goes back to the pool when it leaves scope; a broken one is dropped.
//
// Connections are opened lazily, up to max_size. When all are busy, Borrow
// waits for one to come back, but never past its deadline. A connection that
// broke (I/O error, timeout) is discarded on return, and its slot is refilled
// by a fresh connection with the full handshake (AUTH, SELECT) on the next
// Borrow — hiredis' own reconnect would skip the handshake.
#ifndef LOCK_REDIS_POOL_H_
#define LOCK_REDIS_POOL_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lock/internal/process.h"
#include "lock/redis/connection.h"

namespace lock::redis {

struct PoolOptions {
  ConnectionOptions connection;
  // Most connections open at once; Borrow waits when all are in use.
  int max_size = 8;
};

class ConnectionPool;

// A borrowed connection; returns itself to the pool on destruction.
class PooledConnection {
 public:
  PooledConnection(PooledConnection&& other) noexcept
      : pool_(std::exchange(other.pool_, nullptr)),
        conn_(std::move(other.conn_)) {}
  PooledConnection& operator=(PooledConnection&&) = delete;
  ~PooledConnection();

  Connection* operator->() const { return conn_.get(); }
  Connection& operator*() const { return *conn_; }

 private:
  friend class ConnectionPool;
  PooledConnection(ConnectionPool* pool, std::unique_ptr<Connection> conn)
      : pool_(pool), conn_(std::move(conn)) {}

  ConnectionPool* pool_;
  std::unique_ptr<Connection> conn_;
};

class ConnectionPool {
 public:
  explicit ConnectionPool(PoolOptions options);
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;
  // All borrowed connections must have been returned — except in a fork()
  // child destroying its parent's pool: it only closes its copies of the
  // idle sockets (sending nothing) and leaves the borrowed ones alone.
  ~ConnectionPool();

  // A connection ready for commands, waiting at most `timeout` (for a free
  // slot and for connecting). kUnavailable when Redis cannot be reached or
  // every connection stays busy until the deadline. kFailedPrecondition in
  // a fork() child of the process that built the pool: its sockets are the
  // parent's (either process could read the other's replies).
  absl::StatusOr<PooledConnection> Borrow(absl::Duration timeout);
  // An idle connection that looks alive, at once; nullopt when there is none
  // (nothing is opened and nothing waited for). Lets a caller talking to
  // several servers send on the ready ones before it connects to the rest.
  std::optional<PooledConnection> TryBorrowIdle();

  const std::string& addr() const { return options_.connection.addr; }
  const PoolOptions& options() const { return options_; }

  // Counters for tests and statistics.
  int open_connections() const;
  int64_t connections_opened() const;

 private:
  friend class PooledConnection;
  void Return(std::unique_ptr<Connection> conn);

  const PoolOptions options_;
  const pid_t built_by_ = internal::ProcessId();
  mutable std::mutex mu_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<Connection>> idle_;
  int open_ = 0;  // idle + borrowed + being opened
  int64_t opened_total_ = 0;
};

}  // namespace lock::redis

#endif  // LOCK_REDIS_POOL_H_
