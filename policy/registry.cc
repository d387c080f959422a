#include "policy/registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/memory/memory.h"
#include "absl/strings/str_cat.h"
#include "policy/config.h"
#include "policy/internal/files.h"
#include "util/status_macros.h"

namespace policy {
namespace {

absl::Status ErrnoError(int error, const char* action,
                        const std::string& path) {
  const std::string message =
      absl::StrCat("cannot ", action, " ", path, ": ",
                   std::error_code(error, std::generic_category()).message());
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(message);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(message);
    default:
      return absl::UnavailableError(message);
  }
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  absl::StatusOr<std::string> text = internal::ReadRegularFile(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(),
                        absl::StrCat("cannot read ", path, ": ", text.status().message()));
  }
  return text;
}

// What Watch() compares between polls: the file list and every file's
// content. Configuration files are small, so reading them each poll is cheap,
// and unlike timestamps it sees every edit (mtime granularity, clock steps,
// tools that preserve mtimes) and ignores a mere `touch`.
std::string Fingerprint(const std::string& path) {
  absl::StatusOr<std::vector<std::string>> files = ListConfigFiles(path);
  if (!files.ok()) return absl::StrCat("error: ", files.status().ToString());
  std::string fingerprint;
  for (const std::string& file : *files) {
    absl::StatusOr<std::string> text = ReadFile(file);
    if (!text.ok()) {
      absl::StrAppend(&fingerprint, file, " error: ", text.status().ToString(),
                      "\n");
      continue;
    }
    absl::StrAppend(&fingerprint, file, " ", text->size(), " ",
                    std::hash<std::string>()(*text), "\n");
  }
  return fingerprint;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ListConfigFiles(
    const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoError(errno, "stat", path);
  if (!S_ISDIR(st.st_mode)) return std::vector<std::string>{path};

  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return ErrnoError(errno, "open directory", path);
  std::vector<std::string> names;
  // readdir() is thread-safe for distinct DIR streams (glibc, POSIX.1-2008).
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    // Hidden files include editor lock files such as ".#policies.json".
    if (name.starts_with(".") || !name.ends_with(".json")) continue;
    const std::string full = absl::StrCat(path, "/", name);
    struct stat entry_st;
    if (::stat(full.c_str(), &entry_st) == 0 && S_ISREG(entry_st.st_mode)) {
      names.push_back(full);
    }
  }
  ::closedir(dir);
  if (names.empty()) {
    return absl::NotFoundError(
        absl::StrCat("no *.json configuration files in directory ", path));
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<std::vector<ConfigSource>> ReadConfigSources(
    const std::string& path) {
  ASSIGN_OR_RETURN(std::vector<std::string> files, ListConfigFiles(path));
  std::vector<ConfigSource> sources;
  for (std::string& file : files) {
    ASSIGN_OR_RETURN(std::string text, ReadFile(file));
    // Relative TLS paths in a file are relative to the file, not to
    // wherever the process happens to run.
    std::string directory =
        std::filesystem::path(file).parent_path().string();
    sources.push_back(ConfigSource{std::move(file), std::move(text),
                                   std::move(directory)});
  }
  return sources;
}

// Polls the registry's files on its own thread until destroyed.
class Registry::Watcher {
 public:
  // Stops a watcher: joins its thread. In a fork() child, where that thread
  // does not exist (fork copies only the calling thread) and its mutex and
  // condition variable still count it, the watcher is left alone instead:
  // destroying it would wait forever.
  static void Stop(std::unique_ptr<Watcher> watcher) {
    if (watcher != nullptr && getpid() != watcher->started_by_) (void)watcher.release();
  }

  Watcher(Registry* registry, absl::Duration interval,
          std::function<void(const absl::Status&)> on_reload)
      : registry_(registry),
        interval_(absl::ToChronoNanoseconds(
            std::max(interval, absl::Milliseconds(1)))),
        on_reload_(std::move(on_reload)),
        thread_([this] { Run(); }) {}

  ~Watcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, interval_, [this] { return stop_; })) {
      lock.unlock();  // Reloading and the callback may take a while.
      if (std::optional<absl::Status> result = registry_->ReloadIfChanged();
          result && on_reload_) {
        on_reload_(*result);
      }
      lock.lock();
    }
  }

  const pid_t started_by_ = getpid();
  Registry* const registry_;
  const std::chrono::nanoseconds interval_;
  const std::function<void(const absl::Status&)> on_reload_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;   // Guarded by mu_.
  std::thread thread_;  // Last: starts once the members above exist.
};

Registry::Registry(std::string path) : path_(std::move(path)) {}

Registry::~Registry() { StopWatching(); }

absl::StatusOr<std::unique_ptr<Registry>> Registry::Load(
    const std::string& path) {
  auto registry = absl::WrapUnique(new Registry(path));
  RETURN_IF_ERROR(registry->Reload());
  return registry;
}

absl::StatusOr<std::unique_ptr<Registry>> Registry::FromJson(
    std::string_view json, std::string_view source_name) {
  ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> snapshot,
                   ParseConfig(json, source_name));
  auto registry = absl::WrapUnique(new Registry(""));
  registry->snapshot_ = std::move(snapshot);
  return registry;
}

std::shared_ptr<const Snapshot> Registry::snapshot() const {
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  return snapshot_;
}

std::shared_ptr<const Policy> Registry::FindPolicy(
    std::string_view name) const {
  std::shared_ptr<const Snapshot> s = snapshot();
  const Policy* p = s->FindPolicy(name);
  // Aliasing constructor: owns the snapshot, points at the policy.
  return p == nullptr ? nullptr
                      : std::shared_ptr<const Policy>(std::move(s), p);
}

std::shared_ptr<const RedisTarget> Registry::FindTarget(
    std::string_view name) const {
  std::shared_ptr<const Snapshot> s = snapshot();
  const RedisTarget* t = s->FindTarget(name);
  return t == nullptr ? nullptr
                      : std::shared_ptr<const RedisTarget>(std::move(s), t);
}

absl::Status Registry::Reload() {
  if (path_.empty()) return absl::OkStatus();
  std::lock_guard<std::mutex> lock(reload_mu_);
  return ReloadLocked(Fingerprint(path_));
}

std::optional<absl::Status> Registry::ReloadIfChanged() {
  if (path_.empty()) return std::nullopt;
  std::lock_guard<std::mutex> lock(reload_mu_);
  std::string fingerprint = Fingerprint(path_);
  if (fingerprint == fingerprint_ && !TlsFilesChanged()) return std::nullopt;
  return ReloadLocked(std::move(fingerprint));
}

bool Registry::TlsFilesChanged() const {
  // Compared with what the parser itself read, not with a second look taken
  // after parsing: a certificate rotated while the parser ran is then seen
  // as a change by the next poll instead of being missed.
  return std::any_of(tls_files_.begin(), tls_files_.end(), [](const auto& f) {
    return FileFingerprint(f.first) != f.second;
  });
}

absl::Status Registry::ReloadLocked(std::string fingerprint) {
  // Taken before reading: an edit racing with this read changes the files
  // after the fingerprint, so the next poll sees a difference and reloads.
  fingerprint_ = std::move(fingerprint);
  ASSIGN_OR_RETURN(std::vector<ConfigSource> sources, ReadConfigSources(path_));
  // The TLS files of this attempt replace the watched ones even when it
  // fails: fixing a missing or broken certificate must trigger the next
  // reload.
  ASSIGN_OR_RETURN(std::shared_ptr<const Snapshot> snapshot,
                   ParseConfig(sources, &tls_files_));
  std::lock_guard<std::mutex> lock(snapshot_mu_);
  snapshot_ = std::move(snapshot);
  return absl::OkStatus();
}

void Registry::Watch(absl::Duration interval,
                     std::function<void(const absl::Status&)> on_reload) {
  std::lock_guard<std::mutex> lock(watcher_mu_);
  Watcher::Stop(std::move(watcher_));  // Before starting another.
  if (path_.empty()) return;
  watcher_ = std::make_unique<Watcher>(this, interval, std::move(on_reload));
}

void Registry::StopWatching() {
  std::lock_guard<std::mutex> lock(watcher_mu_);
  Watcher::Stop(std::move(watcher_));
}

}  // namespace policy
