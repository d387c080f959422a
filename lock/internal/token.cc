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


// Fills `out` from the OS CSPRNG. Without one, tokens could collide and two
// owners would share a lock; refusing to go on is the only safe answer.
void Random(unsigned char* out, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(out + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      std::perror("lock: getrandom failed");
      std::abort();
    }
    got += static_cast<size_t>(r);
  }
}

// getrandom output fetched 4 KiB at a time: one syscall per 256 tokens.
// Each byte is used once. A forked child must not reuse its parent's unused
// bytes, so the buffer remembers which process filled it.
struct RandomBuffer {
  unsigned char bytes[4096];
  size_t used = sizeof(bytes);
  pid_t owner = 0;

  const unsigned char* Take(size_t n) {
    const pid_t pid = getpid();
    if (used + n > sizeof(bytes) || owner != pid) {
      Random(bytes, sizeof(bytes));
      used = 0;
      owner = pid;
    }
    const unsigned char* p = bytes + used;
    used += n;
    return p;
  }
};

}  // namespace

std::string NewOwnerToken() {
  thread_local RandomBuffer buffer;
  const unsigned char* bytes = buffer.Take(16);
  return absl::StrCat(HostName(), ":", getpid(), ":",
                      absl::BytesToHexString(absl::string_view(
                          reinterpret_cast<const char*>(bytes), 16)));
}

}  // namespace lock::internal
