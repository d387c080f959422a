#include "lock/errors.h"

#include "absl/strings/cord.h"
#include "util/strings.h"

namespace lock {
namespace {

constexpr absl::string_view kKindUrl = "type.googleapis.com/lock.ErrorKind";
// Why a busy acquisition stopped waiting. A second payload, so that IsBusy
// (kind "busy") keeps holding for every busy outcome.
constexpr absl::string_view kBusyReasonUrl =
    "type.googleapis.com/lock.BusyReason";

absl::Status Make(absl::StatusCode code, absl::string_view kind,
                  absl::string_view message) {
  absl::Status s(code, message);
  s.SetPayload(kKindUrl, absl::Cord(kind));
  return s;
}

bool Is(const absl::Status& s, absl::StatusCode code, absl::string_view kind) {
  if (s.code() != code) return false;
  absl::optional<absl::Cord> payload = s.GetPayload(kKindUrl);
  return payload.has_value() && *payload == kind;
}

absl::Status BusyBecause(absl::string_view reason, absl::string_view m) {
  absl::Status s = Make(absl::StatusCode::kAborted, "busy", m);
  s.SetPayload(kBusyReasonUrl, absl::Cord(reason));
  return s;
}

bool IsBusyBecause(const absl::Status& s, absl::string_view reason) {
  if (!Is(s, absl::StatusCode::kAborted, "busy")) return false;
  absl::optional<absl::Cord> payload = s.GetPayload(kBusyReasonUrl);
  return payload.has_value() && *payload == reason;
}

}  // namespace

absl::Status AttemptsExhaustedError(std::string_view m) {
  return BusyBecause("attempts_exhausted", util::ToAbsl(m));
}
absl::Status WaitTimedOutError(std::string_view m) {
  return BusyBecause("wait_timed_out", util::ToAbsl(m));
}
bool IsAttemptsExhausted(const absl::Status& s) {
  return IsBusyBecause(s, "attempts_exhausted");
}
bool IsWaitTimedOut(const absl::Status& s) {
  return IsBusyBecause(s, "wait_timed_out");
}

absl::Status DeadlineExceededError(std::string_view m) {
  return Make(absl::StatusCode::kDeadlineExceeded, "deadline_exceeded", util::ToAbsl(m));
}

absl::Status CancelledError(std::string_view m) {
  return Make(absl::StatusCode::kCancelled, "cancelled", util::ToAbsl(m));
}

bool IsDeadlineExceeded(const absl::Status& s) {
  return Is(s, absl::StatusCode::kDeadlineExceeded, "deadline_exceeded");
}

bool IsCancelled(const absl::Status& s) {
  return Is(s, absl::StatusCode::kCancelled, "cancelled");
}

absl::Status BusyError(std::string_view m) {
  return Make(absl::StatusCode::kAborted, "busy", util::ToAbsl(m));
}
absl::Status SkippedError(std::string_view m) {
  return Make(absl::StatusCode::kAlreadyExists, "skipped", util::ToAbsl(m));
}
absl::Status LostError(std::string_view m) {
  return Make(absl::StatusCode::kDataLoss, "lost", util::ToAbsl(m));
}
absl::Status NotHeldError(std::string_view m) {
  return Make(absl::StatusCode::kFailedPrecondition, "not_held", util::ToAbsl(m));
}

absl::Status StaleFenceError(std::string_view m) {
  return Make(absl::StatusCode::kAborted, "stale_fence", util::ToAbsl(m));
}

absl::Status SelfDeadlockError(std::string_view m) {
  return Make(absl::StatusCode::kFailedPrecondition, "self_deadlock", util::ToAbsl(m));
}
bool IsSelfDeadlock(const absl::Status& s) {
  return Is(s, absl::StatusCode::kFailedPrecondition, "self_deadlock");
}

bool IsBusy(const absl::Status& s) {
  return Is(s, absl::StatusCode::kAborted, "busy");
}
bool IsSkipped(const absl::Status& s) {
  return Is(s, absl::StatusCode::kAlreadyExists, "skipped");
}
bool IsLost(const absl::Status& s) {
  return Is(s, absl::StatusCode::kDataLoss, "lost");
}
bool IsStaleFence(const absl::Status& s) {
  return Is(s, absl::StatusCode::kAborted, "stale_fence");
}
bool IsNotHeld(const absl::Status& s) {
  return Is(s, absl::StatusCode::kFailedPrecondition, "not_held");
}

}  // namespace lock
