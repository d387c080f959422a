// Keeps policy/schema.json and the parser declaring the same configuration:
// the schema's properties are exactly the fields the parser accepts, its
// enums the model's values, and every field is described for editors.
// Validating documents against the schema is //policy:schema_test's job
// (a real validator, python3-jsonschema).
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "policy/config.h"
#include "policy/policy.h"

namespace policy {
namespace {

using nlohmann::json;

json ReadSchema() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  const std::string path = std::string(srcdir != nullptr ? srcdir : ".") + "/" +
                           (workspace != nullptr ? workspace : "redis_lock") +
                           "/policy/schema.json";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  json schema = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  EXPECT_TRUE(schema.is_object()) << path << " is not a JSON object";
  return schema;
}

class SchemaFieldsTest : public ::testing::Test {
 protected:
  // The schema object at "#/$defs/<name>", or the root for "".
  const json& Def(const std::string& name) const {
    static const json kNone = json::object();
    if (name.empty()) return schema_;
    const json& defs = schema_.contains("$defs") ? schema_["$defs"] : kNone;
    return defs.contains(name) ? defs[name] : kNone;
  }

  std::set<std::string> Properties(const std::string& def) const {
    std::set<std::string> names;
    const json& object = Def(def);
    if (!object.contains("properties")) return names;
    for (const auto& [name, unused] : object["properties"].items()) {
      names.insert(name);
    }
    return names;
  }

  std::set<std::string> Enum(const std::string& def,
                             const std::string& property) const {
    std::set<std::string> values;
    for (const json& v : Def(def)["properties"][property]["enum"]) {
      values.insert(v.get<std::string>());
    }
    return values;
  }

  static std::set<std::string> AsSet(const std::vector<std::string_view>& v) {
    return std::set<std::string>(v.begin(), v.end());
  }

  template <typename T, size_t N, typename NameFn>
  static std::set<std::string> Names(const std::array<T, N>& all, NameFn name) {
    std::set<std::string> names;
    for (T v : all) names.insert(std::string(name(v)));
    return names;
  }

  const json schema_ = ReadSchema();
};

TEST_F(SchemaFieldsTest, DeclaresExactlyTheFieldsTheParserAccepts) {
  EXPECT_EQ(Properties(""), AsSet(TopLevelFieldNames()));
  EXPECT_EQ(Properties("target"), AsSet(TargetFieldNames()));
  EXPECT_EQ(Properties("policy"), AsSet(PolicyFieldNames()));
  EXPECT_EQ(Properties("wait"), AsSet(WaitFieldNames()));
  EXPECT_EQ(Properties("retry"), AsSet(RetryFieldNames()));
  EXPECT_EQ(Properties("renewal"), AsSet(RenewalFieldNames()));
  EXPECT_EQ(Properties("tls"), AsSet(TlsFieldNames()));
}

TEST_F(SchemaFieldsTest, EnumsMatchTheModel) {
  EXPECT_EQ(Enum("policy", "on_busy"), Names(kAllOnBusy, OnBusyName));
  EXPECT_EQ(Enum("renewal", "on_failure"),
            Names(kAllOnRenewalFailure, OnRenewalFailureName));
  EXPECT_EQ(Enum("target", "mode"), Names(kAllRedisModes, RedisModeName));
  EXPECT_EQ(Enum("policy", "kind"), Names(kAllLockKinds, LockKindName));
}

TEST_F(SchemaFieldsTest, EveryFieldIsDescribed) {
  constexpr std::string_view kDefs = "#/$defs/";
  for (const char* def :
       {"policy", "target", "retry", "wait", "renewal", "tls"}) {
    for (const auto& [name, property] : Def(def)["properties"].items()) {
      bool described = property.contains("description");
      if (!described && property.contains("$ref")) {
        const std::string ref = property["$ref"].get<std::string>();
        described = ref.starts_with(kDefs) &&
                    Def(ref.substr(kDefs.size())).contains("description");
      }
      EXPECT_TRUE(described) << def << "/" << name;
    }
  }
}

}  // namespace
}  // namespace policy
