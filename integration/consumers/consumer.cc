// The program every consumer in integration/consumers builds (Bazel, CMake,
// pkg-config), through the public API only: one lock on the redis-server at
// HOST:PORT, exit status 0 only if the section ran with a fencing token.
#include <cstdint>
#include <cstdio>
#include <string>

#include "lock/lock.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s HOST:PORT KEY\n", argv[0]);
    return 2;
  }
  const std::string config = std::string(R"({"redis": {"default": {"addrs": [")") +
                             argv[1] + R"("]}}, "policies": {"consumer": {"ttl": "5s"}}})";
  absl::Status status = lock::InitFromJson(config);
  int64_t token = 0;
  if (status.ok()) {
    status = lock::With("consumer", argv[2], [&](lock::Held& held) {
      token = held.fencing_token();
      return absl::OkStatus();
    });
  }
  lock::Shutdown();
  if (!status.ok() || token <= 0) {
    std::fprintf(stderr, "%s: %s%s, fencing token %lld\n", argv[2],
                 lock::IsBusy(status) ? "busy: " : "", status.ToString().c_str(),
                 static_cast<long long>(token));
    return 1;
  }
  std::printf("%s: ran with fencing token %lld\n", argv[2], static_cast<long long>(token));
  return 0;
}
