// An asio service whose request handlers take locks with co_await
// (asio_lock.h: lock::AcquireAsync as an asio operation), no thread per
// waiting request: one event-loop thread serves every
// connection, and a handler waiting for a lock is a suspended coroutine.
//
//   bazel run //examples/async_server -- --clients 300 --orders 5
//
// Protocol (one line per request): "CLOSE <order>\n" answers
// "OK <order> <fencing token>\n" after closing one unit of the order under
// its lock, or "ERR <why>\n" (a busy lock past the request's deadline is
// "ERR deadline ..."). The program starts an embedded redis-server (or uses
// --redis), serves on 127.0.0.1 (--port, default any free one), and in its
// self-check mode (--clients N) runs N concurrent clients against itself
// over TCP, then checks what the handlers saw: never two handlers inside
// one order's section at once, every request answered OK, each order's
// fencing tokens increasing in grant order, and the threads the process
// used. PASS/FAIL and the exit code say whether it held.
#include <unistd.h>

#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "asio.hpp"
#include "examples/async_server/asio_lock.h"
#include "examples/common/demo.h"
#include "lock/lock.h"
#include "util/flags.h"
#include "util/proc.h"

ABSL_FLAG(int, port, 0, "port to serve on (127.0.0.1); 0: any free one");
ABSL_FLAG(int, clients, 0,
          "self-check: this many concurrent clients, then exit; 0: serve "
          "until killed");
ABSL_FLAG(int, orders, 5, "self-check: orders the clients share");
ABSL_FLAG(int, requests, 2, "self-check: requests per client");

namespace {

constexpr char kProgram[] = "async_server";
using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;

// What the handlers saw, per order (touched only on the loop thread).
struct OrderLog {
  bool inside = false;
  int closed = 0;
  int overlaps = 0;
  std::vector<int64_t> fences;  // in grant order
};

struct Server {
  asio::io_context& io;
  lock::Locker& locker;
  std::map<std::string, OrderLog> orders;
  int errors = 0;

  awaitable<std::string> Close(const std::string& order) {
    // The request's deadline bounds the wait for the lock; the coroutine is
    // suspended meanwhile, and resumed on this loop.
    absl::StatusOr<lock::Lease> lease =
        co_await asio_lock::Acquire(locker, "order-close", order,
                                    {.deadline = absl::Now() + absl::Seconds(20)},
                                    use_awaitable);
    if (!lease.ok()) {
      ++errors;
      co_return absl::StrCat("ERR ", lock::IsDeadlineExceeded(lease.status()) ? "deadline " : "",
                             lease.status().ToString(), "\n");
    }
    OrderLog& log = orders[order];
    if (log.inside) ++log.overlaps;
    log.inside = true;
    log.fences.push_back(lease->fencing_token());
    // Work under the lock that itself awaits (a database call, say): other
    // handlers run on this thread meanwhile.
    asio::steady_timer work(io, std::chrono::milliseconds(1));
    co_await work.async_wait(use_awaitable);
    ++log.closed;
    log.inside = false;
    const int64_t fence = lease->fencing_token();
    // Released off the loop: the next waiter's grant needs no thread here.
    lease->ReleaseAsync([this](absl::Status s) {
      if (!s.ok()) std::cerr << "release: " << s << "\n";
    });
    co_return absl::StrCat("OK ", order, " ", fence, "\n");
  }

  awaitable<void> Session(tcp::socket socket) {
    std::string buffer;
    try {
      while (true) {
        const size_t n =
            co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), '\n',
                                            use_awaitable);
        const std::string line(absl::StripAsciiWhitespace(buffer.substr(0, n - 1)));
        buffer.erase(0, n);
        std::vector<std::string> words = absl::StrSplit(line, ' ', absl::SkipEmpty());
        // No co_await inside ?: (GCC 12 destroys such temporaries twice).
        std::string reply = "ERR expected: CLOSE <order>\n";
        if (words.size() == 2 && words[0] == "CLOSE") reply = co_await Close(words[1]);
        co_await asio::async_write(socket, asio::buffer(reply), use_awaitable);
      }
    } catch (const std::exception&) {
      // The client went away.
    }
  }

  awaitable<void> Listen(tcp::acceptor& acceptor) {
    while (true) {
      tcp::socket socket = co_await acceptor.async_accept(use_awaitable);
      asio::co_spawn(io, Session(std::move(socket)), asio::detached);
    }
  }
};

// One self-check client: a connection sending `requests` CLOSE lines.
awaitable<void> Client(asio::io_context& io, tcp::endpoint at, std::vector<std::string> orders,
                       int* answered_ok, int* failed) {
  try {
    tcp::socket socket(io);
    co_await socket.async_connect(at, use_awaitable);
    std::string buffer;
    for (const std::string& order : orders) {
      const std::string request = absl::StrCat("CLOSE ", order, "\n");
      co_await asio::async_write(socket, asio::buffer(request), use_awaitable);
      const size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer),
                                                       '\n', use_awaitable);
      const std::string reply = buffer.substr(0, n);
      buffer.erase(0, n);
      if (reply.rfind("OK ", 0) == 0) {
        ++*answered_ok;
      } else {
        ++*failed;
        std::cerr << "reply: " << reply;
      }
    }
  } catch (const std::exception& e) {
    ++*failed;
    std::cerr << "client: " << e.what() << "\n";
  }
}


}  // namespace

int main(int argc, char** argv) {
  util::ParseFlags(
      argc, argv,
      "async_server [--clients N --orders K --requests R] [--port P] "
      "[--redis host:port] [--config FILE]");
  auto env = demo::Environment::Prepare(
      kProgram, "examples/async_server/policies.json",
      absl::GetFlag(FLAGS_config), absl::GetFlag(FLAGS_redis));
  absl::StatusOr<std::unique_ptr<policy::Registry>> registry =
      policy::Registry::Load(env->worker_config());
  if (!registry.ok()) {
    std::cerr << kProgram << ": " << registry.status() << "\n";
    return 1;
  }
  absl::StatusOr<std::unique_ptr<lock::Locker>> locker =
      lock::Locker::Create(std::move(*registry));
  if (!locker.ok()) {
    std::cerr << kProgram << ": " << locker.status() << "\n";
    return 1;
  }

  asio::io_context io(1);
  Server server{io, **locker};
  tcp::acceptor acceptor(
      io, tcp::endpoint(
              asio::ip::make_address("127.0.0.1"),
              static_cast<unsigned short>(util::FlagAtLeast(FLAGS_port, 0))));
  const tcp::endpoint at = acceptor.local_endpoint();
  asio::co_spawn(io, server.Listen(acceptor), asio::detached);
  std::cout << kProgram << ": serving on " << at << ", Redis " << env->Describe() << "\n";

  const int clients = util::FlagAtLeast(FLAGS_clients, 0);
  if (clients == 0) {
    io.run();  // serves until killed
    return 0;
  }
  const int order_count = util::FlagAtLeast(FLAGS_orders, 1);
  const int requests = util::FlagAtLeast(FLAGS_requests, 1);
  int ok = 0, failed = 0;
  for (int c = 0; c < clients; ++c) {
    std::vector<std::string> orders;
    for (int r = 0; r < requests; ++r) orders.push_back(absl::StrCat("o", (c + r) % order_count));
    asio::co_spawn(io, Client(io, at, orders, &ok, &failed), asio::detached);
  }
  const demo::Clock::time_point start = demo::Clock::now();
  int max_threads = 0;
  while (ok + failed < clients * requests) {
    io.run_for(std::chrono::milliseconds(5));
    max_threads = std::max(max_threads, util::ProcessThreads());
  }
  const double seconds = demo::SecondsSince(start);

  int overlaps = 0, closed = 0, out_of_order = 0;
  for (const auto& [order, log] : server.orders) {
    overlaps += log.overlaps;
    closed += log.closed;
    for (size_t i = 1; i < log.fences.size(); ++i) {
      if (log.fences[i] <= log.fences[i - 1]) ++out_of_order;
    }
  }
  const int total = clients * requests;
  std::cout << "requests answered OK      " << ok << "/" << total << "\n"
            << "sections closed           " << closed << "/" << total << "\n"
            << "overlapping sections      " << overlaps << "\n"
            << "fences out of order       " << out_of_order << "\n"
            << "concurrent connections    " << clients << " on " << order_count << " orders\n"
            << "process threads (max)     " << max_threads << "\n"
            << "took                      " << seconds << " s\n";
  if (ok == total && closed == total && overlaps == 0 && out_of_order == 0 && failed == 0) {
    std::cout << "PASS: every request closed its order under the lock, one at a time per order\n";
    return 0;
  }
  std::cout << "FAIL: " << failed << " failed requests, " << overlaps << " overlaps, "
            << out_of_order << " fences out of order\n";
  return 1;
}
