#include "lock/internal/token.h"

#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>


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

// Per-thread state: getrandom output fetched 4 KiB at a time (one syscall
// per 256 tokens, each byte used once) and the "<host>:<pid>:" prefix.
// A forked child must neither reuse its parent's unused bytes nor its pid.
// The state lives in pages marked MADV_WIPEONFORK, which the kernel hands
// to a child zeroed, whatever created it: a zero `filled` means "refill".
// So a token costs no syscall at all, where a getpid() per token (glibc no
// longer caches it) used to cost two. Where the kernel refuses the advice,
// the pid is checked on every call as before.
struct RandomState {
  uint32_t filled;      // 0: fresh or wiped by a fork
  uint32_t used;        // bytes of `bytes` handed out
  uint32_t check_pid;   // 1: the pages are not wiped on fork
  pid_t pid;
  uint32_t prefix_len;
  char prefix[512];     // host name (< 256) + ':' + pid + ':'
  unsigned char bytes[4096];

  void Refill() {
    Random(bytes, sizeof(bytes));
    used = 0;
  }
  void Reset() {
    pid = getpid();
    char* p = prefix;
    const std::string& host = HostName();
    std::memcpy(p, host.data(), host.size());
    p += host.size();
    *p++ = ':';
    p = std::to_chars(p, p + 20, static_cast<int64_t>(pid)).ptr;
    *p++ = ':';
    prefix_len = static_cast<uint32_t>(p - prefix);
    Refill();
    filled = 1;
  }
  const unsigned char* Take(size_t n) {
    if (filled == 0 || (check_pid != 0 && pid != getpid())) Reset();
    if (used + n > sizeof(bytes)) Refill();
    const unsigned char* out = bytes + used;
    used += static_cast<uint32_t>(n);
    return out;
  }
};

class ThreadState {
 public:
  ~ThreadState() {
    if (state_ != nullptr) munmap(state_, sizeof(RandomState));
  }
  RandomState& Get() {
    if (state_ == nullptr) {
      void* p = mmap(nullptr, sizeof(RandomState), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {
        std::perror("lock: mmap of the token state failed");
        std::abort();
      }
      state_ = static_cast<RandomState*>(p);  // zeroed by the kernel
      state_->check_pid =
          madvise(p, sizeof(RandomState), MADV_WIPEONFORK) == 0 ? 0 : 1;
    }
    return *state_;
  }

 private:
  RandomState* state_ = nullptr;
};

}  // namespace

std::string NewOwnerToken() {
  thread_local ThreadState thread_state;
  RandomState& state = thread_state.Get();
  const unsigned char* bytes = state.Take(16);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string token(state.prefix_len + 32, '\0');
  char* p = token.data();
  std::memcpy(p, state.prefix, state.prefix_len);
  p += state.prefix_len;
  for (int i = 0; i < 16; ++i) {
    *p++ = kHex[bytes[i] >> 4];
    *p++ = kHex[bytes[i] & 0xf];
  }
  return token;
}

}  // namespace lock::internal
