#include "integration/harness/tls_files.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "integration/harness/subprocess.h"
#include "util/status_macros.h"

namespace lock::harness {
namespace {

// One openssl step; generous for a loaded machine (each takes milliseconds).
constexpr absl::Duration kStepTimeout = absl::Seconds(30);
constexpr char kTenYears[] = "3650";
// `openssl x509 -days` cannot put a certificate in the past; `openssl ca`
// takes explicit dates.
constexpr char kExpiredStart[] = "20200101000000Z";
constexpr char kExpiredEnd[] = "20200102000000Z";

// The extension sections and the minimal `openssl ca` setup, so that nothing
// depends on the system's openssl.cnf.
std::string OpensslConfig(const std::string& dir) {
  return absl::StrCat(R"([req]
distinguished_name = dn
prompt = no
[dn]
CN = redis-lock test
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = IP:127.0.0.1, DNS:localhost
[wrong_host_ext]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = DNS:not-this-host.example
[client_ext]
basicConstraints = CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ca]
default_ca = test_ca
[test_ca]
database = )",
                      dir, R"(/ca-db/index.txt
new_certs_dir = )",
                      dir, R"(/ca-db
rand_serial = yes
default_md = sha256
policy = any_name
unique_subject = no
[any_name]
commonName = supplied
)");
}

absl::Status Openssl(std::vector<std::string> args) {
  args.insert(args.begin(), "openssl");
  absl::Status status = internal::RunChecked(args, kStepTimeout).status();
  if (absl::IsNotFound(status)) {
    return absl::NotFoundError(absl::StrCat(
        "MakeTlsFiles needs the openssl CLI (tools/setup installs it): ",
        status.message()));
  }
  return status;
}

// A new prime256v1 key in `key` and a certificate request for it.
absl::Status KeyAndRequest(const std::string& config, const std::string& key,
                           const std::string& subject,
                           const std::string& request) {
  return Openssl({"req", "-config", config, "-new", "-newkey", "ec",
                  "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc",
                  "-keyout", key, "-subj", subject, "-out", request});
}

// A request for an existing key.
absl::Status Request(const std::string& config, const std::string& key,
                     const std::string& subject, const std::string& request) {
  return Openssl({"req", "-config", config, "-new", "-key", key, "-subj",
                  subject, "-out", request});
}

absl::Status SelfSignedCa(const std::string& config, const std::string& key,
                          const std::string& subject,
                          const std::string& cert) {
  return Openssl({"req", "-config", config, "-x509", "-new", "-newkey", "ec",
                  "-pkeyopt", "ec_paramgen_curve:prime256v1", "-noenc",
                  "-keyout", key, "-subj", subject, "-days", kTenYears,
                  "-extensions", "ca_ext", "-out", cert});
}

absl::Status Sign(const std::string& config, const TlsFiles& ca,
                  const std::string& request, const std::string& extensions,
                  const std::string& cert) {
  return Openssl({"x509", "-req", "-in", request, "-CA", ca.ca_cert, "-CAkey",
                  ca.ca_key, "-days", kTenYears, "-sha256", "-extfile", config,
                  "-extensions", extensions, "-out", cert});
}

absl::Status Generate(const TlsFiles& files) {
  std::error_code error;
  std::filesystem::create_directories(files.dir + "/ca-db", error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("MakeTlsFiles: mkdir ", files.dir, ": ", error.message()));
  }
  const std::string config = files.dir + "/openssl.cnf";
  {
    std::ofstream out(config, std::ios::trunc);
    out << OpensslConfig(files.dir);
    std::ofstream index(files.dir + "/ca-db/index.txt", std::ios::trunc);
    if (!out || !index) {
      return absl::InternalError(
          absl::StrCat("MakeTlsFiles: cannot write into ", files.dir));
    }
  }
  const std::string server_request = files.dir + "/server.csr";
  const std::string wrong_host_request = files.dir + "/wrong-host-server.csr";
  const std::string client_request = files.dir + "/client.csr";
  RETURN_IF_ERROR(SelfSignedCa(config, files.ca_key, "/CN=redis-lock test CA",
                               files.ca_cert));
  RETURN_IF_ERROR(KeyAndRequest(config, files.server_key, "/CN=localhost",
                                server_request));
  RETURN_IF_ERROR(
      Sign(config, files, server_request, "server_ext", files.server_cert));
  RETURN_IF_ERROR(Request(config, files.server_key,
                          "/CN=not-this-host.example", wrong_host_request));
  RETURN_IF_ERROR(Sign(config, files, wrong_host_request, "wrong_host_ext",
                       files.wrong_host_server_cert));
  RETURN_IF_ERROR(Openssl({"ca", "-batch", "-config", config, "-cert",
                           files.ca_cert, "-keyfile", files.ca_key, "-in",
                           server_request, "-extfile", config, "-extensions",
                           "server_ext", "-startdate", kExpiredStart,
                           "-enddate", kExpiredEnd, "-notext", "-out",
                           files.expired_server_cert}));
  RETURN_IF_ERROR(KeyAndRequest(config, files.client_key,
                                "/CN=redis-lock test client", client_request));
  RETURN_IF_ERROR(
      Sign(config, files, client_request, "client_ext", files.client_cert));
  return SelfSignedCa(config, files.dir + "/other-ca.key",
                      "/CN=redis-lock other test CA", files.other_ca_cert);
}

bool AllExist(const TlsFiles& files) {
  for (const std::string* path :
       {&files.ca_cert, &files.ca_key, &files.server_cert, &files.server_key,
        &files.client_cert, &files.client_key, &files.other_ca_cert,
        &files.expired_server_cert, &files.wrong_host_server_cert}) {
    if (!std::filesystem::exists(*path)) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<TlsFiles> MakeTlsFiles(const std::string& dir) {
  if (dir.empty()) return absl::InvalidArgumentError("MakeTlsFiles: no dir");
  std::error_code error;
  std::filesystem::path absolute = std::filesystem::absolute(dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("MakeTlsFiles: ", dir, ": ", error.message()));
  }
  TlsFiles files;
  files.dir = absolute.lexically_normal().string();
  while (files.dir.size() > 1 && files.dir.back() == '/') files.dir.pop_back();
  const std::string& d = files.dir;
  files.ca_cert = d + "/ca.crt";
  files.ca_key = d + "/ca.key";
  files.server_cert = d + "/server.crt";
  files.server_key = d + "/server.key";
  files.client_cert = d + "/client.crt";
  files.client_key = d + "/client.key";
  files.other_ca_cert = d + "/other-ca.crt";
  files.expired_server_cert = d + "/expired-server.crt";
  files.expired_server_key = files.server_key;
  files.wrong_host_server_cert = d + "/wrong-host-server.crt";
  files.wrong_host_server_key = files.server_key;

  static std::mutex* const mu = new std::mutex;
  static auto* const made = new std::map<std::string, TlsFiles>;
  std::lock_guard<std::mutex> lock(*mu);
  if (made->count(files.dir) && AllExist(files)) return files;
  RETURN_IF_ERROR(Generate(files));
  (*made)[files.dir] = files;
  return files;
}

}  // namespace lock::harness
