#include "lock/internal/keys.h"

#include "absl/strings/str_cat.h"

namespace lock::internal {

absl::Status ValidateKey(absl::string_view key, absl::string_view what) {
  if (key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  }
  if (key.size() > kMaxKeyLength) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " is ", key.size(), " bytes long; the limit is ",
                     kMaxKeyLength, " (starts \"", key.substr(0, 32), "...\")"));
  }
  for (size_t i = 0; i < key.size(); ++i) {
    unsigned char c = key[i];
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " has a non-printable byte 0x", absl::Hex(c, absl::kZeroPad2),
          " at offset ", i, "; only printable ASCII is allowed"));
    }
    if (c == '{' || c == '}') {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " \"", key, "\" contains '", std::string(1, c), "' at offset ",
          i, "; braces are reserved for the Redis hash tag"));
    }
  }
  return absl::OkStatus();
}

LockKeys::LockKeys(absl::string_view prefix, absl::string_view key)
    : keys_(absl::StrCat("{", prefix, key, "}:fence{", prefix, key, "}:released")),
      owner_len_(static_cast<uint32_t>(prefix.size() + key.size() + 2)),
      fence_len_(owner_len_ + 6) {}

std::string LockKeys::CancelMarker(absl::string_view token) const {
  return absl::StrCat(owner(), ":cancel:", token);
}

namespace {
std::string Tag(absl::string_view prefix, absl::string_view key) {
  return absl::StrCat("{", prefix, key, "}");
}
}  // namespace

ReadWriteKeys::ReadWriteKeys(absl::string_view prefix, absl::string_view key)
    : tag_(Tag(prefix, key)),
      writer_(absl::StrCat(tag_, ":rw:writer")),
      readers_(absl::StrCat(tag_, ":rw:readers")),
      writers_waiting_(absl::StrCat(tag_, ":rw:writers_waiting")),
      fence_(absl::StrCat(tag_, ":fence")),
      channel_(absl::StrCat(tag_, ":rw:released")) {}

std::string ReadWriteKeys::CancelMarker(absl::string_view token) const {
  return absl::StrCat(tag_, ":cancel:", token);
}

SemaphoreKeys::SemaphoreKeys(absl::string_view prefix, absl::string_view key)
    : tag_(Tag(prefix, key)),
      holders_(absl::StrCat(tag_, ":sem:holders")),
      channel_(absl::StrCat(tag_, ":sem:released")) {}

std::string SemaphoreKeys::CancelMarker(absl::string_view token) const {
  return absl::StrCat(tag_, ":cancel:", token);
}

FairKeys::FairKeys(absl::string_view prefix, absl::string_view key)
    : tag_(Tag(prefix, key)),
      owner_(absl::StrCat(tag_, ":fair:owner")),
      queue_(absl::StrCat(tag_, ":fair:queue")),
      timeouts_(absl::StrCat(tag_, ":fair:timeouts")),
      fence_(absl::StrCat(tag_, ":fence")),
      channel_(absl::StrCat(tag_, ":fair:released")) {}

std::string FairKeys::WaiterChannel(absl::string_view token) const {
  const size_t colon = token.rfind(':');
  if (colon == absl::string_view::npos) return channel_;
  return absl::StrCat(channel_, ":", token.substr(0, colon));
}

std::string FairKeys::CancelMarker(absl::string_view token) const {
  return absl::StrCat(tag_, ":cancel:", token);
}

}  // namespace lock::internal
