// Tests' way to a Locker: over a configuration given as JSON text, not
// installed process-wide (lock::Shutdown leaves it alone).
#ifndef LOCK_TESTING_LOCKER_FROM_JSON_H_
#define LOCK_TESTING_LOCKER_FROM_JSON_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "lock/lock.h"
#include "policy/registry.h"

namespace lock {

// `name` stands for the file in error messages.
inline absl::StatusOr<std::unique_ptr<Locker>> LockerFromJson(std::string_view json,
                                                              std::string_view name) {
  absl::StatusOr<std::unique_ptr<policy::Registry>> registry =
      policy::Registry::FromJson(json, name);
  if (!registry.ok()) return registry.status();
  return Locker::Create(std::shared_ptr<policy::Registry>(*std::move(registry)));
}

}  // namespace lock

#endif  // LOCK_TESTING_LOCKER_FROM_JSON_H_
