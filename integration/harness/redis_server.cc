#include "integration/harness/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "integration/harness/hiredis_ptr.h"
#include "integration/harness/runner.h"
#include "util/errno.h"
#include "util/status_macros.h"

namespace lock::harness {

namespace {

constexpr int kStartAttempts = 5;  // Ports tried before giving up.
constexpr int kLogTailLines = 30;
// A readiness probe must fail fast (a listener that is not our server never
// answers) so that it does not eat the start deadline.
constexpr absl::Duration kProbeTimeout = absl::Milliseconds(250);
constexpr absl::Duration kPollInterval = absl::Milliseconds(10);
// Room for SAVE or DEBUG SLEEP, yet a paused server fails the call.
constexpr absl::Duration kExecTimeout = absl::Seconds(10);
constexpr char kConfigFile[] = "redis.conf";
constexpr char kLogFile[] = "redis.log";
constexpr char kTlsDir[] = "tls";  // Default certificate directory.
constexpr char kSocketFile[] = "redis.sock";
// Unix socket paths must fit sun_path (108 bytes with the NUL); stay clear.
constexpr size_t kMaxSocketPath = 100;

using ::util::ErrnoError;
using ::util::ErrnoText;

RedisReply Convert(const redisReply& reply) {
  RedisReply out;
  switch (reply.type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = reply.integer;
      break;
    case REDIS_REPLY_NIL:
      out.type = RedisReply::Type::kNil;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      for (size_t i = 0; i < reply.elements; ++i) {
        out.elements.push_back(Convert(*reply.element[i]));
      }
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(reply.str, reply.len);
      break;
    default:  // String (errors never get here).
      out.type = RedisReply::Type::kString;
      out.str.assign(reply.str, reply.len);
      break;
  }
  return out;
}

// The one place that maps hiredis outcomes to status codes: a dead context
// (refused, reset, timed out) is kUnavailable, an error reply is
// kFailedPrecondition.
absl::StatusOr<RedisReply> Command(redisContext* context,
                                   const std::string& addr,
                                   const std::vector<std::string>& argv) {
  ReplyPtr reply = CommandArgv(context, argv);
  if (reply == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(addr, " ", argv[0], ": ", context->errstr));
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    return absl::FailedPreconditionError(std::string(reply->str, reply->len));
  }
  return Convert(*reply);
}

absl::StatusOr<RedisReply> Call(const std::string& host, int port,
                                const std::string& password,
                                const std::vector<std::string>& argv,
                                absl::Duration timeout) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  const std::string addr = absl::StrCat(host, ":", port);
  const timeval tv = absl::ToTimeval(timeout);
  ContextPtr context(redisConnectWithTimeout(host.c_str(), port, tv));
  if (context == nullptr || context->err != 0) {
    return absl::UnavailableError(
        absl::StrCat("connect to ", addr, ": ",
                     context == nullptr ? "out of memory" : context->errstr));
  }
  if (redisSetTimeout(context.get(), tv) != REDIS_OK) {
    return absl::UnavailableError(
        absl::StrCat("set timeout on ", addr, ": ", context->errstr));
  }
  if (!password.empty()) {
    RETURN_IF_ERROR(Command(context.get(), addr, {"AUTH", password}).status());
  }
  return Command(context.get(), addr, argv);
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
         access(path.c_str(), X_OK) == 0;
}

absl::StatusOr<std::string> FindRedisServer() {
  if (const char* env = std::getenv("REDIS_SERVER");
      env != nullptr && *env != '\0') {
    if (!IsExecutableFile(env)) {
      return absl::NotFoundError(
          absl::StrCat("REDIS_SERVER=", env, " is not an executable file"));
    }
    return std::string(env);
  }
  const char* path = std::getenv("PATH");
  std::vector<std::string> dirs =
      absl::StrSplit(path == nullptr ? "" : path, ':', absl::SkipEmpty());
  // Bazel's strict action env can hand tests a PATH without the usual dirs.
  dirs.push_back("/usr/bin");
  for (const std::string& dir : dirs) {
    std::string candidate = absl::StrCat(dir, "/redis-server");
    if (IsExecutableFile(candidate)) return candidate;
  }
  return absl::NotFoundError(
      "redis-server is not in $PATH or /usr/bin; install it or set "
      "REDIS_SERVER to its path");
}

// `for_socket`: the directory will hold the unix socket, whose path must
// stay under kMaxSocketPath; a long $TEST_TMPDIR gives way to /tmp.
absl::StatusOr<std::string> MakeTempDir(bool for_socket) {
  const char* env = std::getenv("TEST_TMPDIR");
  std::string base = env != nullptr && *env != '\0' ? env : "/tmp";
  if (for_socket &&
      absl::StrCat(base, "/redis-XXXXXX/", kSocketFile).size() >=
          kMaxSocketPath) {
    base = "/tmp";
  }
  std::string path = absl::StrCat(base, "/redis-XXXXXX");
  if (mkdtemp(path.data()) == nullptr) {
    return ErrnoError(absl::StrCat("mkdtemp ", path));
  }
  return path;
}

// `count` distinct ports the kernel hands out as free now (all bound at
// once, so they differ); another process may still take one before
// redis-server binds it, which Start() handles by retrying.
absl::StatusOr<std::vector<int>> PickFreePorts(int count) {
  std::vector<int> fds;
  std::vector<int> ports;
  absl::Status status;
  for (int i = 0; i < count && status.ok(); ++i) {
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      status = ErrnoError("socket");
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
      status = absl::InternalError("pick port: " + ErrnoText(errno));
      break;
    }
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  if (!status.ok()) return status;
  return ports;
}

// The `bind` addresses: loopback always (fleet nodes in one namespace reach
// each other there), plus the address clients use when it is another.
std::string Bind(const std::string& host) {
  return host == "127.0.0.1" ? host : absl::StrCat("127.0.0.1 ", host);
}

// redis.conf splits lines like a shell; quoting keeps paths and passwords
// with spaces or quotes whole. Redis understands the \xHH escapes CHexEscape
// emits.
std::string Quote(absl::string_view value) {
  return absl::StrCat("\"", absl::CHexEscape(value), "\"");
}

std::string LastLines(absl::string_view text) {
  std::vector<absl::string_view> lines =
      absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.size() > kLogTailLines) {
    lines.erase(lines.begin(), lines.end() - kLogTailLines);
  }
  return absl::StrJoin(lines, "\n");
}

}  // namespace

std::string RedisReply::ToText() const {
  switch (type) {
    case Type::kInteger:
      return absl::StrCat(integer);
    case Type::kNil:
      return "(nil)";
    case Type::kArray: {
      std::vector<std::string> texts;
      for (const RedisReply& element : elements) {
        texts.push_back(element.ToText());
      }
      return absl::StrJoin(texts, "\n");
    }
    default:
      return str;
  }
}

absl::StatusOr<ServerBackend> BackendFromEnvironment() {
  const char* env = std::getenv("LOCK_TEST_BACKEND");
  const absl::string_view value = env == nullptr ? "" : env;
  if (value.empty() || value == "process") return ServerBackend::kProcess;
  if (value == "container") return ServerBackend::kContainer;
  return absl::InvalidArgumentError(
      absl::StrCat("LOCK_TEST_BACKEND=", value,
                   ": expected \"process\" or \"container\""));
}

RedisServer::RedisServer(RedisServerOptions options, std::string binary,
                         std::string dir,
                         std::unique_ptr<internal::Runner> runner)
    : options_(std::move(options)),
      binary_(std::move(binary)),
      dir_(std::move(dir)),
      runner_(std::move(runner)) {}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    RedisServerOptions options) {
  std::signal(SIGPIPE, SIG_IGN);
  if (options.tls && options.tls_auth_clients != "no" &&
      options.tls_auth_clients != "yes" &&
      options.tls_auth_clients != "optional") {
    return absl::InvalidArgumentError(
        absl::StrCat(options.name, ": tls_auth_clients \"",
                     options.tls_auth_clients,
                     "\": expected \"no\", \"yes\" or \"optional\""));
  }
  ServerBackend backend = options.backend;
  if (backend == ServerBackend::kFromEnvironment) {
    ASSIGN_OR_RETURN(backend, BackendFromEnvironment());
  }
  ASSIGN_OR_RETURN(std::string binary, FindRedisServer());
  std::unique_ptr<internal::Runner> runner;
  if (backend == ServerBackend::kContainer) {
    ASSIGN_OR_RETURN(runner, internal::NewContainerRunner(options.name));
  } else {
    runner = internal::NewProcessRunner(options.name);
  }
  ASSIGN_OR_RETURN(std::string dir, MakeTempDir(options.unix_socket));
  // Owned from here on, so every error path removes the directory.
  std::unique_ptr<RedisServer> server(
      new RedisServer(std::move(options), std::move(binary), std::move(dir),
                      std::move(runner)));
  if (server->options_.unix_socket) {
    server->socket_path_ = absl::StrCat(server->dir_, "/", kSocketFile);
  }
  if (server->options_.tls) {
    const std::string tls_dir =
        server->options_.tls_dir.empty()
            ? absl::StrCat(server->dir_, "/", kTlsDir)
            : server->options_.tls_dir;
    ASSIGN_OR_RETURN(server->tls_files_, MakeTlsFiles(tls_dir));
  }
  {
    std::lock_guard<std::mutex> lock(server->mu_);
    absl::Status status;
    const bool tls = server->options_.tls;
    const bool cluster = server->options_.cluster;
    for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
      // [plaintext, TLS if tls, bus if cluster], all distinct.
      ASSIGN_OR_RETURN(std::vector<int> ports,
                       PickFreePorts(1 + (tls ? 1 : 0) + (cluster ? 1 : 0)));
      server->plain_port_ = ports[0];
      server->port_ = tls ? ports[1] : ports[0];
      if (cluster) server->bus_port_ = ports.back();
      RETURN_IF_ERROR(server->WriteConfig());
      status = server->LaunchLocked();
      if (!absl::IsUnavailable(status)) break;
    }
    RETURN_IF_ERROR(status);
  }
  return server;
}

RedisServer::~RedisServer() {
  std::lock_guard<std::mutex> lock(mu_);
  runner_->Kill().IgnoreError();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string RedisServer::host() const { return options_.host; }

std::string RedisServer::addr() const {
  if (!socket_path_.empty()) return absl::StrCat("unix:", socket_path_);
  return absl::StrCat(options_.host, ":", port_);
}

std::string RedisServer::plain_addr() const {
  return absl::StrCat(options_.host, ":", plain_port_);
}

pid_t RedisServer::pid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return runner_->pid();
}

bool RedisServer::paused() const {
  std::lock_guard<std::mutex> lock(mu_);
  return runner_->paused();
}

std::string RedisServer::backend_description() const {
  std::lock_guard<std::mutex> lock(mu_);
  return runner_->Describe();
}

absl::Status RedisServer::Kill() {
  std::lock_guard<std::mutex> lock(mu_);
  return runner_->Kill();
}

absl::Status RedisServer::Pause() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!runner_->up()) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.name, ": server is down"));
  }
  if (runner_->paused()) return absl::OkStatus();
  return runner_->Pause();
}

absl::Status RedisServer::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!runner_->up()) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.name, ": server is down"));
  }
  if (!runner_->paused()) return absl::OkStatus();
  return runner_->Resume();
}

absl::Status RedisServer::Restart(bool keep_data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (runner_->paused()) RETURN_IF_ERROR(runner_->Resume());
  // Without AOF the data lives only in memory until SAVE writes dump.rdb.
  // Sentinels have no data to save (and no SAVE).
  if (keep_data && runner_->up() && !options_.appendonly &&
      !options_.sentinel) {
    RETURN_IF_ERROR(Exec({"SAVE"}).status());
  }
  RETURN_IF_ERROR(runner_->Kill());
  if (!keep_data) {
    // Everything but our config, log and certificates is data (dump.rdb,
    // the AOF dir, or whatever extra_config renamed them to). The unix
    // socket goes too; the server makes it anew.
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, error)) {
      const std::string file = entry.path().filename();
      if (file != kConfigFile && file != kLogFile && file != kTlsDir) {
        std::filesystem::remove_all(entry.path(), error);
      }
      if (error) break;
    }
    if (error) {
      return absl::InternalError(
          absl::StrCat("clear ", dir_, ": ", error.message()));
    }
  }
  return LaunchLocked();
}

absl::StatusOr<std::string> RedisServer::Exec(
    const std::vector<std::string>& argv) {
  ASSIGN_OR_RETURN(RedisReply reply, Query(argv, kExecTimeout));
  return reply.ToText();
}

absl::StatusOr<RedisReply> RedisServer::Query(
    const std::vector<std::string>& argv, absl::Duration timeout) {
  return Call(options_.host, plain_port_, options_.password, argv, timeout);
}

std::string RedisServer::Log() const {
  std::ifstream file(absl::StrCat(dir_, "/", kLogFile));
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

absl::Status RedisServer::WriteConfig() const {
  std::string config = absl::StrCat(
      "port ", plain_port_, "\nbind ", Bind(options_.host),
      "\nprotected-mode no\ndaemonize no\ndir ", Quote(dir_), "\nlogfile ",
      Quote(absl::StrCat(dir_, "/", kLogFile)), "\nsave \"\"\nappendonly ",
      options_.appendonly ? "yes" : "no",
      "\nappendfsync always\nenable-debug-command local\n");
  if (!options_.password.empty()) {
    absl::StrAppend(&config, "requirepass ", Quote(options_.password), "\n");
  }
  if (options_.cluster) {
    absl::StrAppend(&config,
                    "cluster-enabled yes\ncluster-config-file nodes.conf\n"
                    "cluster-port ",
                    bus_port_, "\ncluster-node-timeout 2000\n");
  }
  if (tls_files_.has_value()) {
    const TlsFiles& tls = *tls_files_;
    const std::string* cert = &tls.server_cert;
    const std::string* key = &tls.server_key;
    if (options_.server_cert == RedisServerOptions::ServerCert::kExpired) {
      cert = &tls.expired_server_cert;
      key = &tls.expired_server_key;
    } else if (options_.server_cert ==
               RedisServerOptions::ServerCert::kWrongHost) {
      cert = &tls.wrong_host_server_cert;
      key = &tls.wrong_host_server_key;
    }
    // The plaintext `port` above stays for the harness (see plain_addr()).
    absl::StrAppend(&config, "tls-port ", port_, "\ntls-cert-file ",
                    Quote(*cert), "\ntls-key-file ", Quote(*key),
                    "\ntls-ca-cert-file ", Quote(tls.ca_cert),
                    "\ntls-auth-clients ", options_.tls_auth_clients,
                    "\ntls-replication yes\n");
    if (options_.cluster) absl::StrAppend(&config, "tls-cluster yes\n");
  }
  if (!socket_path_.empty()) {
    absl::StrAppend(&config, "unixsocket ", Quote(socket_path_),
                    "\nunixsocketperm 700\n");
  }
  for (const auto& [key, value] : options_.extra_config) {
    absl::StrAppend(&config, key, " ", value, "\n");
  }
  const std::string path = absl::StrCat(dir_, "/", kConfigFile);
  std::ofstream file(path, std::ios::trunc);
  file << config;
  file.close();
  if (!file) return absl::InternalError(absl::StrCat("write ", path));
  return absl::OkStatus();
}

absl::Status RedisServer::LaunchLocked() {
  internal::LaunchSpec spec;
  spec.binary = binary_;
  spec.args = {absl::StrCat(dir_, "/", kConfigFile)};
  if (options_.sentinel) spec.args.push_back("--sentinel");
  spec.dir = dir_;
  if (tls_files_.has_value() &&
      !absl::StartsWith(tls_files_->dir, absl::StrCat(dir_, "/"))) {
    spec.extra_dirs.push_back(tls_files_->dir);
  }
  spec.log_path = absl::StrCat(dir_, "/", kLogFile);
  spec.network_namespace = options_.network_namespace;
  const size_t log_offset = Log().size();
  // A container takes a while to launch; that counts against the timeout.
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  RETURN_IF_ERROR(runner_->Launch(spec));
  absl::Status status = WaitUntilReadyLocked(log_offset, deadline);
  if (!status.ok()) runner_->Kill().IgnoreError();
  return status;
}

absl::Status RedisServer::WaitUntilReadyLocked(size_t log_offset,
                                               absl::Time deadline) {
  absl::Status probe;
  while (true) {
    if (std::optional<std::string> exit = runner_->CheckExited()) {
      const std::string log = Log().substr(log_offset);
      const std::string ports =
          port_ == plain_port_
              ? absl::StrCat("port ", port_)
              : absl::StrCat("ports ", plain_port_, " and ", port_, " (TLS)");
      const std::string message = absl::StrCat(
          options_.name, ": ", binary_, " (", runner_->Describe(), ") on ",
          ports, " exited at startup (", *exit, "); log tail:\n",
          LastLines(log));
      if (absl::StrContains(log, "Address already in use")) {
        return absl::UnavailableError(message);
      }
      return absl::FailedPreconditionError(message);
    }
    probe = Call(options_.host, plain_port_, options_.password, {"PING"}, kProbeTimeout)
                .status();
    const bool late = absl::Now() > deadline;
    if (probe.ok() && !late) break;
    if (late) {
      return absl::DeadlineExceededError(absl::StrCat(
          options_.name, ": no PING reply from ", plain_addr(), " within ",
          absl::FormatDuration(options_.start_timeout), " (last: ",
          probe.ok() ? "PONG, too late" : probe.message(), "); log tail:\n",
          LastLines(Log().substr(log_offset))));
    }
    absl::SleepFor(kPollInterval);
  }
  // Our child may not have noticed yet that another server owns the port.
  ASSIGN_OR_RETURN(RedisReply info, Call(options_.host, plain_port_, options_.password,
                                         {"INFO", "server"}, kProbeTimeout));
  if (!runner_->Owns(info.str)) {
    return absl::UnavailableError(absl::StrCat(
        options_.name, ": port ", plain_port_,
        " is served by another process"));
  }
  return absl::OkStatus();
}

}  // namespace lock::harness
