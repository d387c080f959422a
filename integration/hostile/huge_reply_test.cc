// Regression test for a bug found by integration/fuzz/reply_fuzzer.cc: a
// hostile or corrupt reply announcing a huge array made hiredis reserve
// gigabytes before a single element arrived.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lock/redis/connection.h"
#include "util/status_matchers.h"

namespace lock {
namespace {

using ::util::testing::IsOk;
using ::util::testing::StatusIs;

// Peak virtual memory of this process, in MiB.
int64_t VmPeakMiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmPeak:", 0) == 0) {
      int64_t kb = 0;
      std::string digits;
      for (char c : line) {
        if (c >= '0' && c <= '9') digits += c;
      }
      (void)absl::SimpleAtoi(digits, &kb);
      return kb / 1024;
    }
  }
  return -1;
}

// A hostile "server": answers the first command with `reply` and then stays
// silent until the client goes away. Not a Redis stand-in: no Redis sends
// this, which is the point.
class HostileServer {
 public:
  explicit HostileServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a));
    listen(fd_, 1);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] {
      const int c = accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      if (read(c, buf, sizeof(buf)) > 0) {
        (void)!write(c, reply_.data(), reply_.size());
      }
      while (read(c, buf, sizeof(buf)) > 0) {
      }
      close(c);
    });
  }
  ~HostileServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
  }
  std::string addr() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  const std::string reply_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// hiredis 0.14 allocates an array reply's element table from the announced
// count: 13 bytes reserved 5.6 GB. lock/redis/connection.cc bounds array
// replies, so the reply is a reader error and the connection is discarded.
TEST(HugeReplyTest, HugeArrayAnnouncementIsRefusedWithoutReservingMemory) {
  const int64_t before = VmPeakMiB();
  {
    HostileServer server("*700000000\r\n");
    auto conn = redis::Connection::Open({.addr = server.addr()});
    ASSERT_THAT(conn, IsOk());
    EXPECT_THAT((*conn)->Command({"PING"}, absl::Milliseconds(300)),
                StatusIs(absl::StatusCode::kUnavailable,
                         ::testing::HasSubstr("reply rejected")));
    EXPECT_TRUE((*conn)->broken());
  }
  const int64_t grown = VmPeakMiB() - before;
  std::cout << "peak virtual memory grew by " << grown << " MiB\n";
  EXPECT_LT(grown, 256) << "a 13-byte reply reserved " << grown
                        << " MiB of address space";
}

}  // namespace
}  // namespace lock
