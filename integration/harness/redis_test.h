// A gtest fixture that gives every test a fresh redis-server.
//
//   class CounterTest : public lock::harness::RedisTest {};
//
//   TEST_F(CounterTest, Increments) {
//     EXPECT_TRUE(server().Exec({"INCR", "n"}).ok());
//   }
//
// Override ServerOptions() for a password, AOF or extra config. When a test
// fails, the server log is printed with each line prefixed by the server name.
//
// For topologies, RedisFleetTest keeps the fleets a test starts and prints
// all their nodes' logs, prefixed by node name, if the test fails:
//
//   class FailoverTest : public lock::harness::RedisFleetTest {};
//
//   TEST_F(FailoverTest, NewMaster) {
//     RedisFleet* fleet = Start(RedisFleet::Sentinel());
//     ASSERT_NE(fleet, nullptr);
//     EXPECT_TRUE(fleet->Failover().ok());
//   }
#ifndef INTEGRATION_HARNESS_REDIS_TEST_H_
#define INTEGRATION_HARNESS_REDIS_TEST_H_

#include <chrono>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_server.h"

namespace lock::harness {

// Polls `cond` every 2ms until it holds or `limit` passes; true if it held
// (checked once more at the end). For conditions a test waits on in
// another thread or process: a loss being signalled, a key expiring.
inline bool Eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds limit = std::chrono::seconds(5)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return cond();
}

class RedisTest : public ::testing::Test {
 protected:
  // Called once per test, from SetUp().
  virtual RedisServerOptions ServerOptions() { return {}; }

  // Subclasses that override these must call them.
  void SetUp() override {
    RedisServerOptions options = ServerOptions();
    name_ = options.name;
    absl::StatusOr<std::unique_ptr<RedisServer>> server =
        RedisServer::Start(std::move(options));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  void TearDown() override {
    if (!HasFailure() || server_ == nullptr) return;
    std::cerr << PrefixLines(name_, server_->Log());
  }

  RedisServer& server() { return *server_; }

  // Runs a command on the server; a failure fails the test and yields "".
  std::string Redis(const std::vector<std::string>& argv) {
    absl::StatusOr<std::string> r = server_->Exec(argv);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.value_or("");
  }
  // Same, for a command answering an integer.
  int64_t RedisInt(const std::vector<std::string>& argv) {
    const std::string text = Redis(argv);
    int64_t v = 0;
    EXPECT_TRUE(absl::SimpleAtoi(text, &v)) << "not an integer: " << text;
    return v;
  }
  // EVALSHA + EVAL calls the server has run so far (INFO commandstats):
  // what a test counts to show the Redis work per lock operation.
  int64_t ScriptCalls() {
    int64_t total = 0;
    const std::string info = Redis({"INFO", "commandstats"});
    for (absl::string_view line : absl::StrSplit(info, absl::ByAnyChar("\r\n"))) {
      for (absl::string_view cmd : {"cmdstat_evalsha:calls=", "cmdstat_eval:calls="}) {
        if (absl::StartsWith(line, cmd)) {
          std::string rest(line.substr(cmd.size()));
          int64_t n = 0;
          EXPECT_TRUE(absl::SimpleAtoi(rest.substr(0, rest.find(',')), &n)) << line;
          total += n;
        }
      }
    }
    return total;
  }

 private:
  std::string name_;
  std::unique_ptr<RedisServer> server_;
};

class RedisFleetTest : public ::testing::Test {
 protected:
  // Takes the fleet a factory returned and keeps it for the test. On error,
  // records a failure with the status (which carries the node logs) and
  // returns nullptr.
  RedisFleet* Start(absl::StatusOr<std::unique_ptr<RedisFleet>> fleet) {
    if (!fleet.ok()) {
      ADD_FAILURE() << "starting the fleet: " << fleet.status();
      return nullptr;
    }
    fleets_.push_back(*std::move(fleet));
    return fleets_.back().get();
  }

  // Subclasses that override this must call it.
  void TearDown() override {
    if (!HasFailure()) return;
    for (const auto& fleet : fleets_) std::cerr << fleet->Logs();
  }

 private:
  std::vector<std::unique_ptr<RedisFleet>> fleets_;
};

}  // namespace lock::harness

#endif  // INTEGRATION_HARNESS_REDIS_TEST_H_
