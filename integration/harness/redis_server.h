// A real `redis-server` child process for integration tests and tools.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<RedisServer> redis, RedisServer::Start());
//   ConnectTo(redis->addr());                    // "127.0.0.1:<port>"
//   RETURN_IF_ERROR(redis->Pause());             // the server stops answering
//   RETURN_IF_ERROR(redis->Resume());
//   RETURN_IF_ERROR(redis->Restart(/*keep_data=*/true));
//   absl::StatusOr<std::string> v = redis->Exec({"GET", "k"});
//
// Each server gets a free loopback port, its own temporary directory and a
// generated redis.conf. The binary is $REDIS_SERVER when set, else
// `redis-server` from $PATH or /usr/bin. The child is SIGKILLed when the
// RedisServer is destroyed and also when the owning process dies, so crashed
// tests leave no servers behind.
#ifndef INTEGRATION_HARNESS_REDIS_SERVER_H_
#define INTEGRATION_HARNESS_REDIS_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace lock::harness {

struct RedisServerOptions {
  // Names this server in errors and log dumps, e.g. "master-1".
  std::string name = "redis";

  // `requirepass`; empty means no authentication.
  std::string password;

  // AOF persistence with `appendfsync always`, so every acknowledged write
  // survives Kill() + Restart(true).
  bool appendonly = false;

  // Extra redis.conf directives as (key, value), written verbatim after the
  // generated ones, so they override them (e.g. {"save", "60 1"}).
  std::vector<std::pair<std::string, std::string>> extra_config;

  // How long Start() and Restart() wait for the server to answer PING.
  absl::Duration start_timeout = absl::Seconds(10);
};

namespace internal {
class ForkThread;
}  // namespace internal

// Thread-safe: fault hooks may run on one thread while others call Exec().
class RedisServer {
 public:
  // Starts a server and waits until it answers PING. Retries on another port
  // if a concurrently started process takes the chosen one first. Errors:
  // kNotFound when there is no redis-server binary, kFailedPrecondition when
  // it exits at startup, kDeadlineExceeded when it does not answer in
  // `start_timeout`, kUnavailable when every port tried was taken; startup
  // errors include the tail of the server log.
  //
  // Sets SIGPIPE to SIG_IGN for the whole process: a server killed between
  // connect and write would otherwise kill the test with it.
  static absl::StatusOr<std::unique_ptr<RedisServer>> Start(
      RedisServerOptions options = {});

  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // SIGKILLs the server (resuming it first if paused) and deletes its
  // directory. Never fails.
  ~RedisServer();

  std::string host() const;
  // The port stays the same across Restart().
  int port() const { return port_; }
  std::string addr() const;
  // -1 while the server is down.
  pid_t pid() const;

  // SIGKILLs the server and reaps it: no shutdown, no final save. The server
  // stays down until Restart(). Killing a down server is a no-op.
  absl::Status Kill();

  // SIGSTOP / SIGCONT: a paused server accepts TCP connections (the kernel
  // completes the handshake) but answers nothing. Both return once the state
  // change has happened; repeating either is a no-op. kFailedPrecondition if
  // the server is down.
  absl::Status Pause();
  absl::Status Resume();

  // Stops the server (whatever its state) and starts it again on the same
  // port and directory, then waits for PING. keep_data: the data survives --
  // via SAVE, or the AOF when `appendonly`; a server that is already down
  // restarts from whatever it last persisted. !keep_data: the server starts
  // empty. kUnavailable if another process took the port meanwhile.
  absl::Status Restart(bool keep_data);

  // Runs one command on a fresh connection (after AUTH if there is a
  // password) and returns the reply as text: integers in decimal, strings and
  // statuses as their bytes, nil as "(nil)", arrays as their elements joined
  // by '\n' (recursively). An error reply is kFailedPrecondition with the
  // reply text; a failed connection, or no reply within 10 s, is kUnavailable;
  // an empty argv is kInvalidArgument.
  absl::StatusOr<std::string> Exec(const std::vector<std::string>& argv);

  // The server's log file, including output from earlier runs (Restart).
  std::string Log() const;

 private:
  RedisServer(RedisServerOptions options, std::string binary, std::string dir);

  absl::Status WriteConfig() const;
  // Spawns the server and waits for it; kUnavailable means the port was taken.
  absl::Status LaunchLocked();
  absl::Status WaitUntilReadyLocked(size_t log_offset);
  absl::Status KillLocked();
  absl::Status SignalLocked(int signal, int wait_flags);

  const RedisServerOptions options_;
  const std::string binary_;
  const std::string dir_;
  int port_ = 0;  // Chosen by Start(), constant afterwards.
  // PR_SET_PDEATHSIG fires when the forking *thread* exits, so servers are
  // forked on a thread that lives exactly as long as this object.
  const std::unique_ptr<internal::ForkThread> fork_thread_;

  mutable std::mutex mu_;
  pid_t pid_ = -1;       // Guarded by mu_; -1 while down.
  bool paused_ = false;  // Guarded by mu_.
};

}  // namespace lock::harness

#endif  // INTEGRATION_HARNESS_REDIS_SERVER_H_
