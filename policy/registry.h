// The policy registry: a validated, immutable configuration snapshot that can
// be reloaded from disk while locks are in use.
//
//   absl::StatusOr<std::unique_ptr<policy::Registry>> registry =
//       policy::Registry::Load("/etc/app/locks");  // a file or a directory
//   if (!registry.ok()) return registry.status();
//   (*registry)->Watch(absl::Seconds(2), [](const absl::Status& s) {
//     if (!s.ok()) std::cerr << "lock config not reloaded:\n" << s << "\n";
//   });
//   std::shared_ptr<const policy::Snapshot> snap = (*registry)->snapshot();
//   const policy::Policy* p = snap->FindPolicy("order-close");
//
// A broken edit never replaces a working configuration: Reload() validates
// everything first and swaps only on success. Code that took a snapshot keeps
// using it (and every Policy pointer obtained from it) until it drops the
// shared_ptr, so a lock keeps the policy it started with. Registry::FindPolicy
// returns such a sharing pointer directly; with snapshot(), keep the
// shared_ptr in a variable for as long as pointers obtained from it are used:
//
//   const Policy* p = registry.snapshot()->FindPolicy("x");  // Dangles!
//
// Thread-safety: all methods may be called concurrently, except that the
// Watch() callback must not call Watch() or StopWatching() (they wait for the
// watching thread, which is the one running the callback).
#ifndef POLICY_REGISTRY_H_
#define POLICY_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "policy/policy.h"

namespace policy {

// The configuration files behind `path`: the file itself, or the *.json
// files directly inside a directory, sorted by name (hidden files skipped).
// NotFound if the path does not exist or a directory holds no *.json file.
absl::StatusOr<std::vector<std::string>> ListConfigFiles(
    const std::string& path);

// Reads the files of ListConfigFiles(path); each source is named by its path.
absl::StatusOr<std::vector<ConfigSource>> ReadConfigSources(
    const std::string& path);

class Registry {
 public:
  // Loads a configuration file or a directory of *.json files (merged; see
  // ParseConfig). Errors: NotFound / PermissionDenied for unreadable paths,
  // InvalidArgument (all problems, one per line) for invalid configuration.
  static absl::StatusOr<std::unique_ptr<Registry>> Load(
      const std::string& path);

  // A registry over an in-memory configuration. Reload() and Watch() have
  // nothing to re-read: Reload() returns OK and Watch() does nothing.
  static absl::StatusOr<std::unique_ptr<Registry>> FromJson(
      std::string_view json, std::string_view source_name = "<inline>");

  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Stops watching.
  ~Registry();

  // The current configuration. Cheap (a mutex-protected shared_ptr copy);
  // never null.
  std::shared_ptr<const Snapshot> snapshot() const;

  // The named policy or target of the current snapshot, or nullptr. The
  // pointer shares ownership of its snapshot, so it stays valid (and
  // unchanged) across reloads: what a lock should hold on to while held.
  std::shared_ptr<const Policy> FindPolicy(std::string_view name) const;
  std::shared_ptr<const RedisTarget> FindTarget(std::string_view name) const;

  // Re-reads and validates every file. On success the new snapshot replaces
  // the current one; on failure the current one stays and the error is
  // returned. Concurrent calls are serialized.
  absl::Status Reload();

  // Starts a background thread that checks the files every `interval` (the
  // set of *.json files of a directory, every file's content, and the TLS
  // certificate and key files the configuration names) and calls
  // Reload() when anything changed, reporting its result to `on_reload` (on
  // that thread; may be empty). Each change is reported once, so a broken
  // file does not repeat its error every interval; a manual Reload() counts
  // as having seen the files. Replaces a previous Watch(). `interval` is at
  // least 1ms. Does nothing for a FromJson() registry.
  void Watch(absl::Duration interval,
             std::function<void(const absl::Status&)> on_reload);

  // Stops the watching thread and waits for it; a no-op when not watching.
  void StopWatching();

  // The path given to Load(), or "" for FromJson().
  const std::string& path() const { return path_; }

 private:
  class Watcher;

  explicit Registry(std::string path);

  // Reloads if the files' fingerprint differs from the one seen by the last
  // reload; nullopt when nothing changed.
  std::optional<absl::Status> ReloadIfChanged();
  // Requires reload_mu_.
  absl::Status ReloadLocked(std::string fingerprint);
  // Whether a TLS file of the last reload attempt differs from what that
  // attempt read. Requires reload_mu_.
  bool TlsFilesChanged() const;

  const std::string path_;  // "" for an inline configuration.

  mutable std::mutex snapshot_mu_;
  std::shared_ptr<const Snapshot> snapshot_;  // Guarded by snapshot_mu_.

  std::mutex reload_mu_;
  // Fingerprint of the files as of the last reload attempt, successful or
  // not. Guarded by reload_mu_.
  std::string fingerprint_;
  // The TLS files the last reload attempt read (certificates, keys), by
  // path, with FileFingerprint() of what it read: a rotated certificate is a
  // change too. Guarded by reload_mu_.
  std::map<std::string, std::string> tls_files_;

  std::mutex watcher_mu_;
  std::unique_ptr<Watcher> watcher_;  // Guarded by watcher_mu_.
};

}  // namespace policy

#endif  // POLICY_REGISTRY_H_
