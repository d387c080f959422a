// FakeRedis: a RESP server on 127.0.0.1 that answers every command from a
// handler the test writes, so that the engine's Redis layer (connections,
// scripts, redirects, pipelines, locks) can be tested without a
// redis-server: scripted replies, errors (NOSCRIPT, MOVED, ASK, TRYAGAIN),
// replies that never come, connections that drop.
//
//   FakeRedis redis([](const FakeRedis::Argv& argv) {
//     if (argv[0] == "EVALSHA") return FakeRedis::Reply(FakeRedis::Error("NOSCRIPT ..."));
//     return FakeRedis::Reply(FakeRedis::Integer(1));
//   });
//   auto conn = Connection::Open({.addr = redis.addr()});
//
// Every command received is recorded (commands()). Each connection is
// served by its own thread, in order; the handler may be called from
// several threads at once. Test-only.
#ifndef LOCK_REDIS_TESTING_FAKE_REDIS_H_
#define LOCK_REDIS_TESTING_FAKE_REDIS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"

namespace lock::redis::testing {

class FakeRedis {
 public:
  using Argv = std::vector<std::string>;

  // What to do with one command.
  struct Answer {
    std::string resp;            // raw RESP bytes to send (may be several replies)
    absl::Duration delay;        // wait this long before sending
    bool silent = false;         // send nothing (a reply that never comes)
    bool close = false;          // then close the connection
  };
  using Handler = std::function<Answer(const Argv& argv)>;

  explicit FakeRedis(Handler handler);
  ~FakeRedis();
  FakeRedis(const FakeRedis&) = delete;
  FakeRedis& operator=(const FakeRedis&) = delete;

  // "127.0.0.1:PORT".
  std::string addr() const;
  // Every command received so far, in arrival order.
  std::vector<Argv> commands() const;
  // The commands whose first word is `verb`.
  int Count(const std::string& verb) const;
  int connections_accepted() const { return accepted_.load(); }

  // RESP encodings, for answers.
  static Answer Reply(std::string resp) { return Answer{.resp = std::move(resp)}; }
  static std::string Status(const std::string& s) { return "+" + s + "\r\n"; }
  static std::string Error(const std::string& s) { return "-" + s + "\r\n"; }
  static std::string Integer(int64_t n) { return ":" + std::to_string(n) + "\r\n"; }
  static std::string Bulk(const std::string& s) {
    return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n";
  }
  static std::string Nil() { return "$-1\r\n"; }
  // An array of already encoded elements.
  static std::string Array(const std::vector<std::string>& encoded);

 private:
  void Accept();
  void Serve(int fd);

  const Handler handler_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  mutable std::mutex mu_;
  std::vector<Argv> commands_;     // guarded by mu_
  std::vector<int> client_fds_;    // guarded by mu_
  std::vector<std::thread> served_;  // guarded by mu_
  std::thread acceptor_;
};

}  // namespace lock::redis::testing

#endif  // LOCK_REDIS_TESTING_FAKE_REDIS_H_
