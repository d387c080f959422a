#include "lock/redis/testing/fake_redis.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "lock/redis/reply.h"

namespace lock::redis::testing {

FakeRedis::FakeRedis(Handler handler) : handler_(std::move(handler)) {
  listener_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      listen(listener_, 64) != 0 ||
      getsockname(listener_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::perror("FakeRedis: cannot listen on 127.0.0.1");
    std::abort();
  }
  port_ = ntohs(a.sin_port);
  acceptor_ = std::thread([this] { Accept(); });
}

FakeRedis::~FakeRedis() {
  stopping_ = true;
  shutdown(listener_, SHUT_RDWR);
  acceptor_.join();
  close(listener_);
  std::vector<std::thread> served;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : client_fds_) shutdown(fd, SHUT_RDWR);
    served.swap(served_);
  }
  for (std::thread& t : served) t.join();
  std::lock_guard<std::mutex> lock(mu_);
  for (int fd : client_fds_) close(fd);
}

std::string FakeRedis::addr() const { return absl::StrCat("127.0.0.1:", port_); }

std::vector<FakeRedis::Argv> FakeRedis::commands() const {
  std::lock_guard<std::mutex> lock(mu_);
  return commands_;
}

int FakeRedis::Count(const std::string& verb) const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const Argv& argv : commands_) n += !argv.empty() && argv[0] == verb ? 1 : 0;
  return n;
}

std::string FakeRedis::Array(const std::vector<std::string>& encoded) {
  std::string out = absl::StrCat("*", encoded.size(), "\r\n");
  for (const std::string& e : encoded) out += e;
  return out;
}

void FakeRedis::Accept() {
  while (!stopping_) {
    const int fd = accept(listener_, nullptr, nullptr);
    if (fd < 0) return;  // shut down
    accepted_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    client_fds_.push_back(fd);
    served_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakeRedis::Serve(int fd) {
  // Requests are RESP arrays of bulk strings: hiredis' reader parses them.
  redisReader* reader = redisReaderCreate();
  char buf[16 * 1024];
  bool open = true;
  while (open && !stopping_) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0 || redisReaderFeed(reader, buf, static_cast<size_t>(n)) != REDIS_OK) break;
    for (;;) {
      void* parsed = nullptr;
      if (redisReaderGetReply(reader, &parsed) != REDIS_OK) {
        open = false;
        break;
      }
      if (parsed == nullptr) break;  // need more bytes
      ReplyPtr request(static_cast<redisReply*>(parsed));
      Argv argv;
      if (request->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < request->elements; ++i) {
          argv.emplace_back(ReplyText(*request->element[i]));
        }
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        commands_.push_back(argv);
      }
      const Answer answer = handler_(argv);
      if (answer.delay > absl::ZeroDuration()) absl::SleepFor(answer.delay);
      if (!answer.silent && !answer.resp.empty() &&
          write(fd, answer.resp.data(), answer.resp.size()) < 0) {
        open = false;
        break;
      }
      if (answer.close) {
        open = false;
        break;
      }
    }
  }
  redisReaderFree(reader);
  // Closed by the destructor: closing it here would let its number be
  // reused by another connection while the destructor may still shut it.
  shutdown(fd, SHUT_RDWR);
}

}  // namespace lock::redis::testing
