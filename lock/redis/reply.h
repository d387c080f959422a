// RAII ownership of hiredis replies, and their text.
#ifndef LOCK_REDIS_REPLY_H_
#define LOCK_REDIS_REPLY_H_

#include <hiredis/hiredis.h>

#include <memory>
#include <string>
#include "absl/strings/string_view.h"

namespace lock::redis {

struct ReplyDeleter {
  // Only top-level replies are owned; hiredis frees nested elements with them.
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

inline absl::string_view ReplyText(const redisReply& r) {
  return absl::string_view(r.str, r.len);
}

}  // namespace lock::redis

#endif  // LOCK_REDIS_REPLY_H_
