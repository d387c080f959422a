// The sources of one configuration merged into one view (pass 2 of parsing,
// merge.cc), and its resolution into policies (pass 3, resolve.cc).
#ifndef POLICY_INTERNAL_MERGED_H_
#define POLICY_INTERNAL_MERGED_H_

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "policy/internal/errors.h"
#include "policy/internal/fields.h"
#include "policy/policy.h"

namespace policy::internal {

// A "policies" entry. Its body is read again, layer by layer, when it is
// resolved.
struct PolicyEntry {
  const nlohmann::json* body;
  Where at;
  std::string extends;  // the policy's own extends, "" if none or invalid
  bool clean;           // no errors in this object
};

struct TargetEntry {
  RedisTarget target;
  Where at;
};

struct DefaultsEntry {
  const nlohmann::json* body;
  Where at;
};

// Points into the parsed documents, which must outlive it.
struct Merged {
  std::vector<DefaultsEntry> defaults;
  bool defaults_clean = true;
  // Which source set each defaults field (JSON pointer below "defaults").
  std::map<std::string, std::string_view> defaults_fields;
  std::map<std::string, PolicyEntry, std::less<>> policies;
  std::map<std::string, TargetEntry, std::less<>> targets;
  // The directory of the source being read (ConfigSource::directory):
  // relative TLS file paths are resolved against it.
  std::string_view directory;
  // The TLS files read, by resolved path, with FileFingerprint() of what
  // was read (ParseConfig's `files`).
  std::map<std::string, std::string> files;
};

// The table of a source's top-level object: reading a source adds its
// targets, defaults and policies to a Merged.
const std::vector<Field<Merged>>& TopLevelFields();

// Every policy of `merged`, resolved: struct default < "defaults" < extends
// chain (base first) < the policy's own fields, then checked as a whole.
std::vector<Policy> ResolvePolicies(const Merged& merged, ErrorList& errors);

}  // namespace policy::internal

#endif  // POLICY_INTERNAL_MERGED_H_
