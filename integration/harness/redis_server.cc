#include "integration/harness/redis_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <thread>

#include "absl/functional/function_ref.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "lock/internal/status_macros.h"

namespace lock::harness {
namespace internal {

// Runs fork() on a thread of its own, so that the PR_SET_PDEATHSIG tie of a
// server is to this thread (which lives as long as its RedisServer) rather
// than to whichever thread happened to call Start() or Restart().
class ForkThread {
 public:
  ForkThread() : thread_([this] { Loop(); }) {}

  ~ForkThread() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  // Callers are serialized by RedisServer::mu_.
  pid_t Run(absl::FunctionRef<pid_t()> fork_fn) {
    std::unique_lock<std::mutex> lock(mu_);
    task_ = &fork_fn;
    cv_.notify_all();
    cv_.wait(lock, [this] { return task_ == nullptr; });
    return result_;
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [this] { return stop_ || task_ != nullptr; });
      if (stop_) return;
      result_ = (*task_)();
      task_ = nullptr;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  absl::FunctionRef<pid_t()>* task_ = nullptr;  // Guarded by mu_.
  pid_t result_ = -1;                           // Guarded by mu_.
  bool stop_ = false;                           // Guarded by mu_.
  std::thread thread_;  // Last, so it starts after the fields above exist.
};

}  // namespace internal

namespace {

constexpr char kHost[] = "127.0.0.1";
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

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

std::string ErrnoText(int error) {
  return std::error_code(error, std::generic_category()).message();
}

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", ErrnoText(errno)));
}

std::string ReplyToText(const redisReply& reply) {
  switch (reply.type) {
    case REDIS_REPLY_INTEGER:
      return absl::StrCat(reply.integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_ARRAY: {
      std::vector<std::string> elements;
      for (size_t i = 0; i < reply.elements; ++i) {
        elements.push_back(ReplyToText(*reply.element[i]));
      }
      return absl::StrJoin(elements, "\n");
    }
    default:  // String, status or error.
      return std::string(reply.str, reply.len);
  }
}

// The one place that maps hiredis outcomes to status codes: a dead context
// (refused, reset, timed out) is kUnavailable, an error reply is
// kFailedPrecondition.
absl::StatusOr<std::string> Command(redisContext* context, int port,
                                    const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const std::string& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  ReplyPtr reply(static_cast<redisReply*>(redisCommandArgv(
      context, static_cast<int>(args.size()), args.data(), lengths.data())));
  if (reply == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(kHost, ":", port, " ", argv[0], ": ", context->errstr));
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    return absl::FailedPreconditionError(ReplyToText(*reply));
  }
  return ReplyToText(*reply);
}

absl::StatusOr<std::string> Call(int port, const std::string& password,
                                 const std::vector<std::string>& argv,
                                 absl::Duration timeout) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  const timeval tv = absl::ToTimeval(timeout);
  ContextPtr context(redisConnectWithTimeout(kHost, port, tv));
  if (context == nullptr || context->err != 0) {
    return absl::UnavailableError(
        absl::StrCat("connect to ", kHost, ":", port, ": ",
                     context == nullptr ? "out of memory" : context->errstr));
  }
  if (redisSetTimeout(context.get(), tv) != REDIS_OK) {
    return absl::UnavailableError(absl::StrCat("set timeout on ", kHost, ":",
                                               port, ": ", context->errstr));
  }
  if (!password.empty()) {
    RETURN_IF_ERROR(Command(context.get(), port, {"AUTH", password}).status());
  }
  return Command(context.get(), port, argv);
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

absl::StatusOr<std::string> MakeTempDir() {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string path = absl::StrCat(
      base != nullptr && *base != '\0' ? base : "/tmp", "/redis-XXXXXX");
  if (mkdtemp(path.data()) == nullptr) {
    return ErrnoError(absl::StrCat("mkdtemp ", path));
  }
  return path;
}

// The kernel hands out a port that is free now; another process may still
// take it before redis-server binds it, which Start() handles by retrying.
absl::StatusOr<int> PickFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket");
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(addr);
  const bool ok =
      bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0;
  const int error = errno;
  close(fd);
  if (!ok) return absl::InternalError("pick port: " + ErrnoText(error));
  return ntohs(addr.sin_port);
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

std::string DescribeExit(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  }
  const int code = WEXITSTATUS(wait_status);
  return absl::StrCat("exit code ", code, code == 127 ? " (exec failed)" : "");
}

pid_t WaitPid(pid_t pid, int* wait_status, int flags) {
  pid_t result;
  do {
    result = waitpid(pid, wait_status, flags);
  } while (result < 0 && errno == EINTR);
  return result;
}

}  // namespace

RedisServer::RedisServer(RedisServerOptions options, std::string binary,
                         std::string dir)
    : options_(std::move(options)),
      binary_(std::move(binary)),
      dir_(std::move(dir)),
      fork_thread_(std::make_unique<internal::ForkThread>()) {}

absl::StatusOr<std::unique_ptr<RedisServer>> RedisServer::Start(
    RedisServerOptions options) {
  std::signal(SIGPIPE, SIG_IGN);
  ASSIGN_OR_RETURN(std::string binary, FindRedisServer());
  ASSIGN_OR_RETURN(std::string dir, MakeTempDir());
  // Owned from here on, so every error path removes the directory.
  std::unique_ptr<RedisServer> server(
      new RedisServer(std::move(options), std::move(binary), std::move(dir)));
  {
    std::lock_guard<std::mutex> lock(server->mu_);
    absl::Status status;
    for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
      ASSIGN_OR_RETURN(server->port_, PickFreePort());
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
  KillLocked().IgnoreError();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string RedisServer::host() const { return kHost; }

std::string RedisServer::addr() const {
  return absl::StrCat(kHost, ":", port_);
}

pid_t RedisServer::pid() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pid_;
}

absl::Status RedisServer::Kill() {
  std::lock_guard<std::mutex> lock(mu_);
  return KillLocked();
}

absl::Status RedisServer::Pause() {
  std::lock_guard<std::mutex> lock(mu_);
  if (paused_) return absl::OkStatus();
  return SignalLocked(SIGSTOP, WUNTRACED);
}

absl::Status RedisServer::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!paused_) return absl::OkStatus();
  return SignalLocked(SIGCONT, WCONTINUED);
}

absl::Status RedisServer::Restart(bool keep_data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (paused_) RETURN_IF_ERROR(SignalLocked(SIGCONT, WCONTINUED));
  // Without AOF the data lives only in memory until SAVE writes dump.rdb.
  if (keep_data && pid_ >= 0 && !options_.appendonly) {
    RETURN_IF_ERROR(Exec({"SAVE"}).status());
  }
  RETURN_IF_ERROR(KillLocked());
  if (!keep_data) {
    // Everything but our config and log is data (dump.rdb, the AOF dir, or
    // whatever extra_config renamed them to).
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, error)) {
      const std::string file = entry.path().filename();
      if (file != kConfigFile && file != kLogFile) {
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
  return Call(port_, options_.password, argv, kExecTimeout);
}

std::string RedisServer::Log() const {
  std::ifstream file(absl::StrCat(dir_, "/", kLogFile));
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

absl::Status RedisServer::WriteConfig() const {
  std::string config = absl::StrCat(
      "port ", port_, "\nbind ", kHost,
      "\nprotected-mode no\ndaemonize no\ndir ", Quote(dir_), "\nlogfile ",
      Quote(absl::StrCat(dir_, "/", kLogFile)), "\nsave \"\"\nappendonly ",
      options_.appendonly ? "yes" : "no",
      "\nappendfsync always\nenable-debug-command local\n");
  if (!options_.password.empty()) {
    absl::StrAppend(&config, "requirepass ", Quote(options_.password), "\n");
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
  const std::string config_path = absl::StrCat(dir_, "/", kConfigFile);
  const std::string log_path = absl::StrCat(dir_, "/", kLogFile);
  // Startup errors (a bad directive) go to stderr before the logfile is
  // open, so both streams go to the log too.
  const int log_fd =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) return ErrnoError(absl::StrCat("open ", log_path));
  const size_t log_offset = Log().size();
  char* const argv[] = {const_cast<char*>(binary_.c_str()),
                        const_cast<char*>(config_path.c_str()), nullptr};
  const pid_t parent = getpid();
  int fork_error = 0;
  pid_ = fork_thread_->Run([&] {
    const pid_t child = fork();
    if (child == 0) {
      // Only async-signal-safe calls between fork and exec. The getppid()
      // check covers the parent dying before prctl() took effect.
      if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(126);
      }
      dup2(log_fd, STDOUT_FILENO);
      dup2(log_fd, STDERR_FILENO);
      // Inherited sockets (say, a test's connection to another server) would
      // stay open for as long as this server runs.
      close_range(STDERR_FILENO + 1, ~0U, 0);
      execv(argv[0], argv);
      _exit(127);
    }
    fork_error = errno;
    return child;
  });
  close(log_fd);
  if (pid_ < 0) {
    return absl::InternalError(absl::StrCat("fork: ", ErrnoText(fork_error)));
  }
  absl::Status status = WaitUntilReadyLocked(log_offset);
  if (!status.ok()) KillLocked().IgnoreError();
  return status;
}

absl::Status RedisServer::WaitUntilReadyLocked(size_t log_offset) {
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  absl::Status probe;
  while (true) {
    int wait_status = 0;
    if (WaitPid(pid_, &wait_status, WNOHANG) == pid_) {
      pid_ = -1;
      const std::string log = Log().substr(log_offset);
      const std::string message =
          absl::StrCat(options_.name, ": ", binary_, " on port ", port_,
                       " exited at startup (", DescribeExit(wait_status),
                       "); log tail:\n", LastLines(log));
      if (absl::StrContains(log, "Address already in use")) {
        return absl::UnavailableError(message);
      }
      return absl::FailedPreconditionError(message);
    }
    probe = Call(port_, options_.password, {"PING"}, kProbeTimeout).status();
    if (probe.ok()) break;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(options_.name, ": no PING reply from ", addr(),
                       " within ", absl::FormatDuration(options_.start_timeout),
                       " (last: ", probe.message(), "); log tail:\n",
                       LastLines(Log().substr(log_offset))));
    }
    absl::SleepFor(kPollInterval);
  }
  // Our child may not have noticed yet that another server owns the port.
  ASSIGN_OR_RETURN(std::string info, Call(port_, options_.password,
                                          {"INFO", "server"}, kProbeTimeout));
  if (!absl::StrContains(info, absl::StrCat("process_id:", pid_, "\r\n"))) {
    return absl::UnavailableError(absl::StrCat(
        options_.name, ": port ", port_, " is served by another process"));
  }
  return absl::OkStatus();
}

absl::Status RedisServer::KillLocked() {
  if (pid_ < 0) return absl::OkStatus();
  if (paused_) kill(pid_, SIGCONT);
  if (kill(pid_, SIGKILL) != 0) return ErrnoError("kill");
  int wait_status = 0;
  if (WaitPid(pid_, &wait_status, 0) < 0) return ErrnoError("waitpid");
  pid_ = -1;
  paused_ = false;
  return absl::OkStatus();
}

absl::Status RedisServer::SignalLocked(int signal, int wait_flags) {
  if (pid_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(options_.name, ": server is down"));
  }
  if (kill(pid_, signal) != 0) return ErrnoError("kill");
  // Waiting for the stop/continue report makes the state change synchronous.
  int wait_status = 0;
  if (WaitPid(pid_, &wait_status, wait_flags) < 0) {
    return ErrnoError("waitpid");
  }
  if (WIFEXITED(wait_status) || WIFSIGNALED(wait_status)) {
    pid_ = -1;
    paused_ = false;
    return absl::FailedPreconditionError(absl::StrCat(
        options_.name, ": server exited (", DescribeExit(wait_status), ")"));
  }
  paused_ = signal == SIGSTOP;
  return absl::OkStatus();
}

}  // namespace lock::harness
