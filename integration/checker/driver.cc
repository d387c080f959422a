// driver: runs a lock workload under one injected fault and checks its
// history (checker.h). The scenarios behind RELIABILITY.md.
//
//   driver --scenario=sigstop [--short|--long] [--out=DIR] [--summary=FILE]
//   driver --list                       # scenario names, one per line
//
// The coordinator starts a real redis-server (the harness), then P worker
// processes (this binary again, with --worker) of T threads each. Every
// thread loops over K keys calling lock::With; inside, it reads the Redis
// TIME and the lock's owner, reads a per-key counter, sleeps a little and
// writes counter+1 with lock::FencedSet under its fencing token, then reads
// TIME again. Each step is logged (history.h). Thread 0 of process 0 is the
// "victim": once, after a quarter of the run, it tells the coordinator (over
// a pipe) that it is inside a critical section and stays there a while, and
// the coordinator injects the scenario's fault at that moment. At the end
// the coordinator reads each counter's final state, runs the checker, checks
// what the scenario specifically promises (the paused holder's late write
// was refused, the fence counter survived the restart...), and prints one
// JSON line per scenario to --summary (tools/reliability renders those).
//
// sentinel_failover and cluster_migration run on a RedisFleet (integration/
// harness/redis_fleet.h) instead of one server; the workers route their
// data reads with the library's Topology (see DataConnection).
//
// Exit codes: 0 pass (or skipped, with the reason printed), 1 a violation
// or a failed scenario check, 2 usage or setup error.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "integration/checker/checker.h"
#include "integration/checker/history.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_server.h"
#include "lock/internal/keys.h"
#include "lock/lock.h"
#include "lock/redis/connection.h"
#include "lock/redis/topology.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace lock::checker {
namespace {

using redis::Connection;
using redis::ReplyPtr;

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void SleepMs(int64_t ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

// ---- flags --------------------------------------------------------------------

struct Flags {
  std::string scenario;
  std::string mode = "short";  // short | long
  int processes = 0, threads = 0, keys = 0;  // 0: the mode's default
  int seconds = 0;
  int ttl_ms = 1000;
  int script_timeout_ms = 200;
  std::string out;
  std::string summary;
  bool list = false;
  bool keep = false;  // keep the output directory
  // Worker side.
  int worker = -1;
  std::string config;
  std::string run;
  int notify_fd = -1;
  int victim_after_ms = -1;
  int victim_hold_ms = 0;
  // The victim sets its lease to this (Held::Extend) before holding on.
  int victim_extend_ms = 0;
  std::string netns;
};

[[noreturn]] void Usage(const std::string& why) {
  std::cerr << "driver: " << why << "\n"
            << "usage: driver --scenario=NAME [--short|--long] [--out=DIR]\n"
               "              [--summary=FILE] [--processes=P --threads=T "
               "--keys=K --seconds=S]\n"
               "              [--ttl_ms=N --script_timeout_ms=N] [--keep]\n"
               "       driver --list\n";
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    auto int_flag = [&](absl::string_view name, int* out) {
      if (!absl::ConsumePrefix(&a, name)) return false;
      if (!absl::SimpleAtoi(a, out)) Usage(absl::StrCat("bad ", name, a));
      return true;
    };
    auto str_flag = [&](absl::string_view name, std::string* out) {
      if (!absl::ConsumePrefix(&a, name)) return false;
      *out = std::string(a);
      return true;
    };
    if (a == "--short" || a == "--long") {
      f.mode = std::string(a.substr(2));
    } else if (a == "--list") {
      f.list = true;
    } else if (a == "--keep") {
      f.keep = true;
    } else if (str_flag("--scenario=", &f.scenario) ||
               int_flag("--processes=", &f.processes) ||
               int_flag("--threads=", &f.threads) ||
               int_flag("--keys=", &f.keys) ||
               int_flag("--seconds=", &f.seconds) ||
               int_flag("--ttl_ms=", &f.ttl_ms) ||
               int_flag("--script_timeout_ms=", &f.script_timeout_ms) ||
               str_flag("--out=", &f.out) || str_flag("--summary=", &f.summary) ||
               int_flag("--worker=", &f.worker) ||
               str_flag("--config=", &f.config) || str_flag("--run=", &f.run) ||
               int_flag("--notify_fd=", &f.notify_fd) ||
               int_flag("--victim_after_ms=", &f.victim_after_ms) ||
               int_flag("--victim_hold_ms=", &f.victim_hold_ms) ||
               int_flag("--victim_extend_ms=", &f.victim_extend_ms) ||
               str_flag("--netns=", &f.netns)) {
      continue;
    } else {
      Usage(absl::StrCat("unknown argument \"", a, "\""));
    }
  }
  return f;
}

// ---- names shared by coordinator and workers ----------------------------------

constexpr char kPolicy[] = "reliability";

std::string KeyName(int i) { return absl::StrCat("k", i); }
std::string KeyPrefix(const std::string& run) { return absl::StrCat("rel:", run, ":"); }
std::string ResourceKey(const std::string& run, const std::string& key) {
  return absl::StrCat("res:", run, ":", key);
}
std::string HistoryPath(const std::string& dir, int process) {
  return absl::StrCat(dir, "/history-", process, ".jsonl");
}

// `target`: the policy-config redis target, {"addrs": [...]} for one
// server or a fleet's PolicyTargetJson() (sentinel, cluster).
std::string PolicyJson(nlohmann::json target, const std::string& run,
                       int ttl_ms, int script_timeout_ms) {
  target["connect_timeout"] = "300ms";
  target["pool_size"] = 8;
  nlohmann::json j = {
      {"redis", {{"default", target}}},
      {"policies",
       {{kPolicy,
         {{"key_prefix", KeyPrefix(run)},
          {"ttl", absl::StrCat(ttl_ms, "ms")},
          {"script_timeout", absl::StrCat(script_timeout_ms, "ms")},
          {"on_busy", "wait"},
          {"wait", {{"timeout", absl::StrCat(3 * ttl_ms, "ms")}, {"notify", true}}},
          {"retry", {{"initial_delay", "5ms"}, {"max_delay", "100ms"},
                     {"multiplier", 2.0}, {"jitter", 0.5}}},
          {"renewal", {{"enabled", true}, {"threshold", 0.5},
                       {"on_failure", "signal"}}},
          {"fencing", true}}}}}};
  return j.dump(2);
}

// ---- worker -------------------------------------------------------------------

// The data connection of one worker thread, to the server that holds a key
// in the policy's redis target: the one server (standalone), the master the
// sentinels name (sentinel: rediscovered after a transport error or
// READONLY), or the slot's master (cluster: MOVED refreshes the slot map,
// ASK is followed once after ASKING, TRYAGAIN retried). Reconnects after any
// failure. The routing is the library's own Topology, used only to find
// addresses; the commands go over this thread's own connections.
class DataConnection {
 public:
  DataConnection(const nlohmann::json& target, absl::Duration timeout)
      : timeout_(timeout) {
    redis::PoolOptions data;
    data.connection.connect_timeout = timeout;
    data.max_size = 1;
    const std::string mode = target.value("mode", "standalone");
    if (mode == "sentinel") {
      redis::SentinelOptions o;
      o.sentinels = target["sentinels"].get<std::vector<std::string>>();
      o.master_name = target["master_name"].get<std::string>();
      o.data = data;
      topology_ = std::make_unique<redis::SentinelTopology>(std::move(o));
    } else if (mode == "cluster") {
      redis::ClusterOptions o;
      o.seeds = target["addrs"].get<std::vector<std::string>>();
      o.data = data;
      topology_ = std::make_unique<redis::ClusterTopology>(std::move(o));
    } else {
      fixed_addr_ = target["addrs"][0].get<std::string>();
    }
  }

  // argv[1], if any, is the key that routes the command.
  absl::StatusOr<ReplyPtr> Cmd(std::initializer_list<absl::string_view> argv) {
    const absl::string_view key = argv.size() > 1 ? *(argv.begin() + 1) : "";
    std::string ask;
    absl::Status last;
    for (int hop = 0; hop < 6; ++hop) {
      std::string addr = ask;
      if (addr.empty()) {
        if (topology_ == nullptr) {
          addr = fixed_addr_;
        } else {
          auto pool = topology_->PoolFor(key, timeout_);
          if (!pool.ok()) return pool.status();
          addr = (*pool)->addr();
        }
      }
      absl::StatusOr<Connection*> conn = Conn(addr);
      if (!conn.ok()) {
        if (topology_ != nullptr) topology_->Invalidate(key, nullptr);
        return conn.status();
      }
      if (!ask.empty()) {
        absl::StatusOr<ReplyPtr> a = (*conn)->Command({"ASKING"}, timeout_);
        if (!a.ok()) return a.status();
      }
      ask.clear();
      absl::StatusOr<ReplyPtr> r = (*conn)->RawCommand(
          absl::MakeConstSpan(argv.begin(), argv.size()), timeout_);
      if (!r.ok()) {
        if (topology_ != nullptr) topology_->Invalidate(key, nullptr);
        return r.status();
      }
      if ((*r)->type != REDIS_REPLY_ERROR) return r;
      const absl::string_view text = redis::ReplyText(**r);
      last = redis::ServerError(text, addr, *argv.begin());
      if (topology_ == nullptr) return last;
      if (absl::StartsWith(text, "TRYAGAIN")) {
        SleepMs(10);
        continue;
      }
      if (absl::StartsWith(text, "MOVED ") || absl::StartsWith(text, "ASK ") ||
          absl::StartsWith(text, "READONLY")) {
        redis::Topology::Retry next = topology_->Invalidate(key, r->get());
        if (next.retry) {
          ask = next.ask;
          continue;
        }
      }
      return last;
    }
    return absl::UnavailableError(
        absl::StrCat("gave up after 6 redirects: ", last.message()));
  }

  // Redis TIME in microseconds, -1 when the server cannot be asked.
  int64_t TimeUs() {
    absl::StatusOr<ReplyPtr> r = Cmd({"TIME"});
    if (!r.ok() || (*r)->type != REDIS_REPLY_ARRAY || (*r)->elements != 2) return -1;
    int64_t s = 0, us = 0;
    if (!absl::SimpleAtoi(redis::ReplyText(*(*r)->element[0]), &s) ||
        !absl::SimpleAtoi(redis::ReplyText(*(*r)->element[1]), &us)) {
      return -1;
    }
    return s * 1'000'000 + us;
  }

 private:
  absl::StatusOr<Connection*> Conn(const std::string& addr) {
    std::unique_ptr<Connection>& c = conns_[addr];
    if (c == nullptr || c->broken()) {
      c.reset();
      auto opened = Connection::Open({.addr = addr, .connect_timeout = timeout_});
      if (!opened.ok()) return opened.status();
      c = *std::move(opened);
    }
    return c.get();
  }

  const absl::Duration timeout_;
  std::string fixed_addr_;
  std::unique_ptr<redis::Topology> topology_;
  std::map<std::string, std::unique_ptr<Connection>> conns_;
};

void EnterNetns(const std::string& name) {
  const std::string path = "/run/netns/" + name;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    std::cerr << "driver: enter network namespace " << name << ": "
              << std::strerror(errno) << "\n";
    std::exit(2);
  }
  close(fd);
}

WriteOutcome Classify(const absl::Status& s) {
  if (s.ok()) return WriteOutcome::kAccepted;
  if (lock::IsStaleFence(s)) return WriteOutcome::kRejected;
  if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) {
    return WriteOutcome::kUnknown;  // sent, maybe applied, no reply
  }
  return WriteOutcome::kFailed;  // an error reply: refused by the server
}

int RunWorker(const Flags& f) {
  if (!f.netns.empty()) EnterNetns(f.netns);  // before any thread exists
  std::ifstream in(f.config);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json config = nlohmann::json::parse(text.str(), nullptr, false);
  if (!in || config.is_discarded()) {
    std::cerr << "driver worker " << f.worker << ": cannot read " << f.config << "\n";
    return 2;
  }
  if (absl::Status s = lock::InitFromJson(text.str()); !s.ok()) {
    std::cerr << "driver worker " << f.worker << ": " << s << "\n";
    return 2;
  }
  const nlohmann::json target = config["redis"]["default"];
  auto writer = HistoryWriter::Open(HistoryPath(f.out, f.worker));
  if (!writer.ok()) {
    std::cerr << "driver worker " << f.worker << ": " << writer.status() << "\n";
    return 2;
  }
  HistoryWriter& log = **writer;
  const int64_t start = SteadyNs();
  const int64_t end = start + int64_t{f.seconds} * 1'000'000'000;
  std::atomic<int64_t> total{0};
  std::atomic<int> log_errors{0};
  auto append = [&](const nlohmann::json& e) {
    if (!log.Append(e).ok()) log_errors.fetch_add(1);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < f.threads; ++t) {
    threads.emplace_back([&, t] {
      DataConnection data(target, absl::Milliseconds(300));
      std::mt19937_64 rng(std::random_device{}());
      const bool victim = f.worker == 0 && t == 0 && f.victim_after_ms >= 0;
      bool victim_done = false;
      int64_t next_id = int64_t{t} << 32;  // unique within the process
      int64_t ops = 0;
      while (SteadyNs() < end) {
        Op op;
        op.process = f.worker;
        op.thread = t;
        op.id = next_id++;
        op.key = KeyName(static_cast<int>(rng() % f.keys));
        const std::string resource = ResourceKey(f.run, op.key);
        const internal::LockKeys keys(KeyPrefix(f.run), op.key);
        op.call_steady_ns = SteadyNs();
        absl::Status s = lock::With(kPolicy, op.key, [&](lock::Held& held) {
          op.entered = true;
          op.fence = held.fencing_token();
          op.owner = held.owner_token();
          op.enter_steady_ns = SteadyNs();
          op.enter_redis_us = data.TimeUs();
          if (auto r = data.Cmd({"HGET", keys.owner(), "owner"}); r.ok()) {
            op.owner_checked = true;
            op.owner_verified = (*r)->type == REDIS_REPLY_STRING &&
                                redis::ReplyText(**r) == op.owner;
          }
          append(EnterEvent(op));
          auto finish = [&] {
            op.exit_redis_us = data.TimeUs();
            op.exit_steady_ns = SteadyNs();
            op.lost = held.lost() || held.stop_token().stop_requested();
            return absl::OkStatus();
          };
          absl::StatusOr<ReplyPtr> read = data.Cmd({"HGET", resource, "value"});
          int64_t value = 0;
          if (!read.ok() || ((*read)->type == REDIS_REPLY_STRING &&
                             !absl::SimpleAtoi(redis::ReplyText(**read), &value))) {
            op.message = read.ok() ? "unreadable counter" : std::string(read.status().message());
            return finish();  // no write without knowing the value
          }
          if (victim && !victim_done &&
              SteadyNs() >= start + int64_t{f.victim_after_ms} * 1'000'000) {
            victim_done = true;
            const std::string line =
                absl::StrCat("inside ", op.key, " ", op.fence, " ", op.id, "\n");
            if (f.victim_extend_ms > 0) {
              // A lease shorter than the policy's, held for several of it:
              // renewal must follow the lease the holder set.
              absl::Status e = held.Extend(absl::Milliseconds(f.victim_extend_ms));
              if (!e.ok()) op.message = std::string(e.message());
            }
            (void)!write(f.notify_fd, line.data(), line.size());
            SleepMs(f.victim_hold_ms);
          } else {
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
          }
          op.write_value = value + 1;
          op.write_begin_steady_ns = SteadyNs();
          append(WriteEvent(op));
          absl::Status w = lock::FencedSet(kPolicy, resource,
                                           absl::StrCat(op.write_value), op.fence);
          op.write = Classify(w);
          if (op.write != WriteOutcome::kUnknown) op.write_end_steady_ns = SteadyNs();
          if (!w.ok() && !lock::IsStaleFence(w)) op.message = std::string(w.message());
          return finish();
        });
        if (!s.ok()) {
          op.result = absl::StatusCodeToString(s.code());
          op.message = std::string(s.message());
        }
        if (lock::IsLost(s)) op.lost = true;
        append(OpEvent(op));
        ++ops;
        if (!s.ok() && !lock::IsLost(s) && !lock::IsBusy(s)) {
          SleepMs(20);  // Redis is down or refusing: don't spin
        }
      }
      total.fetch_add(ops);
    });
  }
  for (auto& t : threads) t.join();
  lock::Shutdown(absl::Seconds(2));
  append(SummaryEvent(f.worker, total.load()));
  if (log_errors.load() > 0) {
    std::cerr << "driver worker " << f.worker << ": " << log_errors.load()
              << " history lines could not be written\n";
    return 1;
  }
  return 0;
}

// ---- coordinator --------------------------------------------------------------

struct ScenarioCheck {
  std::string name;
  bool ok;
  std::string detail;
};

struct Scenario {
  std::string name;
  std::string fault;  // what is done, for the table
  bool appendonly = false;
  bool needs_netns = false;
  // Set when the scenario cannot run in this build (waiting for RedisFleet).
  std::string todo;
  // Violation kinds the scenario is known to produce: measured and reported,
  // not a failure (see RELIABILITY.md for why).
  std::set<ViolationKind> expected;
  int victim_hold_ms = 0;  // 0: no victim
  // Where Redis runs: "standalone" (one RedisServer), "sentinel" (1 master,
  // 1 replica, 3 sentinels; acquires and renewals WAIT for the replica) or
  // "cluster" (3 masters, no replicas), the latter two from RedisFleet.
  std::string topology = "standalone";
  int min_seconds = 0;  // the run lasts at least this long
  int victim_extend_ms = 0;  // see Flags
};

std::vector<Scenario> Scenarios(int ttl_ms) {
  // A restart without persistence loses the resource data (values, the
  // fence each resource was last written with), but no longer the order of
  // fencing tokens: they follow the server clock (issue 11), so kFenceOrder
  // is not expected here.
  const std::set<ViolationKind> data_lost = {
      ViolationKind::kStaleWriteAccepted, ViolationKind::kDuplicateValue,
      ViolationKind::kValueGap, ViolationKind::kFinalState};
  return {
      {"baseline", "none", false, false, "", {}, 0},
      {"kill9", "holder process SIGKILLed inside its critical section", false,
       false, "", {}, 60'000},
      {"sigstop", absl::StrCat("holder process SIGSTOPped for ", 3 * ttl_ms,
                               "ms (3 ttl) inside its critical section, then "
                               "SIGCONT"),
       false, false, "", {}, 300},
      {"restart_aof", "redis-server SIGKILLed and restarted from its AOF "
                      "(appendfsync always) while a lock is held",
       true, false, "", {}, 600},
      {"restart_nopersist", "redis-server SIGKILLed and restarted empty (no "
                            "AOF, no RDB) while a lock is held",
       false, false, "", data_lost, 600},
      {"partition", absl::StrCat("link between the holder's network namespace "
                                 "and Redis down for ", 3 * ttl_ms, "ms"),
       false, true, "", {}, 3 * ttl_ms + 1500},
      {"slow", absl::StrCat("DEBUG SLEEP ", 2 * ttl_ms, "ms (> script_timeout "
                            "and > ttl) while a lock is held"),
       false, false, "", {}, 100},
      {"oom", "maxmemory 1 with noeviction for 1.5s while a lock is held",
       false, false, "", {}, 300},
      {"sentinel_failover",
       "SENTINEL FAILOVER while a lock is held (1 master, 1 replica, 3 "
       "sentinels; acquires and renewals wait for 1 replica)",
       false, false, "", {}, 2000, "sentinel", 20},
      {"cluster_migration",
       "hash slots of a held lock and of its resource migrated to another "
       "master (3-master cluster; ASK while moving, MOVED after)",
       false, false, "", {}, 2500, "cluster", 0},
      {"cluster_long_migration",
       absl::StrCat("hash slot of a held lock left half-migrated (its keys on the "
                    "importing master, ASK from the old one) for ", 3 * ttl_ms,
                    "ms (3 ttl) while the holder renews it"),
       false, false, "", {}, 3 * ttl_ms + 2500, "cluster", 0},
      {"extend_shorter",
       absl::StrCat("holder sets its lease to ", ttl_ms / 2, "ms (Extend, half the "
                    "policy's ttl) and holds on for ", 3 * ttl_ms, "ms"),
       false, false, "", {}, 3 * ttl_ms, "standalone", 0, ttl_ms / 2},
  };
}

// Runs a command (argv) and returns its exit status; its stderr in *err.
int Run(const std::vector<std::string>& argv, std::string* err = nullptr) {
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

// Two network namespaces joined by a veth pair: Redis side 10.213.0.1,
// client side 10.213.0.2. Every address lives inside namespaces made here.
class NetnsPair {
 public:
  static absl::StatusOr<std::unique_ptr<NetnsPair>> Create() {
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
      if (Run(step, &err) != 0) {
        return absl::UnavailableError(absl::StrCat(
            "network namespaces unavailable here (`", absl::StrJoin(step, " "),
            "` failed: ", absl::StripTrailingAsciiWhitespace(err), ")"));
      }
      n->created_ = true;
    }
    return n;
  }
  ~NetnsPair() {
    if (!created_) return;
    Run({"ip", "netns", "del", client_ns});
    Run({"ip", "netns", "del", redis_ns});
  }
  absl::Status Link(bool up) {
    std::string err;
    if (Run({"ip", "-n", client_ns, "link", "set", client_if, up ? "up" : "down"},
            &err) != 0) {
      return absl::InternalError("ip link set: " + err);
    }
    return absl::OkStatus();
  }

  const std::string redis_ns, client_ns, redis_if, client_if;

 private:
  NetnsPair(std::string r, std::string c, std::string ri, std::string ci)
      : redis_ns(std::move(r)), client_ns(std::move(c)),
        redis_if(std::move(ri)), client_if(std::move(ci)) {}
  bool created_ = false;
};

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

int64_t InfoField(harness::RedisServer& redis, const std::string& section,
                  const std::string& field) {
  absl::StatusOr<std::string> info = redis.Exec({"INFO", section});
  if (!info.ok()) return -1;
  for (absl::string_view line : absl::StrSplit(*info, "\r\n")) {
    if (absl::ConsumePrefix(&line, field + ":")) {
      // errorstat lines look like "count=3"
      absl::ConsumePrefix(&line, "count=");
      int64_t v = 0;
      if (absl::SimpleAtoi(line, &v)) return v;
    }
  }
  return 0;
}

class Coordinator {
 public:
  Coordinator(Flags flags, Scenario scenario)
      : f_(std::move(flags)), sc_(std::move(scenario)) {}

  int Run() {
    const int64_t t0 = SteadyNs();
    nlohmann::json row = {{"scenario", sc_.name}, {"fault", sc_.fault},
                          {"mode", f_.mode}};
    if (!sc_.todo.empty()) {
      std::cout << "driver: " << sc_.name << ": " << sc_.todo << "\n";
      row["status"] = "todo";
      row["reason"] = sc_.todo;
      return Emit(row, 0);
    }
    std::unique_ptr<NetnsPair> netns;
    if (sc_.needs_netns) {
      auto n = NetnsPair::Create();
      if (!n.ok()) {
        std::cout << "driver: SKIPPED " << sc_.name << ": "
                  << n.status().message() << "\n";
        row["status"] = "skipped";
        row["reason"] = std::string(n.status().message());
        return Emit(row, 0);
      }
      netns = *std::move(n);
      EnterNetns(netns->redis_ns);  // Redis and this coordinator live there
    }
    nlohmann::json target;
    if (sc_.topology == "standalone") {
      harness::RedisServerOptions options;
      options.name = "redis-" + sc_.name;
      options.appendonly = sc_.appendonly;
      if (netns) options.extra_config.push_back({"bind", "127.0.0.1 10.213.0.1"});
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
    const std::string local_cfg = absl::StrCat(f_.out, "/policies.json");
    const std::string remote_cfg = absl::StrCat(f_.out, "/policies-netns.json");
    WriteFile(local_cfg, PolicyJson(target, run_, f_.ttl_ms, f_.script_timeout_ms));
    if (netns) {
      WriteFile(remote_cfg,
                PolicyJson({{"addrs", {absl::StrCat("10.213.0.1:", redis_->port())}}},
                           run_, f_.ttl_ms, f_.script_timeout_ms));
    }

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) return 2;
    const int victim_after_ms = f_.seconds * 1000 / 4;
    std::vector<Worker> workers(f_.processes);
    for (int p = 0; p < f_.processes; ++p) {
      std::vector<std::string> args = {
          "driver", absl::StrCat("--worker=", p),
          absl::StrCat("--config=", p == 0 && netns ? remote_cfg : local_cfg),
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
      if (p == 0 && netns) args.push_back("--netns=" + netns->client_ns);
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
        Inject(workers[0].pid, netns.get());
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
      const bool killed_by_us = p == 0 && sc_.name == "kill9";
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

 private:
  static void WriteFile(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
  }

  int Emit(const nlohmann::json& row, int rc) {
    if (!f_.summary.empty()) {
      std::ofstream out(f_.summary, std::ios::app);
      out << row.dump() << "\n";
    }
    return rc;
  }

  void Inject(pid_t victim, NetnsPair* netns) {
    const int ttl = f_.ttl_ms;
    fault_start_ns_ = SteadyNs();
    if (sc_.name == "kill9") {
      kill(victim, SIGKILL);
    } else if (sc_.name == "sigstop") {
      kill(victim, SIGSTOP);
      SleepMs(3 * ttl);
      kill(victim, SIGCONT);
    } else if (sc_.name == "restart_aof" || sc_.name == "restart_nopersist") {
      fences_before_ = FenceCounters();
      absl::Status s = redis_->Restart(/*keep_data=*/sc_.name == "restart_aof");
      if (!s.ok()) checks_.push_back({"redis restarts", false, std::string(s.message())});
    } else if (sc_.name == "partition") {
      absl::Status s = netns->Link(false);
      if (!s.ok()) checks_.push_back({"link down", false, std::string(s.message())});
      SleepMs(3 * ttl);
      s = netns->Link(true);
      if (!s.ok()) checks_.push_back({"link up", false, std::string(s.message())});
    } else if (sc_.name == "slow") {
      absl::StatusOr<std::string> r = redis_->Exec(
          {"DEBUG", "SLEEP", absl::StrCat(2.0 * ttl / 1000.0)});
      if (!r.ok()) checks_.push_back({"DEBUG SLEEP", false, std::string(r.status().message())});
    } else if (sc_.name == "oom") {
      absl::StatusOr<std::string> r =
          redis_->Exec({"CONFIG", "SET", "maxmemory-policy", "noeviction"});
      if (r.ok()) r = redis_->Exec({"CONFIG", "SET", "maxmemory", "1"});
      if (!r.ok()) checks_.push_back({"maxmemory", false, std::string(r.status().message())});
      SleepMs(1500);
      locks_during_oom_ = LockKeysNow();
      r = redis_->Exec({"CONFIG", "SET", "maxmemory", "0"});
      if (!r.ok()) checks_.push_back({"maxmemory off", false, std::string(r.status().message())});
    } else if (sc_.name == "sentinel_failover") {
      absl::StatusOr<int> before = fleet_->MasterIndex();
      absl::Status s = fleet_->Failover(absl::Seconds(30));
      absl::StatusOr<int> after = fleet_->MasterIndex();
      const bool ok = s.ok() && before.ok() && after.ok() && *before != *after;
      checks_.push_back({"sentinels promote the replica", ok,
                         ok ? absl::StrCat("master node ", *before, " -> ", *after)
                            : absl::StrCat("Failover: ", s.message())});
    } else if (sc_.name == "cluster_long_migration") {
      // Only the lock's slot, and it stays half-moved for 3 ttl: every
      // renewal meanwhile is answered ASK by the old master.
      const internal::LockKeys keys(KeyPrefix(run_), victim_key_);
      const int slot = harness::RedisFleet::KeySlot(std::string(keys.owner()));
      absl::StatusOr<int> from = fleet_->NodeIndexForSlot(slot);
      absl::Status s = from.status();
      int to = -1, moved = 0;
      if (s.ok()) {
        to = (fleet_->ShardOf(*from) + 1) % fleet_->shard_count();
        s = fleet_->BeginMoveSlot(slot, to);
      }
      while (s.ok()) {
        absl::StatusOr<int> n = fleet_->MigrateSlotKeys(slot, 100);
        if (!n.ok()) s = n.status();
        if (!n.ok() || *n == 0) break;
        moved += *n;
      }
      SleepMs(3 * ttl);
      if (s.ok()) s = fleet_->FinishMoveSlot(slot);
      const std::string detail =
          absl::StrCat(keys.owner(), " slot ", slot, " to shard ", to, " (", moved,
                       " keys), half-moved for ", 3 * ttl, "ms: ",
                       s.ok() ? "done" : std::string(s.message()));
      measures_["slot_moved"] = detail;
      checks_.push_back({"slot migrates to another master", s.ok(), detail});
    } else if (sc_.name == "cluster_migration") {
      // The lock's slot first (while the victim holds it and renews it),
      // then the resource's, each step by step: ASK while keys are half
      // moved, MOVED after.
      const internal::LockKeys keys(KeyPrefix(run_), victim_key_);
      std::vector<std::string> detail;
      bool ok = true;
      for (const std::string& key : {std::string(keys.owner()), ResourceKey(run_, victim_key_)}) {
        const int slot = harness::RedisFleet::KeySlot(key);
        absl::StatusOr<int> from = fleet_->NodeIndexForSlot(slot);
        if (!from.ok()) {
          ok = false;
          detail.push_back(absl::StrCat(key, ": ", from.status().message()));
          continue;
        }
        const int to = (fleet_->ShardOf(*from) + 1) % fleet_->shard_count();
        absl::Status s = fleet_->BeginMoveSlot(slot, to);
        SleepMs(300);
        int moved = 0;
        while (s.ok()) {
          absl::StatusOr<int> n = fleet_->MigrateSlotKeys(slot, 100);
          if (!n.ok()) s = n.status();
          if (!n.ok() || *n == 0) break;
          moved += *n;
        }
        SleepMs(300);
        if (s.ok()) s = fleet_->FinishMoveSlot(slot);
        absl::StatusOr<int> now = fleet_->NodeIndexForSlot(slot);
        const bool moved_ok = s.ok() && now.ok() && fleet_->ShardOf(*now) == to;
        ok &= moved_ok;
        detail.push_back(absl::StrCat(key, " slot ", slot, " shard ",
                                      fleet_->ShardOf(*from), " -> ", to, " (",
                                      moved, " keys): ",
                                      moved_ok ? "done" : std::string(s.message())));
      }
      measures_["slots_moved"] = absl::StrJoin(detail, "; ");
      checks_.push_back({"slots migrate to another master", ok, absl::StrJoin(detail, "; ")});
    }
    fault_end_ns_ = SteadyNs();
    measures_["fault_ms"] = (fault_end_ns_ - fault_start_ns_) / 1'000'000;
  }

  // Owner hashes of this run: {rel:<run>:<key>} (fence counters and cancel
  // markers have a suffix after the brace).
  std::vector<std::string> LockKeysNow() {
    std::vector<std::string> out;
    for (harness::RedisServer* server : Masters()) {
      absl::StatusOr<std::string> keys =
          server->Exec({"KEYS", absl::StrCat("{", KeyPrefix(run_), "*}")});
      if (!keys.ok() || keys->empty()) continue;
      for (absl::string_view k : absl::StrSplit(*keys, '\n')) out.emplace_back(k);
    }
    return out;
  }

  // The server holding `key` now: the one server, the sentinel master, or
  // the cluster master of its slot.
  harness::RedisServer* ServerFor(const std::string& key) {
    if (fleet_ == nullptr) return redis_.get();
    absl::StatusOr<int> i = sc_.topology == "sentinel"
                                ? fleet_->MasterIndex()
                                : fleet_->NodeIndexForSlot(harness::RedisFleet::KeySlot(key));
    return i.ok() ? &fleet_->node(*i) : nullptr;
  }
  absl::StatusOr<std::string> Exec(const std::string& key,
                                   const std::vector<std::string>& argv) {
    harness::RedisServer* server = ServerFor(key);
    if (server == nullptr) return absl::UnavailableError("no server for " + key);
    return server->Exec(argv);
  }
  std::vector<harness::RedisServer*> Masters() {
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

  std::map<std::string, int64_t> FenceCounters() {
    std::map<std::string, int64_t> out;
    for (int k = 0; k < f_.keys; ++k) {
      const internal::LockKeys keys(KeyPrefix(run_), KeyName(k));
      absl::StatusOr<std::string> v = Exec(std::string(keys.fence()), {"GET", std::string(keys.fence())});
      int64_t n = 0;
      if (v.ok() && absl::SimpleAtoi(*v, &n)) out[KeyName(k)] = n;
    }
    return out;
  }

  void LeftLocked() {
    std::vector<std::string> left = LockKeysNow();
    if ((sc_.name == "kill9" || sc_.name == "sentinel_failover") && !left.empty()) {
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

  // What each scenario promises beyond the checker's rules.
  void ScenarioChecks(const History& h, const Report& r) {
    const Op* victim = nullptr;
    for (const Op& op : h.ops) {
      if (op.process == 0 && op.id == victim_op_ && victim_fence_ > 0) victim = &op;
    }
    auto entered_after = [&](int64_t t, bool other_process, const std::string& key) {
      int64_t n = 0;
      for (const Op& op : h.ops) {
        if (op.entered && op.enter_steady_ns > t &&
            (!other_process || op.process != 0) && (key.empty() || op.key == key)) {
          ++n;
        }
      }
      return n;
    };
    auto result_with = [&](const std::string& code, const std::string& text) {
      int64_t n = 0;
      for (const Op& op : h.ops) {
        if (op.result == code && absl::StrContains(op.message, text)) ++n;
      }
      return n;
    };
    const std::string& s = sc_.name;
    if (s == "baseline") {
      checks_.push_back({"work done", r.writes_accepted > 0,
                         absl::StrCat(r.writes_accepted, " fenced writes accepted")});
    }
    if (s == "kill9") {
      int64_t first = -1;
      for (const Op& op : h.ops) {
        if (op.entered && op.key == victim_key_ && op.enter_steady_ns > fault_start_ns_ &&
            (first < 0 || op.enter_steady_ns < first)) {
          first = op.enter_steady_ns;
        }
      }
      const int64_t takeover_ms = first < 0 ? -1 : (first - fault_start_ns_) / 1'000'000;
      measures_["takeover_ms"] = takeover_ms;
      checks_.push_back({"killed holder's lock taken over after its ttl",
                         first >= 0 && takeover_ms <= f_.ttl_ms + 2000,
                         absl::StrCat("key ", victim_key_, " re-acquired ", takeover_ms,
                                      "ms after the kill (ttl ", f_.ttl_ms, "ms)")});
      checks_.push_back({"victim's section is in the history as died",
                         victim != nullptr && victim->died,
                         victim ? absl::StrCat("op ", victim->id, " died=", victim->died)
                                : "victim op missing"});
    }
    if (s == "sigstop" || s == "partition") {
      const bool told = victim != nullptr && victim->lost;
      const bool refused = victim != nullptr && victim->write == WriteOutcome::kRejected;
      checks_.push_back(
          {"paused holder learns it lost the lock", told,
           victim ? absl::StrCat("lost=", victim->lost, ", With returned ", victim->result)
                  : "victim op missing"});
      checks_.push_back(
          {"paused holder's late write is refused", refused,
           victim ? absl::StrCat("write ", WriteOutcomeName(victim->write),
                                 " with token ", victim->fence)
                  : "victim op missing"});
      const int64_t others = entered_after(fault_start_ns_, true, victim_key_);
      checks_.push_back({"others took the lock meanwhile", others > 0,
                         absl::StrCat(others, " sections of other processes on ",
                                      victim_key_, " after the fault began")});
    }
    if (s == "restart_aof" || s == "restart_nopersist") {
      const std::map<std::string, int64_t> after = FenceCounters();
      int64_t regressions = 0;
      std::vector<std::string> detail;
      for (const auto& [key, before] : fences_before_) {
        // The lowest token issued after the restart, from the history.
        int64_t low = -1;
        for (const Op& op : h.ops) {
          if (op.entered && op.key == key && op.enter_steady_ns > fault_end_ns_ &&
              (low < 0 || op.fence < low)) {
            low = op.fence;
          }
        }
        if (low >= 0 && low <= before) ++regressions;
        detail.push_back(absl::StrCat(key, ": ", before, " -> ", low));
      }
      measures_["fence_counter_before_restart_to_first_token_after"] = absl::StrJoin(detail, ", ");
      measures_["keys_whose_tokens_went_backwards"] = regressions;
      const int64_t noscript = InfoField(*redis_, "errorstats", "errorstat_NOSCRIPT");
      measures_["noscript_replies_after_restart"] = noscript;
      const int64_t later = entered_after(fault_end_ns_, false, "");
      checks_.push_back({"locks work after the restart (NOSCRIPT handled)",
                         later > 0 && noscript > 0,
                         absl::StrCat(later, " sections after the restart; the server "
                                      "answered NOSCRIPT ", noscript, " times")});
      checks_.push_back({"fencing tokens keep increasing across the restart",
                         regressions == 0, absl::StrJoin(detail, ", ")});
    }
    if (s == "cluster_long_migration" || s == "extend_shorter") {
      // The victim's lease outlives several renewal margins with nothing
      // going wrong but the migration / its own shorter lease: it must keep
      // the lock, and nobody else may have entered meanwhile (the checker's
      // overlap rule proves that; this makes it visible).
      checks_.push_back(
          {"the holder keeps its lock", victim != nullptr && !victim->lost &&
                                            victim->result == "OK" &&
                                            victim->write == WriteOutcome::kAccepted,
           victim ? absl::StrCat("lost=", victim->lost, ", write ",
                                 WriteOutcomeName(victim->write), ", With returned ",
                                 victim->result, victim->message.empty() ? "" : " ",
                                 victim->message)
                  : "victim op missing"});
      int64_t inside = 0;
      if (victim != nullptr) {
        for (const Op& op : h.ops) {
          if (op.entered && op.key == victim_key_ && op.id != victim->id &&
              op.enter_steady_ns > victim->enter_steady_ns &&
              op.enter_steady_ns < victim->exit_steady_ns) {
            ++inside;
          }
        }
      }
      checks_.push_back({"nobody else entered during the hold", victim != nullptr && inside == 0,
                         absl::StrCat(inside, " sections on ", victim_key_,
                                      " began while the victim held it")});
    }
    if (s == "sentinel_failover" || s == "cluster_migration") {
      // What callers saw, by status code; ABORTED (busy: wait timed out
      // under contention) happens in the baseline too.
      std::map<std::string, int64_t> results;
      std::map<std::string, std::string> example;
      int64_t errors = 0;
      for (const Op& op : h.ops) {
        ++results[op.result];
        if (op.result != "OK" && op.result != "ABORTED" && op.result != "DIED") {
          ++errors;
          example.emplace(op.result, op.message);
        }
      }
      int64_t write_errors = 0, read_errors = 0;
      for (const Op& op : h.ops) {
        if (op.write == WriteOutcome::kFailed || op.write == WriteOutcome::kUnknown) {
          ++write_errors;
          example.emplace("write", op.message);
        }
        if (op.entered && op.write == WriteOutcome::kNone && !op.message.empty()) {
          ++read_errors;
          example.emplace("read", op.message);
        }
      }
      measures_["with_results"] = results;
      measures_["with_errors"] = errors;
      measures_["fenced_write_errors"] = write_errors;
      measures_["data_read_errors"] = read_errors;
      measures_["error_examples"] = example;
      const int64_t later = entered_after(fault_end_ns_, false, victim_key_);
      const int64_t later_any = entered_after(fault_end_ns_, false, "");
      measures_["sections_after_fault"] = later_any;
      checks_.push_back({"locks work after the fault", later > 0,
                         absl::StrCat(later, " sections on ", victim_key_, ", ",
                                      later_any, " in all, after the fault ended")});
      if (s == "cluster_migration") {
        checks_.push_back(
            {"migration is invisible to callers", errors + write_errors + read_errors == 0,
             absl::StrCat(errors, " With errors (other than busy), ", write_errors,
                          " fenced-write errors, ", read_errors, " data-read errors")});
        checks_.push_back(
            {"the holder keeps its lock across the migration",
             victim != nullptr && !victim->lost && victim->write == WriteOutcome::kAccepted,
             victim ? absl::StrCat("lost=", victim->lost, ", write ",
                                   WriteOutcomeName(victim->write), ", With returned ",
                                   victim->result)
                    : "victim op missing"});
      } else {
        measures_["victim"] =
            victim ? absl::StrCat("lost=", victim->lost, ", write ",
                                  WriteOutcomeName(victim->write), ", With returned ",
                                  victim->result, " ", victim->message)
                   : "victim op missing";
      }
    }
    if (s == "slow") {
      const int64_t timeouts = result_with("UNAVAILABLE", "timed out");
      measures_["calls_timed_out"] = timeouts;
      checks_.push_back({"slow server surfaces as kUnavailable timeouts", timeouts > 0,
                         absl::StrCat(timeouts, " With calls returned UNAVAILABLE "
                                      "\"timed out\"")});
      const int64_t later = entered_after(fault_end_ns_, false, "");
      checks_.push_back({"locks work after the server wakes", later > 0,
                         absl::StrCat(later, " sections afterwards")});
    }
    if (s == "oom") {
      int64_t oom_acquire = result_with("RESOURCE_EXHAUSTED", "OOM");
      int64_t oom_write = 0;
      for (const Op& op : h.ops) {
        if (op.write == WriteOutcome::kFailed && absl::StrContains(op.message, "OOM")) {
          ++oom_write;
        }
      }
      measures_["acquires_refused_oom"] = oom_acquire;
      measures_["writes_refused_oom"] = oom_write;
      checks_.push_back({"OOM surfaces as RESOURCE_EXHAUSTED naming OOM",
                         oom_acquire + oom_write > 0,
                         absl::StrCat(oom_acquire, " acquires and ", oom_write,
                                      " fenced writes refused with OOM")});
      // Any lock present while OOM must belong to a section that believed
      // it held it (or to one that was told it lost it).
      std::set<std::string> believed;
      for (const Op& op : h.ops) {
        if (op.entered && op.enter_steady_ns < fault_end_ns_ &&
            (op.exit_steady_ns == 0 || op.exit_steady_ns > fault_start_ns_)) {
          believed.insert(absl::StrCat("{", KeyPrefix(run_), op.key, "}"));
        }
      }
      std::vector<std::string> orphans;
      for (const std::string& k : locks_during_oom_) {
        if (!believed.count(k)) orphans.push_back(k);
      }
      checks_.push_back({"no lock held in Redis that no section believed it held",
                         orphans.empty(),
                         absl::StrCat(locks_during_oom_.size(), " locks present "
                                      "under OOM; orphans: ",
                                      orphans.empty() ? "none" : absl::StrJoin(orphans, ", "))});
      const int64_t later = entered_after(fault_end_ns_, false, "");
      checks_.push_back({"locks work after memory is freed", later > 0,
                         absl::StrCat(later, " sections afterwards")});
    }
  }

  Flags f_;
  const Scenario sc_;
  std::unique_ptr<harness::RedisServer> redis_;
  std::unique_ptr<harness::RedisFleet> fleet_;
  std::string run_;
  std::vector<ScenarioCheck> checks_;
  nlohmann::json measures_ = nlohmann::json::object();
  std::string victim_key_;
  int64_t victim_fence_ = 0;
  int64_t victim_op_ = -1;
  int64_t fault_start_ns_ = 0;
  int64_t fault_end_ns_ = 0;
  bool deadline_hit_ = false;
  std::map<std::string, int64_t> fences_before_;
  std::vector<std::string> locks_during_oom_;
};

int Main(int argc, char** argv) {
  Flags f = ParseFlags(argc, argv);
  if (f.worker >= 0) return RunWorker(f);
  if (f.list) {
    for (const Scenario& s : Scenarios(f.ttl_ms)) std::cout << s.name << "\n";
    return 0;
  }
  if (f.scenario.empty()) Usage("--scenario is required");
  const bool is_long = f.mode == "long";
  if (f.processes == 0) f.processes = is_long ? 4 : 3;
  if (f.threads == 0) f.threads = is_long ? 4 : 3;
  if (f.keys == 0) f.keys = is_long ? 8 : 4;
  if (f.seconds == 0) f.seconds = is_long ? 60 : 8;
  if (f.processes < 2 || f.threads < 1 || f.keys < 1 || f.seconds < 4) {
    Usage("need --processes >= 2, --threads >= 1, --keys >= 1, --seconds >= 4");
  }
  for (const Scenario& s : Scenarios(f.ttl_ms)) {
    if (s.name == f.scenario) {
      f.seconds = std::max(f.seconds, s.min_seconds);
      return Coordinator(f, s).Run();
    }
  }
  Usage("unknown scenario \"" + f.scenario + "\" (see --list)");
}

}  // namespace
}  // namespace lock::checker

int main(int argc, char** argv) { return lock::checker::Main(argc, argv); }
