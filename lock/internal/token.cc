#include "lock/internal/token.h"

#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace lock::internal {
namespace {

const std::string& HostName() {
  static const std::string* host = [] {
    char buf[256] = {};
    if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') {
      return new std::string("unknown-host");
    }
    return new std::string(buf);
  }();
  return *host;
}

}  // namespace

std::string NewOwnerToken() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      // Without a CSPRNG tokens could collide and two owners would share a
      // lock; refusing to go on is the only safe answer.
      std::perror("lock: getrandom failed");
      std::abort();
    }
    got += static_cast<size_t>(n);
  }
  return absl::StrCat(
      HostName(), ":", getpid(), ":",
      absl::BytesToHexString(absl::string_view(
          reinterpret_cast<const char*>(bytes), sizeof(bytes))));
}

}  // namespace lock::internal
