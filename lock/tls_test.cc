// TLS (issue 14) against real redis-servers started by the harness with the
// certificates it makes: verification of the server (CA, name, expiry),
// mutual TLS, the wrong protocol on either side, a restart under a held lock,
// Sentinel failover and Cluster MOVED over TLS, and unix sockets.
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_server.h"
#include "integration/harness/redis_test.h"
#include "lock/lock.h"
#include "lock/redis/tls.h"
#include "lock/testing/locker_from_json.h"
#include "nlohmann/json.hpp"
#include "policy/registry.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using Options = harness::RedisServerOptions;

constexpr absl::Duration kConnectTimeout = absl::Milliseconds(500);

// A Locker with policy "p" (fail when busy, no retries) on `target`.
std::unique_ptr<Locker> LockerOn(nlohmann::json target) {
  if (!target.contains("connect_timeout")) target["connect_timeout"] = "500ms";
  const nlohmann::json config = {
      {"redis", {{"default", target}}},
      {"policies",
       {{"p", {{"key_prefix", "t:"}, {"on_busy", "fail"}, {"script_timeout", "1s"},
               {"retry", {{"max_attempts", 1}}}}}}}};
  auto locker = LockerFromJson(config.dump(), "tls.json");
  EXPECT_THAT(locker, IsOk());
  return locker.ok() ? *std::move(locker) : nullptr;
}

std::unique_ptr<harness::RedisServer> StartServer(Options options) {
  auto server = harness::RedisServer::Start(std::move(options));
  EXPECT_THAT(server, IsOk());
  return server.ok() ? *std::move(server) : nullptr;
}

nlohmann::json TlsTarget(const std::string& addr, nlohmann::json tls) {
  return {{"addrs", {addr}}, {"tls", std::move(tls)}};
}

absl::Status LockOnce(Locker& locker, const std::string& key = "k") {
  return locker.With("p", key, [](Held& held) {
    return held.fencing_token() > 0 ? absl::OkStatus()
                                    : absl::InternalError("no fencing token");
  });
}

// What a refused connection must look like: kUnavailable, naming the
// address and the cause, and no hang (well within connect + script timeouts).
void ExpectRefused(Locker& locker, const std::string& addr,
                   const ::testing::Matcher<std::string>& cause) {
  const absl::Time start = absl::Now();
  const absl::Status s = LockOnce(locker);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, AllOf(HasSubstr(addr), cause)));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << s;
}

TEST(TlsTest, ServerVerifiedAgainstTheCa) {
  auto server = StartServer({.tls = true});
  ASSERT_NE(server, nullptr);
  auto locker = LockerOn(TlsTarget(server->addr(), {{"ca_file", server->tls_files()->ca_cert}}));
  ASSERT_NE(locker, nullptr);
  EXPECT_THAT(LockOnce(*locker), IsOk());
  EXPECT_EQ(server->Exec({"EXISTS", "{t:k}"}).value_or("?"), "0");  // released
}

TEST(TlsTest, PoolKeepsItsSessionsNoHandshakePerLock) {
  auto server = StartServer({.tls = true});
  ASSERT_NE(server, nullptr);
  auto locker = LockerOn(TlsTarget(server->addr(), {{"ca_file", server->tls_files()->ca_cert}}));
  ASSERT_NE(locker, nullptr);
  const int64_t before = redis::TlsHandshakes();
  for (int i = 0; i < 500; ++i) ASSERT_THAT(LockOnce(*locker, absl::StrCat("k", i)), IsOk());
  // One thread: one pooled connection (and none for waiting: on_busy fail).
  EXPECT_EQ(redis::TlsHandshakes() - before, 1);
}

TEST(TlsTest, MutualTlsWithTheClientCertificate) {
  auto server = StartServer({.tls = true, .tls_auth_clients = "yes"});
  ASSERT_NE(server, nullptr);
  const harness::TlsFiles& f = *server->tls_files();
  auto locker = LockerOn(TlsTarget(
      server->addr(),
      {{"ca_file", f.ca_cert}, {"cert_file", f.client_cert}, {"key_file", f.client_key}}));
  ASSERT_NE(locker, nullptr);
  EXPECT_THAT(LockOnce(*locker), IsOk());
}

TEST(TlsTest, ServerRequiringAClientCertificateRefusesOneWithout) {
  auto server = StartServer({.tls = true, .tls_auth_clients = "yes"});
  ASSERT_NE(server, nullptr);
  auto locker = LockerOn(TlsTarget(server->addr(), {{"ca_file", server->tls_files()->ca_cert}}));
  ASSERT_NE(locker, nullptr);
  ExpectRefused(*locker, server->addr(),
                HasSubstr("the server asked for a client certificate"));
}

TEST(TlsTest, ServerSignedByAnotherCaIsRefused) {
  auto server = StartServer({.tls = true});
  ASSERT_NE(server, nullptr);
  auto locker =
      LockerOn(TlsTarget(server->addr(), {{"ca_file", server->tls_files()->other_ca_cert}}));
  ASSERT_NE(locker, nullptr);
  ExpectRefused(*locker, server->addr(), HasSubstr("certificate verify failed"));
}

TEST(TlsTest, CertificateForAnotherHostIsRefusedUnlessThatNameIsExpected) {
  auto server = StartServer({.tls = true, .server_cert = Options::ServerCert::kWrongHost});
  ASSERT_NE(server, nullptr);
  const std::string ca = server->tls_files()->ca_cert;
  auto locker = LockerOn(TlsTarget(server->addr(), {{"ca_file", ca}}));
  ASSERT_NE(locker, nullptr);
  ExpectRefused(*locker, server->addr(),
                AllOf(HasSubstr("certificate verify failed"), HasSubstr("IP address mismatch")));
  // server_name: the name to expect (and send as SNI) instead of the host.
  auto named = LockerOn(TlsTarget(server->addr(),
                                  {{"ca_file", ca}, {"server_name", "not-this-host.example"}}));
  ASSERT_NE(named, nullptr);
  EXPECT_THAT(LockOnce(*named), IsOk());
}

TEST(TlsTest, ExpiredServerCertificateIsRefused) {
  auto server = StartServer({.tls = true, .server_cert = Options::ServerCert::kExpired});
  ASSERT_NE(server, nullptr);
  auto locker = LockerOn(TlsTarget(server->addr(), {{"ca_file", server->tls_files()->ca_cert}}));
  ASSERT_NE(locker, nullptr);
  ExpectRefused(*locker, server->addr(),
                AllOf(HasSubstr("certificate verify failed"), HasSubstr("expired")));
}

TEST(TlsTest, VerifyPeerFalseAcceptsAnyCertificate) {
  auto server = StartServer({.tls = true, .server_cert = Options::ServerCert::kExpired});
  ASSERT_NE(server, nullptr);
  auto locker = LockerOn(TlsTarget(server->addr(), {{"verify_peer", false}}));
  ASSERT_NE(locker, nullptr);
  EXPECT_THAT(LockOnce(*locker), IsOk());
}

TEST(TlsTest, PlaintextClientToATlsPortIsAClearError) {
  auto server = StartServer({.tls = true});
  ASSERT_NE(server, nullptr);
  auto locker = LockerOn({{"addrs", {server->addr()}}});
  ASSERT_NE(locker, nullptr);
  ExpectRefused(*locker, server->addr(), HasSubstr("TLS port"));
}

TEST(TlsTest, TlsClientToAPlaintextPortIsAClearError) {
  auto server = StartServer({.tls = true});
  ASSERT_NE(server, nullptr);
  auto locker =
      LockerOn(TlsTarget(server->plain_addr(), {{"ca_file", server->tls_files()->ca_cert}}));
  ASSERT_NE(locker, nullptr);
  ExpectRefused(*locker, server->plain_addr(), HasSubstr("TLS handshake"));
}

// The server restarts under a held lock: the pooled TLS connection is dead
// and the scripts are gone; the release reconnects (a new handshake) and
// runs its script again by text (NOSCRIPT).
TEST(TlsTest, RestartWhileHeldReconnectsAndReloadsTheScripts) {
  auto server = StartServer({.tls = true});
  ASSERT_NE(server, nullptr);
  auto locker = LockerOn(TlsTarget(server->addr(), {{"ca_file", server->tls_files()->ca_cert}}));
  ASSERT_NE(locker, nullptr);
  auto held = locker->NewLock("p", "restart");
  ASSERT_THAT(held, IsOk());
  ASSERT_THAT((*held)->Acquire(), IsOk());
  ASSERT_THAT(server->Restart(/*keep_data=*/true), IsOk());
  EXPECT_EQ(server->Exec({"SCRIPT", "EXISTS", "0000000000000000000000000000000000000000"})
                .value_or("?"),
            "0");
  const int64_t before = redis::TlsHandshakes();
  EXPECT_THAT((*held)->Release(), IsOk());
  EXPECT_GE(redis::TlsHandshakes() - before, 1);
  EXPECT_EQ(server->Exec({"EXISTS", "{t:restart}"}).value_or("?"), "0");
  EXPECT_THAT(LockOnce(*locker), IsOk());
}

// Hot reload: a rotated CA file is picked up for new connections. The
// configuration first trusts an unrelated CA (refused), then the file is
// overwritten with the right one and the watcher swaps the policies in.
TEST(TlsTest, RotatedCaFileIsPickedUpByHotReload) {
  auto server = StartServer({.tls = true});
  ASSERT_NE(server, nullptr);
  const harness::TlsFiles& f = *server->tls_files();
  const std::string dir = ::testing::TempDir();
  const std::string ca = dir + "/rotating-ca.crt";
  const auto copy = [](const std::string& from, const std::string& to) {
    std::ifstream in(from, std::ios::binary);
    std::ofstream out(to, std::ios::binary | std::ios::trunc);
    out << in.rdbuf();
  };
  copy(f.other_ca_cert, ca);
  const nlohmann::json config = {
      {"redis", {{"default", {{"addrs", {server->addr()}}, {"connect_timeout", "500ms"},
                              {"tls", {{"ca_file", "rotating-ca.crt"}}}}}}},
      {"policies", {{"p", {{"key_prefix", "t:"}, {"on_busy", "fail"},
                           {"retry", {{"max_attempts", 1}}}}}}}};
  const std::string path = dir + "/rotating.json";
  std::ofstream(path) << config.dump();
  auto registry = policy::Registry::Load(path);
  ASSERT_THAT(registry, IsOk());
  std::shared_ptr<policy::Registry> shared(*std::move(registry));
  std::atomic<int> reloads{0};
  shared->Watch(absl::Milliseconds(20), [&](const absl::Status& s) {
    if (s.ok()) reloads++;
  });
  auto locker = Locker::Create(shared);
  ASSERT_THAT(locker, IsOk());
  EXPECT_THAT(LockOnce(**locker), StatusIs(absl::StatusCode::kUnavailable,
                                           HasSubstr("certificate verify failed")));
  copy(f.ca_cert, ca);
  for (int i = 0; i < 200 && reloads == 0; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_GT(reloads.load(), 0);
  EXPECT_THAT(LockOnce(**locker), IsOk());
  shared->StopWatching();
}

TEST(UnixSocketTest, LocksOverAUnixSocket) {
  auto server = StartServer({.unix_socket = true});
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(server->addr().rfind("unix:", 0), 0u) << server->addr();
  auto locker = LockerOn({{"addrs", {server->addr()}}});
  ASSERT_NE(locker, nullptr);
  auto held = locker->NewLock("p", "u");
  ASSERT_THAT(held, IsOk());
  ASSERT_THAT((*held)->Acquire(), IsOk());
  EXPECT_EQ(server->Exec({"HGET", "{t:u}", "owner"}).value_or("?"), (*held)->owner_token());
  EXPECT_TRUE(IsBusy(LockOnce(*locker, "u")));
  EXPECT_THAT((*held)->Release(), IsOk());
  EXPECT_THAT(LockOnce(*locker, "u"), IsOk());
}

TEST(UnixSocketTest, RemovedSocketFileIsAClearError) {
  auto server = StartServer({.unix_socket = true});
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(std::remove(server->unix_socket_path().c_str()), 0);
  auto locker = LockerOn({{"addrs", {server->addr()}}});
  ASSERT_NE(locker, nullptr);
  ExpectRefused(*locker, server->addr(), HasSubstr("No such file or directory"));
}

TEST(TlsContextTest, CodeBuiltConfigurationsAreChecked) {
  EXPECT_THAT(redis::TlsContext::Create({.ca_pem = "not a certificate"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no PEM certificate")));
  EXPECT_THAT(redis::TlsContext::Create({.cert_pem = "x"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs its key")));
  EXPECT_THAT(redis::TlsContext::Create({}), IsOk());  // the system's trust store
}

class TlsFleetTest : public harness::RedisFleetTest {
 protected:
  std::unique_ptr<Locker> LockerFor(harness::RedisFleet& fleet) {
    return LockerOn(nlohmann::json::parse(fleet.PolicyTargetJson()));
  }
};

// Sentinels over TLS with their own password (sentinel_password_env), the
// master over TLS; after a failover the lock is found on the new master.
TEST_F(TlsFleetTest, SentinelFailoverOverTls) {
  setenv("REDIS_SENTINEL_PASSWORD", "sentinel-secret", 1);
  harness::RedisFleet* fleet =
      Start(harness::RedisFleet::Sentinel(1, 3, "mymaster", Options{.tls = true},
                                          "sentinel-secret"));
  ASSERT_NE(fleet, nullptr);
  const nlohmann::json target = nlohmann::json::parse(fleet->PolicyTargetJson());
  ASSERT_TRUE(target.contains("tls"));
  ASSERT_EQ(target.value("sentinel_password_env", ""), "REDIS_SENTINEL_PASSWORD");
  auto locker = LockerFor(*fleet);
  ASSERT_NE(locker, nullptr);
  EXPECT_THAT(LockOnce(*locker), IsOk());
  ASSERT_THAT(fleet->Failover(), IsOk());
  absl::Status after;
  for (int i = 0; i < 100; ++i) {  // the old master's pool learns of the failover
    after = LockOnce(*locker, "after");
    if (after.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_THAT(after, IsOk());
}

TEST_F(TlsFleetTest, SentinelWithAWrongPasswordIsAClearError) {
  harness::RedisFleet* fleet =
      Start(harness::RedisFleet::Sentinel(1, 1, "mymaster", Options{.tls = true},
                                          "sentinel-secret"));
  ASSERT_NE(fleet, nullptr);
  setenv("REDIS_SENTINEL_PASSWORD", "wrong", 1);
  auto locker = LockerFor(*fleet);
  ASSERT_NE(locker, nullptr);
  EXPECT_THAT(LockOnce(*locker),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("sentinel")));
}

// Redlock over TLS: every master of the quorum is reached over TLS.
TEST_F(TlsFleetTest, RedlockQuorumOverTls) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Masters(3, Options{.tls = true}));
  ASSERT_NE(fleet, nullptr);
  const nlohmann::json target = nlohmann::json::parse(fleet->PolicyTargetJson());
  ASSERT_EQ(target.value("mode", ""), "redlock");
  ASSERT_TRUE(target.contains("tls"));
  auto locker = LockerFor(*fleet);
  ASSERT_NE(locker, nullptr);
  auto held = locker->NewLock("p", "quorum");
  ASSERT_THAT(held, IsOk());
  ASSERT_THAT((*held)->Acquire(), IsOk());
  for (int i = 0; i < fleet->size(); ++i) {  // the owner hash is on every master
    EXPECT_EQ(fleet->node(i).Exec({"HGET", "{t:quorum}", "owner"}).value_or("?"),
              (*held)->owner_token())
        << fleet->node(i).name();
  }
  EXPECT_THAT((*held)->Release(), IsOk());
}

// A slot moved away: the client follows MOVED to a TLS port (Redis answers a
// TLS client with TLS ports).
TEST_F(TlsFleetTest, ClusterMovedOverTls) {
  harness::RedisFleet* fleet = Start(harness::RedisFleet::Cluster(3, 0, Options{.tls = true}));
  ASSERT_NE(fleet, nullptr);
  auto locker = LockerFor(*fleet);
  ASSERT_NE(locker, nullptr);
  ASSERT_THAT(LockOnce(*locker, "moving"), IsOk());
  const int slot = harness::RedisFleet::KeySlot("{t:moving}");
  auto owner = fleet->NodeIndexForSlot(slot);
  ASSERT_THAT(owner, IsOk());
  const int to = (*owner + 1) % 3;  // no replicas: node i is shard i's master
  ASSERT_THAT(fleet->MoveSlot(slot, to), IsOk());
  EXPECT_THAT(LockOnce(*locker, "moving"), IsOk());
  EXPECT_THAT(fleet->NodeIndexForSlot(slot), ::util::testing::IsOkAndHolds(to));
}

}  // namespace
}  // namespace lock
