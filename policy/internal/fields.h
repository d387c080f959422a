// Reading configuration JSON into the policy model: typed readers for single
// values and one field table per kind of JSON object. Readers type-check a
// value, apply its rule (rules.h) and report problems at the value's JSON
// pointer; they write the field only when the value is valid.
#ifndef POLICY_INTERNAL_FIELDS_H_
#define POLICY_INTERNAL_FIELDS_H_

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "policy/internal/errors.h"
#include "policy/internal/rules.h"
#include "policy/policy.h"

namespace policy::internal {

// A JSON value as an error shows it (cut when long).
Shown Show(const nlohmann::json& value);

// Single-value readers. Each writes *out only when the value is valid.
bool ReadDuration(const nlohmann::json& value, const Where& at,
                  DurationRule rule, ErrorList& errors, absl::Duration* out);
bool ReadString(const nlohmann::json& value, const Where& at, ErrorList& errors,
                std::string* out);

// One field of a kind of JSON object: its name and how to read it into T.
template <typename T>
struct Field {
  std::string_view name;
  void (*read)(const nlohmann::json& value, const Where& at, ErrorList& errors,
               T* out);
};

template <typename T>
std::vector<std::string_view> NamesOf(const std::vector<Field<T>>& fields) {
  std::vector<std::string_view> names;
  for (const Field<T>& f : fields) names.push_back(f.name);
  return names;
}

// NamesOf(fields), computed once per kind of object: each kind has one table.
template <typename T>
const std::vector<std::string_view>& NamesOnce(
    const std::vector<Field<T>>& fields) {
  static const auto* names = new std::vector<std::string_view>(NamesOf(fields));
  return *names;
}

// `unknown field "tll", did you mean "ttl"?` and the like.
std::string UnknownFieldMessage(std::string_view key,
                                const std::vector<std::string_view>& known);

// Reads the fields `object` contains onto *out and leaves the others
// untouched, which is what makes defaults and extends a plain sequence of
// reads.
template <typename T>
void ReadObject(const nlohmann::json& object, const Where& at,
                const std::vector<Field<T>>& fields, ErrorList& errors,
                T* out) {
  if (!object.is_object()) {
    errors.Add(at, "must be an object", Show(object));
    return;
  }
  for (const auto& [key, value] : object.items()) {
    auto field =
        std::find_if(fields.begin(), fields.end(),
                     [&key = key](const Field<T>& f) { return f.name == key; });
    if (field == fields.end()) {
      errors.Add(at / key, UnknownFieldMessage(key, NamesOf(fields)));
      continue;
    }
    field->read(value, at / key, errors, out);
  }
}

// The tables of a policy (the "defaults" block and each "policies" entry) and
// of a target (each "redis" entry).
const std::vector<Field<Policy>>& PolicyFields();
const std::vector<Field<RedisTarget>>& TargetFields();
// The "tls" object of a target.
const std::vector<Field<TlsOptions>>& TlsFields();

}  // namespace policy::internal

#endif  // POLICY_INTERNAL_FIELDS_H_
