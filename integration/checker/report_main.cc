// report: renders RELIABILITY.md from what tools/reliability recorded.
//
//   report --scenarios=scenarios.jsonl --fuzz=fuzz.jsonl
//          --tests=tests.jsonl --command="tools/reliability --short"
//          > RELIABILITY.md
//
// scenarios.jsonl: one driver summary line per scenario (driver --summary).
// fuzz.jsonl:      {"fuzzer", "seconds", "runs", "seeds", "new_units",
//                   "status", "detail"} per fuzzer.
// tests.jsonl:     {"target", "status"} per Bazel test target.
// Every number in the document comes from these files; the prose around
// them is fixed here, next to the code that produces the numbers.
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "util/flags.h"

ABSL_FLAG(std::string, scenarios, "",
          "driver summary lines, one per scenario (driver --summary)");
ABSL_FLAG(std::string, fuzz, "", "the fuzzers' JSON lines");
ABSL_FLAG(std::string, tests, "", "the test targets' JSON lines");
ABSL_FLAG(std::string, command, "tools/reliability",
          "the command the document says produced it");

namespace {

std::vector<nlohmann::json> ReadLines(const std::string& path) {
  std::vector<nlohmann::json> out;
  if (path.empty()) return out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) out.push_back(std::move(j));
  }
  return out;
}

// A field as text, "" when absent; numbers without quotes.
std::string F(const nlohmann::json& j, const std::string& path) {
  const nlohmann::json* cur = &j;
  for (const auto& part : absl::StrSplit(path, '.')) {
    const std::string p(part);
    if (!cur->is_object() || !cur->contains(p)) return "";
    cur = &(*cur)[p];
  }
  if (cur->is_string()) return cur->get<std::string>();
  if (cur->is_null()) return "";
  return cur->dump();
}

std::string Cell(std::string s) {
  return absl::StrReplaceAll(s, {{"|", "\\|"}, {"\n", " "}});
}

// Rows of summaries written before kinds existed are mutex runs.
std::string Kind(const nlohmann::json& row) {
  const std::string kind = F(row, "kind");
  return kind.empty() ? "mutex" : kind;
}

const nlohmann::json* Find(const std::vector<nlohmann::json>& rows,
                           const std::string& scenario) {
  for (const auto& r : rows) {
    if (F(r, "scenario") == scenario) return &r;
  }
  return nullptr;
}

constexpr char kFencing[] = R"md(
## What fencing does and does not guarantee

Every fresh acquisition issues `max(last token + 1, Redis server clock in
microseconds)`, keeps it in `{P K}:fence` for `fencing_retention` (default
24h), and `Held::fencing_token()` returns it; `lock::FencedSet` refuses a
write whose token is lower than the highest one that already wrote the
resource (`IsStaleFence`). A holder that was paused past its lease (GC,
SIGSTOP, a partition) still *believes* it holds the lock until it runs again;
fencing is what stops its late write. The `sigstop` and `partition` rows show
exactly that: the paused holder is told it lost the lock and its late write
is refused.

What it guarantees, as measured above:

- **Tokens strictly increase per key**, across release, lease expiry, expiry
  of the fence record, and restarts with or without persistence, as long as
  the server clock does not step backwards (and a promoted replica's clock is
  not behind the old master's by more than the failover took).
  `restart_aof`: RESTART_AOF. `restart_nopersist`: RESTART_NOPERSIST.
- **A stale holder's write through `FencedSet` is refused**, and no fresh
  holder's write is (`stale_write_accepted` / `fresh_write_rejected` are zero
  in every row without a documented exception).

What it does **not** guarantee:

- **The resource's own data across a restart without persistence.** The
  tokens survive (they follow the clock), but a resource hash kept in the
  same Redis is lost with everything else, so its values are written again
  (`duplicate_value`), and a pre-restart holder's write can land on the empty
  resource (`stale_write_accepted`); counter gaps and a final state that
  no surviving write explains follow (`value_gap`, `final_state`). These are
  the violations the `restart_nopersist` row expects; its violations column
  names the kinds this run found. Keep resources in a store with
  persistence, or run Redis with `appendonly yes`.
- **Protection of reads.** Fencing guards writes that go through a
  token check. A stale holder that read, paused, and then wrote through an
  unfenced path can still lose an update; the checker's `duplicate_value`
  rule would show it.
- **Failover.** Asynchronous replication can lose an acknowledged lock when
  a replica is promoted. The sentinel row runs with `min_replicas_ack` 1,
  which narrows that window (an acquire not acknowledged by enough replicas
  in time is given back as UNAVAILABLE) but cannot close it. Tokens do not
  depend on the replicated fence record: the clock carries them past a lost
  write.
)md";

// The kind rows: which rules of checker.h each kind's scenarios add.
constexpr char kKinds[] = R"md(Rows named `semaphore_*`, `rw_*` and `fair_*` run the mutex scenario of
the same fault (`kill9`, `sigstop`, ...) against a policy of that kind
(column *kind*); the workers log each section's kind, and the checker
applies the kind's rules to its keys:

- **semaphore** (3 permits, one key so that they are always contended):
  sections hold no token and write nothing. `over_permits`: never more than
  3 sections inside at once in Redis TIME among holders not told they lost.
  A holder killed inside counts until the end of the lease it saw in Redis
  on entering (for every kind, mutex included), so a permit handed out
  before the dead holder's lease ended is caught; `semaphore_kill9` also
  checks that the others held the 2 remaining permits meanwhile and all 3
  again after the lease ended (no leak).
- **read_write** (3 calls in 4 are reads): `overlap` applies to every pair
  where one side is a write (writer/reader, writer/writer); reads only read,
  writes go through `FencedSet` with the write side's token under the mutex
  rules (`fence_order`, `stale_write_accepted`, ...). Measured: the most
  readers inside at once (a check requires at least 2) and the longest
  writer wait; every write call must enter (writers are not starved).
- **fair**: the mutex rules, plus `order`: for two sections A and B where
  B's call began more than 5 ms after A's and A entered more than 5 ms after
  B's call began (A was queued first and still waiting), A entered first.
  Sections that died, were told they lost, or waited while their process
  was stopped or cut off are not judged; the number of pairs judged is
  reported and must be above zero.

)md";

constexpr char kTls[] = R"md(
## Transport security

A Redis target with a `"tls"` block (docs/POLICIES.md) talks TLS (OpenSSL;
TLS 1.2 or later) to every node, sentinel and cluster node: the server's
certificate is verified against `ca_file` (or the system's trust store) and
its name against the address's host or `server_name`; a client certificate
(`cert_file`, `key_file`) serves servers with `tls-auth-clients yes`. hiredis
0.14.1 has no TLS, so the library does the socket and TLS I/O itself and
keeps hiredis' reader for parsing. `//lock:tls_test` runs every case against
TLS redis-servers (wrong CA, wrong host, expired certificate, missing client
certificate, plaintext and TLS on the wrong port, a restart under a held
lock, Sentinel failover and Cluster MOVED over TLS). Without `"tls"`, lock
traffic, the AUTH password and owner tokens cross the network in clear text:
use loopback, a unix socket or a private network. Passwords come only from
the environment (`password_env`, `sentinel_password_env`) and never appear
in errors or in `lockctl explain` (`//integration/hostile:security_test`).
)md";

constexpr char kFindings[] = R"md(
## Findings and known gaps

- **Huge array announcements reserved memory up front (fixed).** A reply
  `*700000000\r\n` (13 bytes) made hiredis 0.14 allocate the 5.6 GB element
  table before any element arrived. Only a hostile or corrupted server (or a
  host on the path of a connection without TLS) can send it. `lock/redis/connection.cc`
  now gives every context's reader a `createArray` that refuses more than
  65,536 elements (lock replies have at most five), so such a reply is a
  reader error: the call fails with `kUnavailable` ("reply rejected") and the
  connection is discarded. `//integration/hostile:huge_reply_test` (table
  above) checks that error, the discarded connection and that peak virtual
  memory grows by less than 256 MiB; the reply fuzzer reads with the same
  bound (`integration/fuzz/reply_fuzzer.cc`; the input is kept as
  `corpus/reply/known_huge_array_announcement`).
- **Script replies are interpreted in private helpers.** The shapes of the
  acquire, release, extend, inspect and fenced_set replies are checked inside
  `redis_lock.cc` and `lock.cc`, reachable only over a live connection, so
  the reply fuzzer covers hiredis' reader and `ServerError` but not them.
  Moving them into pure functions (say `lock/redis/replies.h`:
  `ParseAcquireReply(const redisReply&)` and friends) would let the fuzzer
  feed them every reply the reader can produce.
)md";

}  // namespace

int main(int argc, char** argv) {
  util::ParseFlags(
      argc, argv,
      "renders RELIABILITY.md (to stdout) from the suite's JSON "
      "lines.\n"
      "  report --scenarios=scenarios.jsonl --fuzz=fuzz.jsonl "
      "--tests=tests.jsonl --command=\"tools/reliability --short\"");
  const std::string command = absl::GetFlag(FLAGS_command);
  const auto scenarios = ReadLines(absl::GetFlag(FLAGS_scenarios));
  const auto fuzz = ReadLines(absl::GetFlag(FLAGS_fuzz));
  const auto tests = ReadLines(absl::GetFlag(FLAGS_tests));

  std::ostringstream md;
  md << "# Reliability and security\n\n"
     << "Generated by the reliability suite; do not edit by hand. "
        "Regenerate with:\n\n```sh\n" << command << "\n```\n\n"
     << "(`--short` fits in a few minutes on 2 cores; `--long` is the soak.) "
        "Every figure below comes from that run: the fault scenarios of "
        "`//integration/checker:driver` under the history checker, the "
        "fuzzers of `integration/fuzz`, and the hostile-input and security "
        "tests of `integration/hostile`.\n\n";

  md << "## Fault scenarios\n\n"
     << "Each row is one driver run: P processes × T threads calling "
        "`lock::With` on K keys; inside, each critical section reads Redis "
        "`TIME` and the lock's owner, reads a per-key counter and writes "
        "counter+1 with `lock::FencedSet` under its fencing token. A victim "
        "holder tells the driver when it is inside a critical section, and "
        "the fault is injected at that moment. The checker "
        "(`integration/checker/checker.h`) then verifies that no two "
        "critical sections on a key overlapped in Redis TIME unless one was "
        "told it lost the lock, that fencing tokens strictly increased in "
        "acquisition order (a section whose `lock::With` call began after "
        "another had entered holds a higher token), that every stale fenced "
        "write was refused and no "
        "fresh one, that no counter update was lost or duplicated, and that "
        "the operation counts add up.\n\n"
     << kKinds
     << "| scenario | kind | fault | result | operations | critical sections | "
        "violations | losses signalled | stale writes rejected | stale writes "
        "accepted | writes of unknown outcome |\n"
     << "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : scenarios) {
    const std::string status = F(r, "status");
    if (status == "todo" || status == "skipped") {
      md << "| " << F(r, "scenario") << " | " << Kind(r) << " | " << Cell(F(r, "fault"))
         << " | " << status << ": " << Cell(F(r, "reason")) << " | | | | | | | |\n";
      continue;
    }
    std::string violations = F(r, "report.violations");
    const std::string documented = F(r, "expected_violation_kinds");
    if (!documented.empty() && documented != "[]") {
      violations = absl::StrCat(violations, " (", F(r, "unexpected_violations"),
                                " unexpected; documented: ",
                                absl::StrReplaceAll(documented, {{"\"", ""}}), ")");
    }
    md << "| " << F(r, "scenario") << " | " << Kind(r) << " | " << Cell(F(r, "fault"))
       << " | " << status << " | " << F(r, "report.operations") << " | "
       << F(r, "report.entered") << " | " << Cell(violations) << " | "
       << F(r, "report.losses_signalled") << " | "
       << F(r, "report.stale_writes_rejected") << " | "
       << F(r, "report.stale_writes_accepted") << " | "
       << F(r, "report.writes_unknown") << " |\n";
  }
  if (!scenarios.empty()) {
    const auto& r = scenarios.front();
    md << "\nRun size: " << F(r, "processes") << " processes × "
       << F(r, "threads") << " threads × " << F(r, "keys") << " keys, "
       << F(r, "seconds") << " s per scenario, lease (ttl) " << F(r, "ttl_ms")
       << " ms, script_timeout 200 ms; Redis is one standalone redis-server "
          "started by the harness, except for the rows whose fault names a "
          "Sentinel or Cluster fleet (`RedisFleet`).\n";
  }
  md << "\n### Scenario checks and measurements\n\n";
  for (const auto& r : scenarios) {
    if (!r.contains("checks")) continue;
    md << "**" << F(r, "scenario") << "** (" << F(r, "status") << ")\n\n";
    for (const auto& c : r["checks"]) {
      md << "- " << (c.value("ok", false) ? "ok" : "**FAILED**") << ": "
         << F(c, "name") << " — " << Cell(F(c, "detail")) << "\n";
    }
    if (r.contains("measures")) {
      for (const auto& [k, v] : r["measures"].items()) {
        md << "- measured " << k << ": "
           << (v.is_string() ? v.get<std::string>() : v.dump()) << "\n";
      }
    }
    const std::string results = F(r, "report.results");
    if (!results.empty()) md << "- results of `lock::With`: `" << results << "`\n";
    md << "\n";
  }

  std::string restart_aof = "not run", restart_nopersist = "not run";
  if (const auto* r = Find(scenarios, "restart_aof")) {
    restart_aof = absl::StrCat(
        "fence record before the restart → first token after: ",
        F(*r, "measures.fence_counter_before_restart_to_first_token_after"),
        "; keys whose tokens went backwards: ",
        F(*r, "measures.keys_whose_tokens_went_backwards"));
  }
  if (const auto* r = Find(scenarios, "restart_nopersist")) {
    restart_nopersist = absl::StrCat(
        "fence record before the restart → first token after: ",
        F(*r, "measures.fence_counter_before_restart_to_first_token_after"),
        "; keys whose tokens went backwards: ",
        F(*r, "measures.keys_whose_tokens_went_backwards"), " of ",
        F(*r, "keys"), "; stale writes accepted: ",
        F(*r, "report.stale_writes_accepted"));
  }
  md << absl::StrReplaceAll(kFencing, {{"RESTART_AOF", restart_aof},
                                       {"RESTART_NOPERSIST", restart_nopersist}});

  md << "\n## Fuzzing\n\n"
     << "libFuzzer targets built with clang 14 (`-fsanitize=fuzzer,address`) "
        "by `tools/reliability`, each run for a bounded time from its seed "
        "corpus in `integration/fuzz/corpus/`; `bazel test "
        "//integration/fuzz/...` replays the corpora with the normal "
        "toolchain.\n\n"
     << "| fuzzer | what it feeds | seconds | executions | seed inputs | new "
        "coverage units | result |\n|---|---|---:|---:|---:|---:|---|\n";
  for (const auto& f : fuzz) {
    const std::string name = F(f, "fuzzer");
    const std::string what =
        name == "policy"
            ? "`policy::ParseConfig` (one source or two merged); accepted "
              "configs must round-trip through `ExplainSnapshot` unchanged "
              "and never render a password"
            : "hiredis reader (`redisReaderFeed`/`GetReply`, any chunking) "
              "then `ReplyText` and `ServerError` on every reply";
    std::string result = F(f, "status");
    if (!F(f, "detail").empty()) result += ": " + F(f, "detail");
    md << "| " << name << " | " << what << " | " << F(f, "seconds") << " | "
       << F(f, "runs") << " | " << F(f, "seeds") << " | " << F(f, "new_units")
       << " | " << Cell(result) << " |\n";
  }
  if (fuzz.empty()) md << "| (not run in this invocation) | | | | | | |\n";

  md << "\n## Hostile inputs and security tests\n\n"
     << "`//integration/hostile:hostile_test` calls `lock::Locker::With` "
        "with empty, 256-byte, 1 MiB, binary, newline- and brace-containing "
        "keys, an unknown policy, a Redis that is down, a missing unix "
        "socket, no password and a wrong one, an ACL user without EVALSHA, "
        "an ACL user limited to the policy's key prefix (works inside, is "
        "refused outside) and a read-only replica. Each must return one exact "
        "code with a message naming the problem, never run the critical "
        "section, never echo a secret, and leave no lock key on any server. "
        "`//integration/hostile:security_test` checks that 10^6 owner tokens "
        "are distinct with every one of their 128 random bits fair, that "
        "forked processes never repeat a token, that release and extend with "
        "a wrong token change nothing and return IsNotHeld, and that "
        "passwords never reach errors, `ExplainTarget` or `lockctl "
        "explain`/`validate`. `//integration/hostile:huge_reply_test` pins "
        "the fix of the first finding below.\n\n"
     << "| test target | result |\n|---|---|\n";
  bool known = false;
  for (const auto& t : tests) {
    if (t.value("known_bug", false)) {
      known = true;
      continue;
    }
    md << "| `" << F(t, "target") << "` | " << F(t, "status") << " |\n";
  }
  if (tests.empty()) md << "| (not run in this invocation) | |\n";
  if (known) {
    md << "\nLibrary bugs found by this suite and not fixed yet have regression "
          "tests that fail until the fix lands (tagged `manual`, outside "
          "`bazel test //...`; see the findings below):\n\n"
       << "| known-bug test | result | measured |\n|---|---|---|\n";
    for (const auto& t : tests) {
      if (!t.value("known_bug", false)) continue;
      const std::string status = F(t, "status");
      md << "| `" << F(t, "target") << "` | "
         << (status == "FAILED" ? "FAILED (bug still present)"
                                : status + " (fixed: drop the manual tag)")
         << " | " << Cell(F(t, "detail")) << " |\n";
    }
  }

  md << kTls << kFindings;
  std::cout << md.str();
  return 0;
}
