#include "lock/redis/pool.h"

#include <algorithm>
#include <chrono>
#include <new>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lock::redis {

PooledConnection::~PooledConnection() {
  if (pool_ != nullptr && conn_ != nullptr) pool_->Return(std::move(conn_));
}

ConnectionPool::ConnectionPool(PoolOptions options)
    : options_(std::move(options)) {}

ConnectionPool::~ConnectionPool() {
  if (internal::ForkedSince(built_by_)) {
    // Threads of the parent that waited in Borrow at fork time left their
    // count in the condition variable; destroying it would wait for them
    // forever. A fresh one has no waiters.
    new (&returned_) std::condition_variable();
  }
}

absl::StatusOr<PooledConnection> ConnectionPool::Borrow(
    absl::Duration timeout) {
  if (internal::ForkedSince(built_by_)) {
    return internal::ForkedError(absl::StrCat("the connection pool of redis ", addr()),
                                 built_by_);
  }
  const auto deadline =
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(timeout);
  while (true) {
    std::unique_ptr<Connection> conn;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (!returned_.wait_until(lock, deadline, [&] {
            return !idle_.empty() || open_ < options_.max_size;
          })) {
        return absl::UnavailableError(absl::StrCat(
            "redis ", addr(), ": all ", options_.max_size,
            " pooled connections stayed busy for ", absl::FormatDuration(timeout),
            " (raise the target's pool_size or shorten critical sections)"));
      }
      if (idle_.empty()) {
        ++open_;  // reserve the slot before connecting outside the lock
        ++opened_total_;
        break;
      }
      // LIFO: the most recently used connection is the warmest.
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
    // The liveness check is a poll() syscall: made under the mutex, it had
    // every other borrower of a busy pool queue behind it.
    if (conn->LooksAlive()) return PooledConnection(this, std::move(conn));
    std::lock_guard<std::mutex> lock(mu_);
    --open_;  // closed by the server while idle: replace it
    returned_.notify_one();
  }
  ConnectionOptions opts = options_.connection;
  opts.connect_timeout = std::min(
      opts.connect_timeout,
      std::max(absl::FromChrono(deadline - std::chrono::steady_clock::now()),
               absl::Milliseconds(1)));
  absl::StatusOr<std::unique_ptr<Connection>> conn = Connection::Open(opts);
  if (!conn.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    --open_;
    returned_.notify_one();
    return conn.status();
  }
  return PooledConnection(this, *std::move(conn));
}

std::optional<PooledConnection> ConnectionPool::TryBorrowIdle() {
  while (true) {
    std::unique_ptr<Connection> conn;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (idle_.empty()) return std::nullopt;
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
    if (conn->LooksAlive()) return PooledConnection(this, std::move(conn));
    std::lock_guard<std::mutex> lock(mu_);
    --open_;  // closed by the server while idle
    returned_.notify_one();
  }
}

void ConnectionPool::Return(std::unique_ptr<Connection> conn) {
  std::lock_guard<std::mutex> lock(mu_);
  if (conn->broken()) {
    --open_;  // dropped; the slot is refilled by a fresh handshake later
  } else {
    idle_.push_back(std::move(conn));
  }
  returned_.notify_one();
}

int ConnectionPool::open_connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_;
}

int64_t ConnectionPool::connections_opened() const {
  std::lock_guard<std::mutex> lock(mu_);
  return opened_total_;
}

}  // namespace lock::redis
