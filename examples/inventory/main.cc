// Stock deduction under contention, with the two ways a lease can run out:
// a critical section that outlives the TTL (auto-renewal keeps the lock) and
// a holder that stalls past it where renewal cannot help.
//
//   bazel run //examples/inventory                    # embedded redis-server
//   bazel run //examples/inventory -- --unfenced      # what fencing prevents
//
// W worker processes × T threads buy 1-3 units of one of three SKUs at a
// time, each deduction a read-modify-write of the SKU's stock under
// lock::With("inventory-deduct", sku) with a 1s TTL; the stock is written
// with lock::FencedSet and the hold's fencing token. Two holders are special:
//
//  - the long deduction: worker 0 once spends 2.5s (2.5 × TTL) inside the
//    critical section; auto-renewal extends the lease, so it keeps the lock
//    and its write is accepted.
//  - the straggler: a separate process takes the lock of sku-0, reads the
//    stock, and is then frozen whole (SIGSTOP, as a GC pause, a VM stall or
//    a swapped-out process would freeze it) — its renewal thread too. The
//    coordinator resumes it (SIGCONT) once the lease has expired and another
//    worker has written sku-0 under a newer fencing token. The straggler sees
//    Held::lost() and its stop_token, but writes anyway to show the last line
//    of defence: lock::FencedSet refuses the stale token (IsStaleFence).
//
// Verification: for every SKU, final stock = initial − the units of every
// accepted deduction, never negative; exactly one hold was lost (the
// straggler's); its late write was refused; the long deduction was renewed
// and not lost. With --unfenced the straggler ignores the lost signal and
// writes with a plain HSET, as code without fencing would: the verification
// then finds the units it oversold and the program exits 1.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "examples/common/demo.h"
#include "examples/common/redis_data.h"
#include "lock/lock.h"
#include "nlohmann/json.hpp"
#include "policy/registry.h"
#include "tools/lockctl/stats_dump.h"
#include "util/flags.h"

ABSL_FLAG(int, workers, 3, "worker processes");
ABSL_FLAG(int, threads, 3, "threads per worker");
ABSL_FLAG(double, seconds, 2,
          "seconds of trading after the long deduction and the straggler are "
          "done");
ABSL_FLAG(bool, unfenced, false,
          "the straggler writes without its fence (the run must then fail)");

namespace {

using demo::Clock;

constexpr char kProgram[] = "inventory";
constexpr char kPolicy[] = "inventory-deduct";
constexpr char kUsage[] =
    "inventory [--workers N] [--threads N] [--seconds S] [--unfenced]\n"
    "                 [--redis host:port] [--config policies.json]";

struct Sku {
  const char* name;
  int64_t initial;
  int weight;  // share of the purchases, in percent
};
// sku-0 is hot and is the one the straggler holds; sku-2 sells out.
constexpr std::array<Sku, 3> kSkus = {
    {{"sku-0", 50000, 50}, {"sku-1", 50000, 35}, {"sku-2", 60, 15}}};
constexpr int kStallSku = 0;
constexpr int kLongSku = 1;

struct Keys {
  std::string run;
  std::string Stock(int sku) const {
    return absl::StrCat("inventory:", run, ":stock:", kSkus[sku].name);
  }
  std::string LockKey(int sku) const {
    return absl::StrCat(run, ":", kSkus[sku].name);
  }
  std::string Key(absl::string_view what) const {
    return absl::StrCat("inventory:", run, ":", what);
  }
};

// ---- workers ----------------------------------------------------------------

struct Tally {
  std::array<int64_t, kSkus.size()> sold{}, deductions{}, out_of_stock{};
  int64_t stale = 0, lost = 0, errors = 0;
};

// One purchase: read, check, (work), fenced write. `work` runs inside the
// critical section between the read and the write.
absl::Status Deduct(const Keys& k, demo::Data& data, int sku, int qty, Tally& t,
                    const std::function<absl::Status(lock::Held&)>& work) {
  bool sold = false;
  absl::Status s = lock::With(kPolicy, k.LockKey(sku), [&](lock::Held& held) {
    const int64_t stock = data.Int({"HGET", k.Stock(sku), "value"});
    if (stock < qty) {
      ++t.out_of_stock[sku];
      return absl::OkStatus();
    }
    if (absl::Status w = work(held); !w.ok()) return w;
    absl::Status written = lock::FencedSet(
        kPolicy, k.Stock(sku), absl::StrCat(stock - qty), held.fencing_token());
    sold = written.ok();
    return written;
  });
  if (sold && s.ok()) {
    t.sold[sku] += qty;
    ++t.deductions[sku];
  } else if (sold) {
    // Written, but the lock was lost on the way out: the fence accepted the
    // write, so the stock is right; counted as sold.
    t.sold[sku] += qty;
    ++t.deductions[sku];
    ++t.lost;
  } else if (lock::IsStaleFence(s)) {
    ++t.stale;
  } else if (lock::IsLost(s)) {
    ++t.lost;
  } else if (!s.ok()) {
    if (t.errors++ < 3) std::cerr << "inventory: " << s << "\n";
  }
  return s;
}

absl::Status NoWork(lock::Held&) {
  std::this_thread::sleep_for(std::chrono::microseconds(200));
  return absl::OkStatus();
}

Tally RunThread(const Keys& k, const policy::RedisTarget& target, int worker,
                int thread) {
  Tally t;
  auto data = demo::Data::Connect(kProgram, target);
  std::mt19937 rng(worker * 100 + thread + 1);
  std::uniform_int_distribution<int> pct(0, 99), qty(1, 3), think_us(500, 3000);
  const Clock::time_point start = Clock::now();
  bool long_done = !(worker == 0 && thread == 0);
  while (data->Int({"EXISTS", k.Key("stop")}) == 0) {
    if (!long_done && demo::SecondsSince(start) > 0.3) {
      long_done = true;
      // The long deduction: 2.5 TTLs of work inside the critical section.
      nlohmann::json report;
      const Clock::time_point t0 = Clock::now();
      absl::Status s = Deduct(k, *data, kLongSku, 1, t, [&](lock::Held& held) {
        report["fence"] = held.fencing_token();
        const Clock::time_point until =
            Clock::now() + std::chrono::milliseconds(2500);
        while (Clock::now() < until) {
          // A long critical section polls its stop token and gives up
          // rather than write under a lease it no longer has.
          if (held.stop_token().stop_requested()) {
            return absl::AbortedError("lock lost during the long deduction");
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        report["lost"] = held.lost();
        return absl::OkStatus();
      });
      report["held_s"] = demo::SecondsSince(t0);
      report["status"] = s.ok() ? "OK" : s.ToString();
      data->Cmd({"SET", k.Key("long"), report.dump()});
      continue;
    }
    int p = pct(rng), sku = 0;
    while (p >= kSkus[sku].weight) p -= kSkus[sku++].weight;
    Deduct(k, *data, sku, qty(rng), t, NoWork).IgnoreError();
    // Customers arrive apart; the pause keeps the run readable, not safe.
    std::this_thread::sleep_for(std::chrono::microseconds(think_us(rng)));
  }
  return t;
}

nlohmann::json TallyJson(const Tally& t) {
  return {{"sold", t.sold},
          {"deductions", t.deductions},
          {"out_of_stock", t.out_of_stock},
          {"stale", t.stale},
          {"lost", t.lost},
          {"errors", t.errors}};
}

int RunWorker() {
  const int worker = demo::WorkerNumber();
  const int threads = util::FlagAtLeast(FLAGS_threads, 1);
  const std::string config = absl::GetFlag(FLAGS_config);
  if (absl::Status s = lock::Init(config); !s.ok()) {
    std::cerr << "inventory worker: " << s << "\n";
    return 1;
  }
  const policy::RedisTarget target = demo::LoadTarget(kProgram, config);
  const Keys k{absl::GetFlag(FLAGS_run)};
  demo::StatsPublisher publisher(kProgram, target, k.Key("lockstats"),
                                 absl::StrCat("worker-", worker),
                                 absl::Milliseconds(200));
  std::vector<Tally> tallies(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] { tallies[t] = RunThread(k, target, worker, t); });
  }
  for (auto& th : pool) th.join();
  publisher.Stop();
  Tally sum;
  for (const Tally& t : tallies) {
    for (size_t i = 0; i < kSkus.size(); ++i) {
      sum.sold[i] += t.sold[i];
      sum.deductions[i] += t.deductions[i];
      sum.out_of_stock[i] += t.out_of_stock[i];
    }
    sum.stale += t.stale;
    sum.lost += t.lost;
    sum.errors += t.errors;
  }
  demo::Data::Connect(kProgram, target)
      ->Cmd({"HSET", k.Key("tallies"), absl::StrCat("worker-", worker),
             TallyJson(sum).dump()});
  lock::Shutdown();
  return 0;
}

// The straggler: one deduction of sku-0 during which the whole process is
// frozen past the lease.
int RunStraggler() {
  const std::string config = absl::GetFlag(FLAGS_config);
  const bool unfenced = absl::GetFlag(FLAGS_unfenced);
  if (absl::Status s = lock::Init(config); !s.ok()) {
    std::cerr << "inventory straggler: " << s << "\n";
    return 1;
  }
  const policy::RedisTarget target = demo::LoadTarget(kProgram, config);
  const Keys k{absl::GetFlag(FLAGS_run)};
  auto data = demo::Data::Connect(kProgram, target);
  demo::StatsPublisher publisher(kProgram, target, k.Key("lockstats"),
                                 "straggler", absl::Milliseconds(200));
  std::this_thread::sleep_for(
      std::chrono::milliseconds(200));  // let the others start
  constexpr int kQty = 2;
  nlohmann::json report;
  bool wrote = false;
  absl::Status s =
      lock::With(kPolicy, k.LockKey(kStallSku), [&](lock::Held& held) {
        const int64_t stock = data->Int({"HGET", k.Stock(kStallSku), "value"});
        report["fence"] = held.fencing_token();
        report["stock_read"] = stock;
        data->Cmd({"SET", k.Key("stall"), report.dump()});
        // Frozen whole, renewal thread included, until the coordinator resumes
        // it.
        raise(SIGSTOP);
        const Clock::time_point resumed = Clock::now();
        // Back: the renewal manager finds the lease gone and signals. Wait for
        // that a little; a holder that does not hear it finds out by Extend.
        while (!held.lost() && demo::SecondsSince(resumed) < 3) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        report["lost_seen_after_ms"] = demo::SecondsSince(resumed) * 1000;
        report["lost_seen_by"] = held.lost() ? "renewal" : "extend";
        if (!held.lost()) (void)held.Extend(absl::Seconds(1));
        report["lost"] = held.lost();
        report["stop_requested"] = held.stop_token().stop_requested();
        // A careful holder would stop here. It writes anyway, to show what
        // happens to a late write.
        absl::Status w;
        if (unfenced) {
          data->Cmd({"HSET", k.Stock(kStallSku), "value",
                     absl::StrCat(stock - kQty)});
        } else {
          w = lock::FencedSet(kPolicy, k.Stock(kStallSku),
                              absl::StrCat(stock - kQty), held.fencing_token());
        }
        wrote = w.ok();
        report["write"] = w.ok() ? "accepted" : std::string(w.message());
        report["write_stale_fence"] = lock::IsStaleFence(w);
        return w;
      });
  report["with"] = s.ok() ? "OK" : s.ToString();
  report["with_is_lost"] = lock::IsLost(s);
  report["with_is_stale_fence"] = lock::IsStaleFence(s);
  Tally t;
  if (wrote) {
    t.sold[kStallSku] = kQty;
    t.deductions[kStallSku] = 1;
  }
  publisher.Stop();
  data->Cmd({"SET", k.Key("stall"), report.dump()});
  data->Cmd({"HSET", k.Key("tallies"), "straggler", TallyJson(t).dump()});
  lock::Shutdown();
  return 0;
}

// ---- coordinator ------------------------------------------------------------

int RunCoordinator() {
  const int workers = util::FlagAtLeast(FLAGS_workers, 1);
  const int threads = util::FlagAtLeast(FLAGS_threads, 1);
  const double seconds = util::FlagAtLeast(FLAGS_seconds, 0);
  const bool unfenced = absl::GetFlag(FLAGS_unfenced);
  auto env = demo::Environment::Prepare(
      kProgram, "examples/inventory/policies.json", absl::GetFlag(FLAGS_config),
      absl::GetFlag(FLAGS_redis));
  auto registry = policy::Registry::Load(env->worker_config());
  if (!registry.ok()) {
    std::cerr << "inventory: " << registry.status() << "\n";
    return 1;
  }
  const auto policy = (*registry)->FindPolicy(kPolicy);
  if (policy == nullptr) {
    std::cerr << "inventory: the configuration has no policy \"" << kPolicy
              << "\"\n";
    return 1;
  }
  const Keys k{demo::NewRunId()};
  auto data = demo::Data::Connect(kProgram, env->target());
  for (size_t i = 0; i < kSkus.size(); ++i) {
    data->Cmd({"HSET", k.Stock(i), "value", absl::StrCat(kSkus[i].initial),
               "fence", "0"});
  }
  std::cout << "inventory: " << workers << " worker processes x " << threads
            << " threads + 1 straggler buying " << kSkus.size()
            << " SKUs on redis " << env->Describe() << ", run " << k.run << "\n"
            << "  policy " << kPolicy << ": ttl "
            << absl::FormatDuration(policy->ttl) << ", renewal "
            << (policy->renewal.enabled ? "on" : "off") << " (at "
            << policy->renewal.threshold * 100 << "% of the ttl left), fencing "
            << (policy->fencing ? "on" : "off")
            << (unfenced
                    ? "; --unfenced: the straggler writes without its fence"
                    : "")
            << "\n";

  const Clock::time_point start = Clock::now();
  std::vector<pid_t> pids;
  const std::vector<std::string> common = {"--config=" + env->worker_config(),
                                           "--run=" + k.run};
  for (int w = 0; w < workers; ++w) {
    std::vector<std::string> args = {kProgram, absl::StrCat("--worker=", w),
                                     absl::StrCat("--threads=", threads)};
    args.insert(args.end(), common.begin(), common.end());
    pids.push_back(demo::SpawnSelf(args));
  }
  std::vector<std::string> sargs = {kProgram, "--worker=straggler"};
  sargs.insert(sargs.end(), common.begin(), common.end());
  if (unfenced) sargs.push_back("--unfenced");
  pid_t straggler = demo::SpawnSelf(sargs);

  // Drive the straggler and show progress until it is done, the long
  // deduction is done and --seconds have passed.
  const bool tty = isatty(STDOUT_FILENO);
  Clock::time_point stopped_at{}, last_print = start, specials_done{};
  bool stopped = false, resumed = false, straggler_failed = false;
  double frozen_s = 0;
  int64_t stall_fence = 0, overtaken_by = 0, last_sold = 0;
  while (true) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (straggler > 0) {
      int status = 0;
      const pid_t r = waitpid(straggler, &status, WNOHANG | WUNTRACED);
      if (r == straggler && WIFSTOPPED(status)) {
        stopped = true;
        stopped_at = Clock::now();
        auto j = nlohmann::json::parse(data->Str({"GET", k.Key("stall")}),
                                       nullptr, false);
        stall_fence = j.is_object() ? j.value("fence", int64_t{0}) : 0;
        std::cout << (tty ? "\r\033[K" : "")
                  << absl::StrFormat(
                         "  %5.1fs  straggler frozen (SIGSTOP) holding %s with "
                         "fencing token %d, read stock %d\n",
                         demo::SecondsSince(start), kSkus[kStallSku].name,
                         stall_fence,
                         j.is_object() ? j.value("stock_read", 0) : 0);
      } else if (r == straggler) {
        straggler_failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        straggler = -1;
      }
    }
    if (stopped && !resumed) {
      // Resume once its lease has surely expired and a newer holder wrote.
      const int64_t fence = data->Int({"HGET", k.Stock(kStallSku), "fence"});
      const double frozen = demo::SecondsSince(stopped_at);
      if ((fence > stall_fence &&
           frozen > absl::ToDoubleSeconds(policy->ttl) * 1.2) ||
          frozen > 20) {
        overtaken_by = fence;
        frozen_s = frozen;
        kill(straggler, SIGCONT);
        resumed = true;
        std::cout
            << (tty ? "\r\033[K" : "")
            << absl::StrFormat(
                   "  %5.1fs  straggler resumed (SIGCONT) after %.1fs "
                   "frozen; %s was written since under fencing token %d\n",
                   demo::SecondsSince(start), frozen, kSkus[kStallSku].name,
                   fence);
      }
    }
    // Trading goes on for --seconds after both special holders are done, so
    // the run also shows the flow once they are out of the way.
    if (straggler < 0 && data->Int({"EXISTS", k.Key("long")}) == 1) {
      if (specials_done == Clock::time_point{}) specials_done = Clock::now();
      if (demo::SecondsSince(specials_done) >= seconds) break;
    }
    if (demo::SecondsSince(start) > 120) {
      std::cerr << "inventory: gave up waiting after 120s\n";
      if (straggler > 0) kill(straggler, SIGKILL);
      break;
    }
    if (std::chrono::duration<double>(Clock::now() - last_print).count() >=
        (tty ? 0.25 : 1)) {
      int64_t left = 0;
      for (size_t i = 0; i < kSkus.size(); ++i) {
        left += data->Int({"HGET", k.Stock(i), "value"});
      }
      int64_t total = 0;
      for (const Sku& s : kSkus) total += s.initial;
      const double dt =
          std::chrono::duration<double>(Clock::now() - last_print).count();
      std::cout << (tty ? "\r\033[K" : "")
                << absl::StrFormat(
                       "  %5.1fs  units sold %d (%.0f/s)  stock left %d",
                       demo::SecondsSince(start), total - left,
                       (total - left - last_sold) / dt, left)
                << (tty ? "" : "\n") << std::flush;
      last_sold = total - left;
      last_print = Clock::now();
    }
  }
  if (tty) std::cout << "\r\033[K";
  data->Cmd({"SET", k.Key("stop"), "1"});
  const int worker_failures = demo::WaitAll(pids) + (straggler_failed ? 1 : 0);
  const double elapsed = demo::SecondsSince(start);

  // Gather.
  Tally all;
  demo::ReplyPtr tallies = data->Cmd({"HGETALL", k.Key("tallies")});
  for (size_t i = 1; i < tallies->elements; i += 2) {
    auto j = nlohmann::json::parse(demo::ReplyText(*tallies->element[i]),
                                   nullptr, false);
    if (!j.is_object()) continue;
    for (size_t s = 0; s < kSkus.size(); ++s) {
      all.sold[s] += j["sold"][s].get<int64_t>();
      all.deductions[s] += j["deductions"][s].get<int64_t>();
      all.out_of_stock[s] += j["out_of_stock"][s].get<int64_t>();
    }
    all.stale += j["stale"].get<int64_t>();
    all.lost += j["lost"].get<int64_t>();
    all.errors += j["errors"].get<int64_t>();
  }
  auto stall =
      nlohmann::json::parse(data->Str({"GET", k.Key("stall")}), nullptr, false);
  auto longd =
      nlohmann::json::parse(data->Str({"GET", k.Key("long")}), nullptr, false);
  if (!stall.is_object()) stall = nlohmann::json::object();
  if (!longd.is_object()) longd = nlohmann::json::object();
  const lockctl::StatsDump stats =
      demo::CollectStats(*data, k.Key("lockstats"));
  const lock::PolicyStats lib = stats.per_policy.count(kPolicy)
                                    ? stats.per_policy.at(kPolicy)
                                    : lock::PolicyStats{};
  std::array<int64_t, kSkus.size()> final_stock{};
  for (size_t i = 0; i < kSkus.size(); ++i) {
    final_stock[i] = data->Int({"HGET", k.Stock(i), "value"});
  }

  // Clean up this run's keys.
  for (size_t i = 0; i < kSkus.size(); ++i) {
    data->Cmd({"DEL", k.Stock(i),
               absl::StrCat("{", policy->key_prefix, k.LockKey(i), "}:fence")});
  }
  data->Cmd({"DEL", k.Key("stop"), k.Key("stall"), k.Key("long"),
             k.Key("tallies"), k.Key("lockstats")});

  // Report and verify.
  auto yes = [](bool b) { return std::string(b ? "yes" : "no"); };
  std::cout << "\nthe long deduction (worker 0, " << kSkus[kLongSku].name
            << ")\n";
  const bool long_ok =
      longd.value("status", "") == "OK" && !longd.value("lost", true) &&
      longd.value("held_s", 0.0) >= 2 * absl::ToDoubleSeconds(policy->ttl) &&
      lib.renewals > 0;
  demo::Row("held the lock for",
            absl::StrFormat("%.2f s", longd.value("held_s", 0.0)));
  demo::Row("lease (ttl)", absl::FormatDuration(policy->ttl));
  demo::Row("lost", yes(longd.value("lost", true)), !longd.value("lost", true));
  demo::Row("lock::With returned", longd.value("status", "?"),
            longd.value("status", "") == "OK");

  std::cout << "\nthe straggler (frozen while holding " << kSkus[kStallSku].name
            << ")\n";
  const bool stall_refused = stall.value("write_stale_fence", false);
  demo::Row("its fencing token",
            absl::StrCat(stall.value("fence", int64_t{0})));
  demo::Row("frozen for", absl::StrFormat("%.2f s", frozen_s), resumed);
  demo::Row(absl::StrCat(kSkus[kStallSku].name, " written meanwhile by fence"),
            absl::StrCat(overtaken_by),
            overtaken_by > stall.value("fence", int64_t{0}));
  demo::Row("Held::lost() after resuming",
            absl::StrFormat("%s (%s, %.0f ms)", yes(stall.value("lost", false)),
                            stall.value("lost_seen_by", "?"),
                            stall.value("lost_seen_after_ms", 0.0)),
            stall.value("lost", false));
  demo::Row("stop_token requested", yes(stall.value("stop_requested", false)),
            stall.value("stop_requested", false));
  demo::Row("its late write",
            unfenced ? std::string("plain HSET: ") + stall.value("write", "?")
            : stall_refused ? "refused: stale fence"
                            : stall.value("write", "?"),
            unfenced || stall_refused);
  std::cout << "    " << stall.value("with", "") << "\n";

  std::cout << "\nverification\n";
  int64_t oversold = 0;
  bool negative = false;
  for (size_t i = 0; i < kSkus.size(); ++i) {
    const int64_t expect = kSkus[i].initial - all.sold[i];
    oversold += final_stock[i] - expect;  // > 0: units sold twice
    negative |= final_stock[i] < 0;
    demo::Row(absl::StrCat(kSkus[i].name, ": initial - sold = final"),
              absl::StrCat(kSkus[i].initial, " - ", all.sold[i], " = ",
                           final_stock[i]),
              final_stock[i] == expect && final_stock[i] >= 0);
  }
  int64_t deductions = 0, out_of_stock = 0;
  for (size_t i = 0; i < kSkus.size(); ++i) {
    deductions += all.deductions[i];
    out_of_stock += all.out_of_stock[i];
  }
  demo::Row("units oversold", absl::StrCat(oversold), oversold == 0);
  demo::Row("negative stock", negative ? "yes" : "none", !negative);
  demo::Row("holds lost (library stats)", absl::StrCat(lib.lost),
            lib.lost == 1);
  demo::Row("the straggler's late write refused", yes(stall_refused),
            stall_refused);
  demo::Row("long deduction kept by renewal",
            absl::StrCat(yes(long_ok), " (", lib.renewals, " renewals)"),
            long_ok);
  demo::Row("worker processes failed", absl::StrCat(worker_failures),
            worker_failures == 0);
  demo::Row("errors", absl::StrCat(all.errors), all.errors == 0);
  std::cout << "\ndeductions\n";
  demo::Row("accepted", absl::StrCat(deductions));
  demo::Row("out of stock (refused, nothing written)",
            absl::StrCat(out_of_stock));
  demo::Row("throughput",
            absl::StrFormat("%.0f deductions/s", deductions / elapsed));
  demo::Row("elapsed", absl::StrFormat("%.1f s", elapsed));
  demo::PrintLockStats(
      stats,
      absl::StrCat("lock statistics per policy (lock::GetStats() of the ",
                   workers, " workers and the straggler, summed)"));

  const bool ok = oversold == 0 && !negative && lib.lost == 1 &&
                  stall_refused && long_ok && resumed && worker_failures == 0 &&
                  all.errors == 0 && stall.value("lost", false);
  if (ok) {
    std::cout << "\nPASS: no overselling: final stock = initial - accepted "
                 "deductions on "
                 "every SKU, never negative; the stalled holder's late write "
                 "was refused "
                 "(stale fence)\n";
  } else {
    std::cout << "\nFAIL: "
              << (oversold != 0 ? absl::StrCat(oversold, " units oversold")
                                : std::string("see the rows marked FAIL"))
              << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  util::ParseFlags(argc, argv, kUsage);
  const std::string worker = absl::GetFlag(FLAGS_worker);
  if (worker == "straggler") return RunStraggler();
  if (!worker.empty()) return RunWorker();
  return RunCoordinator();
}
