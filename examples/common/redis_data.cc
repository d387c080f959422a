#include "examples/common/redis_data.h"

#include <sys/time.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace demo {
namespace {

// How long a command may wait for its reply.
constexpr absl::Duration kCommandTimeout = absl::Seconds(10);

timeval TimevalOf(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return timeval{0, 0};  // no timeout
  timeval tv = absl::ToTimeval(d);
  if (tv.tv_sec == 0 && tv.tv_usec == 0) tv.tv_usec = 1;  // 0 would mean none
  return tv;
}

struct Endpoint {
  std::string host;  // or the socket path
  int port = 0;
  bool unix_socket = false;
};

// "host:port", "[ipv6]:port" or "unix:/path"; false if it is none of them.
bool ParseAddr(std::string_view addr, Endpoint& ep) {
  if (addr.substr(0, 5) == "unix:") {
    ep = {std::string(addr.substr(5)), 0, true};
    return true;
  }
  const size_t colon = addr.rfind(':');
  int port = 0;
  if (colon == std::string_view::npos || colon == 0 ||
      !absl::SimpleAtoi(
          absl::string_view(addr.data() + colon + 1, addr.size() - colon - 1),
          &port) ||
      port <= 0 || port > 65535) {
    return false;
  }
  std::string_view host = addr.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  ep = {std::string(host), port, false};
  return true;
}

}  // namespace

int64_t IntOf(const redisReply& r) {
  if (r.type == REDIS_REPLY_INTEGER) return r.integer;
  int64_t v = 0;
  if (r.type == REDIS_REPLY_STRING) {
    const std::string_view text = ReplyText(r);
    (void)absl::SimpleAtoi(absl::string_view(text.data(), text.size()), &v);
  }
  return v;
}

std::unique_ptr<Data> Data::Connect(const std::string& program,
                                    const policy::RedisTarget& target) {
  const std::string addr = target.addrs.empty() ? "" : target.addrs[0];
  Endpoint ep;
  if (!ParseAddr(addr, ep)) {
    std::cerr << program << ": redis address \"" << addr
              << "\" is not host:port or unix:/path\n";
    std::exit(1);
  }
  const timeval connect_tv = TimevalOf(target.connect_timeout);
  ContextPtr ctx(
      ep.unix_socket
          ? redisConnectUnixWithTimeout(ep.host.c_str(), connect_tv)
          : redisConnectWithTimeout(ep.host.c_str(), ep.port, connect_tv));
  if (ctx == nullptr) {
    std::cerr << program << ": redis " << addr
              << ": connect: cannot allocate context\n";
    std::exit(1);
  }
  std::unique_ptr<Data> data(new Data(program, addr, std::move(ctx)));
  if (data->ctx_->err != 0) data->Die("connect", data->TransportCause());
  if (!ep.unix_socket) redisEnableKeepAlive(data->ctx_.get());
  // The handshake runs under the connect timeout, the commands under theirs.
  if (redisSetTimeout(data->ctx_.get(), connect_tv) != REDIS_OK) {
    data->Die("set timeout", data->TransportCause());
  }
  if (!target.password.empty()) {
    if (target.username.empty()) {
      data->Cmd({"AUTH", target.password});
    } else {
      data->Cmd({"AUTH", target.username, target.password});
    }
  }
  if (target.db != 0) data->Cmd({"SELECT", absl::StrCat(target.db)});
  if (redisSetTimeout(data->ctx_.get(), TimevalOf(kCommandTimeout)) !=
      REDIS_OK) {
    data->Die("set timeout", data->TransportCause());
  }
  return data;
}

ReplyPtr Data::Cmd(std::initializer_list<std::string_view> argv) {
  return Run(argv.begin(), argv.size());
}

ReplyPtr Data::Cmd(const std::vector<std::string>& argv) {
  std::vector<std::string_view> v(argv.begin(), argv.end());
  return Run(v.data(), v.size());
}

int64_t Data::Int(std::initializer_list<std::string_view> argv) {
  return IntOf(*Cmd(argv));
}

std::string Data::Str(std::initializer_list<std::string_view> argv) {
  ReplyPtr r = Cmd(argv);
  if (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS) return "";
  return std::string(ReplyText(*r));
}

ReplyPtr Data::Run(const std::string_view* argv, size_t argc) {
  std::vector<const char*> ptrs(argc);
  std::vector<size_t> lens(argc);
  for (size_t i = 0; i < argc; ++i) {
    ptrs[i] = argv[i].data();
    lens[i] = argv[i].size();
  }
  const std::string_view name = argc == 0 ? "command" : argv[0];
  ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(
      ctx_.get(), static_cast<int>(argc), ptrs.data(), lens.data())));
  if (r == nullptr) Die(name, TransportCause());
  if (r->type == REDIS_REPLY_ERROR) Die(name, ReplyText(*r));
  return r;
}

std::string Data::TransportCause() const {
  if (ctx_->err == REDIS_ERR_IO &&
      (errno == EAGAIN || errno == EWOULDBLOCK ||
       std::strcmp(ctx_->errstr, std::strerror(EAGAIN)) == 0)) {
    return "timed out waiting for the server";
  }
  if (ctx_->err == REDIS_ERR_EOF) return "connection closed by the server";
  return ctx_->errstr;
}

void Data::Die(std::string_view doing, std::string_view cause) const {
  std::cerr << program_ << ": redis " << addr_ << ": " << doing << ": " << cause
            << "\n";
  std::exit(1);
}

}  // namespace demo
