// The container backend (LOCK_TEST_BACKEND=container): each redis-server runs
// in a container of its own, with the same interface as a process.
//
// Engine: podman, or docker when podman is absent and `docker info` answers;
// LOCK_CONTAINER_ENGINE=podman|docker|/path/to/engine forces one. Podman runs
// with `--runtime runc --cgroup-manager cgroupfs`, which works without
// systemd; containers use the host network (so addresses and ports are the
// same as for processes) and explicit ulimits.
//
// Image: there is no registry. The first container of a process builds (or
// finds) `localhost/redis-lock-node:<content hash>`: a rootfs tarball holding
// the host's redis-server, the shared libraries ldd names and a minimal /etc,
// imported with `<engine> import`. The hash covers the binary and libraries,
// so a new redis-server gets a new image and an unchanged one is reused.
//
// Data: the server's directory is bind-mounted at the same path, so the
// generated config, the log and the data files are where a process would
// have them and Restart(keep_data) works unchanged.
//
// Leftovers: a container is not a child of the test and does not die with
// it. So each container gets a watchdog: a `sh` in a session of its own
// (out of reach of a signal to the test's process group) that blocks reading
// a pipe whose only writer is this process. When the process dies, however
// it dies, the read ends and the watchdog removes the container; Kill()
// stops the watchdog first. As a second line, containers are named lockharness-<owner>-<n>-<name>, where <owner> is a
// random token whose file under /tmp/lock-harness-owners/ this process holds
// flock()ed while it lives. The first container backend of every process
// removes containers whose owner file exists and is no longer locked, i.e.
// whose process died without cleaning up (or whose watchdog was cut short,
// as Bazel does to every descendant of a finished test), and the file.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "integration/harness/runner.h"
#include "integration/harness/subprocess.h"
#include "util/proc.h"
#include "util/status_macros.h"

namespace lock::harness::internal {
namespace {

constexpr absl::Duration kEngineTimeout = absl::Seconds(60);
constexpr char kNamePrefix[] = "lockharness-";
constexpr char kOwnerDir[] = "/tmp/lock-harness-owners";
constexpr char kImageRepo[] = "localhost/redis-lock-node";
// redis-server wants maxclients (10000) + 32 descriptors.
constexpr char kNofile[] = "nofile=10240:10240";
constexpr char kNproc[] = "nproc=4096:4096";

struct Engine {
  std::string binary;                     // absolute path
  bool podman = false;
  std::vector<std::string> global_flags;  // before the subcommand

  std::vector<std::string> Command(std::vector<std::string> args) const {
    std::vector<std::string> argv = {binary};
    argv.insert(argv.end(), global_flags.begin(), global_flags.end());
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }
  std::string name() const { return podman ? "podman" : "docker"; }
};

absl::StatusOr<Engine> DetectEngine() {
  const char* forced = std::getenv("LOCK_CONTAINER_ENGINE");
  std::vector<std::string> candidates = {"podman", "docker"};
  if (forced != nullptr && *forced != '\0') candidates = {forced};
  std::vector<std::string> reasons;
  for (const std::string& candidate : candidates) {
    Engine engine;
    engine.binary = FindExecutable(candidate);
    if (engine.binary.empty()) {
      reasons.push_back(absl::StrCat(candidate, ": not installed"));
      continue;
    }
    engine.podman = absl::StrContains(
        std::filesystem::path(engine.binary).filename().string(), "podman");
    if (engine.podman) {
      // Without systemd, podman needs cgroupfs; crun is not in every setup.
      engine.global_flags = {"--runtime", "runc", "--cgroup-manager",
                             "cgroupfs"};
    }
    // `version` needs a working engine (the docker client alone fails here).
    absl::StatusOr<std::string> version = RunChecked(
        engine.Command({"version"}),
        absl::Seconds(20));
    if (!version.ok()) {
      reasons.push_back(
          absl::StrCat(candidate, ": ", version.status().message()));
      continue;
    }
    return engine;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "LOCK_TEST_BACKEND=container: no working container engine (",
      absl::StrJoin(reasons, "; "),
      "). Install podman and runc (tools/setup does), set "
      "LOCK_CONTAINER_ENGINE, or unset LOCK_TEST_BACKEND to run processes"));
}

// Detected once per process and LOCK_CONTAINER_ENGINE value.
absl::StatusOr<Engine> GetEngine() {
  static std::mutex* const mu = new std::mutex;
  static auto* const engines =
      new std::map<std::string, absl::StatusOr<Engine>>;
  const char* forced = std::getenv("LOCK_CONTAINER_ENGINE");
  const std::string key = forced == nullptr ? "" : forced;
  std::lock_guard<std::mutex> lock(*mu);
  auto it = engines->find(key);
  if (it == engines->end()) it = engines->emplace(key, DetectEngine()).first;
  return it->second;
}

std::string RandomHex(int bytes) {
  std::string raw(static_cast<size_t>(bytes), '\0');
  size_t filled = 0;
  while (filled < raw.size()) {
    const ssize_t n = getrandom(raw.data() + filled, raw.size() - filled, 0);
    if (n > 0) filled += static_cast<size_t>(n);
  }
  std::string hex;
  for (unsigned char c : raw) {
    absl::StrAppend(&hex, absl::Hex(c, absl::kZeroPad2));
  }
  return hex;
}

// Removes containers left by processes that died; see the top of the file.
void ReapLeftovers(const Engine& engine, const std::string& own_token) {
  absl::StatusOr<std::string> names = RunChecked(
      engine.Command({"ps", "-a", "--filter",
                      absl::StrCat("name=", kNamePrefix), "--format",
                      "{{.Names}}"}),
      kEngineTimeout);
  if (!names.ok()) return;
  std::map<std::string, std::vector<std::string>> by_owner;
  for (absl::string_view name :
       absl::StrSplit(*names, '\n', absl::SkipWhitespace())) {
    name = absl::StripAsciiWhitespace(name);
    absl::string_view rest = name;
    if (!absl::ConsumePrefix(&rest, kNamePrefix)) continue;
    by_owner[std::string(rest.substr(0, rest.find('-')))].emplace_back(name);
  }
  std::error_code error;
  for (const auto& entry :
       std::filesystem::directory_iterator(kOwnerDir, error)) {
    const std::string token = entry.path().filename();
    // Dot files are owners still setting up (see OwnerToken()).
    if (token == own_token || absl::StartsWith(token, ".")) continue;
    const int fd = open(entry.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {  // Its process is gone.
      bool all_removed = true;
      for (const std::string& container : by_owner[token]) {
        all_removed &= RunChecked(engine.Command({"rm", "-f", container}),
                                  kEngineTimeout)
                           .ok();
      }
      // The file goes with the last of its containers; an owner without a
      // file (one we cannot see, in another /tmp) is never touched.
      if (all_removed) unlink(entry.path().c_str());
    }
    close(fd);
  }
}

// This process's owner token, its file locked for the life of the process.
const std::string& OwnerToken(const Engine& engine) {
  static const std::string* const token = [&engine] {
    auto* token = new std::string(RandomHex(6));
    mkdir(kOwnerDir, 01777);
    // Locked under a dot name, then renamed: a sweep never sees the file
    // unlocked.
    const std::string setup = absl::StrCat(kOwnerDir, "/.", *token);
    const int fd = open(setup.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && flock(fd, LOCK_EX) == 0) {  // fd deliberately never closed
      rename(setup.c_str(), absl::StrCat(kOwnerDir, "/", *token).c_str());
    }
    ReapLeftovers(engine, *token);
    return token;
  }();
  return *token;
}

// FNV-1a: a content tag only needs to change when the content does.
void Fnv1a(absl::string_view data, uint64_t* hash) {
  for (unsigned char c : data) {
    *hash ^= c;
    *hash *= 1099511628211ULL;
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("read ", path));
  std::stringstream contents;
  contents << file.rdbuf();
  return contents.str();
}

// The shared libraries (and the loader) `binary` needs, as absolute paths.
absl::StatusOr<std::vector<std::string>> SharedLibraries(
    const std::string& binary) {
  ASSIGN_OR_RETURN(std::string out,
                   RunChecked({"ldd", binary}, absl::Seconds(30)));
  std::vector<std::string> libraries;
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    for (absl::string_view word : absl::StrSplit(line, ' ')) {
      word = absl::StripAsciiWhitespace(word);
      if (absl::StartsWith(word, "/")) libraries.emplace_back(word);
    }
  }
  return libraries;
}

absl::Status BuildImage(const Engine& engine, const std::string& binary,
                        const std::vector<std::string>& libraries,
                        const std::string& tag) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string root = absl::StrCat(
      base != nullptr && *base != '\0' ? base : "/tmp", "/rootfs-XXXXXX");
  if (mkdtemp(root.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", root));
  }
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } cleanup{root};
  const std::string tree = root + "/tree";
  std::error_code error;
  auto copy = [&](const std::string& from, const std::string& to) {
    std::filesystem::create_directories(
        std::filesystem::path(tree + to).parent_path(), error);
    if (!error) {
      std::filesystem::copy_file(
          from, tree + to, std::filesystem::copy_options::overwrite_existing,
          error);
    }
    return !error;
  };
  if (!copy(binary, "/usr/bin/redis-server")) {
    return absl::InternalError(
        absl::StrCat("image: copy ", binary, ": ", error.message()));
  }
  for (const std::string& library : libraries) {
    if (!copy(library, library)) {
      return absl::InternalError(
          absl::StrCat("image: copy ", library, ": ", error.message()));
    }
  }
  for (const char* dir : {"/tmp", "/etc", "/data"}) {
    std::filesystem::create_directories(tree + dir, error);
  }
  chmod((tree + "/tmp").c_str(), 01777);
  std::ofstream(tree + "/etc/passwd") << "root:x:0:0:root:/:/sbin/nologin\n";
  std::ofstream(tree + "/etc/group") << "root:x:0:\n";
  std::ofstream(tree + "/etc/nsswitch.conf") << "hosts: files\n";
  const std::string tarball = root + "/rootfs.tar";
  RETURN_IF_ERROR(
      RunChecked({"tar", "-C", tree, "-cf", tarball, "."}, kEngineTimeout)
          .status());
  return RunChecked(engine.Command({"import", "--message",
                                    "redis-lock test node", tarball, tag}),
                    kEngineTimeout)
      .status();
}

absl::StatusOr<std::string> BuildOrFindImage(const Engine& engine,
                                             const std::string& binary) {
  ASSIGN_OR_RETURN(std::vector<std::string> libraries,
                   SharedLibraries(binary));
  uint64_t hash = 14695981039346656037ULL;
  ASSIGN_OR_RETURN(std::string contents, ReadFile(binary));
  Fnv1a(contents, &hash);
  for (const std::string& library : libraries) {
    ASSIGN_OR_RETURN(contents, ReadFile(library));
    Fnv1a(library, &hash);
    Fnv1a(contents, &hash);
  }
  const std::string tag =
      absl::StrCat(kImageRepo, ":", absl::Hex(hash, absl::kZeroPad16));
  absl::StatusOr<CommandResult> inspect = RunCommand(
      engine.Command({"image", "inspect", "--format", "{{.Id}}", tag}),
      kEngineTimeout);
  if (inspect.ok() && inspect->exit_code == 0) return tag;
  // Parallel test processes may import the same tag at once; the content is
  // the same, so whichever import lands last is as good as the first.
  RETURN_IF_ERROR(BuildImage(engine, binary, libraries, tag));
  return tag;
}

// One image per redis-server binary per process.
absl::StatusOr<std::string> ImageFor(const Engine& engine,
                                     const std::string& binary) {
  static std::mutex* const mu = new std::mutex;
  static auto* const images =
      new std::map<std::string, absl::StatusOr<std::string>>;
  std::lock_guard<std::mutex> lock(*mu);
  auto it = images->find(binary);
  if (it == images->end()) {
    it = images->emplace(binary, BuildOrFindImage(engine, binary)).first;
  }
  return it->second;
}

std::string ShellQuote(absl::string_view word) {
  return absl::StrCat("'", absl::StrReplaceAll(word, {{"'", "'\\''"}}), "'");
}

// See the top of the file. Returns the watchdog's pid and the write end of
// its pipe, or {-1, -1} if it could not be started (the container then
// relies on the leftover sweep).
std::pair<pid_t, int> StartWatchdog(const std::vector<std::string>& rm_argv) {
  std::vector<std::string> quoted;
  for (const std::string& arg : rm_argv) quoted.push_back(ShellQuote(arg));
  const std::string script = absl::StrCat(
      "read x; exec ", absl::StrJoin(quoted, " "), " >/dev/null 2>&1");
  const char* argv[] = {"/bin/sh", "-c", script.c_str(), nullptr};
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return {-1, -1};
  const pid_t child = fork();
  if (child == 0) {
    setsid();
    dup2(fds[0], STDIN_FILENO);
    const int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) {
      dup2(null_fd, STDOUT_FILENO);
      dup2(null_fd, STDERR_FILENO);
    }
    close_range(STDERR_FILENO + 1, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(argv[0], const_cast<char* const*>(argv));
    _exit(127);
  }
  close(fds[0]);
  if (child < 0) {
    close(fds[1]);
    return {-1, -1};
  }
  return {child, fds[1]};
}

void StopWatchdog(pid_t* pid, int* fd) {
  if (*pid > 0) {
    kill(*pid, SIGKILL);
    while (waitpid(*pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  // Only now: closing the pipe first would set the watchdog off.
  if (*fd >= 0) close(*fd);
  *pid = -1;
  *fd = -1;
}

std::string SanitizeName(absl::string_view name) {
  std::string out;
  for (char c : name) {
    out.push_back(absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.'
                      ? c
                      : '_');
  }
  return out;
}

class ContainerRunner : public Runner {
 public:
  ContainerRunner(std::string name, const Engine& engine)
      : name_(std::move(name)),
        engine_(engine),
        container_(absl::StrCat(kNamePrefix, OwnerToken(engine), "-",
                                next_id_.fetch_add(1), "-",
                                SanitizeName(name_))) {}

  ~ContainerRunner() override { Kill().IgnoreError(); }

  absl::Status Launch(const LaunchSpec& spec) override {
    // Docker's --network takes no namespace path; podman's does.
    if (!spec.network_namespace.empty() && !engine_.podman) {
      return absl::FailedPreconditionError(absl::StrCat(
          name_, ": a server in network namespace ", spec.network_namespace,
          " (a Partition) needs podman or the process backend; ",
          engine_.name(), " cannot join a named namespace"));
    }
    ASSIGN_OR_RETURN(std::string image, ImageFor(engine_, spec.binary));
    log_path_ = spec.log_path;
    config_path_ = spec.args.empty() ? "" : spec.args[0];
    const std::string network =
        spec.network_namespace.empty()
            ? "host"
            : absl::StrCat("ns:/run/netns/", spec.network_namespace);
    std::vector<std::string> run = {
        "run",      "-d",         "--name",  container_, "--network",
        network,    "--ulimit",   kNofile,   "--ulimit", kNproc,
        "--volume", absl::StrCat(spec.dir, ":", spec.dir)};
    for (const std::string& dir : spec.extra_dirs) {
      run.insert(run.end(), {"--volume", absl::StrCat(dir, ":", dir, ":ro")});
    }
    run.insert(run.end(), {image, "/usr/bin/redis-server"});
    run.insert(run.end(), spec.args.begin(), spec.args.end());
    absl::StatusOr<std::string> id =
        RunChecked(engine_.Command(run), kEngineTimeout);
    if (!id.ok()) {
      Remove().IgnoreError();
      return absl::InternalError(absl::StrCat(
          name_, ": cannot start container: ", id.status().message()));
    }
    created_ = true;
    std::tie(watchdog_pid_, watchdog_fd_) = StartWatchdog(RemoveCommand());
    ASSIGN_OR_RETURN(
        std::string pid_text,
        RunChecked(engine_.Command(
                       {"inspect", "--format", "{{.State.Pid}}", container_}),
                   kEngineTimeout));
    int pid = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(pid_text), &pid)) {
      return absl::InternalError(
          absl::StrCat(name_, ": container pid: ", pid_text));
    }
    // 0: the server exited before inspect; CheckExited() reports it.
    pid_ = pid;
    return absl::OkStatus();
  }

  std::optional<std::string> CheckExited() override {
    if (!created_) return "not running";
    if (pid_ > 0 && !::util::ProcessGone(pid_)) return std::nullopt;
    absl::StatusOr<std::string> code = RunChecked(
        engine_.Command(
            {"inspect", "--format", "{{.State.ExitCode}}", container_}),
        kEngineTimeout);
    std::string how =
        code.ok() ? absl::StrCat("container exit code ",
                                 absl::StripAsciiWhitespace(*code))
                  : "container exited";
    // Output from before `logfile` took effect is only in the engine's log.
    absl::StatusOr<CommandResult> logs =
        RunCommand(engine_.Command({"logs", container_}), kEngineTimeout);
    if (logs.ok()) {
      std::ofstream(log_path_, std::ios::app) << logs->out << logs->err;
    }
    Remove().IgnoreError();
    created_ = false;
    paused_ = false;
    pid_ = -1;
    return how;
  }

  bool Owns(absl::string_view info_server) const override {
    // The server's pid is its own namespace's; its config path is unique.
    return pid_ > 0 && !::util::ProcessGone(pid_) &&
           absl::StrContains(info_server,
                             absl::StrCat("config_file:", config_path_, "\r\n"));
  }

  absl::Status Kill() override {
    if (!created_) return absl::OkStatus();
    absl::Status status = Remove();
    if (!status.ok()) {
      return absl::InternalError(
          absl::StrCat(name_, ": kill: ", status.message()));
    }
    return absl::OkStatus();
  }

  absl::Status Pause() override {
    RETURN_IF_ERROR(Verb("pause"));
    paused_ = true;
    return absl::OkStatus();
  }

  absl::Status Resume() override {
    RETURN_IF_ERROR(Verb("unpause"));
    paused_ = false;
    return absl::OkStatus();
  }

  bool up() const override { return created_; }
  bool paused() const override { return paused_; }
  pid_t pid() const override { return created_ ? pid_ : -1; }
  std::string Describe() const override {
    return absl::StrCat(engine_.name(), " container ", container_);
  }

 private:
  absl::Status Verb(const std::string& verb) {
    absl::Status status =
        RunChecked(engine_.Command({verb, container_}), kEngineTimeout)
            .status();
    if (status.ok()) return status;
    if (CheckExited().has_value()) {
      return absl::FailedPreconditionError(
          absl::StrCat(name_, ": server exited"));
    }
    return absl::InternalError(
        absl::StrCat(name_, ": ", verb, ": ", status.message()));
  }

  // `rm -f` SIGKILLs (podman: after a 0 s grace), waits for the exit and
  // removes the container, so the name is free for the next Launch().
  std::vector<std::string> RemoveCommand() const {
    std::vector<std::string> rm = {"rm", "-f"};
    if (engine_.podman) rm.insert(rm.end(), {"-t", "0"});
    rm.push_back(container_);
    return engine_.Command(rm);
  }

  absl::Status Remove() {
    StopWatchdog(&watchdog_pid_, &watchdog_fd_);
    absl::Status status = RunChecked(RemoveCommand(), kEngineTimeout).status();
    // (`rm -f` of a container that is already gone succeeds.)
    if (status.ok()) {
      created_ = false;
      paused_ = false;
      pid_ = -1;
    }
    return status;
  }

  static inline std::atomic<int> next_id_{0};

  const std::string name_;
  const Engine engine_;
  const std::string container_;
  std::string log_path_;
  std::string config_path_;  // Identifies our server in INFO.
  bool created_ = false;
  bool paused_ = false;
  pid_t pid_ = -1;
  pid_t watchdog_pid_ = -1;
  int watchdog_fd_ = -1;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Runner>> NewContainerRunner(
    std::string name) {
  absl::StatusOr<Engine> engine = GetEngine();
  if (!engine.ok()) return engine.status();
  return std::unique_ptr<Runner>(
      new ContainerRunner(std::move(name), *engine));
}

}  // namespace lock::harness::internal
