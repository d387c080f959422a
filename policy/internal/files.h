// Reading the files a configuration names (its own *.json, the PEM files of
// "tls" blocks) at load time: one reader, so that every file is read alike.
#ifndef POLICY_INTERNAL_FILES_H_
#define POLICY_INTERNAL_FILES_H_

#include <cstddef>
#include <limits>
#include <string>

#include "absl/status/statusor.h"

namespace policy::internal {

// The whole content of a regular file (or of a symlink to one) of at most
// `max_bytes`. Opening does not wait for a FIFO's writer, and a device, pipe
// or directory is refused: reading one could block the loader forever. The
// error's message is the cause alone (errno text, "not a regular file",
// "larger than N bytes"), for the caller to put after the path; its code is
// kNotFound, kPermissionDenied, kInvalidArgument (not regular, too large) or
// kUnavailable.
absl::StatusOr<std::string> ReadRegularFile(
    const std::string& path, size_t max_bytes = std::numeric_limits<size_t>::max());

}  // namespace policy::internal

#endif  // POLICY_INTERNAL_FILES_H_
