#include "integration/checker/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "util/errno.h"

namespace lock::checker::driver {
namespace {

// Runs a command (argv) and returns its exit status; its stderr in *err.
int RunCommand(const std::vector<std::string>& argv, std::string* err = nullptr) {
  std::string cmd;
  for (const std::string& a : argv) absl::StrAppend(&cmd, "'", a, "' ");
  absl::StrAppend(&cmd, "2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[512];
  std::string out;
  while (fgets(buf, sizeof(buf), p) != nullptr) out += buf;
  const int rc = pclose(p);
  if (err != nullptr) *err = out;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

void EnterNetns(const std::string& name) {
  const std::string path = "/run/netns/" + name;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    std::cerr << "driver: enter network namespace " << name << ": "
              << ::util::ErrnoText(errno) << "\n";
    std::exit(2);
  }
  close(fd);
}

NetnsPair::NetnsPair(std::string r, std::string c, std::string ri, std::string ci)
    : redis_ns(std::move(r)), client_ns(std::move(c)),
      redis_if(std::move(ri)), client_if(std::move(ci)) {}

absl::StatusOr<std::unique_ptr<NetnsPair>> NetnsPair::Create() {
  const std::string id = absl::StrCat(getpid());
  std::unique_ptr<NetnsPair> n(new NetnsPair("rlr" + id, "rlc" + id,
                                             "rla" + id, "rlb" + id));
  const std::vector<std::vector<std::string>> steps = {
      {"ip", "netns", "add", n->redis_ns},
      {"ip", "netns", "add", n->client_ns},
      {"ip", "link", "add", n->redis_if, "type", "veth", "peer", "name", n->client_if},
      {"ip", "link", "set", n->redis_if, "netns", n->redis_ns},
      {"ip", "link", "set", n->client_if, "netns", n->client_ns},
      {"ip", "-n", n->redis_ns, "addr", "add", "10.213.0.1/30", "dev", n->redis_if},
      {"ip", "-n", n->client_ns, "addr", "add", "10.213.0.2/30", "dev", n->client_if},
      {"ip", "-n", n->redis_ns, "link", "set", "lo", "up"},
      {"ip", "-n", n->client_ns, "link", "set", "lo", "up"},
      {"ip", "-n", n->redis_ns, "link", "set", n->redis_if, "up"},
      {"ip", "-n", n->client_ns, "link", "set", n->client_if, "up"},
  };
  for (const auto& step : steps) {
    std::string err;
    if (RunCommand(step, &err) != 0) {
      return absl::UnavailableError(absl::StrCat(
          "network namespaces unavailable here (`", absl::StrJoin(step, " "),
          "` failed: ", absl::StripTrailingAsciiWhitespace(err), ")"));
    }
    n->created_ = true;
  }
  return n;
}

NetnsPair::~NetnsPair() {
  if (!created_) return;
  RunCommand({"ip", "netns", "del", client_ns});
  RunCommand({"ip", "netns", "del", redis_ns});
}

absl::Status NetnsPair::Link(bool up) {
  std::string err;
  if (RunCommand({"ip", "-n", client_ns, "link", "set", client_if, up ? "up" : "down"},
          &err) != 0) {
    return absl::InternalError("ip link set: " + err);
  }
  return absl::OkStatus();
}

}  // namespace lock::checker::driver
