// The examples' own Redis client, for their own data (orders, stock, job
// runs, published statistics), never for locks: what an application that uses
// the lock library would have anyway. A thin layer over hiredis that reaches
// the Redis of the policy file's target.
//
//   std::unique_ptr<demo::Data> data = demo::Data::Connect("app", target);
//   data->Cmd({"HSET", key, "value", "50000"});
//   int64_t stock = data->Int({"HGET", key, "value"});
//   demo::ReplyPtr all = data->Cmd({"HGETALL", key});
//   std::string_view v = demo::ReplyText(*all->element[1]);
//
// Examples are programs, not libraries: on any error (connect, AUTH, SELECT,
// I/O, timeout, or an error reply) these print it and exit 1. A Data is not
// thread-safe: one per thread.
#ifndef EXAMPLES_COMMON_REDIS_DATA_H_
#define EXAMPLES_COMMON_REDIS_DATA_H_

#include <hiredis/hiredis.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.h"

namespace demo {

struct ReplyDeleter {
  // Only top-level replies are owned; hiredis frees nested elements with them.
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// The bytes of a string, status or error reply; empty for nil.
inline std::string_view ReplyText(const redisReply& r) {
  return r.str == nullptr ? std::string_view() : std::string_view(r.str, r.len);
}

// An integer reply, or a string reply holding one; 0 otherwise (nil too).
int64_t IntOf(const redisReply& r);

class Data {
 public:
  // Connects to the target's first address ("host:port", "[ipv6]:port" or
  // "unix:/path") within its connect_timeout, then AUTH (username and
  // password, or the password alone) when it has a password, and SELECT
  // when its db is not 0.
  static std::unique_ptr<Data> Connect(const std::string& program,
                                       const policy::RedisTarget& target);

  // One command, argv form (binary safe); waits at most 10s for the reply.
  // Never returns an error reply.
  ReplyPtr Cmd(std::initializer_list<std::string_view> argv);
  ReplyPtr Cmd(const std::vector<std::string>& argv);
  // IntOf the reply; 0 for nil.
  int64_t Int(std::initializer_list<std::string_view> argv);
  // A string or status reply; "" for nil.
  std::string Str(std::initializer_list<std::string_view> argv);

 private:
  struct ContextDeleter {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

  Data(std::string program, std::string addr, ContextPtr ctx)
      : program_(std::move(program)),
        addr_(std::move(addr)),
        ctx_(std::move(ctx)) {}
  ReplyPtr Run(const std::string_view* argv, size_t argc);
  // Prints "PROGRAM: redis ADDR: DOING: cause" and exits 1.
  [[noreturn]] void Die(std::string_view doing, std::string_view cause) const;
  // The cause of the context's last I/O or protocol failure.
  std::string TransportCause() const;

  std::string program_, addr_;
  ContextPtr ctx_;
};

}  // namespace demo

#endif  // EXAMPLES_COMMON_REDIS_DATA_H_
