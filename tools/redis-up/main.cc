// redis-up: starts a Redis topology on this machine for development, prints
// the policy-config "redis" target that reaches it, and tears everything
// down on Ctrl-C (SIGINT) or SIGTERM.
//
//   bazel run //tools/redis-up -- sentinel --n 2
//
// Modes: standalone | sentinel (--n replicas, default 1, 3 sentinels) |
// cluster (--n masters, default 3, one replica each; --replicas R) |
// redlock (--n independent masters, default 3). The JSON goes to stdout (one
// object, ready to paste under "redis": {"default": ...}); node details go
// to stderr. LOCK_TEST_BACKEND=container runs the nodes as containers.
//
// --tls: every node serves clients over TLS only (replication, Sentinel and
// the cluster bus too), with throwaway certificates; the printed target then
// carries "tls": {"ca_file", "cert_file", "key_file"} and TLS ports. Each
// node also keeps a plaintext port on 127.0.0.1 for the harness (listed on
// stderr as "admin").
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "integration/harness/redis_fleet.h"
#include "util/flags.h"

ABSL_FLAG(int, n, -1,
          "replicas (sentinel), masters (cluster, redlock); -1: the mode's "
          "default");
ABSL_FLAG(int, replicas, 1, "replicas of each cluster master");
ABSL_FLAG(bool, tls, false,
          "TLS-only nodes with test certificates; the target gets a \"tls\" "
          "block (CA, client cert and key)");

namespace {

using ::lock::harness::RedisFleet;

constexpr char kUsage[] =
    "starts a Redis topology for development, prints its policy-config "
    "target as JSON on stdout, runs until Ctrl-C or SIGTERM, then stops "
    "every node.\n"
    "  redis-up standalone|sentinel|cluster|redlock [--n N] [--replicas R] "
    "[--tls]\n"
    "  standalone        one server\n"
    "  sentinel  --n N   a master, N replicas (default 1), 3 sentinels\n"
    "  cluster   --n N   N masters (default 3, >= 3), --replicas R each "
    "(default 1)\n"
    "  redlock   --n N   N independent masters (default 3)";

}  // namespace

int main(int argc, char** argv) {
  const std::vector<std::string> modes =
      util::ParseFlags(argc, argv, kUsage, 1);
  if (modes.empty())
    util::UsageError("which topology? standalone|sentinel|cluster|redlock");
  const std::string& mode = modes[0];
  const int n = util::FlagAtLeast(FLAGS_n, -1);
  const int replicas = util::FlagAtLeast(FLAGS_replicas, 0);
  lock::harness::RedisServerOptions base;
  base.tls = absl::GetFlag(FLAGS_tls);

  // Blocked before any thread exists, so that every thread inherits the
  // mask and sigwait() below is the only place these signals land. The
  // servers get an empty mask (and their own process group) from the
  // harness, so Ctrl-C reaches only this process, which then stops them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<RedisFleet>> fleet;
  if (mode == "standalone") {
    fleet = RedisFleet::Standalone(base);
  } else if (mode == "sentinel") {
    fleet = RedisFleet::Sentinel(n < 0 ? 1 : n, 3, "mymaster", base);
  } else if (mode == "cluster") {
    fleet = RedisFleet::Cluster(n < 0 ? 3 : n, replicas, base);
  } else if (mode == "redlock") {
    fleet = RedisFleet::Masters(n < 0 ? 3 : n, base);
  } else {
    util::UsageError("unknown mode \"" + mode + "\"");
  }
  if (!fleet.ok()) {
    std::cerr << "redis-up: " << fleet.status() << "\n";
    return 1;
  }
  std::cerr << "redis-up: " << mode << " up in "
            << absl::FormatDuration(absl::Now() - start) << "\n";
  auto describe = [](lock::harness::RedisServer& node) {
    std::cerr << "  " << node.name() << "  " << node.addr();
    if (node.plain_addr() != node.addr()) {
      std::cerr << "  (admin " << node.plain_addr() << ")";
    }
    std::cerr << "  (" << node.backend_description() << ", pid "
              << node.pid() << ")\n";
  };
  for (int i = 0; i < (*fleet)->size(); ++i) describe((*fleet)->node(i));
  for (int i = 0; i < (*fleet)->sentinel_count(); ++i) {
    describe((*fleet)->sentinel(i));
  }
  if (const lock::harness::TlsFiles* tls = (*fleet)->tls_files()) {
    std::cerr << "  certificates in " << tls->dir << " (try: redis-cli --tls "
              << "--cacert " << tls->ca_cert << " --cert " << tls->client_cert
              << " --key " << tls->client_key << " -p <port>)\n";
  }
  std::cout << (*fleet)->PolicyTargetJson() << std::endl;
  std::cerr << "redis-up: running; Ctrl-C stops every node\n";

  int received = 0;
  sigwait(&signals, &received);
  std::cerr << "redis-up: signal " << received << ", stopping\n";
  fleet->reset();
  std::cerr << "redis-up: stopped\n";
  return 0;
}
