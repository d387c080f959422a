// The default backend: redis-server as a child process, tied to this process
// by PR_SET_PDEATHSIG so that crashed tests leave no servers behind.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/functional/function_ref.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "integration/harness/runner.h"
#include "util/errno.h"

namespace lock::harness::internal {
namespace {

using ::util::ErrnoError;
using ::util::ErrnoText;

std::string DescribeExit(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    return absl::StrCat("killed by signal ", WTERMSIG(wait_status));
  }
  const int code = WEXITSTATUS(wait_status);
  return absl::StrCat("exit code ", code,
                      code == 127   ? " (exec failed)"
                      : code == 125 ? " (could not enter its network namespace)"
                                    : "");
}

pid_t WaitPid(pid_t pid, int* wait_status, int flags) {
  pid_t result;
  do {
    result = waitpid(pid, wait_status, flags);
  } while (result < 0 && errno == EINTR);
  return result;
}

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

  // Callers are serialized by RedisServer's mutex.
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

class ProcessRunner : public Runner {
 public:
  explicit ProcessRunner(std::string name) : name_(std::move(name)) {}

  ~ProcessRunner() override { Kill().IgnoreError(); }

  absl::Status Launch(const LaunchSpec& spec) override {
    // Startup errors (a bad directive) go to stderr before the logfile is
    // open, so both streams go to the log too.
    const int log_fd = open(spec.log_path.c_str(),
                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return ErrnoError(absl::StrCat("open ", spec.log_path));
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(spec.binary.c_str()));
    for (const std::string& arg : spec.args) {
      argv.push_back(const_cast<char*>(arg.c_str()));
    }
    argv.push_back(nullptr);
    // Opened here: between fork and exec only async-signal-safe calls.
    int netns_fd = -1;
    if (!spec.network_namespace.empty()) {
      const std::string path = "/run/netns/" + spec.network_namespace;
      netns_fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (netns_fd < 0) {
        const absl::Status error = ErrnoError(absl::StrCat("open ", path));
        close(log_fd);
        return error;
      }
    }
    const pid_t parent = getpid();
    int fork_error = 0;
    pid_ = fork_thread_.Run([&] {
      const pid_t child = fork();
      if (child == 0) {
        // Only async-signal-safe calls between fork and exec. The getppid()
        // check covers the parent dying before prctl() took effect.
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
          _exit(126);
        }
        // Its own process group: a Ctrl-C meant for a tool (redis-up) must
        // reach the tool, which then tears the servers down in order.
        setpgid(0, 0);
        // A caller that blocks signals to sigwait() for them (redis-up) must
        // not hand that mask on to the server.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) _exit(125);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        // Inherited sockets (say, a test's connection to another server)
        // would stay open for as long as this server runs.
        close_range(STDERR_FILENO + 1, ~0U, 0);
        execv(argv[0], argv.data());
        _exit(127);
      }
      fork_error = errno;
      return child;
    });
    close(log_fd);
    if (netns_fd >= 0) close(netns_fd);
    if (pid_ < 0) {
      return absl::InternalError(
          absl::StrCat("fork: ", ErrnoText(fork_error)));
    }
    return absl::OkStatus();
  }

  std::optional<std::string> CheckExited() override {
    if (pid_ < 0) return "not running";
    int wait_status = 0;
    if (WaitPid(pid_, &wait_status, WNOHANG) != pid_) return std::nullopt;
    pid_ = -1;
    paused_ = false;
    return DescribeExit(wait_status);
  }

  bool Owns(absl::string_view info_server) const override {
    return absl::StrContains(info_server,
                             absl::StrCat("process_id:", pid_, "\r\n"));
  }

  absl::Status Kill() override {
    if (pid_ < 0) return absl::OkStatus();
    if (paused_) kill(pid_, SIGCONT);
    if (kill(pid_, SIGKILL) != 0) return ErrnoError("kill");
    int wait_status = 0;
    if (WaitPid(pid_, &wait_status, 0) < 0) return ErrnoError("waitpid");
    pid_ = -1;
    paused_ = false;
    return absl::OkStatus();
  }

  absl::Status Pause() override { return Signal(SIGSTOP, WUNTRACED); }
  absl::Status Resume() override { return Signal(SIGCONT, WCONTINUED); }

  bool up() const override { return pid_ >= 0; }
  bool paused() const override { return paused_; }
  pid_t pid() const override { return pid_; }
  std::string Describe() const override { return "process"; }

 private:
  absl::Status Signal(int signal, int wait_flags) {
    if (kill(pid_, signal) != 0) return ErrnoError("kill");
    // Waiting for the stop/continue report makes the state change
    // synchronous.
    int wait_status = 0;
    if (WaitPid(pid_, &wait_status, wait_flags) < 0) {
      return ErrnoError("waitpid");
    }
    if (WIFEXITED(wait_status) || WIFSIGNALED(wait_status)) {
      pid_ = -1;
      paused_ = false;
      return absl::FailedPreconditionError(absl::StrCat(
          name_, ": server exited (", DescribeExit(wait_status), ")"));
    }
    paused_ = signal == SIGSTOP;
    return absl::OkStatus();
  }

  const std::string name_;
  ForkThread fork_thread_;
  pid_t pid_ = -1;
  bool paused_ = false;
};

}  // namespace

std::unique_ptr<Runner> NewProcessRunner(std::string name) {
  return std::make_unique<ProcessRunner>(std::move(name));
}

}  // namespace lock::harness::internal
