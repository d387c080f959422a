// TLS and unix-socket servers and fleets, checked from the outside with the
// tools a person would use: redis-cli --tls, openssl s_client / x509 /
// verify (the harness itself speaks plaintext only).
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "integration/harness/hiredis_ptr.h"
#include "integration/harness/redis_fleet.h"
#include "integration/harness/redis_server.h"
#include "integration/harness/redis_test.h"
#include "integration/harness/tls_files.h"
#include "util/status_matchers.h"

namespace lock::harness {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using ::util::testing::IsOk;
using ::util::testing::IsOkAndHolds;
using ::util::testing::StatusIs;

struct Ran {
  int code = -1;
  std::string out;  // stdout and stderr
};

std::string Q(absl::string_view word) {
  return absl::StrCat("'", absl::StrReplaceAll(word, {{"'", "'\\''"}}), "'");
}

// Runs a shell command with stdin from /dev/null; output merged.
Ran Sh(const std::string& command) {
  Ran ran;
  FILE* pipe = popen(absl::StrCat(command, " </dev/null 2>&1").c_str(), "r");
  if (pipe == nullptr) return ran;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    ran.out.append(buffer, n);
  }
  const int status = pclose(pipe);
  ran.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return ran;
}

// redis-cli over TLS to `port`, trusting `ca`; with the client certificate
// when `client_cert`.
Ran TlsCli(int port, const TlsFiles& tls, bool client_cert,
           const std::string& command, const std::string& ca = "") {
  std::string line = absl::StrCat("redis-cli --tls --cacert ",
                                  Q(ca.empty() ? tls.ca_cert : ca));
  if (client_cert) {
    absl::StrAppend(&line, " --cert ", Q(tls.client_cert), " --key ",
                    Q(tls.client_key));
  }
  absl::StrAppend(&line, " -h 127.0.0.1 -p ", port, " ", command);
  return Sh(line);
}

std::string Trim(const std::string& text) {
  return std::string(absl::StripAsciiWhitespace(text));
}

std::string MakeDir(const std::string& name) {
  const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
  std::filesystem::create_directories(dir);
  return dir;
}

// --- MakeTlsFiles -------------------------------------------------------------

TEST(TlsFilesTest, WritesEveryFileQuicklyAndOnlyOncePerDirectory) {
  const std::string dir = MakeDir("certs-once");
  const absl::Time start = absl::Now();
  absl::StatusOr<TlsFiles> files = MakeTlsFiles(dir);
  const absl::Duration took = absl::Now() - start;
  ASSERT_THAT(files, IsOk());
  std::cerr << "MakeTlsFiles took " << absl::FormatDuration(took) << "\n";
  EXPECT_LT(took, absl::Seconds(5));  // ~50 ms unloaded
  for (const std::string* path :
       {&files->ca_cert, &files->ca_key, &files->server_cert,
        &files->server_key, &files->client_cert, &files->client_key,
        &files->other_ca_cert, &files->expired_server_cert,
        &files->expired_server_key, &files->wrong_host_server_cert,
        &files->wrong_host_server_key}) {
    EXPECT_TRUE(std::filesystem::is_regular_file(*path)) << *path;
    EXPECT_THAT(*path, StartsWith(files->dir + "/"));
  }
  EXPECT_EQ(files->ca_cert, files->dir + "/ca.crt");
  EXPECT_EQ(files->other_ca_cert, files->dir + "/other-ca.crt");

  const auto written = std::filesystem::last_write_time(files->ca_cert);
  absl::StatusOr<TlsFiles> again = MakeTlsFiles(dir + "/");
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->server_cert, files->server_cert);
  EXPECT_EQ(std::filesystem::last_write_time(files->ca_cert), written);
}

TEST(TlsFilesTest, CertificatesAreWhatTheirNamesSay) {
  absl::StatusOr<TlsFiles> tls = MakeTlsFiles(MakeDir("certs-check"));
  ASSERT_THAT(tls, IsOk());
  auto verify = [&](const std::string& ca, const std::string& cert,
                    const std::string& extra) {
    return Sh(absl::StrCat("openssl verify -CAfile ", Q(ca), " ", extra, " ",
                           Q(cert)));
  };
  // The server certificate: signed by the CA, for 127.0.0.1 and localhost.
  EXPECT_EQ(verify(tls->ca_cert, tls->server_cert, "-verify_ip 127.0.0.1").code,
            0);
  EXPECT_EQ(
      verify(tls->ca_cert, tls->server_cert, "-verify_hostname localhost").code,
      0);
  EXPECT_EQ(Sh("openssl x509 -checkend 86400 -noout -in " +
               Q(tls->server_cert)).code,
            0);
  EXPECT_EQ(verify(tls->ca_cert, tls->client_cert, "").code, 0);
  // Nothing is signed by the other CA.
  EXPECT_NE(verify(tls->other_ca_cert, tls->server_cert, "").code, 0);
  EXPECT_NE(verify(tls->other_ca_cert, tls->client_cert, "").code, 0);

  // Expired: signed by the CA, but past its end date.
  EXPECT_EQ(Sh("openssl x509 -checkend 0 -noout -in " +
               Q(tls->expired_server_cert)).code,
            1);
  const Ran expired = verify(tls->ca_cert, tls->expired_server_cert, "");
  EXPECT_NE(expired.code, 0);
  EXPECT_THAT(expired.out, HasSubstr("expired"));

  // Wrong host: signed by the CA and valid, for another name only.
  const Ran san = Sh("openssl x509 -noout -ext subjectAltName -in " +
                     Q(tls->wrong_host_server_cert));
  EXPECT_EQ(san.code, 0) << san.out;
  EXPECT_THAT(san.out, AllOf(HasSubstr("DNS:not-this-host.example"),
                             Not(HasSubstr("127.0.0.1")),
                             Not(HasSubstr("localhost"))));
  EXPECT_EQ(verify(tls->ca_cert, tls->wrong_host_server_cert, "").code, 0);
  EXPECT_NE(
      verify(tls->ca_cert, tls->wrong_host_server_cert, "-verify_ip 127.0.0.1")
          .code,
      0);
  EXPECT_NE(verify(tls->ca_cert, tls->wrong_host_server_cert,
                   "-verify_hostname localhost")
                .code,
            0);
}

// --- TLS servers ----------------------------------------------------------------

class TlsServerTest : public RedisTest {
 protected:
  RedisServerOptions ServerOptions() override {
    RedisServerOptions options;
    options.name = "tls";
    options.tls = true;
    return options;
  }
  const TlsFiles& tls() { return *server().tls_files(); }
};

TEST_F(TlsServerTest, TlsPortAnswersAVerifyingClient) {
  ASSERT_NE(server().tls_files(), nullptr);
  EXPECT_EQ(server().addr(), absl::StrCat("127.0.0.1:", server().port()));
  EXPECT_NE(server().plain_port(), server().port());
  EXPECT_EQ(server().plain_addr(),
            absl::StrCat("127.0.0.1:", server().plain_port()));
  const Ran ping = TlsCli(server().port(), tls(), false, "PING");
  EXPECT_EQ(Trim(ping.out), "PONG") << ping.out;
  // The harness's own way in is plaintext.
  EXPECT_THAT(server().Exec({"SET", "k", "v"}), IsOk());
  EXPECT_EQ(Trim(TlsCli(server().port(), tls(), false, "GET k").out), "v");
  // Verified like any client would: s_client checks the chain and the IP.
  const Ran handshake = Sh(absl::StrCat(
      "openssl s_client -brief -connect 127.0.0.1:", server().port(),
      " -CAfile ", Q(tls().ca_cert),
      " -verify_ip 127.0.0.1 -verify_return_error"));
  EXPECT_EQ(handshake.code, 0) << handshake.out;
  EXPECT_THAT(handshake.out, HasSubstr("Verification: OK"));
}

TEST_F(TlsServerTest, PlaintextToTheTlsPortFails) {
  const timeval tv = absl::ToTimeval(absl::Seconds(5));
  ContextPtr raw(redisConnectWithTimeout("127.0.0.1", server().port(), tv));
  ASSERT_NE(raw, nullptr);
  if (raw->err == 0) {
    ASSERT_EQ(redisSetTimeout(raw.get(), tv), REDIS_OK);
    ReplyPtr reply = CommandArgv(raw.get(), {"PING"});
    EXPECT_TRUE(reply == nullptr || reply->type == REDIS_REPLY_ERROR);
  }
  const Ran cli =
      Sh(absl::StrCat("redis-cli -h 127.0.0.1 -p ", server().port(), " PING"));
  EXPECT_THAT(cli.out, Not(HasSubstr("PONG")));
}

TEST_F(TlsServerTest, ClientTrustingAnotherCaIsRefused) {
  const Ran ping =
      TlsCli(server().port(), tls(), false, "PING", tls().other_ca_cert);
  EXPECT_THAT(ping.out, Not(HasSubstr("PONG")));
  EXPECT_NE(ping.code, 0);
}

TEST_F(TlsServerTest, RestartKeepsPortsCertificatesAndTls) {
  const int port = server().port();
  const int plain = server().plain_port();
  const std::string cert = tls().server_cert;
  for (bool keep_data : {true, false}) {
    SCOPED_TRACE(keep_data ? "keep data" : "drop data");
    ASSERT_THAT(server().Restart(keep_data), IsOk());
    EXPECT_EQ(server().port(), port);
    EXPECT_EQ(server().plain_port(), plain);
    ASSERT_NE(server().tls_files(), nullptr);
    EXPECT_EQ(tls().server_cert, cert);
    EXPECT_TRUE(std::filesystem::exists(cert));
    EXPECT_EQ(Trim(TlsCli(port, tls(), false, "PING").out), "PONG");
  }
  ASSERT_THAT(server().Kill(), IsOk());
  ASSERT_THAT(server().Restart(true), IsOk());
  EXPECT_EQ(Trim(TlsCli(port, tls(), false, "PING").out), "PONG");
}

TEST(TlsServerOptionsTest, MutualTlsWantsTheClientCertificate) {
  RedisServerOptions options;
  options.tls = true;
  options.tls_auth_clients = "yes";
  absl::StatusOr<std::unique_ptr<RedisServer>> server =
      RedisServer::Start(options);
  ASSERT_THAT(server, IsOk());
  const TlsFiles& tls = *(*server)->tls_files();
  const Ran without = TlsCli((*server)->port(), tls, false, "PING");
  EXPECT_THAT(without.out, Not(HasSubstr("PONG")));
  const Ran with = TlsCli((*server)->port(), tls, true, "PING");
  EXPECT_EQ(Trim(with.out), "PONG") << with.out;

  options.tls_auth_clients = "optional";
  absl::StatusOr<std::unique_ptr<RedisServer>> optional =
      RedisServer::Start(options);
  ASSERT_THAT(optional, IsOk());
  const TlsFiles& its = *(*optional)->tls_files();
  EXPECT_EQ(Trim(TlsCli((*optional)->port(), its, false, "PING").out), "PONG");
  EXPECT_EQ(Trim(TlsCli((*optional)->port(), its, true, "PING").out), "PONG");
}

TEST(TlsServerOptionsTest, BadTlsAuthClientsIsInvalidArgument) {
  RedisServerOptions options;
  options.tls = true;
  options.tls_auth_clients = "maybe";
  EXPECT_THAT(RedisServer::Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("\"maybe\"")));
}

TEST(TlsServerOptionsTest, ExpiredServerCertificateFailsVerification) {
  RedisServerOptions options;
  options.tls = true;
  options.server_cert = RedisServerOptions::ServerCert::kExpired;
  absl::StatusOr<std::unique_ptr<RedisServer>> server =
      RedisServer::Start(options);
  ASSERT_THAT(server, IsOk());
  const TlsFiles& tls = *(*server)->tls_files();
  const Ran verified = TlsCli((*server)->port(), tls, false, "PING");
  EXPECT_THAT(verified.out, Not(HasSubstr("PONG")));
  // The server is fine otherwise: a client that skips verification gets in.
  const Ran insecure =
      Sh(absl::StrCat("redis-cli --tls --insecure -h 127.0.0.1 -p ",
                      (*server)->port(), " PING"));
  EXPECT_EQ(Trim(insecure.out), "PONG") << insecure.out;
  const Ran handshake = Sh(absl::StrCat(
      "openssl s_client -brief -connect 127.0.0.1:", (*server)->port(),
      " -CAfile ", Q(tls.ca_cert), " -verify_return_error"));
  EXPECT_NE(handshake.code, 0);
  EXPECT_THAT(handshake.out, HasSubstr("expired"));
}

TEST(TlsServerOptionsTest, WrongHostServerCertificateFailsHostCheck) {
  RedisServerOptions options;
  options.tls = true;
  options.server_cert = RedisServerOptions::ServerCert::kWrongHost;
  absl::StatusOr<std::unique_ptr<RedisServer>> server =
      RedisServer::Start(options);
  ASSERT_THAT(server, IsOk());
  const TlsFiles& tls = *(*server)->tls_files();
  const std::string connect = absl::StrCat(
      "openssl s_client -brief -connect 127.0.0.1:", (*server)->port(),
      " -CAfile ", Q(tls.ca_cert), " -verify_return_error");
  // The chain is fine; the name is not.
  const Ran chain_only = Sh(connect);
  EXPECT_EQ(chain_only.code, 0) << chain_only.out;
  const Ran by_ip = Sh(connect + " -verify_ip 127.0.0.1");
  EXPECT_NE(by_ip.code, 0) << by_ip.out;
  const Ran by_name = Sh(connect + " -verify_hostname localhost");
  EXPECT_NE(by_name.code, 0) << by_name.out;
}

TEST(TlsServerOptionsTest, SharedTlsDirIsUsedAsIs) {
  const std::string dir = MakeDir("shared-certs");
  absl::StatusOr<TlsFiles> made = MakeTlsFiles(dir);
  ASSERT_THAT(made, IsOk());
  RedisServerOptions options;
  options.tls = true;
  options.tls_dir = dir;
  absl::StatusOr<std::unique_ptr<RedisServer>> server =
      RedisServer::Start(options);
  ASSERT_THAT(server, IsOk());
  EXPECT_EQ((*server)->tls_files()->ca_cert, made->ca_cert);
  EXPECT_EQ(Trim(TlsCli((*server)->port(), *made, false, "PING").out), "PONG");
  server->reset();
  // The directory belongs to the caller: it outlives the server.
  EXPECT_TRUE(std::filesystem::exists(made->ca_cert));
}

TEST(PlainServerTest, HasNoTlsAndOneAddress) {
  absl::StatusOr<std::unique_ptr<RedisServer>> server = RedisServer::Start();
  ASSERT_THAT(server, IsOk());
  EXPECT_EQ((*server)->tls_files(), nullptr);
  EXPECT_EQ((*server)->plain_addr(), (*server)->addr());
  EXPECT_EQ((*server)->plain_port(), (*server)->port());
  EXPECT_EQ((*server)->unix_socket_path(), "");
}

// --- Unix sockets -----------------------------------------------------------------

TEST(UnixSocketServerTest, AnswersOnItsSocketAcrossRestarts) {
  RedisServerOptions options;
  options.unix_socket = true;
  absl::StatusOr<std::unique_ptr<RedisServer>> started =
      RedisServer::Start(options);
  ASSERT_THAT(started, IsOk());
  RedisServer& server = **started;
  const std::string path = server.unix_socket_path();
  EXPECT_EQ(server.addr(), "unix:" + path);
  EXPECT_LT(path.size(), 100u) << path;
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  EXPECT_EQ(Trim(Sh("redis-cli -s " + Q(path) + " PING").out), "PONG");
  ASSERT_THAT(server.Exec({"SET", "k", "v"}), IsOk());  // via plain_addr()
  EXPECT_EQ(Trim(Sh("redis-cli -s " + Q(path) + " GET k").out), "v");
  for (bool keep_data : {true, false}) {
    ASSERT_THAT(server.Restart(keep_data), IsOk());
    EXPECT_EQ(server.unix_socket_path(), path);
    EXPECT_EQ(Trim(Sh("redis-cli -s " + Q(path) + " PING").out), "PONG");
  }
}

TEST(UnixSocketServerTest, TlsAndUnixSocketTogether) {
  RedisServerOptions options;
  options.unix_socket = true;
  options.tls = true;
  absl::StatusOr<std::unique_ptr<RedisServer>> server =
      RedisServer::Start(options);
  ASSERT_THAT(server, IsOk());
  EXPECT_THAT((*server)->addr(), StartsWith("unix:"));
  // tls_server_container_test runs this file with LOCK_TEST_BACKEND=
  // container: certificates and socket work through the bind mounts.
  const char* backend = getenv("LOCK_TEST_BACKEND");
  if (backend != nullptr && std::string(backend) == "container") {
    EXPECT_THAT((*server)->backend_description(), HasSubstr("container"));
  } else {
    EXPECT_EQ((*server)->backend_description(), "process");
  }
  EXPECT_EQ(Trim(Sh("redis-cli -s " + Q((*server)->unix_socket_path()) +
                    " PING").out),
            "PONG");
  EXPECT_EQ(
      Trim(TlsCli((*server)->port(), *(*server)->tls_files(), false, "PING")
               .out),
      "PONG");
}

// --- TLS fleets -----------------------------------------------------------------

RedisServerOptions MutualTls() {
  RedisServerOptions base;
  base.tls = true;
  base.tls_auth_clients = "yes";  // Replication and the bus need certs too.
  return base;
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    lines.emplace_back(absl::StripAsciiWhitespace(line));
  }
  return lines;
}

class TlsFleetTest : public RedisFleetTest {};

TEST_F(TlsFleetTest, MastersShareOneCaAndThePolicyNamesIt) {
  RedisFleet* fleet = Start(RedisFleet::Masters(2, MutualTls()));
  ASSERT_NE(fleet, nullptr);
  const TlsFiles* tls = fleet->tls_files();
  ASSERT_NE(tls, nullptr);
  for (int i = 0; i < fleet->size(); ++i) {
    EXPECT_EQ(fleet->node(i).tls_files()->ca_cert, tls->ca_cert);
    EXPECT_EQ(Trim(TlsCli(fleet->node(i).port(), *tls, true, "PING").out),
              "PONG");
  }
  EXPECT_EQ(fleet->PolicyTargetJson(),
            absl::StrCat(R"({"mode": "redlock", "addrs": [")",
                         fleet->node(0).addr(), R"(", ")",
                         fleet->node(1).addr(),
                         R"("], "tls": {"ca_file": ")", tls->ca_cert,
                         R"(", "cert_file": ")", tls->client_cert,
                         R"(", "key_file": ")", tls->client_key, R"("}})"));
  const std::string dir = tls->dir;
  ASSERT_TRUE(std::filesystem::exists(dir));
}

TEST_F(TlsFleetTest, SentinelsMonitorAndFailOverOverTls) {
  RedisFleet* fleet =
      Start(RedisFleet::Sentinel(1, 3, "mymaster", MutualTls()));
  ASSERT_NE(fleet, nullptr);
  const TlsFiles& tls = *fleet->tls_files();
  EXPECT_THAT(fleet->MasterAddr(), IsOkAndHolds(fleet->node(0).addr()));
  // The replica follows the master's TLS port.
  absl::StatusOr<std::string> replication =
      fleet->node(1).Exec({"INFO", "replication"});
  ASSERT_THAT(replication, IsOk());
  EXPECT_THAT(*replication,
              AllOf(HasSubstr(absl::StrCat("master_port:",
                                           fleet->node(0).port(), "\r\n")),
                    HasSubstr("master_link_status:up")));
  // A TLS client asks a sentinel and gets the TLS port.
  const Ran asked = TlsCli(fleet->sentinel(0).port(), tls, true,
                           "SENTINEL get-master-addr-by-name mymaster");
  EXPECT_EQ(Lines(asked.out),
            (std::vector<std::string>{
                "127.0.0.1", absl::StrCat(fleet->node(0).port())}))
      << asked.out;
  const std::string json = fleet->PolicyTargetJson();
  EXPECT_THAT(json, AllOf(HasSubstr(fleet->sentinel(2).addr()),
                          HasSubstr(R"("tls": {"ca_file": ")" + tls.ca_cert),
                          Not(HasSubstr(fleet->sentinel(0).plain_addr()))));

  ASSERT_THAT(fleet->Failover(), IsOk());
  EXPECT_THAT(fleet->MasterIndex(), IsOkAndHolds(1));
  EXPECT_EQ(
      Trim(TlsCli(fleet->node(1).port(), tls, true, "SET after failover").out),
      "OK");
}

// Every credential at once: TLS with client certificates, a password on the
// data nodes and another on the sentinels.
TEST_F(TlsFleetTest, SentinelsWithTheirOwnPassword) {
  RedisServerOptions base = MutualTls();
  base.password = "data secret";
  RedisFleet* fleet =
      Start(RedisFleet::Sentinel(1, 2, "mymaster", base, "sentinel secret"));
  ASSERT_NE(fleet, nullptr);
  const TlsFiles& tls = *fleet->tls_files();
  const int port = fleet->sentinel(0).port();
  const std::string ask = "SENTINEL get-master-addr-by-name mymaster";
  EXPECT_THAT(TlsCli(port, tls, true, ask).out, HasSubstr("NOAUTH"));
  const Ran authed = TlsCli(port, tls, true, "-a 'sentinel secret' " + ask);
  EXPECT_THAT(Lines(authed.out),
              testing::Contains(absl::StrCat(fleet->node(0).port())))
      << authed.out;
  EXPECT_THAT(fleet->MasterAddr(), IsOkAndHolds(fleet->node(0).addr()));
  EXPECT_THAT(fleet->PolicyTargetJson(),
              AllOf(HasSubstr(R"("password_env": "REDIS_PASSWORD")"),
                    HasSubstr(R"("sentinel_password_env": )"
                              R"("REDIS_SENTINEL_PASSWORD")"),
                    HasSubstr(R"("tls": {)")));
}

TEST_F(TlsFleetTest, ClusterAnswersTlsPortsToTlsClientsAndMovesSlots) {
  RedisFleet* fleet = Start(RedisFleet::Cluster(3, 1, MutualTls()));
  ASSERT_NE(fleet, nullptr);
  const TlsFiles& tls = *fleet->tls_files();
  std::set<std::string> tls_ports;
  std::set<std::string> master_tls_ports;
  std::set<std::string> plain_ports;
  for (int i = 0; i < fleet->size(); ++i) {
    tls_ports.insert(absl::StrCat(fleet->node(i).port()));
    if (i < fleet->shard_count()) {
      master_tls_ports.insert(absl::StrCat(fleet->node(i).port()));
    }
    plain_ports.insert(absl::StrCat(fleet->node(i).plain_port()));
  }
  const Ran slots = TlsCli(fleet->node(0).port(), tls, true, "CLUSTER SLOTS");
  ASSERT_EQ(slots.code, 0) << slots.out;
  // Redis 7.0 leaves out replicas whose replication offset is still 0 (a
  // fresh, idle cluster), so only the masters are sure to be there.
  std::set<std::string> masters_seen;
  for (const std::string& line : Lines(slots.out)) {
    if (master_tls_ports.count(line)) masters_seen.insert(line);
    EXPECT_EQ(plain_ports.count(line), 0u) << "plaintext port " << line;
  }
  EXPECT_EQ(masters_seen, master_tls_ports) << slots.out;
  // The harness's plaintext connection gets the plaintext ports instead.
  absl::StatusOr<std::string> plain_slots =
      fleet->node(0).Exec({"CLUSTER", "SLOTS"});
  ASSERT_THAT(plain_slots, IsOk());
  for (const std::string& line : Lines(*plain_slots)) {
    EXPECT_EQ(tls_ports.count(line), 0u) << "TLS port " << line;
  }
  EXPECT_THAT(*plain_slots,
              HasSubstr(absl::StrCat("\n", fleet->node(0).plain_port(), "\n")));

  // MOVED to a TLS client names a TLS port.
  const int slot = RedisFleet::KeySlot("tls-key");
  absl::StatusOr<int> owner = fleet->NodeIndexForSlot(slot);
  ASSERT_THAT(owner, IsOk());
  const int other = fleet->ShardOf(*owner) == 0 ? 1 : 0;
  const Ran moved =
      TlsCli(fleet->node(other).port(), tls, true, "SET tls-key v");
  EXPECT_THAT(moved.out, HasSubstr(absl::StrCat("MOVED ", slot, " 127.0.0.1:",
                                                fleet->node(*owner).port())));

  // MoveSlot migrates the key over TLS (tls-cluster makes MIGRATE use TLS).
  ASSERT_THAT(fleet->node(*owner).Exec({"SET", "tls-key", "v"}), IsOk());
  const int target_shard = (fleet->ShardOf(*owner) + 1) % fleet->shard_count();
  ASSERT_THAT(fleet->MoveSlot(slot, target_shard), IsOk());
  absl::StatusOr<int> new_owner = fleet->NodeIndexForSlot(slot);
  ASSERT_THAT(new_owner, IsOk());
  EXPECT_EQ(fleet->ShardOf(*new_owner), target_shard);
  EXPECT_EQ(
      Trim(TlsCli(fleet->node(*new_owner).port(), tls, true, "GET tls-key").out),
      "v");
  ASSERT_THAT(fleet->Failover(0), IsOk());
  ASSERT_THAT(fleet->WaitForClusterConverged(absl::Seconds(30)), IsOk());
  EXPECT_THAT(fleet->PolicyTargetJson(),
              AllOf(HasSubstr(fleet->node(0).addr()), HasSubstr("\"tls\"")));
}

}  // namespace
}  // namespace lock::harness
