#include "integration/harness/partition.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "integration/harness/subprocess.h"
#include "util/errno.h"

namespace lock::harness {
namespace {

constexpr absl::Duration kIpTimeout = absl::Seconds(10);

// Runs one `ip` command; the error names the command and what it printed.
absl::Status Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  absl::StatusOr<internal::CommandResult> r = internal::RunCommand(argv, kIpTimeout);
  if (!r.ok()) {
    return absl::UnavailableError(absl::StrCat("`", absl::StrJoin(argv, " "),
                                               "`: ", r.status().message()));
  }
  if (r->exit_code != 0) {
    return absl::UnavailableError(absl::StrCat(
        "`", absl::StrJoin(argv, " "), "` failed: ",
        absl::StripTrailingAsciiWhitespace(r->err + r->out)));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EnterNetworkNamespace(const std::string& name) {
  const std::string path = "/run/netns/" + name;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "enter network namespace ", name, ": open ", path, ": ",
        ::util::ErrnoText(errno)));
  }
  const int rc = setns(fd, CLONE_NEWNET);
  const int error = errno;
  close(fd);
  if (rc != 0) {
    return absl::UnavailableError(absl::StrCat(
        "enter network namespace ", name, ": setns: ", ::util::ErrnoText(error)));
  }
  return absl::OkStatus();
}

Partition::Partition(std::string server_ns, std::string client_ns,
                     std::string server_if, std::string client_if)
    : server_ns_(std::move(server_ns)), client_ns_(std::move(client_ns)),
      server_if_(std::move(server_if)), client_if_(std::move(client_if)) {}

absl::StatusOr<std::unique_ptr<Partition>> Partition::Create() {
  // Interface names must fit IFNAMSIZ (15 characters): "rla" + pid + "-" + n.
  static std::atomic<int> counter{0};
  const std::string id = absl::StrCat(getpid(), "-", counter++);
  std::unique_ptr<Partition> p(
      new Partition("rlr" + id, "rlc" + id, "rla" + id, "rlb" + id));
  const std::string server_cidr = absl::StrCat(kServerAddress, "/30");
  const std::string client_cidr = absl::StrCat(kClientAddress, "/30");
  const std::vector<std::vector<std::string>> steps = {
      {"netns", "add", p->server_ns_},
      {"netns", "add", p->client_ns_},
      {"link", "add", p->server_if_, "type", "veth", "peer", "name", p->client_if_},
      {"link", "set", p->server_if_, "netns", p->server_ns_},
      {"link", "set", p->client_if_, "netns", p->client_ns_},
      {"-n", p->server_ns_, "addr", "add", server_cidr, "dev", p->server_if_},
      {"-n", p->client_ns_, "addr", "add", client_cidr, "dev", p->client_if_},
      {"-n", p->server_ns_, "link", "set", "lo", "up"},
      {"-n", p->client_ns_, "link", "set", "lo", "up"},
      {"-n", p->server_ns_, "link", "set", p->server_if_, "up"},
      {"-n", p->client_ns_, "link", "set", p->client_if_, "up"},
  };
  for (const auto& step : steps) {
    absl::Status s = Ip(step);
    if (!s.ok()) {
      return absl::UnavailableError(absl::StrCat(
          "network namespaces unavailable here (a Partition needs root and "
          "iproute2): ",
          s.message()));
    }
    // From the first namespace on, the destructor has something to delete.
    p->created_ = true;
  }
  return p;
}

Partition::~Partition() {
  if (cut_) Heal().IgnoreError();
  if (home_ns_fd_ >= 0) {
    if (setns(home_ns_fd_, CLONE_NEWNET) != 0) {
      std::cerr << "Partition: back to the original network namespace: "
                << ::util::ErrnoText(errno) << "\n";
    }
    close(home_ns_fd_);
  }
  if (!created_) return;
  // Deleting a namespace removes its veth end, and the peer with it.
  Ip({"netns", "del", client_ns_}).IgnoreError();
  Ip({"netns", "del", server_ns_}).IgnoreError();
}

RedisServerOptions Partition::ServerOptions(RedisServerOptions base) const {
  base.network_namespace = server_ns_;
  base.host = kServerAddress;
  return base;
}

absl::Status Partition::EnterClientSide() {
  if (home_ns_fd_ >= 0) {
    return absl::FailedPreconditionError("EnterClientSide() called twice");
  }
  const int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "open /proc/thread-self/ns/net: ", ::util::ErrnoText(errno)));
  }
  absl::Status s = EnterNetworkNamespace(client_ns_);
  if (!s.ok()) {
    close(fd);
    return s;
  }
  home_ns_fd_ = fd;
  return absl::OkStatus();
}

absl::Status Partition::SetLink(bool up) {
  // The client end only: the server side keeps its link state, as a server
  // whose peer vanished does.
  return Ip({"-n", client_ns_, "link", "set", client_if_, up ? "up" : "down"});
}

absl::Status Partition::Cut() {
  absl::Status s = SetLink(false);
  if (s.ok()) cut_ = true;
  return s;
}

absl::Status Partition::Heal() {
  absl::Status s = SetLink(true);
  if (s.ok()) cut_ = false;
  return s;
}

Partition::ScopedCut::ScopedCut(Partition* partition)
    : partition_(partition), status_(partition->Cut()) {}

Partition::ScopedCut::~ScopedCut() {
  if (partition_ == nullptr) return;
  absl::Status s = partition_->Heal();
  if (!s.ok()) std::cerr << "Partition: heal at scope exit: " << s << "\n";
}

}  // namespace lock::harness
