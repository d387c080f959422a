// The demo: an order service whose workers close a shared set of orders
// concurrently, each close protected by lock::With("order-close", ...).
//
//   bazel run //examples/order_close                  # embedded redis-server
//   bazel run //examples/order_close -- --redis=127.0.0.1:6379
//   LOCK_CONFIG=/etc/locks.json bazel run //examples/order_close
//
// W worker processes × T threads walk the orders in roughly the same order,
// so they collide on the same orders all the time. Closing an order is a
// deliberately non-atomic read-modify-write in Redis (read status, read the
// close count, write both back), safe only under the lock; each close also
// records its fencing token. At the end the demo verifies that every order
// was closed exactly once, that no two critical sections on one order ever
// overlapped, and that fencing tokens strictly increased per order; it exits
// 1 if any check fails.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "integration/harness/redis_server.h"
#include "lock/lock.h"
#include "lock/redis/connection.h"
#include "lock/internal/token.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using lock::redis::Connection;
using lock::redis::ReplyPtr;

struct Flags {
  int workers = 4;
  int threads = 4;
  int orders = 500;
  std::string redis;   // host:port of an existing Redis
  std::string config;  // policies file
  // Internal: set on worker processes.
  int worker = -1;
  std::string run;
};

[[noreturn]] void Usage(const std::string& error) {
  std::cerr << "order_close: " << error << "\n"
            << "usage: order_close [--workers=N] [--threads=N] [--orders=N]\n"
            << "                   [--redis=host:port] [--config=policies.json]\n";
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    absl::string_view a = argv[i];
    auto int_flag = [&](absl::string_view name, int* out) {
      if (!absl::ConsumePrefix(&a, name)) return false;
      if (!absl::SimpleAtoi(a, out) || *out < (name == "--worker=" ? 0 : 1)) {
        Usage(absl::StrCat("bad value for ", name, " \"", a, "\""));
      }
      return true;
    };
    auto str_flag = [&](absl::string_view name, std::string* out) {
      if (!absl::ConsumePrefix(&a, name)) return false;
      *out = std::string(a);
      return true;
    };
    if (int_flag("--workers=", &f.workers) || int_flag("--threads=", &f.threads) ||
        int_flag("--orders=", &f.orders) || int_flag("--worker=", &f.worker) ||
        str_flag("--redis=", &f.redis) || str_flag("--config=", &f.config) ||
        str_flag("--run=", &f.run)) {
      continue;
    }
    Usage(absl::StrCat("unknown argument \"", a, "\""));
  }
  return f;
}

// ---- small Redis helpers for the demo's own data ----------------------------

std::unique_ptr<Connection> Connect(const std::string& addr,
                                    const nlohmann::json& target) {
  lock::redis::ConnectionOptions o{.addr = addr};
  if (target.contains("password_env")) {
    const char* pw = std::getenv(target["password_env"].get<std::string>().c_str());
    if (pw != nullptr) o.password = pw;
  }
  if (target.contains("username")) o.username = target["username"].get<std::string>();
  if (target.contains("db")) o.db = target["db"].get<int>();
  auto c = Connection::Open(o);
  if (!c.ok()) {
    std::cerr << "order_close: " << c.status() << "\n";
    std::exit(1);
  }
  return *std::move(c);
}

ReplyPtr Cmd(Connection& c, std::initializer_list<absl::string_view> argv) {
  auto r = c.Command(argv, absl::Seconds(5));
  if (!r.ok()) {
    std::cerr << "order_close: " << r.status() << "\n";
    std::exit(1);
  }
  return *std::move(r);
}

int64_t IntOf(const ReplyPtr& r) {
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  int64_t v = 0;
  if (r->type == REDIS_REPLY_STRING) {
    (void)absl::SimpleAtoi(lock::redis::ReplyText(*r), &v);
  }
  return v;
}

struct Keys {
  std::string run;
  std::string Order(int i) const { return absl::StrCat("demo:", run, ":order:", i); }
  std::string Fences(int i) const { return Order(i) + ":fences"; }
  std::string Inside(int i) const { return Order(i) + ":inside"; }
  std::string Counter(absl::string_view name) const {
    return absl::StrCat("demo:", run, ":", name);
  }
  std::string Worker(int w) const { return absl::StrCat("demo:", run, ":worker:", w); }
  std::string LockKey(int i) const { return absl::StrCat(run, ":", i); }
};

// ---- worker process ---------------------------------------------------------

struct ThreadStats {
  int64_t calls = 0, closed = 0, already_closed = 0, busy = 0, errors = 0;
  std::vector<int64_t> latency_us;
};

ThreadStats RunThread(const Flags& f, const Keys& k, const std::string& addr,
                      const nlohmann::json& target, int thread_index) {
  ThreadStats st;
  auto data = Connect(addr, target);
  // Everyone walks the orders front to back, shuffled only within small
  // windows: like workers draining one queue, they collide constantly.
  std::vector<int> order(f.orders);
  for (int i = 0; i < f.orders; ++i) order[i] = i;
  std::mt19937 rng(f.worker * 1000 + thread_index);
  for (int i = 0; i < f.orders; i += 8) {
    std::shuffle(order.begin() + i, order.begin() + std::min(i + 8, f.orders), rng);
  }
  const std::string me = absl::StrCat("w", f.worker, "t", thread_index);
  for (int id : order) {
    const Clock::time_point t0 = Clock::now();
    bool closed_now = false;
    absl::Status s = lock::With("order-close", k.LockKey(id), [&](lock::Held& held) {
      Connection& c = *data;
      // Overlap detector: only one critical section per order may be inside.
      if (Cmd(c, {"SET", k.Inside(id), "1", "NX", "PX", "60000"})->type ==
          REDIS_REPLY_NIL) {
        Cmd(c, {"INCR", k.Counter("overlaps")});
      }
      const std::string fence = absl::StrCat(held.fencing_token());
      Cmd(c, {"RPUSH", k.Fences(id), fence});
      ReplyPtr status = Cmd(c, {"HGET", k.Order(id), "status"});
      if (status->type == REDIS_REPLY_STRING &&
          lock::redis::ReplyText(*status) == "open") {
        // Non-atomic read-modify-write: two holders at once would both see
        // "open" and the close count would not come out as exactly 1.
        int64_t closes = IntOf(Cmd(c, {"HGET", k.Order(id), "closes"}));
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        const std::string next = absl::StrCat(closes + 1);
        Cmd(c, {"HSET", k.Order(id), "status", "closed", "closes", next,
                "closed_by", me, "fence", fence});
        Cmd(c, {"INCR", k.Counter("closed")});
        closed_now = true;
      }
      Cmd(c, {"DEL", k.Inside(id)});
      return absl::OkStatus();
    });
    st.latency_us.push_back(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0)
            .count());
    ++st.calls;
    Cmd(*data, {"INCR", k.Counter("calls")});
    if (s.ok()) {
      ++(closed_now ? st.closed : st.already_closed);
    } else if (lock::IsBusy(s)) {
      ++st.busy;
    } else {
      if (st.errors++ < 3) std::cerr << "order_close [" << me << "]: " << s << "\n";
    }
  }
  return st;
}

int RunWorker(const Flags& f) {
  if (absl::Status s = lock::Init(f.config); !s.ok()) {
    std::cerr << "order_close worker: " << s << "\n";
    return 1;
  }
  std::ifstream in(f.config);
  nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
  const nlohmann::json& target = config["redis"]["default"];
  const std::string addr = target["addrs"][0].get<std::string>();
  Keys k{f.run};
  std::vector<ThreadStats> stats(f.threads);
  std::vector<std::thread> threads;
  for (int t = 0; t < f.threads; ++t) {
    threads.emplace_back([&, t] { stats[t] = RunThread(f, k, addr, target, t); });
  }
  for (auto& t : threads) t.join();
  nlohmann::json out = {{"calls", 0}, {"closed", 0}, {"already_closed", 0},
                        {"busy", 0}, {"errors", 0}, {"latency_us", nlohmann::json::array()}};
  for (const ThreadStats& s : stats) {
    out["calls"] = out["calls"].get<int64_t>() + s.calls;
    out["closed"] = out["closed"].get<int64_t>() + s.closed;
    out["already_closed"] = out["already_closed"].get<int64_t>() + s.already_closed;
    out["busy"] = out["busy"].get<int64_t>() + s.busy;
    out["errors"] = out["errors"].get<int64_t>() + s.errors;
    for (int64_t l : s.latency_us) out["latency_us"].push_back(l);
  }
  auto data = Connect(addr, target);
  Cmd(*data, {"SET", k.Worker(f.worker), out.dump()});
  lock::Shutdown();
  return 0;
}

// ---- coordinator ------------------------------------------------------------

std::string FindShippedConfig() {
  const char* candidates[] = {"examples/order_close/policies.json"};
  for (const char* c : candidates) {
    if (std::ifstream(c).good()) return c;
  }
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    std::string p = absl::StrCat(ws, "/examples/order_close/policies.json");
    if (std::ifstream(p).good()) return p;
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string p = absl::StrCat(self, ".runfiles/redis_lock/examples/order_close/policies.json");
    if (std::ifstream(p).good()) return p;
  }
  Usage("cannot find policies.json; pass --config=PATH");
}

pid_t Spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0) {
    std::perror("order_close: posix_spawn");
    std::exit(1);
  }
  return pid;
}

int64_t Percentile(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  size_t i = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  std::nth_element(v.begin(), v.begin() + i, v.end());
  return v[i];
}

int RunCoordinator(Flags f) {
  // 1. Configuration and Redis.
  std::string config_path = f.config;
  if (config_path.empty()) {
    const char* env = std::getenv("LOCK_CONFIG");
    config_path = env != nullptr && *env != '\0' ? env : FindShippedConfig();
  }
  std::ifstream in(config_path);
  nlohmann::json config = nlohmann::json::parse(in, nullptr, false);
  if (config.is_discarded() || !config.contains("redis") ||
      !config["redis"].contains("default")) {
    std::cerr << "order_close: " << config_path
              << " is not a policy file with a \"default\" redis target\n";
    return 1;
  }
  std::unique_ptr<lock::harness::RedisServer> embedded;
  const bool user_config = f.config.size() > 0 || std::getenv("LOCK_CONFIG") != nullptr;
  if (!f.redis.empty()) {
    config["redis"]["default"]["addrs"] = {f.redis};
  } else if (!user_config) {
    auto server = lock::harness::RedisServer::Start({.name = "embedded-redis"});
    if (!server.ok()) {
      std::cerr << "order_close: cannot start an embedded redis-server: "
                << server.status() << "\n";
      return 1;
    }
    embedded = *std::move(server);
    config["redis"]["default"]["addrs"] = {embedded->addr()};
  }
  const nlohmann::json target = config["redis"]["default"];
  const std::string addr = target["addrs"][0].get<std::string>();
  // Workers read the (possibly re-pointed) configuration from a private copy.
  char tmpl[] = "/tmp/order_close.XXXXXX";
  int fd = mkstemp(tmpl);
  if (fd < 0) {
    std::perror("order_close: mkstemp");
    return 1;
  }
  close(fd);
  const std::string worker_config = tmpl;
  std::ofstream(worker_config) << config.dump(2);

  // 2. Seed the orders under a fresh run id, so a real Redis is never mixed up.
  std::string token = lock::internal::NewOwnerToken();
  Keys k{token.substr(token.size() - 8)};
  auto data = Connect(addr, target);
  for (int i = 0; i < f.orders; ++i) {
    Cmd(*data, {"HSET", k.Order(i), "status", "open", "closes", "0"});
  }
  std::cout << "order_close: " << f.workers << " worker processes x " << f.threads
            << " threads closing " << f.orders << " orders on redis " << addr
            << (embedded ? " (embedded)" : "") << ", run " << k.run << "\n";

  // 3. Workers.
  const Clock::time_point start = Clock::now();
  std::vector<pid_t> pids;
  for (int w = 0; w < f.workers; ++w) {
    pids.push_back(Spawn({"order_close", absl::StrCat("--worker=", w),
                          absl::StrCat("--threads=", f.threads),
                          absl::StrCat("--orders=", f.orders),
                          "--config=" + worker_config, "--run=" + k.run}));
  }
  const bool tty = isatty(STDOUT_FILENO);
  int64_t last_calls = 0;
  Clock::time_point last = start;
  size_t running = pids.size();
  int worker_failures = 0;
  Clock::time_point finished = start;
  while (running > 0) {
    for (pid_t& pid : pids) {
      int status = 0;
      if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
        pid = -1;
        --running;
        finished = Clock::now();
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++worker_failures;
      }
    }
    if (running == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(tty ? 250 : 1000));
    const Clock::time_point now = Clock::now();
    int64_t closed = IntOf(Cmd(*data, {"GET", k.Counter("closed")}));
    int64_t calls = IntOf(Cmd(*data, {"GET", k.Counter("calls")}));
    double secs = std::chrono::duration<double>(now - last).count();
    std::string line = absl::StrFormat(
        "  %5.1fs  closed %d/%d  lock calls %d  (%.0f/s)",
        std::chrono::duration<double>(now - start).count(), closed, f.orders,
        calls, (calls - last_calls) / secs);
    std::cout << (tty ? "\r" : "") << line << (tty ? "" : "\n") << std::flush;
    last_calls = calls;
    last = now;
  }
  if (tty) std::cout << "\n";
  const double elapsed = std::chrono::duration<double>(finished - start).count();

  // 4. Verify.
  int64_t not_closed = 0, double_closed = 0, fence_violations = 0;
  for (int i = 0; i < f.orders; ++i) {
    ReplyPtr st = Cmd(*data, {"HGET", k.Order(i), "status"});
    if (st->type != REDIS_REPLY_STRING || lock::redis::ReplyText(*st) != "closed") {
      ++not_closed;
    }
    if (IntOf(Cmd(*data, {"HGET", k.Order(i), "closes"})) > 1) ++double_closed;
    ReplyPtr fences = Cmd(*data, {"LRANGE", k.Fences(i), "0", "-1"});
    int64_t prev = 0;
    for (size_t j = 0; j < fences->elements; ++j) {
      int64_t v = 0;
      (void)absl::SimpleAtoi(lock::redis::ReplyText(*fences->element[j]), &v);
      if (v <= prev) ++fence_violations;
      prev = v;
    }
  }
  const int64_t overlaps = IntOf(Cmd(*data, {"GET", k.Counter("overlaps")}));
  int64_t calls = 0, closed = 0, already = 0, busy = 0, errors = 0;
  std::vector<int64_t> lat;
  for (int w = 0; w < f.workers; ++w) {
    ReplyPtr r = Cmd(*data, {"GET", k.Worker(w)});
    if (r->type != REDIS_REPLY_STRING) continue;
    auto j = nlohmann::json::parse(lock::redis::ReplyText(*r), nullptr, false);
    calls += j["calls"].get<int64_t>();
    closed += j["closed"].get<int64_t>();
    already += j["already_closed"].get<int64_t>();
    busy += j["busy"].get<int64_t>();
    errors += j["errors"].get<int64_t>();
    for (const auto& l : j["latency_us"]) lat.push_back(l.get<int64_t>());
  }

  // 5. Clean up this run's keys (a real Redis keeps nothing of the demo).
  for (int i = 0; i < f.orders; ++i) {
    const std::string lock_fence = absl::StrCat("{order:close:", k.LockKey(i), "}:fence");
    Cmd(*data, {"DEL", k.Order(i), k.Fences(i), k.Inside(i), lock_fence});
  }
  Cmd(*data, {"DEL", k.Counter("closed"), k.Counter("calls"), k.Counter("overlaps")});
  for (int w = 0; w < f.workers; ++w) Cmd(*data, {"DEL", k.Worker(w)});
  std::remove(worker_config.c_str());

  const bool ok = not_closed == 0 && double_closed == 0 && overlaps == 0 &&
                  fence_violations == 0 && closed == f.orders &&
                  worker_failures == 0 && errors == 0;
  auto row = [](absl::string_view name, const std::string& value, bool good = true) {
    std::cout << absl::StrFormat("  %-34s %14s  %s\n", name, value, good ? "" : "FAIL");
  };
  std::cout << "\nverification\n";
  row("orders closed exactly once", absl::StrCat(f.orders - not_closed - double_closed, "/", f.orders),
      not_closed == 0 && double_closed == 0);
  row("orders closed twice", absl::StrCat(double_closed), double_closed == 0);
  row("overlapping critical sections", absl::StrCat(overlaps), overlaps == 0);
  row("fencing tokens out of order", absl::StrCat(fence_violations), fence_violations == 0);
  row("worker processes failed", absl::StrCat(worker_failures), worker_failures == 0);
  std::cout << "\nlock calls (policy order-close)\n";
  row("lock::With calls", absl::StrCat(calls));
  row("  closed the order", absl::StrCat(closed), closed == f.orders);
  row("  found it already closed", absl::StrCat(already));
  row("  busy (gave up waiting)", absl::StrCat(busy));
  row("  errors", absl::StrCat(errors), errors == 0);
  row("throughput", absl::StrFormat("%.0f calls/s", calls / elapsed));
  row("With latency p50", absl::StrFormat("%.2f ms", Percentile(lat, 0.50) / 1000.0));
  row("With latency p90", absl::StrFormat("%.2f ms", Percentile(lat, 0.90) / 1000.0));
  row("With latency p99", absl::StrFormat("%.2f ms", Percentile(lat, 0.99) / 1000.0));
  row("With latency max", absl::StrFormat("%.2f ms", Percentile(lat, 1.0) / 1000.0));
  row("elapsed", absl::StrFormat("%.1f s", elapsed));
  std::cout << "\n" << (ok ? "PASS" : "FAIL") << ": every order closed exactly once, "
            << "no overlapping holders, fences strictly increasing\n";
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Flags f = ParseFlags(argc, argv);
  if (f.worker >= 0) return RunWorker(f);
  return RunCoordinator(f);
}
