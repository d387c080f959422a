// libFuzzer target for the policy parser and validator (policy/config.h).
//
// Any bytes: ParseConfig must return (OK or InvalidArgument), never crash,
// hang or leak. When it accepts a configuration, the resolved snapshot
// rendered by ExplainSnapshot must parse again to the very same policies and
// targets ("feeding it back to ParseConfig yields the same Policy"), and
// must never contain a password or a private key.
//
// The first byte picks the entry point: even = one source, odd = the input
// split at the first 0x00 byte into two sources merged like a directory.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "policy/config.h"

namespace {

[[noreturn]] void Fail(const char* what) {
  __builtin_trap();  // libFuzzer (and the corpus replay) report the input
  (void)what;
}

// `input`: the configuration text. A secret that the input spells out
// itself (say, inside a policy name) may be rendered as that name; only a
// secret the input does not contain, read from the environment, must never
// appear.
void CheckRoundTrip(const policy::Snapshot& s, std::string_view input) {
  const std::string rendered = policy::ExplainSnapshot(s).dump();
  auto again = policy::ParseConfig(rendered, "explained.json");
  if (!again.ok()) Fail("ExplainSnapshot output does not parse");
  const policy::Snapshot& t = **again;
  if (s.PolicyNames() != t.PolicyNames() || s.TargetNames() != t.TargetNames()) {
    Fail("round trip changed the names");
  }
  for (const std::string& name : s.PolicyNames()) {
    if (!(*s.FindPolicy(name) == *t.FindPolicy(name))) Fail("policy changed");
  }
  for (const std::string& name : s.TargetNames()) {
    const policy::RedisTarget& target = *s.FindTarget(name);
    if (!(target == *t.FindTarget(name))) Fail("target changed");
    for (const std::string* secret :
         {&target.password, &target.sentinel_password, &target.tls.key_pem}) {
      if (!secret->empty() && input.find(*secret) == std::string_view::npos &&
          rendered.find(*secret) != std::string::npos) {
        Fail("secret rendered");
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Some seeds name password variables; give them a value that must never
  // be rendered.
  setenv("REDIS_PASSWORD", "fuzz-secret-password", 1);
  setenv("LOCKCTL_TEST_PW", "fuzz-secret-password", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const bool split = data[0] & 1;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  absl::StatusOr<std::shared_ptr<const policy::Snapshot>> s;
  if (!split) {
    s = policy::ParseConfig(text, "fuzz.json");
  } else {
    const size_t cut = std::min(text.find('\0'), text.size());
    const std::vector<policy::ConfigSource> sources = {
        {"a.json", std::string(text.substr(0, cut))},
        {"b.json", std::string(text.substr(std::min(cut + 1, text.size())))}};
    s = policy::ParseConfig(sources);
  }
  if (s.ok()) {
    CheckRoundTrip(**s, text);
  } else if (s.status().code() != absl::StatusCode::kInvalidArgument) {
    Fail("unexpected error code");
  }
  return 0;
}
