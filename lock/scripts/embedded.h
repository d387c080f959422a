// The Lua scripts of lock/scripts/*.lua, embedded at build time.
#ifndef LOCK_SCRIPTS_EMBEDDED_H_
#define LOCK_SCRIPTS_EMBEDDED_H_

#include "absl/strings/string_view.h"

namespace lock::scripts {

struct EmbeddedScript {
  absl::string_view name;  // file name without .lua
  absl::string_view body;
  absl::string_view sha1;  // hex SHA-1 of body, as EVALSHA expects
};

extern const EmbeddedScript k_acquire;
extern const EmbeddedScript k_release;
extern const EmbeddedScript k_release_level;
extern const EmbeddedScript k_extend;
extern const EmbeddedScript k_inspect;
extern const EmbeddedScript k_cancel;
extern const EmbeddedScript k_fenced_set;

}  // namespace lock::scripts

#endif  // LOCK_SCRIPTS_EMBEDDED_H_
