// Certificates for the TLS tests, made at test time with the openssl CLI
// (tools/setup installs it): nothing secret or expiring is checked in.
#ifndef POLICY_INTERNAL_TLS_TESTING_H_
#define POLICY_INTERNAL_TLS_TESTING_H_

#include <sys/stat.h>

#include <cstdlib>
#include <string>

#include "gtest/gtest.h"

namespace policy::tls_testing {

// The files of a small PKI in one directory.
struct Pki {
  std::string dir;
  std::string ca;         // ca.pem: the CA certificate
  std::string cert;       // client.pem: a certificate signed by the CA
  std::string key;        // client.key: its key
  std::string other_key;  // other.key: a key of no certificate
};

// Runs a shell command; its output goes to a log in the directory, so that a
// failure can be looked at without cluttering the test log.
inline bool Run(const std::string& dir, const std::string& command) {
  const std::string line =
      "cd '" + dir + "' && (" + command + ") >>openssl.log 2>&1";
  const int rc = std::system(line.c_str());
  EXPECT_EQ(rc, 0) << line << " (see " << dir << "/openssl.log)";
  return rc == 0;
}

// Makes the PKI in `dir` (created if needed). EC P-256 keys: generated in
// milliseconds, unlike RSA.
inline Pki MakePki(const std::string& dir) {
  ::mkdir(dir.c_str(), 0755);
  constexpr char kEc[] = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 ";
  Run(dir, std::string("openssl req -x509 -nodes -days 2") + kEc +
               "-keyout ca.key -out ca.pem -subj /CN=policy-test-ca");
  Run(dir, std::string("openssl req -nodes") + kEc +
               "-keyout client.key -out client.csr -subj /CN=policy-test-client");
  Run(dir,
      "openssl x509 -req -days 2 -in client.csr -CA ca.pem -CAkey ca.key "
      "-CAcreateserial -out client.pem");
  Run(dir,
      "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 "
      "-out other.key");
  return Pki{.dir = dir,
             .ca = dir + "/ca.pem",
             .cert = dir + "/client.pem",
             .key = dir + "/client.key",
             .other_key = dir + "/other.key"};
}

// $TEST_TMPDIR/<name>: a directory of the test's own.
inline std::string TestDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return std::string(tmp != nullptr ? tmp : "/tmp") + "/" + name;
}

}  // namespace policy::tls_testing

#endif  // POLICY_INTERNAL_TLS_TESTING_H_
