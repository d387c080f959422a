// The "tls" block and sentinel authentication of a Redis target: reading,
// the files (made at test time with the openssl CLI), the struct rules and
// rendering them back.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "policy/config.h"
#include "policy/internal/config_testing.h"
#include "policy/internal/tls_testing.h"
#include "policy/registry.h"
#include "policy/validate.h"
#include "util/status_matchers.h"

namespace policy {
namespace {

using config_testing::ErrorLines;
using config_testing::Parse;
using config_testing::WithTarget;
using tls_testing::Pki;
using ::util::testing::IsOk;
using ::util::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::StartsWith;

constexpr char kSentinelPasswordVariable[] = "POLICY_TEST_SENTINEL_PASSWORD";
constexpr char kSentinelPassword[] = "sentinel-secret-pw";

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// One PKI for the whole suite: openssl takes a moment per run.
class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new Pki(tls_testing::MakePki(tls_testing::TestDir("pki")));
  }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  // A standalone target "default" on a TCP address with `tls` as its "tls"
  // value.
  static std::string WithTls(const std::string& tls) {
    return WithTarget(R"({"addrs": ["127.0.0.1:6380"], "tls": )" + tls + "}");
  }

  // A "tls" object with these files ("" = left out).
  static std::string Files(const std::string& ca, const std::string& cert,
                           const std::string& key) {
    std::vector<std::string> fields;
    if (!ca.empty()) fields.push_back(R"("ca_file": )" + Quote(ca));
    if (!cert.empty()) fields.push_back(R"("cert_file": )" + Quote(cert));
    if (!key.empty()) fields.push_back(R"("key_file": )" + Quote(key));
    std::string out = "{";
    for (size_t i = 0; i < fields.size(); ++i) {
      out += (i > 0 ? ", " : "") + fields[i];
    }
    return out + "}";
  }

  static const RedisTarget& Default(
      const absl::StatusOr<std::shared_ptr<const Snapshot>>& s) {
    return *(*s)->FindTarget("default");
  }

  static Pki* pki_;
};

Pki* TlsTest::pki_ = nullptr;

TEST_F(TlsTest, ValidFilesAreReadIntoPem) {
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = Parse(WithTls(
      R"({"ca_file": )" + Quote(pki_->ca) + R"(, "cert_file": )" +
      Quote(pki_->cert) + R"(, "key_file": )" + Quote(pki_->key) +
      R"(, "server_name": "redis.internal"})"));
  ASSERT_THAT(s, IsOk());
  const TlsOptions& tls = Default(s).tls;
  EXPECT_TRUE(tls.enabled);
  EXPECT_EQ(tls.ca_file, pki_->ca);
  EXPECT_EQ(tls.cert_file, pki_->cert);
  EXPECT_EQ(tls.key_file, pki_->key);
  EXPECT_EQ(tls.server_name, "redis.internal");
  EXPECT_TRUE(tls.verify_peer);
  EXPECT_EQ(tls.ca_pem, ReadFile(pki_->ca));
  EXPECT_EQ(tls.cert_pem, ReadFile(pki_->cert));
  EXPECT_EQ(tls.key_pem, ReadFile(pki_->key));
  EXPECT_THAT(tls.ca_pem, StartsWith("-----BEGIN CERTIFICATE-----"));
  EXPECT_THAT(tls.key_pem, HasSubstr("PRIVATE KEY-----"));
}

TEST_F(TlsTest, AnEmptyBlockEnablesTlsWithTheSystemTrustStore) {
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = Parse(WithTls("{}"));
  ASSERT_THAT(s, IsOk());
  EXPECT_TRUE(Default(s).tls.enabled);
  EXPECT_EQ(Default(s).tls.ca_file, "");
  EXPECT_EQ(Default(s).tls.ca_pem, "");
}

TEST_F(TlsTest, NoBlockMeansNoTls) {
  absl::StatusOr<std::shared_ptr<const Snapshot>> s =
      Parse(WithTarget(R"({"addrs": ["127.0.0.1:6379"]})"));
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(Default(s).tls, TlsOptions());
}

TEST_F(TlsTest, DisabledBlockKeepsItsSettingsAndReadsNothing) {
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = Parse(WithTls(
      R"({"enabled": false, "ca_file": "nowhere/ca.pem",
          "cert_file": "nowhere/client.pem", "verify_peer": false})"));
  ASSERT_THAT(s, IsOk());
  const TlsOptions& tls = Default(s).tls;
  EXPECT_FALSE(tls.enabled);
  EXPECT_EQ(tls.ca_file, "nowhere/ca.pem");  // As given: never resolved.
  EXPECT_EQ(tls.cert_file, "nowhere/client.pem");
  EXPECT_FALSE(tls.verify_peer);
  EXPECT_EQ(tls.ca_pem, "");
  EXPECT_EQ(tls.cert_pem, "");
}

TEST_F(TlsTest, MissingFileNamesPathFileAndErrno) {
  const std::string missing = pki_->dir + "/missing.pem";
  EXPECT_THAT(ErrorLines(WithTls(Files(missing, "", ""))),
              // The value shown after ", got" is cut when long, as any.
              ElementsAre(StartsWith(
                  "test.json: /redis/default/tls/ca_file: cannot read " +
                  missing + ": No such file or directory, got \"")));
}

TEST_F(TlsTest, UnreadableFileNamesErrno) {
  // A directory opens but cannot be read (EISDIR), whoever runs the test;
  // file permissions would not stop root.
  EXPECT_THAT(ErrorLines(WithTls(Files(pki_->dir, "", ""))),
              ElementsAre(AllOf(
                  StartsWith("test.json: /redis/default/tls/ca_file: cannot "
                             "read " +
                             pki_->dir + ": "),
                  HasSubstr("Is a directory"))));
}

// A device or a pipe would block the loader (or never end).
TEST_F(TlsTest, OnlyRegularFilesAreRead) {
  EXPECT_THAT(ErrorLines(WithTls(Files("/dev/zero", "", ""))),
              ElementsAre(StartsWith("test.json: /redis/default/tls/ca_file: "
                                     "cannot read /dev/zero: not a regular "
                                     "file")));
  const std::string fifo = pki_->dir + "/fifo.pem";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_THAT(ErrorLines(WithTls(Files(fifo, "", ""))),
              ElementsAre(HasSubstr("cannot read " + fifo +
                                    ": not a regular file")));
}

TEST_F(TlsTest, GarbageFilesAreRejectedByContent) {
  const std::string garbage = pki_->dir + "/garbage.pem";
  WriteFile(garbage, "this is not PEM\n");
  const std::vector<std::string> lines =
      ErrorLines(WithTls(Files(garbage, garbage, garbage)));
  EXPECT_THAT(
      lines,
      ElementsAre(
          StartsWith("test.json: /redis/default/tls/ca_file: " + garbage +
                     ": contains no PEM certificate"),
          StartsWith("test.json: /redis/default/tls/cert_file: " + garbage +
                     ": contains no PEM certificate"),
          StartsWith("test.json: /redis/default/tls/key_file: " + garbage +
                     ": contains no unencrypted PEM private key")));
}

TEST_F(TlsTest, KeyAsCaBundleOrCertificateIsRejected) {
  EXPECT_THAT(ErrorLines(WithTls(Files(pki_->key, "", ""))),
              ElementsAre(HasSubstr("/tls/ca_file: " + pki_->key +
                                    ": contains no PEM certificate")));
  EXPECT_THAT(ErrorLines(WithTls(Files("", pki_->key, pki_->key))),
              ElementsAre(HasSubstr("/tls/cert_file: " + pki_->key +
                                    ": contains no PEM certificate")));
}

TEST_F(TlsTest, TruncatedCertificateInABundleIsRejected) {
  const std::string ca = ReadFile(pki_->ca);
  const std::string bundle = pki_->dir + "/truncated-bundle.pem";
  WriteFile(bundle, ca + ca.substr(0, ca.size() / 2));
  EXPECT_THAT(ErrorLines(WithTls(Files(bundle, "", ""))),
              ElementsAre(HasSubstr("/tls/ca_file: " + bundle +
                                    ": certificate 2 is malformed PEM")));
}

TEST_F(TlsTest, KeyThatDoesNotMatchTheCertificate) {
  EXPECT_THAT(
      ErrorLines(WithTls(Files(pki_->ca, pki_->cert, pki_->other_key))),
      ElementsAre(StartsWith(
          "test.json: /redis/default/tls/key_file: the private key in " +
          pki_->other_key + " does not match the certificate in " +
          pki_->cert +
          " (a key and a certificate from different pairs?), got \"")));
}

TEST_F(TlsTest, CertificateAndKeyBothOrNeither) {
  EXPECT_THAT(ErrorLines(WithTls(Files("", pki_->cert, ""))),
              ElementsAre(StartsWith(
                  "test.json: /redis/default/tls/cert_file: needs "
                  "\"key_file\"")));
  EXPECT_THAT(ErrorLines(WithTls(Files("", "", pki_->key))),
              ElementsAre(StartsWith(
                  "test.json: /redis/default/tls/key_file: needs "
                  "\"cert_file\"")));
}

TEST_F(TlsTest, UnixAddressWithTlsIsAnError) {
  EXPECT_THAT(
      ErrorLines(WithTarget(
          R"({"addrs": ["unix:/run/redis.sock"], "tls": {}})")),
      ElementsAre(AllOf(
          StartsWith("test.json: /redis/default/addrs/0: is a unix socket, "
                     "but \"tls\" is enabled: Redis serves TLS only on TCP"),
          HasSubstr("got \"unix:/run/redis.sock\""))));
  // Switched off, the socket is fine.
  EXPECT_THAT(Parse(WithTarget(
                  R"({"addrs": ["unix:/run/redis.sock"],
                      "tls": {"enabled": false}})")),
              IsOk());
}

TEST_F(TlsTest, FieldsAreTypeCheckedAndUnknownOnesRejected) {
  EXPECT_THAT(
      ErrorLines(WithTls(R"({"verify": false, "enabled": "yes",
                             "server_name": 3, "ca_file": ["a"]})")),
      ElementsAre(
          "test.json: /redis/default/tls/ca_file: must be a string, got "
          "[\"a\"]",
          "test.json: /redis/default/tls/enabled: must be true or false, got "
          "\"yes\"",
          "test.json: /redis/default/tls/server_name: must be a string, got 3",
          "test.json: /redis/default/tls/verify: unknown field \"verify\", "
          "did you mean \"verify_peer\"?"));
  EXPECT_THAT(ErrorLines(WithTls("true")),
              ElementsAre("test.json: /redis/default/tls: must be an object, "
                          "got true"));
}

TEST_F(TlsTest, RelativePathsWithoutAFileResolveAgainstTheWorkingDirectory) {
  const std::string cwd = std::filesystem::current_path().string();
  EXPECT_THAT(ErrorLines(WithTls(Files("no-such-dir/ca.pem", "", ""))),
              ElementsAre(HasSubstr("cannot read " + cwd +
                                    "/no-such-dir/ca.pem: No such file")));
}

TEST_F(TlsTest, RelativePathsResolveAgainstTheConfigurationFilesDirectory) {
  // The configuration in conf/, the files in conf/certs/: the test's working
  // directory is elsewhere.
  const std::string conf = tls_testing::TestDir("relative-conf");
  ASSERT_EQ(::mkdir(conf.c_str(), 0755), 0);
  const Pki certs = tls_testing::MakePki(conf + "/certs");
  WriteFile(conf + "/locks.json",
            WithTls(Files("certs/ca.pem", "certs/client.pem",
                          "./certs/../certs/client.key")));
  absl::StatusOr<std::unique_ptr<Registry>> r =
      Registry::Load(conf + "/locks.json");
  ASSERT_THAT(r, IsOk());
  std::shared_ptr<const RedisTarget> t = (*r)->FindTarget("default");
  EXPECT_EQ(t->tls.ca_file, certs.ca);
  EXPECT_EQ(t->tls.cert_file, certs.cert);
  EXPECT_EQ(t->tls.key_file, certs.key);
  EXPECT_EQ(t->tls.ca_pem, ReadFile(certs.ca));
}

TEST_F(TlsTest, ExplainShowsPathsNeverPemOrPasswords) {
  setenv(kSentinelPasswordVariable, kSentinelPassword, 1);
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = Parse(
      R"({"redis": {"default": {"mode": "sentinel", "sentinels": ["s1:26379"],
            "master_name": "m", "sentinel_username": "watcher",
            "sentinel_password_env": )" +
      Quote(kSentinelPasswordVariable) + R"(, "tls": )" +
      Files(pki_->ca, pki_->cert, pki_->key) + "}}}");
  ASSERT_THAT(s, IsOk());
  const RedisTarget& t = Default(s);
  ASSERT_FALSE(t.tls.key_pem.empty());
  const nlohmann::json explained = ExplainTarget(t);
  EXPECT_EQ(explained["tls"],
            nlohmann::json({{"enabled", true},
                            {"ca_file", pki_->ca},
                            {"cert_file", pki_->cert},
                            {"key_file", pki_->key},
                            {"server_name", ""},
                            {"verify_peer", true}}));
  EXPECT_EQ(explained["sentinel_username"], "watcher");
  EXPECT_EQ(explained["sentinel_password_env"], kSentinelPasswordVariable);
  const std::string text = ExplainSnapshot(**s).dump();
  EXPECT_THAT(text, Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(text, Not(HasSubstr(t.tls.key_pem.substr(30, 40))));
  EXPECT_THAT(text, Not(HasSubstr("BEGIN CERTIFICATE")));
  EXPECT_THAT(text, Not(HasSubstr(kSentinelPassword)));

  // Parsed again, it is the same target, files and all.
  absl::StatusOr<std::shared_ptr<const Snapshot>> again =
      ParseConfig(text, "explained.json");
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(*(*again)->FindTarget("default"), t);
}

TEST_F(TlsTest, ErrorsNeverShowTheSentinelPassword) {
  setenv(kSentinelPasswordVariable, kSentinelPassword, 1);
  const std::vector<std::string> lines = ErrorLines(
      R"({"redis": {"default": {"mode": "sentinel", "sentinels": ["s1:26379"],
            "master_name": "m", "sentinel_password_env": )" +
      Quote(kSentinelPasswordVariable) + R"(, "pool_size": 0}}})");
  ASSERT_THAT(lines, Not(IsEmpty()));
  for (const std::string& line : lines) {
    EXPECT_THAT(line, Not(HasSubstr(kSentinelPassword)));
  }
}

// ---------------------------------------------------------------------------
// Sentinel authentication.

TEST_F(TlsTest, SentinelAuthIsReadFromTheEnvironment) {
  setenv(kSentinelPasswordVariable, kSentinelPassword, 1);
  absl::StatusOr<std::shared_ptr<const Snapshot>> s = Parse(
      R"({"redis": {"default": {"mode": "sentinel", "sentinels": ["s1:26379"],
            "master_name": "m", "sentinel_username": "watcher",
            "sentinel_password_env": )" +
      Quote(kSentinelPasswordVariable) + "}}}");
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(Default(s).sentinel_username, "watcher");
  EXPECT_EQ(Default(s).sentinel_password_env, kSentinelPasswordVariable);
  EXPECT_EQ(Default(s).sentinel_password, kSentinelPassword);
  EXPECT_EQ(Default(s).password, "");  // The data nodes' AUTH is separate.
}

TEST_F(TlsTest, SentinelPasswordEnvUnsetIsAnError) {
  unsetenv("POLICY_TEST_NEVER_SET");
  EXPECT_THAT(
      ErrorLines(
          R"({"redis": {"default": {"mode": "sentinel",
                "sentinels": ["s1:26379"], "master_name": "m",
                "sentinel_password_env": "POLICY_TEST_NEVER_SET"}}})"),
      ElementsAre("test.json: /redis/default/sentinel_password_env: "
                  "environment variable POLICY_TEST_NEVER_SET is not set, got "
                  "\"POLICY_TEST_NEVER_SET\""));
}

TEST_F(TlsTest, SentinelUsernameNeedsItsPasswordVariable) {
  EXPECT_THAT(
      ErrorLines(R"({"redis": {"default": {"mode": "sentinel",
                      "sentinels": ["s1:26379"], "master_name": "m",
                      "sentinel_username": "watcher"}}})"),
      ElementsAre("test.json: /redis/default/sentinel_username: needs "
                  "\"sentinel_password_env\": AUTH with a user needs a "
                  "password, got \"watcher\""));
}

TEST_F(TlsTest, SentinelFieldsOnlyInSentinelMode) {
  setenv(kSentinelPasswordVariable, kSentinelPassword, 1);
  EXPECT_THAT(
      ErrorLines(WithTarget(R"({"addrs": ["h:1"], "sentinel_username": "w",
                                "sentinel_password_env": )" +
                            Quote(kSentinelPasswordVariable) + "}")),
      ElementsAre(
          StartsWith("test.json: /redis/default/sentinel_username: is only "
                     "used with mode \"sentinel\", not \"standalone\""),
          StartsWith("test.json: /redis/default/sentinel_password_env: is "
                     "only used with mode \"sentinel\", not \"standalone\"")));
}

// ---------------------------------------------------------------------------
// A target built in code.

TEST_F(TlsTest, CheckTargetAppliesTheSameRulesToAStruct) {
  RedisTarget t;
  t.name = "cache";
  t.addrs = {"unix:/run/redis.sock"};
  t.tls.enabled = true;
  t.tls.cert_pem = "-----BEGIN CERTIFICATE-----...";
  t.sentinel_username = "w";
  EXPECT_THAT(
      CheckTarget(t, "code").message(),
      AllOf(HasSubstr("code: /redis/cache/sentinel_username: is only used "
                      "with mode \"sentinel\""),
            HasSubstr("code: /redis/cache/tls/cert_file: needs \"key_file\""),
            HasSubstr("code: /redis/cache/addrs/0: is a unix socket")));
  EXPECT_THAT(CheckTarget(t, "code"),
              StatusIs(absl::StatusCode::kInvalidArgument));

  RedisTarget ok;
  ok.name = "cache";
  ok.addrs = {"h:1"};
  ok.tls.enabled = true;
  ok.tls.cert_pem = "cert";
  ok.tls.key_pem = "key";
  EXPECT_THAT(CheckTarget(ok, "code"), IsOk());
  ok.tls = TlsOptions();
  ok.addrs = {"unix:/run/redis.sock"};
  EXPECT_THAT(CheckTarget(ok, "code"), IsOk());
}

}  // namespace
}  // namespace policy
