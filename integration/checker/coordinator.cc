#include "integration/checker/coordinator.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "integration/checker/workload.h"
#include "lock/internal/keys.h"

extern char** environ;

namespace lock::checker::driver {
namespace {

struct Worker {
  pid_t pid = -1;
  int status = 0;
  bool done = false;
};

pid_t Spawn(const std::vector<std::string>& args, int notify_fd) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  if (notify_fd >= 0) posix_spawn_file_actions_adddup2(&fa, notify_fd, 3);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, "/proc/self/exe", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc == 0 ? pid : -1;
}

// Waits up to `timeout_ms` for one line on `fd`.
std::string ReadLine(int fd, int timeout_ms) {
  std::string line;
  const int64_t end = SteadyNs() + int64_t{timeout_ms} * 1'000'000;
  while (SteadyNs() < end) {
    pollfd p{fd, POLLIN, 0};
    const int left = static_cast<int>((end - SteadyNs()) / 1'000'000);
    if (poll(&p, 1, std::max(1, left)) <= 0) continue;
    char c;
    if (read(fd, &c, 1) != 1) break;
    if (c == '\n') return line;
    line += c;
  }
  return "";
}

}  // namespace

int Coordinator::Run() {
  const int64_t t0 = SteadyNs();
  nlohmann::json row = {{"scenario", sc_.name}, {"fault", sc_.fault},
                        {"kind", sc_.kind}, {"mode", f_.mode}};
  if (!sc_.todo.empty()) {
    std::cout << "driver: " << sc_.name << ": " << sc_.todo << "\n";
    row["status"] = "todo";
    row["reason"] = sc_.todo;
    return Emit(row, 0);
  }
  std::unique_ptr<harness::Partition> partition;
  if (sc_.needs_netns) {
    auto p = harness::Partition::Create();
    if (!p.ok()) {
      std::cout << "driver: SKIPPED " << sc_.name << ": "
                << p.status().message() << "\n";
      row["status"] = "skipped";
      row["reason"] = std::string(p.status().message());
      return Emit(row, 0);
    }
    partition = *std::move(p);
    // Redis, this coordinator and every worker but the victim live on the
    // server side; the victim alone (worker 0, --netns) is cut off.
    if (absl::Status s = harness::EnterNetworkNamespace(partition->server_namespace());
        !s.ok()) {
      std::cerr << "driver: " << s.message() << "\n";
      return 2;
    }
  }
  nlohmann::json target;
  if (sc_.topology == "standalone") {
    harness::RedisServerOptions options;
    options.name = "redis-" + sc_.name;
    options.appendonly = sc_.appendonly;
    // Reached at the veth address from both sides: local on the server
    // side, across the link from the client side.
    if (partition) options.host = harness::Partition::kServerAddress;
    auto server = harness::RedisServer::Start(options);
    if (!server.ok()) {
      std::cerr << "driver: " << server.status() << "\n";
      return 2;
    }
    redis_ = *std::move(server);
    target = {{"addrs", {redis_->addr()}}};
  } else {
    auto fleet = sc_.topology == "sentinel"
                     ? harness::RedisFleet::Sentinel(/*replicas=*/1, /*sentinels=*/3)
                     : harness::RedisFleet::Cluster(/*masters=*/3,
                                                    /*replicas_per_master=*/0);
    if (!fleet.ok()) {
      std::cerr << "driver: " << fleet.status() << "\n";
      return 2;
    }
    fleet_ = *std::move(fleet);
    target = nlohmann::json::parse(fleet_->PolicyTargetJson());
    if (sc_.topology == "sentinel") {
      target["min_replicas_ack"] = 1;
      target["replica_ack_timeout"] = "500ms";
    }
  }
  run_ = absl::StrCat(sc_.name, "-", getpid());
  if (f_.out.empty()) {
    const char* base = std::getenv("TEST_TMPDIR");
    f_.out = absl::StrCat(base ? base : "/tmp", "/reliability-", run_);
  }
  std::filesystem::create_directories(f_.out);
  const std::string config = absl::StrCat(f_.out, "/policies.json");
  WriteFile(config, PolicyJson(target, run_, f_.ttl_ms, f_.script_timeout_ms, sc_.kind));

  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) return 2;
  const int victim_after_ms = f_.seconds * 1000 / 4;
  std::vector<Worker> workers(f_.processes);
  for (int p = 0; p < f_.processes; ++p) {
    std::vector<std::string> args = {
        "driver", absl::StrCat("--worker=", p),
        absl::StrCat("--config=", config),
        absl::StrCat("--run=", run_), absl::StrCat("--out=", f_.out),
        absl::StrCat("--seconds=", f_.seconds),
        absl::StrCat("--threads=", f_.threads), absl::StrCat("--keys=", f_.keys)};
    if (p == 0 && sc_.victim_extend_ms > 0) {
      args.push_back(absl::StrCat("--victim_extend_ms=", sc_.victim_extend_ms));
    }
    if (p == 0 && sc_.victim_hold_ms > 0) {
      args.push_back("--notify_fd=3");
      args.push_back(absl::StrCat("--victim_after_ms=", victim_after_ms));
      args.push_back(absl::StrCat("--victim_hold_ms=", sc_.victim_hold_ms));
    }
    if (p == 0 && partition) args.push_back("--netns=" + partition->client_namespace());
    workers[p].pid = Spawn(args, p == 0 && sc_.victim_hold_ms > 0 ? pipefd[1] : -1);
    if (workers[p].pid < 0) {
      std::cerr << "driver: cannot start worker " << p << "\n";
      return 2;
    }
  }
  close(pipefd[1]);

  // ---- the fault -----------------------------------------------------------
  if (sc_.victim_hold_ms > 0) {
    const std::string line = ReadLine(pipefd[0], victim_after_ms + 10'000);
    std::vector<std::string> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 4) {
      checks_.push_back({"fault injected", false,
                         "the victim never reported being inside a critical section"});
    } else {
      victim_key_ = parts[1];
      (void)absl::SimpleAtoi(parts[2], &victim_fence_);
      (void)absl::SimpleAtoi(parts[3], &victim_op_);
      Inject(workers[0].pid, partition.get());
    }
  }
  close(pipefd[0]);

  // ---- wait for the workers --------------------------------------------------
  const int64_t deadline = SteadyNs() + (int64_t{f_.seconds} + 60) * 1'000'000'000;
  int exited = 0;
  while (exited < f_.processes) {
    for (Worker& w : workers) {
      if (w.done) continue;
      if (waitpid(w.pid, &w.status, WNOHANG) == w.pid) {
        w.done = true;
        ++exited;
      }
    }
    if (SteadyNs() > deadline) {
      for (Worker& w : workers) {
        if (!w.done) kill(w.pid, SIGKILL);
      }
      checks_.push_back({"workers finish", false,
                         "a worker was still running 60s after the end"});
      deadline_hit_ = true;
      for (Worker& w : workers) {
        if (!w.done) waitpid(w.pid, &w.status, 0);
        w.done = true;
      }
      break;
    }
    SleepMs(20);
  }
  for (size_t p = 0; p < workers.size(); ++p) {
    const bool killed_by_us = p == 0 && sc_.Base() == "kill9";
    const int st = workers[p].status;
    if (!killed_by_us && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
      checks_.push_back({absl::StrCat("worker ", p, " exits cleanly"), false,
                         absl::StrCat("wait status ", st)});
    }
  }
  // Everything that exited normally released its locks; a killed holder's
  // lease runs out after the ttl.
  LeftLocked();

  // ---- check -------------------------------------------------------------
  std::map<std::string, FinalState> final_state;
  nlohmann::json final_json = nlohmann::json::object();
  for (int k = 0; k < f_.keys; ++k) {
    const std::string key = KeyName(k);
    const std::string resource = ResourceKey(run_, key);
    absl::StatusOr<std::string> v =
        Exec(resource, {"HMGET", resource, "value", "fence"});
    FinalState s;
    std::vector<std::string> parts =
        v.ok() ? absl::StrSplit(*v, '\n') : std::vector<std::string>{};
    if (parts.size() == 2 && absl::SimpleAtoi(parts[0], &s.value) &&
        absl::SimpleAtoi(parts[1], &s.fence)) {
      s.present = true;
      final_json[key] = {{"value", s.value}, {"fence", s.fence}};
    } else {
      final_json[key] = nullptr;
    }
    final_state[key] = s;
  }
  WriteFile(absl::StrCat(f_.out, "/final.json"), final_json.dump(2));
  std::vector<std::string> files;
  for (int p = 0; p < f_.processes; ++p) files.push_back(HistoryPath(f_.out, p));
  absl::StatusOr<History> history = ReadHistory(files);
  if (!history.ok()) {
    std::cerr << "driver: " << history.status() << "\n";
    return 2;
  }
  if ((sc_.Base() == "sigstop" || sc_.Base() == "partition") && fault_end_ns_ > 0) {
    history->stalled[0].push_back({fault_start_ns_, fault_end_ns_});
  }
  if (absl::StartsWith(sc_.Base(), "restart_") && fault_end_ns_ > 0) {
    // Redis was down: no process could keep or take a place in a queue.
    for (int p = 0; p < f_.processes; ++p) {
      history->stalled[p].push_back({fault_start_ns_, fault_end_ns_});
    }
  }
  if (held_at_kill_.has_value()) {
    // A section of the killed process that did not hold its lock right
    // after the kill had released it before (killed between the release
    // and the line saying so). It held from its entry to some moment before
    // the kill that the history does not have: it is not counted as a
    // holder until its lease end, which would make it one too long.
    for (Op& op : history->ops) {
      if (op.died && op.entered && !held_at_kill_->count(op.owner)) op.lease_end_redis_us = -1;
    }
  }
  Report report = Check(*history, final_state);
  ScenarioChecks(*history, report);

  int64_t unexpected = 0;
  nlohmann::json expected_found = nlohmann::json::array();
  for (const Violation& v : report.violations) {
    if (sc_.expected.count(v.kind)) continue;
    ++unexpected;
  }
  for (ViolationKind k : report.Kinds()) {
    if (sc_.expected.count(k)) expected_found.push_back(ViolationKindName(k));
  }
  bool checks_ok = true;
  nlohmann::json checks = nlohmann::json::array();
  for (const ScenarioCheck& c : checks_) {
    checks_ok &= c.ok;
    checks.push_back({{"name", c.name}, {"ok", c.ok}, {"detail", c.detail}});
  }
  const bool pass = unexpected == 0 && checks_ok;
  row["status"] = pass ? "pass" : "fail";
  row["processes"] = f_.processes;
  row["threads"] = f_.threads;
  row["keys"] = f_.keys;
  row["seconds"] = f_.seconds;
  row["ttl_ms"] = f_.ttl_ms;
  row["report"] = report.ToJson();
  row["unexpected_violations"] = unexpected;
  row["expected_violation_kinds"] = expected_found;
  row["checks"] = checks;
  row["measures"] = measures_;
  row["wall_seconds"] = static_cast<double>(SteadyNs() - t0) / 1e9;
  row["history_dir"] = f_.out;

  std::cout << "== scenario " << sc_.name << " (" << sc_.fault << ")\n"
            << report.Summary();
  for (const ScenarioCheck& c : checks_) {
    std::cout << (c.ok ? "check ok:   " : "CHECK FAIL: ") << c.name << ": "
              << c.detail << "\n";
  }
  for (const auto& [k, v] : measures_.items()) {
    std::cout << "measure: " << k << " = " << v.dump() << "\n";
  }
  if (!expected_found.empty()) {
    std::cout << "expected (documented) violation kinds: "
              << expected_found.dump() << "\n";
  }
  std::cout << (pass ? "PASS " : "FAIL ") << sc_.name << "\n";
  const int rc = Emit(row, pass ? 0 : 1);
  if (pass && !f_.keep) {
    std::error_code ignored;
    std::filesystem::remove_all(f_.out, ignored);
  }
  return rc;
}

void Coordinator::WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

int Coordinator::Emit(const nlohmann::json& row, int rc) {
  if (!f_.summary.empty()) {
    std::ofstream out(f_.summary, std::ios::app);
    out << row.dump() << "\n";
  }
  return rc;
}

std::vector<std::string> Coordinator::LockKeysNow() {
  std::vector<std::string> out;
  for (harness::RedisServer* server : Masters()) {
    for (const std::string& pattern : HoldKeyPatterns(run_, sc_.kind)) {
      absl::StatusOr<std::string> keys = server->Exec({"KEYS", pattern});
      if (!keys.ok() || keys->empty()) continue;
      for (absl::string_view k : absl::StrSplit(*keys, '\n')) out.emplace_back(k);
    }
  }
  return out;
}

harness::RedisServer* Coordinator::ServerFor(const std::string& key) {
  if (fleet_ == nullptr) return redis_.get();
  absl::StatusOr<int> i = sc_.topology == "sentinel"
                              ? fleet_->MasterIndex()
                              : fleet_->NodeIndexForSlot(harness::RedisFleet::KeySlot(key));
  return i.ok() ? &fleet_->node(*i) : nullptr;
}

absl::StatusOr<std::string> Coordinator::Exec(const std::string& key,
                                              const std::vector<std::string>& argv) {
  harness::RedisServer* server = ServerFor(key);
  if (server == nullptr) return absl::UnavailableError("no server for " + key);
  return server->Exec(argv);
}

std::vector<harness::RedisServer*> Coordinator::Masters() {
  if (fleet_ == nullptr) return {redis_.get()};
  std::vector<harness::RedisServer*> out;
  if (sc_.topology == "sentinel") {
    if (harness::RedisServer* m = ServerFor(""); m != nullptr) out.push_back(m);
    return out;
  }
  for (int shard = 0; shard < fleet_->shard_count(); ++shard) {
    absl::StatusOr<int> i = fleet_->MasterOf(shard);
    if (i.ok()) out.push_back(&fleet_->node(*i));
  }
  return out;
}

std::map<std::string, int64_t> Coordinator::FenceCounters() {
  std::map<std::string, int64_t> out;
  for (int k = 0; k < f_.keys; ++k) {
    const internal::LockKeys keys(KeyPrefix(run_), KeyName(k));
    absl::StatusOr<std::string> v = Exec(std::string(keys.fence()), {"GET", std::string(keys.fence())});
    int64_t n = 0;
    if (v.ok() && absl::SimpleAtoi(*v, &n)) out[KeyName(k)] = n;
  }
  return out;
}

void Coordinator::LeftLocked() {
  std::vector<std::string> left = LockKeysNow();
  if ((sc_.Base() == "kill9" || sc_.Base() == "sentinel_failover") && !left.empty()) {
    // The killed holder's lease (and any acquire of its other threads whose
    // reply was lost) runs out after the ttl. After a failover, a release
    // that reached the demoted master was lost with it: the lease on the
    // new master runs out the same way.
    SleepMs(f_.ttl_ms + 500);
    left = LockKeysNow();
  }
  checks_.push_back({"nothing left locked", left.empty(),
                     left.empty() ? "no owner hash left after the workers exited"
                                  : absl::StrCat("still locked: ",
                                                 absl::StrJoin(left, ", "))});
}

}  // namespace lock::checker::driver
