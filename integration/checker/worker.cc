#include "integration/checker/worker.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "integration/checker/checker.h"
#include "integration/checker/data_connection.h"
#include "integration/checker/history.h"
#include "integration/checker/workload.h"
#include "integration/harness/partition.h"
#include "lock/internal/keys.h"
#include "lock/lock.h"
#include "lock/redis/reply.h"
#include "nlohmann/json.hpp"

namespace lock::checker::driver {
namespace {

using redis::ReplyPtr;

WriteOutcome Classify(const absl::Status& s) {
  if (s.ok()) return WriteOutcome::kAccepted;
  if (lock::IsStaleFence(s)) return WriteOutcome::kRejected;
  if (absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s)) {
    return WriteOutcome::kUnknown;  // sent, maybe applied, no reply
  }
  return WriteOutcome::kFailed;  // an error reply: refused by the server
}

// What Redis says of a section's hold right after it entered: whether its
// owner token is the holder (the owner hash of an exclusive hold, a member
// of the holders / readers ZSET of a shared one), and when its lease ends.
struct HoldSeen {
  bool checked = false, verified = false;
  int64_t lease_end_redis_us = -1;
};

HoldSeen SeeHold(DataConnection& data, const std::string& run, const Op& op,
                 int64_t now_redis_us) {
  const std::string prefix = KeyPrefix(run);
  HoldSeen seen;
  if (op.kind == "semaphore" || op.read) {
    // ZSET member -> end of its lease, ms on the server clock.
    const std::string zset = op.read ? internal::ReadWriteKeys(prefix, op.key).readers()
                                     : internal::SemaphoreKeys(prefix, op.key).holders();
    absl::StatusOr<ReplyPtr> r = data.Cmd({"ZSCORE", zset, op.owner});
    if (!r.ok()) return seen;
    seen.checked = true;
    int64_t end_ms = 0;
    seen.verified = (*r)->type == REDIS_REPLY_STRING &&
                    absl::SimpleAtoi(redis::ReplyText(**r), &end_ms);
    if (seen.verified) seen.lease_end_redis_us = end_ms * 1000;
    return seen;
  }
  const std::string hash = op.kind == "fair"         ? internal::FairKeys(prefix, op.key).owner()
                           : op.kind == "read_write" ? internal::ReadWriteKeys(prefix, op.key).writer()
                                                     : OwnerKey(run, op.key);
  if (auto r = data.Cmd({"HGET", hash, "owner"}); r.ok()) {
    seen.checked = true;
    seen.verified = (*r)->type == REDIS_REPLY_STRING && redis::ReplyText(**r) == op.owner;
  }
  // TIME was read before PTTL, so TIME + PTTL is at most the real end.
  if (auto r = data.Cmd({"PTTL", hash});
      seen.verified && now_redis_us >= 0 && r.ok() && (*r)->type == REDIS_REPLY_INTEGER &&
      (*r)->integer >= 0) {
    seen.lease_end_redis_us = now_redis_us + (*r)->integer * 1000;
  }
  return seen;
}

}  // namespace

int RunWorker(const Flags& f) {
  if (!f.netns.empty()) {  // before any thread exists
    if (absl::Status s = harness::EnterNetworkNamespace(f.netns); !s.ok()) {
      std::cerr << "driver worker " << f.worker << ": " << s.message() << "\n";
      return 2;
    }
  }
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
  const nlohmann::json& policy = config["policies"][kPolicy];
  const std::string kind = policy.value("kind", "mutex");
  const int permits = policy.value("permits", 0);
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
  // The first call of a process connects and loads scripts, so its request
  // reaches Redis long after the call began; one unlogged call first keeps
  // that out of the timing the checker judges (fair order).
  (void)lock::With(kPolicy, "warmup", [](lock::Held&) { return absl::OkStatus(); });
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
        op.kind = kind;
        op.permits = permits;
        // The victim's section is the fault's target: on read_write it is a
        // write, so that a paused writer's late write meets fencing.
        const bool victim_turn = victim && !victim_done &&
                                 SteadyNs() >= start + int64_t{f.victim_after_ms} * 1'000'000;
        op.read = kind == "read_write" && !victim_turn && rng() % 4 != 0;
        // Semaphore permits and read holds are shared: no token, no write.
        const bool writes = kind != "semaphore" && !op.read;
        const std::string resource = ResourceKey(f.run, op.key);
        op.call_steady_ns = SteadyNs();
        auto section = [&](lock::Held& held) {
          op.entered = true;
          op.fence = held.fencing_token();
          op.owner = held.owner_token();
          op.enter_steady_ns = SteadyNs();
          op.enter_redis_us = data.TimeUs();
          const HoldSeen seen = SeeHold(data, f.run, op, op.enter_redis_us);
          op.owner_checked = seen.checked;
          op.owner_verified = seen.verified;
          op.lease_end_redis_us = seen.lease_end_redis_us;
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
          if (victim_turn) {
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
          } else if (kind == "fair") {
            // Long enough that waiters queue for tens of ms: the order rule
            // judges only waits that outlast its margin (checker.h), so that
            // no scheduling stall of a loaded machine reads as a reordering.
            SleepMs(8 + static_cast<int64_t>(rng() % 5));
          } else {
            // Shared holds stay a little longer, so that they meet.
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % (writes ? 500 : 2000)));
          }
          if (!writes) return finish();
          op.write_value = value + 1;
          op.write_begin_steady_ns = SteadyNs();
          append(WriteEvent(op));
          absl::Status w = lock::FencedSet(kPolicy, resource,
                                           absl::StrCat(op.write_value), op.fence);
          op.write = Classify(w);
          if (op.write != WriteOutcome::kUnknown) op.write_end_steady_ns = SteadyNs();
          if (!w.ok() && !lock::IsStaleFence(w)) op.message = std::string(w.message());
          return finish();
        };
        absl::Status s = op.read                 ? lock::WithRead(kPolicy, op.key, section)
                         : kind == "read_write" ? lock::WithWrite(kPolicy, op.key, section)
                                                : lock::With(kPolicy, op.key, section);
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

}  // namespace lock::checker::driver
