// Reading and checking the files of a target's "tls" block when the
// configuration is loaded (pass 2 of parsing, see config.cc). The only part of
// the parser that touches files and the only one that uses OpenSSL: policy.h
// holds the PEM texts, never OpenSSL types.
#ifndef POLICY_INTERNAL_TLS_FILES_H_
#define POLICY_INTERNAL_TLS_FILES_H_

#include <map>
#include <string>
#include <string_view>

#include "policy/internal/errors.h"
#include "policy/policy.h"

namespace policy::internal {

// For an enabled `tls`: resolves ca_file, cert_file and key_file (relative
// paths against `directory`, "" = the working directory; the result is
// absolute) and stores the resolved paths back, reads each file into its
// *_pem field and checks it with OpenSSL: the CA bundle holds at least one
// certificate, cert_file a certificate, key_file a private key that belongs to
// that certificate. Problems are reported at `at` / "<field>" (the "tls"
// object's path), naming the file; the value shown is the path as configured.
//
// Every file it read, or tried to, is added to *fingerprints with
// FileFingerprint() of what was read, so that a watcher can tell when the
// file changes afterwards (a rotated certificate).
void LoadTlsFiles(std::string_view directory, const Where& at,
                  ErrorList& errors, TlsOptions* tls,
                  std::map<std::string, std::string>* fingerprints);

}  // namespace policy::internal

#endif  // POLICY_INTERNAL_TLS_FILES_H_
