// The workload `lockctl watch` is tested against: an application process
// taking locks through the library.
//
//   watch_workload CONFIG POLICY KEY hold    takes KEY (waiting as the
//                                            policy says) and keeps it
//   watch_workload CONFIG POLICY KEY churn   takes and releases KEY, 100ms
//                                            held, 100ms free, over and over
//
// Prints "held" once it first holds the lock; runs until killed.
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "lock/lock.h"
#include "policy/registry.h"

int main(int argc, char** argv) {
  const std::string mode = argc == 5 ? argv[4] : "";
  if (mode != "hold" && mode != "churn") {
    std::cerr << "usage: watch_workload CONFIG POLICY KEY hold|churn\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<policy::Registry>> registry = policy::Registry::Load(argv[1]);
  if (!registry.ok()) {
    std::cerr << "watch_workload: " << registry.status() << "\n";
    return 1;
  }
  absl::StatusOr<std::unique_ptr<lock::Locker>> locker =
      lock::Locker::Create(std::shared_ptr<policy::Registry>(*std::move(registry)));
  absl::StatusOr<std::unique_ptr<lock::RedisLock>> lk =
      locker.ok() ? (*locker)->NewLock(argv[2], argv[3])
                  : absl::StatusOr<std::unique_ptr<lock::RedisLock>>(locker.status());
  if (!lk.ok()) {
    std::cerr << "watch_workload: " << lk.status() << "\n";
    return 1;
  }
  bool told = false;
  while (true) {
    if (absl::Status s = (*lk)->Acquire(); !s.ok()) {
      std::cerr << "watch_workload: acquire: " << s << "\n";
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (!told) {
      std::cout << "held" << std::endl;
      told = true;
    }
    if (mode == "hold") {
      while (true) std::this_thread::sleep_for(std::chrono::hours(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    (void)(*lk)->Release();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}
