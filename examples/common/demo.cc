#include "examples/common/demo.h"

#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lock/stats.h"
#include "nlohmann/json.hpp"
#include "policy/registry.h"
#include "util/flags.h"

extern char** environ;

ABSL_FLAG(std::string, config, "",
          "policy file; default $LOCK_CONFIG, else the example's own");
ABSL_FLAG(std::string, redis, "",
          "host:port of the Redis to use; default the policy file's target "
          "(if given), else an embedded redis-server");
ABSL_FLAG(std::string, worker, "",
          "internal: run as this worker (the coordinator sets it)");
ABSL_FLAG(std::string, run, "",
          "internal: the run's id (the coordinator sets it)");

namespace demo {
namespace {

[[noreturn]] void Die(const std::string& program, const std::string& what) {
  std::cerr << program << ": " << what << "\n";
  std::exit(1);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The example's shipped file: relative to the working directory (bazel
// run/test start in the runfiles tree), in the workspace (bazel run sets
// BUILD_WORKSPACE_DIRECTORY), or in the binary's runfiles.
std::string FindShipped(const std::string& program, const std::string& rel) {
  if (std::ifstream(rel).good()) return rel;
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    std::string p = absl::StrCat(ws, "/", rel);
    if (std::ifstream(p).good()) return p;
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string p = absl::StrCat(self, ".runfiles/redis_lock/", rel);
    if (std::ifstream(p).good()) return p;
  }
  std::cerr << program << ": cannot find " << rel << "; pass --config=PATH\n";
  std::exit(2);
}

}  // namespace

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// ---- Flags ------------------------------------------------------------------

int WorkerNumber() {
  int n = 0;
  const std::string worker = absl::GetFlag(FLAGS_worker);
  if (!absl::SimpleAtoi(worker, &n) || n < 0) {
    util::UsageError(absl::StrCat("--worker needs a whole number >= 0, got \"",
                                  worker, "\""));
  }
  return n;
}

// ---- Environment
// --------------------------------------------------------------

policy::RedisTarget LoadTarget(const std::string& program,
                               const std::string& config) {
  auto registry = policy::Registry::Load(config);
  if (!registry.ok()) Die(program, std::string(registry.status().message()));
  auto target = (*registry)->FindTarget("default");
  if (target == nullptr)
    Die(program, config + " has no \"default\" redis target");
  return *target;
}

std::unique_ptr<Environment> Environment::Prepare(
    const std::string& program, const std::string& shipped_config,
    const std::string& config_flag, const std::string& redis_flag) {
  std::unique_ptr<Environment> env(new Environment);
  const char* lock_config = std::getenv("LOCK_CONFIG");
  const bool user_config =
      !config_flag.empty() || (lock_config != nullptr && *lock_config != '\0');
  // `bazel run` starts the program in its runfiles tree: a relative path
  // the user typed is relative to where `bazel run` was called.
  const char* wd = std::getenv("BUILD_WORKING_DIRECTORY");
  auto user_path = [wd](std::string p) {
    if (p.empty() || p[0] == '/' || wd == nullptr || *wd == '\0') return p;
    return absl::StrCat(wd, "/", p);
  };
  const std::string path = !config_flag.empty() ? user_path(config_flag)
                           : user_config        ? user_path(lock_config)
                                         : FindShipped(program, shipped_config);
  const std::string text = ReadFile(path);
  // Every problem of the file at once, as the library reports them.
  if (auto parsed = policy::Registry::FromJson(text, path); !parsed.ok()) {
    Die(program,
        absl::StrCat("invalid policy file:\n", parsed.status().message()));
  }
  nlohmann::json config = nlohmann::json::parse(text, nullptr, false);
  if (!config.contains("redis") || !config["redis"].contains("default")) {
    Die(program, path + " has no \"default\" redis target");
  }
  if (!redis_flag.empty()) {
    config["redis"]["default"]["addrs"] = {redis_flag};
  } else if (!user_config) {
    auto server =
        lock::harness::RedisServer::Start({.name = program + "-redis"});
    if (!server.ok()) {
      Die(program,
          absl::StrCat("cannot start an embedded redis-server: ",
                       server.status().message(),
                       "\n(install redis-server, or pass --redis=host:port)"));
    }
    env->embedded_ = *std::move(server);
    config["redis"]["default"]["addrs"] = {env->embedded_->addr()};
  }
  char tmpl[] = "/tmp/lock-example.XXXXXX.json";
  const int fd = mkstemps(tmpl, 5);
  if (fd < 0) Die(program, "cannot create a temporary file");
  close(fd);
  env->worker_config_ = tmpl;
  std::ofstream(env->worker_config_) << config.dump(2);
  env->target_ =
      std::make_shared<policy::RedisTarget>(LoadTarget(program, tmpl));
  return env;
}

Environment::~Environment() {
  if (!worker_config_.empty()) std::remove(worker_config_.c_str());
}

std::string Environment::Describe() const {
  return absl::StrCat(addr(), embedded() ? " (embedded redis-server)" : "");
}

// ---- processes
// ----------------------------------------------------------------

pid_t SpawnSelf(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(),
                  environ) != 0) {
    std::perror("posix_spawn");
    std::exit(1);
  }
  return pid;
}

int WaitAll(std::vector<pid_t>& pids) {
  int failed = 0;
  for (pid_t& pid : pids) {
    if (pid <= 0) continue;
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failed;
    pid = -1;
  }
  return failed;
}

std::string NewRunId() {
  std::random_device rd;
  return absl::StrFormat("%08x", static_cast<uint32_t>(rd()));
}

int64_t Percentile(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

// ---- statistics
// ----------------------------------------------------------------

StatsPublisher::StatsPublisher(const std::string& program,
                               const policy::RedisTarget& target,
                               std::string key, std::string field,
                               absl::Duration interval)
    : key_(std::move(key)),
      field_(std::move(field)),
      data_(Data::Connect(program, target)) {
  thread_ = std::thread([this, program, target, interval] {
    // Its own connection: Data is not thread-safe.
    std::unique_ptr<Data> data = Data::Connect(program, target);
    const auto step = std::chrono::milliseconds(10);
    Clock::time_point next = Clock::now();
    while (!stop_.load()) {
      if (Clock::now() >= next) {
        PublishOnce(*data);
        next = Clock::now() + absl::ToChronoMilliseconds(interval);
      }
      std::this_thread::sleep_for(step);
    }
  });
}

StatsPublisher::~StatsPublisher() { Stop(); }

void StatsPublisher::Stop() {
  if (stop_.exchange(true)) return;
  thread_.join();
  PublishOnce(*data_);  // the final figures
}

void StatsPublisher::PublishOnce(Data& data) {
  data.Cmd({"HSET", key_, field_, lock::StatsJson()});
}

lockctl::StatsDump CollectStats(Data& data, const std::string& key) {
  lockctl::StatsDump all;
  ReplyPtr r = data.Cmd({"HGETALL", key});
  for (size_t i = 1; r->type == REDIS_REPLY_ARRAY && i < r->elements; i += 2) {
    absl::StatusOr<lockctl::StatsDump> d =
        lockctl::ParseStatsDump(ReplyText(*r->element[i]));
    if (d.ok()) lockctl::AddDump(all, *d);
  }
  return all;
}

void Row(absl::string_view name, const std::string& value, bool good) {
  std::cout << absl::StrFormat("  %-40s %18s  %s\n", name, value,
                               good ? "" : "FAIL");
}

void PrintLockStats(const lockctl::StatsDump& dump, const std::string& title) {
  std::cout << "\n" << title << "\n";
  if (dump.per_policy.empty()) {
    std::cout << "  (none published)\n";
    return;
  }
  for (const auto& [name, p] : dump.per_policy) {
    std::cout << " policy " << name << "\n";
    Row("acquired", absl::StrCat(p.acquired));
    Row("busy (gave up waiting)", absl::StrCat(p.busy));
    if (p.skipped > 0) Row("skipped (on_busy=skip)", absl::StrCat(p.skipped));
    if (p.errors > 0) Row("errors", absl::StrCat(p.errors));
    Row("waited (woken by notify + by timer)",
        absl::StrCat(p.waits_woken_by_notify + p.waits_woken_by_timer));
    Row("  woken by notify", absl::StrCat(p.waits_woken_by_notify));
    Row("retries (attempts after the first)",
        absl::StrCat(lockctl::DerivedRetries(p)));
    Row("renewals", absl::StrCat(p.renewals));
    Row("lost while held", absl::StrCat(p.lost));
    const lock::HistogramSnapshot& w = p.acquire_wait;
    Row("acquire wait p50 / p90 / p99",
        w.count == 0
            ? "-"
            : absl::StrCat(
                  lockctl::FormatSeconds(lockctl::EstimateQuantile(w, 0.5)),
                  " / ",
                  lockctl::FormatSeconds(lockctl::EstimateQuantile(w, 0.9)),
                  " / ",
                  lockctl::FormatSeconds(lockctl::EstimateQuantile(w, 0.99))));
  }
}

}  // namespace demo
