// Hostile inputs at the public API, one table row each: bad keys, unknown
// policies, a Redis that is down, refuses the password, forbids scripts,
// limits the key space, or is a read-only replica. Every row expects one
// exact status code and a message that names the problem, checks that the
// critical section never ran, that no secret appears in the message, and
// that nothing is left locked on the servers afterwards.
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_server.h"
#include "lock/lock.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPasswordEnv[] = "HOSTILE_TEST_PASSWORD";
constexpr char kServerSecret[] = "srv-Secret-7c1e";
constexpr char kClientSecret[] = "cli-Secret-93ab";

struct Case {
  std::string name;
  std::string key = "order-1";
  std::string policy = "p";
  std::string key_prefix = "hostile:";
  // The server the lock talks to.
  std::string requirepass;
  bool down = false;          // killed before the call
  bool replica = false;       // a replica of a second, writable server
  std::string addr_override;  // e.g. a unix socket path that does not exist
  // Extra fields of the redis target, e.g. R"("username": "u",)".
  std::string target_fields;
  // Value of kPasswordEnv ("" leaves it unset).
  std::string client_password;
  // Runs against the server before the call (ACL SETUSER...).
  std::vector<std::vector<std::string>> prepare;

  absl::StatusCode code;
  std::vector<std::string> message_has;
  // The error message is at most this long (a huge key is not echoed).
  size_t max_message = 600;
};

std::string Printable(std::string s) {
  for (char& c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  }
  return s.size() > 40 ? s.substr(0, 40) + "..." : s;
}

std::vector<Case> Cases() {
  using C = absl::StatusCode;
  const std::string acl_scoped = "scoped";
  return {
      {.name = "empty_key", .key = "", .code = C::kInvalidArgument,
       .message_has = {"lock key is empty"}},
      {.name = "key_256_bytes", .key = std::string(256, 'a'),
       .code = C::kInvalidArgument,
       .message_has = {"256 bytes long", "limit is 255"}},
      {.name = "key_1_MiB", .key = std::string(1 << 20, 'x'),
       .code = C::kInvalidArgument, .message_has = {"1048576 bytes long"}},
      {.name = "key_with_nul", .key = std::string("a\0b", 3),
       .code = C::kInvalidArgument,
       .message_has = {"non-printable byte 0x00", "offset 1"}},
      {.name = "key_with_high_bytes", .key = "\xff\xfe",
       .code = C::kInvalidArgument, .message_has = {"non-printable byte 0xff"}},
      {.name = "key_with_newline", .key = "a\nSET x y",
       .code = C::kInvalidArgument, .message_has = {"non-printable byte 0x0a"}},
      {.name = "key_with_open_brace", .key = "a{b",
       .code = C::kInvalidArgument, .message_has = {"'{'", "hash tag"}},
      {.name = "key_with_close_brace", .key = "a}b",
       .code = C::kInvalidArgument, .message_has = {"'}'", "hash tag"}},
      {.name = "key_that_is_a_hash_tag", .key = "{other}",
       .code = C::kInvalidArgument, .message_has = {"hash tag"}},
      {.name = "unknown_policy", .policy = "order-clsoe", .code = C::kNotFound,
       .message_has = {"unknown lock policy \"order-clsoe\"", "known: p"}},
      {.name = "empty_policy_name", .policy = "", .code = C::kNotFound,
       .message_has = {"unknown lock policy \"\""}},
      {.name = "redis_down", .down = true, .code = C::kUnavailable,
       .message_has = {"127.0.0.1:", "connect"}},
      {.name = "unix_socket_missing",
       .addr_override = "unix:/nonexistent/hostile.sock",
       .code = C::kUnavailable, .message_has = {"unix:/nonexistent/hostile.sock"}},
      {.name = "password_required_none_given", .requirepass = kServerSecret,
       .code = C::kPermissionDenied, .message_has = {"NOAUTH"}},
      {.name = "wrong_password", .requirepass = kServerSecret,
       .target_fields = absl::StrCat("\"password_env\": \"", kPasswordEnv, "\","),
       .client_password = kClientSecret, .code = C::kPermissionDenied,
       .message_has = {"AUTH", "password"}},
      {.name = "acl_user_without_evalsha",
       .target_fields = absl::StrCat("\"username\": \"noscript\", \"password_env\": \"",
                                     kPasswordEnv, "\","),
       .client_password = kClientSecret,
       .prepare = {{"ACL", "SETUSER", "noscript", "on",
                    absl::StrCat(">", kClientSecret), "~*", "&*", "+@all",
                    "-evalsha", "-eval"}},
       .code = C::kPermissionDenied, .message_has = {"NOPERM", "evalsha"}},
      {.name = "acl_user_outside_its_key_prefix", .key_prefix = "other:",
       .target_fields = absl::StrCat("\"username\": \"", acl_scoped,
                                     "\", \"password_env\": \"", kPasswordEnv, "\","),
       .client_password = kClientSecret,
       .prepare = {{"ACL", "SETUSER", acl_scoped, "on",
                    absl::StrCat(">", kClientSecret), "~{allowed:*", "&*",
                    "+@all"}},
       .code = C::kPermissionDenied, .message_has = {"NOPERM"}},
      {.name = "acl_user_inside_its_key_prefix", .key_prefix = "allowed:",
       .target_fields = absl::StrCat("\"username\": \"", acl_scoped,
                                     "\", \"password_env\": \"", kPasswordEnv, "\","),
       .client_password = kClientSecret,
       .prepare = {{"ACL", "SETUSER", acl_scoped, "on",
                    absl::StrCat(">", kClientSecret), "~{allowed:*", "&*",
                    "+@all"}},
       .code = C::kOk},
      {.name = "read_only_replica", .replica = true,
       .code = C::kFailedPrecondition, .message_has = {"READONLY"}},
  };
}

class HostileTest : public ::testing::TestWithParam<Case> {
 protected:
  void TearDown() override {
    unsetenv(kPasswordEnv);
    if (!HasFailure()) return;
    for (auto* s : {server_.get(), master_.get()}) {
      if (s == nullptr) continue;
      for (absl::string_view line : absl::StrSplit(s->Log(), '\n', absl::SkipEmpty())) {
        std::cerr << "[redis] " << line << "\n";
      }
    }
  }

  // Lock keys left on `s`: owner hashes ({P K}) and cancel markers. Fence
  // counters ({P K}:fence) are meant to stay forever.
  static std::vector<std::string> LeftLocked(harness::RedisServer& s) {
    absl::StatusOr<std::string> keys = s.Exec({"KEYS", "*"});
    EXPECT_THAT(keys, IsOk());
    std::vector<std::string> left;
    for (absl::string_view k : absl::StrSplit(keys.value_or(""), '\n', absl::SkipEmpty())) {
      if (!absl::EndsWith(k, ":fence")) left.emplace_back(k);
    }
    return left;
  }

  std::unique_ptr<harness::RedisServer> server_, master_;
};

TEST_P(HostileTest, ClearErrorNothingRunNothingLeftLocked) {
  const Case& c = GetParam();
  if (c.replica) {
    auto master = harness::RedisServer::Start({.name = "master"});
    ASSERT_THAT(master, IsOk());
    master_ = *std::move(master);
  }
  harness::RedisServerOptions options{.name = "target", .password = c.requirepass};
  if (c.replica) {
    options.extra_config.push_back(
        {"replicaof", absl::StrCat("127.0.0.1 ", master_->port())});
  }
  auto server = harness::RedisServer::Start(options);
  ASSERT_THAT(server, IsOk());
  server_ = *std::move(server);
  for (const auto& argv : c.prepare) ASSERT_THAT(server_->Exec(argv), IsOk());
  if (!c.client_password.empty()) setenv(kPasswordEnv, c.client_password.c_str(), 1);

  const std::string addr = c.addr_override.empty() ? server_->addr() : c.addr_override;
  const std::string config = absl::StrCat(
      R"({"redis": {"default": {)", c.target_fields, R"( "addrs": [")", addr,
      R"(" ]}}, "policies": {"p": {"key_prefix": ")", c.key_prefix,
      R"(", "ttl": "5s", "script_timeout": "300ms", "on_busy": "fail"}}})");
  auto registry = policy::Registry::FromJson(config, "hostile.json");
  ASSERT_THAT(registry, IsOk());
  auto locker = Locker::Create(std::shared_ptr<policy::Registry>(*std::move(registry)));
  ASSERT_THAT(locker, IsOk());
  if (c.down) {
    ASSERT_THAT(server_->Kill(), IsOk());
  }

  bool ran = false;
  const absl::Status s =
      (*locker)->With(c.policy, c.key, [&](Held&) {
        ran = true;
        return absl::OkStatus();
      });

  SCOPED_TRACE(absl::StrCat("key \"", Printable(c.key), "\"; status: ",
                            Printable(std::string(s.message()))));
  EXPECT_THAT(s, StatusIs(c.code));
  EXPECT_EQ(ran, c.code == absl::StatusCode::kOk);
  const std::string message(s.message());
  for (const std::string& part : c.message_has) {
    EXPECT_THAT(message, HasSubstr(part));
  }
  EXPECT_LE(message.size(), c.max_message) << "the error echoes too much input";
  EXPECT_THAT(message, AllOf(Not(HasSubstr(kServerSecret)), Not(HasSubstr(kClientSecret))))
      << "a secret leaked into the error";
  if (c.down) {
    ASSERT_THAT(server_->Restart(/*keep_data=*/true), IsOk());
  }
  EXPECT_THAT(LeftLocked(*server_), ::testing::IsEmpty());
  if (master_ != nullptr) {
    EXPECT_THAT(LeftLocked(*master_), ::testing::IsEmpty());
  }
}

INSTANTIATE_TEST_SUITE_P(Table, HostileTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace lock
