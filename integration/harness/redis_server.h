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
// `redis-server` from $PATH or /usr/bin. The server is SIGKILLed when the
// RedisServer is destroyed and also when the owning process dies, so crashed
// tests leave no servers behind (a container: by a watchdog, see
// container_runner.cc).
//
// Backends: by default the server is a child process. With
// LOCK_TEST_BACKEND=container (or `backend = ServerBackend::kContainer`) it
// runs in a podman (or docker) container built from the same binary, with
// the same interface: host network, same port, the directory bind-mounted,
// Pause() = the engine's pause (cgroup freezer), Kill() = SIGKILL + remove.
// Needs podman + runc (tools/setup installs them) or a working docker
// engine; LOCK_CONTAINER_ENGINE=podman|docker|PATH picks one. See
// container_runner.cc for the image and for leftover cleanup.
//
// TLS and unix sockets: with `tls` the server serves clients on a TLS port
// (addr()) with certificates from MakeTlsFiles() (tls_files.h); with
// `unix_socket` clients reach it at "unix:<path>". Either way it keeps a
// plaintext TCP port on 127.0.0.1 (plain_addr()) that only the harness
// uses: readiness PINGs, Exec()/Query() and fleet setup go through hiredis
// 0.14, which has no TLS. Clients under test should never be given it.
//
// Topologies (several servers, sentinels, a cluster) are in redis_fleet.h.
#ifndef INTEGRATION_HARNESS_REDIS_SERVER_H_
#define INTEGRATION_HARNESS_REDIS_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "integration/harness/tls_files.h"

namespace lock::harness {

enum class ServerBackend {
  kFromEnvironment,  // LOCK_TEST_BACKEND: "" or "process" / "container"
  kProcess,
  kContainer,
};

// The backend kFromEnvironment stands for; kInvalidArgument for an unknown
// LOCK_TEST_BACKEND value.
absl::StatusOr<ServerBackend> BackendFromEnvironment();

// A reply with its structure (Exec() flattens it to text). Error replies are
// not RedisReply values: they come back as kFailedPrecondition.
struct RedisReply {
  enum class Type { kString, kStatus, kInteger, kNil, kArray };
  Type type = Type::kNil;
  std::string str;  // kString and kStatus
  long long integer = 0;
  std::vector<RedisReply> elements;  // kArray

  // The text Exec() returns for this reply.
  std::string ToText() const;
};

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

  // Run as Redis Sentinel (`redis-server <config> --sentinel`). Sentinel
  // directives (`sentinel monitor ...`) go in extra_config. Sentinel rewrites
  // its config file with what it learns, and Restart() keeps that file.
  bool sentinel = false;

  // Run as a Redis Cluster node: `cluster-enabled yes`, nodes.conf in the
  // server's directory, a cluster bus on a second free port
  // (cluster_bus_port()) and `cluster-node-timeout 2000` (override it in
  // extra_config). Restart(false) deletes nodes.conf: the node comes back as
  // a new, empty node outside the cluster.
  bool cluster = false;

  // Process or container; see the top of the file.
  ServerBackend backend = ServerBackend::kFromEnvironment;

  // --- Network namespace ----------------------------------------------------
  // Run the server inside the network namespace /run/netns/<name> (a
  // Partition's server side: Partition::ServerOptions() sets both fields).
  // Empty: the caller's namespace. With the container backend this needs
  // podman (`--network ns:...`); docker is kFailedPrecondition.
  std::string network_namespace;
  // The address clients and the harness reach the server at (host(),
  // addr(), plain_addr()). The server always listens on 127.0.0.1 too, so
  // that nodes of a fleet in one namespace reach each other there.
  std::string host = "127.0.0.1";

  // --- TLS ------------------------------------------------------------------
  // Serve clients over TLS only: `tls-port` on a free port (port(),
  // addr()), plus `tls-replication yes` (a replica connects to its master's
  // TLS port; Sentinel talks TLS to the nodes it monitors and to other
  // sentinels) and, for a `cluster` node, `tls-cluster yes` (the bus, and
  // MIGRATE, use TLS). The plaintext `port` stays, bound to 127.0.0.1, for
  // the harness alone: see plain_addr().
  bool tls = false;
  // `tls-auth-clients`: "no" (default here; Redis's own default is "yes"),
  // "yes" (clients must present a certificate signed by the CA:
  // TlsFiles::client_cert) or "optional". Anything else: kInvalidArgument.
  std::string tls_auth_clients = "no";
  // The certificate the TLS port presents. kExpired and kWrongHost are for
  // tests of client-side verification; a node presenting them cannot take
  // part in TLS replication or a TLS cluster bus.
  enum class ServerCert { kValid, kExpired, kWrongHost };
  ServerCert server_cert = ServerCert::kValid;
  // Where the certificates are: MakeTlsFiles(tls_dir). Empty: a directory of
  // the server's own (<server dir>/tls). Servers that must trust each other
  // (a fleet) share one; RedisFleet sets it.
  std::string tls_dir;

  // --- Unix socket ----------------------------------------------------------
  // Also listen on a unix socket (`unixsocket`, `unixsocketperm 700`) in the
  // server's directory; addr() is then "unix:<path>". The path is kept under
  // 100 bytes (sun_path holds 108): when $TEST_TMPDIR is too long for that,
  // the server's directory goes under /tmp instead.
  bool unix_socket = false;
};

namespace internal {
class Runner;
}  // namespace internal

// Thread-safe: fault hooks may run on one thread while others call Exec().
class RedisServer {
 public:
  // Starts a server and waits until it answers PING. Retries on another port
  // if a concurrently started process takes the chosen one first. Errors:
  // kNotFound when there is no redis-server binary, kFailedPrecondition when
  // it exits at startup, kDeadlineExceeded when it does not answer in
  // `start_timeout`, kUnavailable when every port tried was taken; startup
  // errors include the tail of the server log. With the container backend,
  // kFailedPrecondition also when no container engine works (the message
  // says why) and kInvalidArgument for an unknown LOCK_TEST_BACKEND. A `tls`
  // server: kInvalidArgument for a bad `tls_auth_clients`, kNotFound
  // without the openssl CLI (MakeTlsFiles).
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

  const std::string& name() const { return options_.name; }
  std::string host() const;
  // The TCP port clients connect to: the TLS port of a `tls` server, else
  // the plaintext port. Ports stay the same across Restart().
  int port() const { return port_; }
  // What a client connects to: "<host>:<port()>" ("127.0.0.1:..." unless
  // RedisServerOptions::host says otherwise), or "unix:<path>" for a
  // `unix_socket` server.
  std::string addr() const;
  // The plaintext port and "<host>:<plain port>": the harness's own way
  // in (Exec, Query, readiness). The same as port() / addr() for a plain
  // TCP server; for a TLS or unix-socket server a port that exists only
  // because hiredis 0.14 (which the harness uses) speaks neither TLS nor,
  // here, unix sockets. Always available.
  int plain_port() const { return plain_port_; }
  std::string plain_addr() const;
  // The unix socket's path, or "" without `unix_socket`.
  const std::string& unix_socket_path() const { return socket_path_; }
  // The certificates of a `tls` server (the same files across Restart()),
  // else nullptr.
  const TlsFiles* tls_files() const {
    return tls_files_.has_value() ? &*tls_files_ : nullptr;
  }
  // The cluster bus port of a `cluster` node, else 0.
  int cluster_bus_port() const { return bus_port_; }
  // -1 while the server is down. For a container, the host pid of its
  // redis-server.
  pid_t pid() const;
  bool paused() const;
  // "process" or the container engine and container name.
  std::string backend_description() const;

  // SIGKILLs the server and reaps it: no shutdown, no final save. The server
  // stays down until Restart(). Killing a down server is a no-op.
  absl::Status Kill();

  // SIGSTOP / SIGCONT (a container: the engine's pause / unpause, i.e. the
  // cgroup freezer): a paused server accepts TCP connections (the kernel
  // completes the handshake) but answers nothing. Both return once the state
  // change has happened; repeating either is a no-op. kFailedPrecondition if
  // the server is down.
  absl::Status Pause();
  absl::Status Resume();

  // Stops the server (whatever its state) and starts it again on the same
  // ports, directory, certificates and socket path, then waits for PING. keep_data: the data survives --
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

  // Like Exec() with the reply's structure and a deadline of the caller's
  // choice (connect and reply each), e.g. short ones to poll a server that
  // may be paused.
  absl::StatusOr<RedisReply> Query(const std::vector<std::string>& argv,
                                   absl::Duration timeout = absl::Seconds(10));

  // The server's log file, including output from earlier runs (Restart).
  std::string Log() const;

 private:
  RedisServer(RedisServerOptions options, std::string binary, std::string dir,
              std::unique_ptr<internal::Runner> runner);

  absl::Status WriteConfig() const;
  // Spawns the server and waits for it; kUnavailable means a port was taken.
  absl::Status LaunchLocked();
  absl::Status WaitUntilReadyLocked(size_t log_offset, absl::Time deadline);

  const RedisServerOptions options_;
  const std::string binary_;
  const std::string dir_;
  int port_ = 0;        // Chosen by Start(), constant afterwards.
  int plain_port_ = 0;  // Likewise; == port_ unless `tls`.
  int bus_port_ = 0;    // Likewise; cluster nodes only.
  std::string socket_path_;             // Set by Start(); unix_socket only.
  std::optional<TlsFiles> tls_files_;   // Set by Start(); tls only.

  mutable std::mutex mu_;
  // Guarded by mu_. Process: forks on a thread of its own, because
  // PR_SET_PDEATHSIG fires when the forking *thread* exits.
  const std::unique_ptr<internal::Runner> runner_;
};

}  // namespace lock::harness

#endif  // INTEGRATION_HARNESS_REDIS_SERVER_H_
