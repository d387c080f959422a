// A status told again in other words, keeping what it is.
#ifndef LOCK_INTERNAL_REWORDED_H_
#define LOCK_INTERNAL_REWORDED_H_

#include "absl/status/status.h"
#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace lock::internal {

// `s` with `message`: same code, and the error-kind payloads kept, so that
// IsBusy, IsLost and the other predicates still recognise it.
inline absl::Status Reworded(const absl::Status& s, absl::string_view message) {
  absl::Status out(s.code(), message);
  s.ForEachPayload([&out](absl::string_view url, const absl::Cord& payload) {
    out.SetPayload(url, payload);
  });
  return out;
}

}  // namespace lock::internal

#endif  // LOCK_INTERNAL_REWORDED_H_
