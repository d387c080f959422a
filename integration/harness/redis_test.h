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
#ifndef INTEGRATION_HARNESS_REDIS_TEST_H_
#define INTEGRATION_HARNESS_REDIS_TEST_H_

#include <iostream>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_server.h"

namespace lock::harness {

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
    for (absl::string_view line :
         absl::StrSplit(server_->Log(), '\n', absl::SkipEmpty())) {
      std::cerr << "[" << name_ << "] " << line << "\n";
    }
  }

  RedisServer& server() { return *server_; }

 private:
  std::string name_;
  std::unique_ptr<RedisServer> server_;
};

}  // namespace lock::harness

#endif  // INTEGRATION_HARNESS_REDIS_TEST_H_
