#include "policy/internal/files.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "util/errno.h"

namespace policy::internal {
namespace {

absl::Status ErrnoStatus(int error) {
  const std::string cause = util::ErrnoText(error);
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(cause);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(cause);
    case EISDIR:
      return absl::InvalidArgumentError(cause);
    default:
      return absl::UnavailableError(cause);
  }
}

}  // namespace

absl::StatusOr<std::string> ReadRegularFile(const std::string& path, size_t max_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return ErrnoStatus(errno);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const bool dir = S_ISDIR(st.st_mode);
    ::close(fd);
    return dir ? ErrnoStatus(EISDIR) : absl::InvalidArgumentError("not a regular file");
  }
  std::string text;
  char buffer[16384];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      ::close(fd);
      return ErrnoStatus(error);
    }
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > max_bytes) {
      ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat("larger than ", max_bytes, " bytes"));
    }
  }
  ::close(fd);
  return text;
}

}  // namespace policy::internal
