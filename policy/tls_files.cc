// The files of a target's "tls" block: read when the configuration is loaded
// and checked with OpenSSL, so that a wrong path, a truncated file or a key
// that does not belong to its certificate is a configuration error naming the
// file, not a handshake failure on the first lock.
#include "policy/internal/tls_files.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <system_error>
#include <utility>

#include "policy/config.h"
#include "policy/internal/files.h"

namespace policy::internal {
namespace {

// PEM files are a few KiB; anything this large is a wrong path (a log, a
// device), and reading it whole on every poll would be a waste.
constexpr size_t kMaxFileSize = 1 << 20;

// What a watcher compares: the text read, or why it could not be.
std::string FingerprintOf(const absl::StatusOr<std::string>& file) {
  if (!file.ok()) return Cat("error: ", file.status().message());
  return Cat(file->size(), " ", std::hash<std::string>()(*file));
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Bio MemoryBio(const std::string& pem) {
  return Bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// Never prompt on the terminal for an encrypted key's passphrase (OpenSSL's
// default without a callback): the loader runs in a server.
int NoPassphrase(char*, int, int, void*) { return 0; }

// Whether OpenSSL's error queue holds only the "no more PEM blocks" that
// ends every successful read loop. Clears the queue: it is per thread and
// shared with whatever else the thread does with OpenSSL.
bool OnlyEndOfInput() {
  bool only_end = true;
  while (const unsigned long e = ERR_get_error()) {
    if (!(ERR_GET_LIB(e) == ERR_LIB_PEM &&
          ERR_GET_REASON(e) == PEM_R_NO_START_LINE)) {
      only_end = false;
    }
  }
  return only_end;
}

// The PEM certificates of `pem`; "" or the problem.
std::string CountCertificates(const std::string& pem, int* count) {
  *count = 0;
  Bio bio = MemoryBio(pem);
  while (Cert cert{PEM_read_bio_X509(bio.get(), nullptr, &NoPassphrase,
                                     nullptr)}) {
    ++*count;
  }
  if (!OnlyEndOfInput()) {
    return Cat("certificate ", *count + 1, " is malformed PEM");
  }
  return "";
}

// The resolved path of a configured one: relative paths against `directory`
// (or the working directory), made absolute.
std::string Resolve(std::string_view directory, const std::string& path) {
  namespace fs = std::filesystem;
  fs::path p(path);
  if (p.is_relative() && !directory.empty()) p = fs::path(directory) / p;
  std::error_code ec;
  fs::path absolute = fs::absolute(p, ec);
  return (ec ? p : absolute).lexically_normal().string();
}

}  // namespace

void LoadTlsFiles(std::string_view directory, const Where& at,
                  ErrorList& errors, TlsOptions* tls,
                  std::map<std::string, std::string>* fingerprints) {
  // The paths as configured: errors show the value as it was given.
  std::map<std::string_view, std::string> configured;
  // Reads one configured file into *pem; false when it is not given or could
  // not be read (reported).
  auto load = [&](std::string_view field, std::string* path, std::string* pem) {
    if (path->empty()) return false;
    configured[field] = *path;
    *path = Resolve(directory, *path);
    absl::StatusOr<std::string> file = ReadRegularFile(*path, kMaxFileSize);
    (*fingerprints)[*path] = FingerprintOf(file);
    if (!file.ok()) {
      errors.Add(at / field, Cat("cannot read ", *path, ": ", file.status().message()),
                 ShowString(configured[field]));
      return false;
    }
    *pem = *std::move(file);
    return true;
  };
  auto report = [&](std::string_view field, const std::string& path,
                    std::string_view problem) {
    errors.Add(at / field, Cat(path, ": ", problem),
               ShowString(configured[field]));
  };

  if (load("ca_file", &tls->ca_file, &tls->ca_pem)) {
    int count = 0;
    if (std::string problem = CountCertificates(tls->ca_pem, &count);
        !problem.empty()) {
      report("ca_file", tls->ca_file, problem);
    } else if (count == 0) {
      report("ca_file", tls->ca_file,
             "contains no PEM certificate (\"-----BEGIN CERTIFICATE-----\")");
    }
  }

  Cert cert;
  if (load("cert_file", &tls->cert_file, &tls->cert_pem)) {
    // A chain is fine: the first certificate is the client's own, the one
    // its key must match.
    Bio bio = MemoryBio(tls->cert_pem);
    cert.reset(PEM_read_bio_X509(bio.get(), nullptr, &NoPassphrase, nullptr));
    ERR_clear_error();
    if (cert == nullptr) {
      report("cert_file", tls->cert_file,
             "contains no PEM certificate (\"-----BEGIN CERTIFICATE-----\")");
    }
  }

  Key key;
  if (load("key_file", &tls->key_file, &tls->key_pem)) {
    Bio bio = MemoryBio(tls->key_pem);
    key.reset(
        PEM_read_bio_PrivateKey(bio.get(), nullptr, &NoPassphrase, nullptr));
    ERR_clear_error();
    if (key == nullptr) {
      report("key_file", tls->key_file,
             "contains no unencrypted PEM private key (\"-----BEGIN PRIVATE "
             "KEY-----\" or \"-----BEGIN RSA/EC PRIVATE KEY-----\"); "
             "passphrase-protected keys are not supported");
    }
  }

  if (cert != nullptr && key != nullptr) {
    const bool match = X509_check_private_key(cert.get(), key.get()) == 1;
    ERR_clear_error();
    if (!match) {
      errors.Add(at / "key_file",
                 Cat("the private key in ", tls->key_file,
                     " does not match the certificate in ", tls->cert_file,
                     " (a key and a certificate from different pairs?)"),
                 ShowString(configured["key_file"]));
    }
  }
}

}  // namespace policy::internal

namespace policy {

std::string FileFingerprint(const std::string& path) {
  return internal::FingerprintOf(internal::ReadRegularFile(path, internal::kMaxFileSize));
}

}  // namespace policy
