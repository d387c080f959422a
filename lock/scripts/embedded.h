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

// Issue 15's primitives (key layouts in lock/internal/keys.h). The write
// side of read_write and the holder of fair reuse extend.lua (and the write
// side release.lua): their owner hashes have the mutex's layout.
extern const EmbeddedScript k_lease_extend;  // ZSET-scored leases, every kind
extern const EmbeddedScript k_sem_acquire;
extern const EmbeddedScript k_sem_release;
extern const EmbeddedScript k_sem_cancel;
extern const EmbeddedScript k_sem_inspect;
extern const EmbeddedScript k_rw_read_acquire;
extern const EmbeddedScript k_rw_write_acquire;
extern const EmbeddedScript k_rw_read_release;
extern const EmbeddedScript k_rw_cancel;
extern const EmbeddedScript k_rw_inspect;
extern const EmbeddedScript k_fair_acquire;
extern const EmbeddedScript k_fair_release;
extern const EmbeddedScript k_fair_cancel;
extern const EmbeddedScript k_fair_inspect;

}  // namespace lock::scripts

#endif  // LOCK_SCRIPTS_EMBEDDED_H_
