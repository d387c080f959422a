// A run-once job across a fleet: every node's scheduler fires the nightly
// report at about the same time, and exactly one of them must run it.
//
//   bazel run //examples/nightly_job                  # embedded redis-server
//   bazel run //examples/nightly_job -- --no-hold     # what hold_at_least
//   prevents
//
// N node processes each fire lock::With("nightly-report", "nightly-report",
// job) once per period (a night, shrunk to a few seconds), at the period's
// start plus a node-specific delay of up to --skew seconds: clocks and
// schedulers never fire in the same millisecond. The policy says
// on_busy: "skip" — a node that finds the lock taken does not wait, it gets
// lock::IsSkipped and moves on — and hold_at_least: "2s", so the lock stays
// taken for 2s after the job started even though the job itself takes a few
// hundred milliseconds: a node whose scheduler fires after the job already
// finished is skipped too, instead of running the report a second time.
//
// Verification: every period has exactly one run and N−1 skips, fencing
// tokens of the runs increase, no errors, and the library's statistics agree.
// --no-hold uses a policy without hold_at_least: late nodes then run the job
// again, the verification says so and the program exits 1.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "examples/common/demo.h"
#include "examples/common/redis_data.h"
#include "lock/lock.h"
#include "nlohmann/json.hpp"
#include "policy/registry.h"
#include "tools/lockctl/stats_dump.h"
#include "util/flags.h"

ABSL_FLAG(int, nodes, 5, "nodes (processes) running the job's schedule");
ABSL_FLAG(int, periods, 3, "periods the schedule runs");
ABSL_FLAG(double, period, 3, "seconds between two firings");
ABSL_FLAG(double, skew, 1, "seconds over which the nodes' firings spread");
ABSL_FLAG(int, job_ms, 300, "how long one run of the job takes");
ABSL_FLAG(bool, no_hold, false,
          "use a policy without hold_at_least (late nodes then run the job "
          "again)");
ABSL_FLAG(std::string, policy, "nightly-report",
          "internal: the policy the nodes lock with (the coordinator sets "
          "it)");

namespace {

constexpr char kProgram[] = "nightly_job";
constexpr char kJob[] = "nightly-report";
constexpr char kUsage[] =
    "nightly_job [--nodes N] [--periods N] [--period S] [--skew S] [--job-ms "
    "MS]\n"
    "                   [--no-hold] [--redis host:port] [--config "
    "policies.json]";

struct Keys {
  std::string run;
  std::string LockKey() const { return absl::StrCat(run, ":", kJob); }
  std::string Outcomes() const {
    return absl::StrCat("nightly:", run, ":outcomes");
  }
  std::string Stats() const {
    return absl::StrCat("nightly:", run, ":lockstats");
  }
  // The start barrier: each node pushes itself onto Ready() once it can
  // lock, and pops period 0's time (Unix ms) from Start().
  std::string Ready() const { return absl::StrCat("nightly:", run, ":ready"); }
  std::string Start() const { return absl::StrCat("nightly:", run, ":start"); }
  static std::string Field(int period, int node) {
    return absl::StrCat(period, ":", node);
  }
};

struct Schedule {
  int nodes = 5;
  int periods = 3;
  double period_s = 3;
  double skew_s = 1;
  int job_ms = 300;
  int64_t start_ms = 0;  // wall clock (Unix ms) of period 0

  // Nodes fire spread evenly over the skew, in an order that rotates every
  // period, so each period has another first node and late ones for sure.
  double OffsetS(int node, int period) const {
    if (nodes <= 1) return 0;
    return ((node + period) % nodes) * skew_s / (nodes - 1);
  }
  absl::Time FireAt(int period) const {
    return absl::FromUnixMillis(start_ms) + absl::Seconds(period * period_s);
  }
};

Schedule ScheduleFromFlags() {
  Schedule s;
  s.nodes = util::FlagAtLeast(FLAGS_nodes, 1);
  s.periods = util::FlagAtLeast(FLAGS_periods, 1);
  s.period_s = util::FlagAtLeast(FLAGS_period, 0);
  s.skew_s = util::FlagAtLeast(FLAGS_skew, 0);
  s.job_ms = util::FlagAtLeast(FLAGS_job_ms, 1);
  return s;
}

// ---- node process -----------------------------------------------------------

int RunNode() {
  const int node = demo::WorkerNumber();
  Schedule sched = ScheduleFromFlags();
  const std::string policy = absl::GetFlag(FLAGS_policy);
  const std::string config = absl::GetFlag(FLAGS_config);
  if (absl::Status s = lock::Init(config); !s.ok()) {
    std::cerr << "nightly_job node: " << s << "\n";
    return 1;
  }
  const policy::RedisTarget target = demo::LoadTarget(kProgram, config);
  const Keys k{absl::GetFlag(FLAGS_run)};
  auto data = demo::Data::Connect(kProgram, target);
  demo::StatsPublisher publisher(kProgram, target, k.Stats(),
                                 absl::StrCat("node-", node),
                                 absl::Milliseconds(250));
  // Period 0 is set once every node is ready, so that a slow start (a busy
  // machine) shifts the whole schedule rather than bunching the firings.
  data->Cmd({"RPUSH", k.Ready(), absl::StrCat(node)});
  demo::ReplyPtr start;
  for (int i = 0; i < 6 && (start == nullptr || start->type != REDIS_REPLY_ARRAY); ++i) {
    start = data->Cmd({"BLPOP", k.Start(), "5"});
  }
  if (start->type != REDIS_REPLY_ARRAY || start->elements != 2) {
    std::cerr << "nightly_job node " << node << ": no start time within 30s\n";
    return 1;
  }
  sched.start_ms = demo::IntOf(*start->element[1]);
  for (int p = 0; p < sched.periods; ++p) {
    // The node's scheduler (cron, a timer) fires by the wall clock.
    const absl::Time fire = sched.FireAt(p);
    absl::SleepFor(fire + absl::Seconds(sched.OffsetS(node, p)) - absl::Now());
    const double at_s = absl::ToDoubleSeconds(absl::Now() - fire);
    nlohmann::json out = {{"node", node}, {"at_s", at_s}};
    absl::Status s = lock::With(policy, k.LockKey(), [&](lock::Held& held) {
      out["fence"] = held.fencing_token();
      out["started_s"] = absl::ToDoubleSeconds(absl::Now() - fire);
      // The report itself; a long one would watch held.stop_token().
      std::this_thread::sleep_for(std::chrono::milliseconds(sched.job_ms));
      out["finished_s"] = absl::ToDoubleSeconds(absl::Now() - fire);
      return absl::OkStatus();
    });
    if (s.ok()) {
      out["outcome"] = "ran";
    } else if (lock::IsSkipped(s)) {
      out["outcome"] = "skipped";
    } else {
      out["outcome"] = "error";
      out["error"] = s.ToString();
    }
    data->Cmd({"HSET", k.Outcomes(), Keys::Field(p, node), out.dump()});
  }
  publisher.Stop();
  lock::Shutdown();
  return 0;
}

// ---- coordinator ------------------------------------------------------------

int RunCoordinator() {
  Schedule sched = ScheduleFromFlags();
  const bool no_hold = absl::GetFlag(FLAGS_no_hold);
  const std::string policy_name = no_hold ? "nightly-report-no-hold" : kJob;
  auto env = demo::Environment::Prepare(
      kProgram, "examples/nightly_job/policies.json",
      absl::GetFlag(FLAGS_config), absl::GetFlag(FLAGS_redis));
  auto registry = policy::Registry::Load(env->worker_config());
  if (!registry.ok()) {
    std::cerr << "nightly_job: " << registry.status() << "\n";
    return 1;
  }
  const auto policy = (*registry)->FindPolicy(policy_name);
  if (policy == nullptr) {
    std::cerr << "nightly_job: the configuration has no policy \""
              << policy_name << "\"\n";
    return 1;
  }
  const double hold_s = absl::ToDoubleSeconds(policy->hold_at_least);
  std::cout << "nightly_job: " << sched.nodes << " nodes fire \"" << kJob
            << "\" every " << sched.period_s << "s for " << sched.periods
            << (sched.periods == 1 ? " period" : " periods") << ", up to "
            << sched.skew_s << "s apart, on redis " << env->Describe() << "\n"
            << "  policy " << policy_name << ": on_busy "
            << policy::OnBusyName(policy->on_busy) << ", hold_at_least "
            << absl::FormatDuration(policy->hold_at_least) << ", ttl "
            << absl::FormatDuration(policy->ttl) << "; the job takes "
            << sched.job_ms << "ms\n";
  if (policy->on_busy != policy::OnBusy::kSkip) {
    std::cout
        << "  note: on_busy is not \"skip\": busy nodes wait or fail instead\n";
  }
  if (hold_s <= sched.skew_s) {
    std::cout << "  note: hold_at_least <= skew: a node firing after the job "
                 "finished "
                 "runs it again\n";
  }
  if (hold_s >= sched.period_s) {
    std::cout
        << "  note: hold_at_least >= period: the next period's run would be "
           "skipped\n";
  }

  const Keys k{demo::NewRunId()};
  auto data = demo::Data::Connect(kProgram, env->target());
  std::vector<pid_t> pids;
  for (int n = 0; n < sched.nodes; ++n) {
    pids.push_back(demo::SpawnSelf(
        {kProgram, absl::StrCat("--worker=", n),
         absl::StrCat("--nodes=", sched.nodes),
         absl::StrCat("--periods=", sched.periods),
         absl::StrCat("--period=", sched.period_s),
         absl::StrCat("--skew=", sched.skew_s),
         absl::StrCat("--job-ms=", sched.job_ms),
         "--policy=" + policy_name,
         "--config=" + env->worker_config(), "--run=" + k.run}));
  }
  // Period 0 fires shortly after every node is ready (or after 25s, with
  // the nodes that are: the verification reports the missing ones).
  const absl::Time ready_by = absl::Now() + absl::Seconds(25);
  while (data->Int({"LLEN", k.Ready()}) < sched.nodes && absl::Now() < ready_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sched.start_ms = absl::ToUnixMillis(absl::Now() + absl::Milliseconds(300));
  for (int n = 0; n < sched.nodes; ++n) {
    data->Cmd({"RPUSH", k.Start(), absl::StrCat(sched.start_ms)});
  }

  // Each period's outcome, once every node has reported (or the period ended).
  int good_periods = 0, skipped = 0, errors = 0, late_skips = 0,
      duplicate_periods = 0;
  int64_t last_fence = 0;
  bool fences_increase = true;
  for (int p = 0; p < sched.periods; ++p) {
    const absl::Time deadline = sched.FireAt(p) + absl::Seconds(sched.period_s);
    std::vector<nlohmann::json> got;
    while (true) {
      got.clear();
      for (int n = 0; n < sched.nodes; ++n) {
        const std::string v =
            data->Str({"HGET", k.Outcomes(), Keys::Field(p, n)});
        if (!v.empty()) got.push_back(nlohmann::json::parse(v, nullptr, false));
      }
      if (static_cast<int>(got.size()) == sched.nodes || absl::Now() > deadline)
        break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::sort(got.begin(), got.end(),
              [](const nlohmann::json& a, const nlohmann::json& b) {
                return a.value("at_s", 0.0) < b.value("at_s", 0.0);
              });
    std::vector<std::string> ran, skips, errs;
    double finished = 1e9;
    for (const nlohmann::json& o : got) {
      if (o.value("outcome", "") == "ran")
        finished = std::min(finished, o.value("finished_s", 0.0));
    }
    for (const nlohmann::json& o : got) {
      const std::string who = absl::StrCat("node-", o.value("node", -1));
      const std::string outcome = o.value("outcome", "");
      if (outcome == "ran") {
        const int64_t fence = o.value("fence", int64_t{0});
        if (fence <= last_fence) fences_increase = false;
        last_fence = fence;
        ran.push_back(absl::StrFormat(
            "%s (fired +%.2fs, ran +%.2fs..+%.2fs, fencing token %d)", who,
            o.value("at_s", 0.0), o.value("started_s", 0.0),
            o.value("finished_s", 0.0), fence));
      } else if (outcome == "skipped") {
        const bool late = o.value("at_s", 0.0) > finished;
        late_skips += late;
        skips.push_back(absl::StrFormat("%s +%.2fs%s", who,
                                        o.value("at_s", 0.0),
                                        late ? " (job already done)" : ""));
      } else {
        errs.push_back(absl::StrCat(who, ": ", o.value("error", "no report")));
      }
    }
    errs.resize(errs.size() + (sched.nodes - got.size()),
                "a node did not report");
    skipped += skips.size();
    errors += errs.size();
    if (ran.size() == 1) ++good_periods;
    if (ran.size() > 1) ++duplicate_periods;
    std::cout << absl::StrFormat(
        "  period %d: %s\n", p + 1,
        ran.size() == 1 ? "ran once"
        : ran.empty()   ? "NOT RUN"
                        : absl::StrCat("RAN ", ran.size(), " TIMES"));
    for (const std::string& r : ran) std::cout << "    ran: " << r << "\n";
    if (!skips.empty()) {
      std::cout << "    skipped (IsSkipped): " << absl::StrJoin(skips, ", ")
                << "\n";
    }
    for (const std::string& e : errs) std::cout << "    error: " << e << "\n";
  }
  const int failed_nodes = demo::WaitAll(pids);
  const lockctl::StatsDump stats = demo::CollectStats(*data, k.Stats());
  const lock::PolicyStats lib = stats.per_policy.count(policy_name)
                                    ? stats.per_policy.at(policy_name)
                                    : lock::PolicyStats{};
  // The lock itself expires after hold_at_least; the fencing counter never
  // does, so this run's is removed.
  data->Cmd({"DEL", k.Outcomes(), k.Stats(), k.Ready(), k.Start(),
             absl::StrCat("{", policy->key_prefix, k.LockKey(), "}:fence")});

  const int want_skips = sched.periods * (sched.nodes - 1);
  const bool stats_agree = lib.acquired == sched.periods &&
                           lib.skipped == want_skips && lib.errors == 0 &&
                           lib.lost == 0;
  std::cout << "\nverification\n";
  demo::Row("periods with exactly one run",
            absl::StrCat(good_periods, "/", sched.periods),
            good_periods == sched.periods);
  demo::Row("skipped (lock::IsSkipped)", absl::StrCat(skipped, "/", want_skips),
            skipped == want_skips);
  demo::Row("  skipped after the job had finished", absl::StrCat(late_skips));
  demo::Row("fencing tokens of the runs increase",
            fences_increase ? "yes" : "no", fences_increase);
  demo::Row("errors", absl::StrCat(errors), errors == 0);
  demo::Row("node processes failed", absl::StrCat(failed_nodes),
            failed_nodes == 0);
  demo::Row("lock stats agree (acquired, skipped)",
            absl::StrCat(lib.acquired, ", ", lib.skipped), stats_agree);
  demo::PrintLockStats(
      stats,
      absl::StrCat("lock statistics per policy (lock::GetStats() of the ",
                   sched.nodes, " nodes, summed)"));
  const bool ok = good_periods == sched.periods && skipped == want_skips &&
                  errors == 0 && failed_nodes == 0 && fences_increase &&
                  stats_agree;
  if (ok) {
    std::cout << "\nPASS: exactly one node ran the job in every period; the "
                 "others were "
                 "skipped (lock::IsSkipped)\n";
  } else if (duplicate_periods > 0) {
    std::cout << "\nFAIL: the job ran more than once in " << duplicate_periods
              << " of " << sched.periods << " periods"
              << (hold_s <= sched.skew_s
                      ? " (hold_at_least is shorter than the skew)"
                      : "")
              << "\n";
  } else {
    std::cout << "\nFAIL: see the rows marked FAIL\n";
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  util::ParseFlags(argc, argv, kUsage);
  if (!absl::GetFlag(FLAGS_worker).empty()) return RunNode();
  return RunCoordinator();
}
