// libFuzzer target for Redis reply handling: bytes as they might arrive on a
// connection go through hiredis' reader (the parser every Connection uses),
// fed in chunks the input chooses, and every reply it produces goes through
// the library's reply handling that is reachable without a socket:
// ReplyText, ServerError (the one mapping of error replies to status codes)
// and ReplyPtr ownership. No crash, leak or hang on any input; error replies
// always map to a known code and keep the server's text.
//
// The library's script-reply interpretation (acquire's {status, fence, pttl}
// triple, release/extend integers, inspect's 5-tuple, fenced_set's pair)
// lives in private helpers of redis_lock.cc and lock.cc, reachable only
// through a live connection; see RELIABILITY.md for the refactor that would
// let this target fuzz them directly.
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lock/redis/connection.h"
#include "lock/redis/reply.h"

namespace {


size_t Walk(const redisReply& r, int depth) {
  if (depth > 16) __builtin_trap();  // hiredis limits nesting itself
  size_t bytes = 0;
  switch (r.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR: {
      const absl::string_view text = lock::redis::ReplyText(r);
      bytes += text.size();
      if (r.type == REDIS_REPLY_ERROR) {
        const absl::Status s =
            lock::redis::ServerError(text, "fuzz:6379", "EVALSHA");
        switch (s.code()) {
          case absl::StatusCode::kPermissionDenied:
          case absl::StatusCode::kUnavailable:
          case absl::StatusCode::kResourceExhausted:
          case absl::StatusCode::kNotFound:
          case absl::StatusCode::kFailedPrecondition:
            break;
          default:
            __builtin_trap();
        }
        if (s.message().find(text) == absl::string_view::npos) __builtin_trap();
      }
      break;
    }
    case REDIS_REPLY_ARRAY:
      for (size_t i = 0; i < r.elements; ++i) {
        if (r.element[i] == nullptr) __builtin_trap();
        bytes += Walk(*r.element[i], depth + 1);
      }
      break;
    case REDIS_REPLY_INTEGER:
    case REDIS_REPLY_NIL:
      break;
    default:
      __builtin_trap();
  }
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // First byte: chunk size for feeding (0 = everything at once), so the
  // reader's incremental parsing sees replies split anywhere.
  const size_t chunk = data[0];
  ++data;
  --size;
  redisReader* reader = redisReaderCreate();
  if (reader == nullptr) return 0;
  // As on every Connection: huge array announcements are refused.
  lock::redis::BoundArrayReplies(reader);
  size_t fed = 0;
  bool failed = false;
  while (!failed) {
    if (fed < size) {
      const size_t n = chunk == 0 ? size - fed : std::min(chunk, size - fed);
      if (redisReaderFeed(reader, reinterpret_cast<const char*>(data) + fed, n) !=
          REDIS_OK) {
        break;
      }
      fed += n;
    }
    bool progressed = false;
    while (true) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
        // A protocol error: the connection would be discarded.
        if (reader->err == 0) __builtin_trap();
        failed = true;
        break;
      }
      if (raw == nullptr) break;  // needs more bytes
      lock::redis::ReplyPtr reply(static_cast<redisReply*>(raw));
      Walk(*reply, 0);
      progressed = true;
    }
    if (fed >= size && !progressed) break;
  }
  redisReaderFree(reader);
  return 0;
}
