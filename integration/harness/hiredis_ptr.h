// Owning pointers for raw hiredis objects, and one command sent from an
// argv, for the harness and its tests (the engine has its own in
// lock/redis/reply.h; the harness does not depend on lock/).
#ifndef INTEGRATION_HARNESS_HIREDIS_PTR_H_
#define INTEGRATION_HARNESS_HIREDIS_PTR_H_

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include <vector>

namespace lock::harness {

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

// Sends `argv` (binary-safe) on a blocking context and returns its reply;
// nullptr on an I/O error (context->errstr says which).
inline ReplyPtr CommandArgv(redisContext* context,
                            const std::vector<std::string>& argv) {
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const std::string& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  return ReplyPtr(static_cast<redisReply*>(redisCommandArgv(
      context, static_cast<int>(args.size()), args.data(), lengths.data())));
}

}  // namespace lock::harness

#endif  // INTEGRATION_HARNESS_HIREDIS_PTR_H_
