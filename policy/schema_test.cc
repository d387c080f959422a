// Keeps policy/schema.json honest:
//  - it declares exactly the fields (and enum values) the parser accepts;
//  - every valid test configuration (and every example configuration in the
//    runfiles) passes both the schema and the parser, and so does the
//    parser's own ExplainSnapshot() output;
//  - every invalid test configuration fails the parser and, unless its name
//    says the rule is beyond the schema ("invalid_beyond_schema_*"), the
//    schema too.
//
// There is no C++ JSON Schema validator among our dependencies, so this file
// has a small one for exactly the draft 2020-12 keywords the schema uses. An
// unknown keyword fails the test rather than being ignored, so the schema
// cannot drift into rules nobody checks.
#include <cstdlib>
#include <filesystem>
#include <fstream>

// GCC 12 at -O1 with sanitizers reports a false -Wmaybe-uninitialized inside
// libstdc++'s <regex> (std::function inside _StateT); keep it from failing
// -Werror builds.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#pragma GCC diagnostic pop

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "policy/config.h"
#include "policy/policy.h"

namespace policy {
namespace {

using nlohmann::json;
using ::testing::IsEmpty;
using ::testing::Not;

// ---------------------------------------------------------------------------
// Files.

std::string RunfilesRoot() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  return std::string(srcdir != nullptr ? srcdir : ".") + "/" +
         (workspace != nullptr ? workspace : "redis_lock");
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_TRUE(in.good() || in.eof()) << path;
  return text.str();
}

json ReadJson(const std::string& path) {
  json j = json::parse(ReadFile(path), nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << path << " is not JSON";
  return j;
}

// *.json files below `dir` (recursively), sorted; none if it does not exist.
std::vector<std::string> JsonFilesUnder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<std::string> files;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return files;
  for (auto it = fs::recursive_directory_iterator(
           dir, fs::directory_options::follow_directory_symlink, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().extension() == ".json") files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string BaseName(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

// ---------------------------------------------------------------------------
// A JSON Schema validator for the keywords schema.json uses.

const std::set<std::string>& AnnotationKeywords() {
  static const auto* keywords = new std::set<std::string>{
      "$schema", "$id",         "$defs",   "$comment",
      "title",   "description", "default", "examples"};
  return *keywords;
}

const std::set<std::string>& AssertionKeywords() {
  static const auto* keywords =
      new std::set<std::string>{"$ref",
                                "type",
                                "enum",
                                "const",
                                "properties",
                                "additionalProperties",
                                "propertyNames",
                                "required",
                                "items",
                                "minItems",
                                "maxItems",
                                "uniqueItems",
                                "minLength",
                                "maxLength",
                                "pattern",
                                "minimum",
                                "maximum",
                                "exclusiveMinimum",
                                "exclusiveMaximum",
                                "allOf",
                                "not",
                                "if",
                                "then",
                                "else"};
  return *keywords;
}

class SchemaValidator {
 public:
  explicit SchemaValidator(json root) : root_(std::move(root)) {}

  // The problems with `instance`, one per entry; empty when it is valid.
  std::vector<std::string> Validate(const json& instance) const {
    std::vector<std::string> errors;
    Check(root_, instance, "", &errors);
    return errors;
  }

  // Keywords anywhere in the schema that this validator does not implement.
  std::vector<std::string> UnsupportedKeywords() const {
    std::vector<std::string> found;
    FindUnsupported(root_, "#", &found);
    return found;
  }

  const json& root() const { return root_; }

  // The schema object a "$ref" points to, or nullptr.
  const json* Resolve(const std::string& ref) const {
    constexpr std::string_view kPrefix = "#/$defs/";
    if (ref.rfind(kPrefix, 0) != 0) return nullptr;
    auto defs = root_.find("$defs");
    if (defs == root_.end()) return nullptr;
    auto def = defs->find(ref.substr(kPrefix.size()));
    return def == defs->end() ? nullptr : &*def;
  }

 private:
  static bool HasType(const std::string& type, const json& v) {
    if (type == "object") return v.is_object();
    if (type == "array") return v.is_array();
    if (type == "string") return v.is_string();
    if (type == "boolean") return v.is_boolean();
    if (type == "null") return v.is_null();
    if (type == "number") return v.is_number();
    if (type == "integer") {
      return v.is_number_integer() ||
             (v.is_number_float() &&
              v.get<double>() == std::trunc(v.get<double>()));
    }
    return false;
  }

  static size_t CodePoints(const std::string& s) {
    return std::count_if(s.begin(), s.end(),
                         [](char c) { return (c & 0xC0) != 0x80; });
  }

  void Check(const json& schema, const json& v, const std::string& path,
             std::vector<std::string>* errors) const {
    auto fail = [&](const std::string& what) {
      errors->push_back((path.empty() ? "/" : path) + ": " + what + ", got " +
                        v.dump());
    };
    if (schema.is_boolean()) {
      if (!schema.get<bool>()) fail("not allowed");
      return;
    }
    for (const auto& [keyword, arg] : schema.items()) {
      if (keyword == "$ref") {
        const json* target = Resolve(arg.get<std::string>());
        if (target == nullptr) {
          fail("unresolvable $ref " + arg.dump());
        } else {
          Check(*target, v, path, errors);
        }
      } else if (keyword == "type") {
        bool any = false;
        for (const json& t : arg.is_array() ? arg : json::array({arg})) {
          any |= HasType(t.get<std::string>(), v);
        }
        if (!any) fail("type must be " + arg.dump());
      } else if (keyword == "enum") {
        if (std::find(arg.begin(), arg.end(), v) == arg.end()) {
          fail("must be one of " + arg.dump());
        }
      } else if (keyword == "const") {
        if (v != arg) fail("must be " + arg.dump());
      } else if (keyword == "properties" && v.is_object()) {
        for (const auto& [name, sub] : arg.items()) {
          if (v.contains(name)) Check(sub, v[name], path + "/" + name, errors);
        }
      } else if (keyword == "additionalProperties" && v.is_object()) {
        const json& declared = schema.contains("properties")
                                   ? schema["properties"]
                                   : json::object();
        for (const auto& [name, value] : v.items()) {
          if (!declared.contains(name)) {
            Check(arg, value, path + "/" + name, errors);
          }
        }
      } else if (keyword == "propertyNames" && v.is_object()) {
        for (const auto& [name, unused] : v.items()) {
          Check(arg, json(name), path + "/" + name + " (name)", errors);
        }
      } else if (keyword == "required" && v.is_object()) {
        for (const json& name : arg) {
          if (!v.contains(name.get<std::string>())) {
            fail("missing required " + name.dump());
          }
        }
      } else if (keyword == "items" && v.is_array()) {
        for (size_t i = 0; i < v.size(); ++i) {
          Check(arg, v[i], path + "/" + std::to_string(i), errors);
        }
      } else if (keyword == "minItems" && v.is_array()) {
        if (v.size() < arg.get<size_t>()) fail("too few items");
      } else if (keyword == "maxItems" && v.is_array()) {
        if (v.size() > arg.get<size_t>()) fail("too many items");
      } else if (keyword == "uniqueItems" && v.is_array() && arg.get<bool>()) {
        for (size_t i = 0; i < v.size(); ++i) {
          for (size_t j = i + 1; j < v.size(); ++j) {
            if (v[i] == v[j]) fail("items must be unique");
          }
        }
      } else if (keyword == "minLength" && v.is_string()) {
        if (CodePoints(v.get<std::string>()) < arg.get<size_t>()) {
          fail("too short");
        }
      } else if (keyword == "maxLength" && v.is_string()) {
        if (CodePoints(v.get<std::string>()) > arg.get<size_t>()) {
          fail("too long");
        }
      } else if (keyword == "pattern" && v.is_string()) {
        if (!std::regex_search(v.get<std::string>(),
                               std::regex(arg.get<std::string>()))) {
          fail("must match " + arg.dump());
        }
      } else if (keyword == "minimum" && v.is_number()) {
        if (v.get<double>() < arg.get<double>()) fail("below minimum");
      } else if (keyword == "maximum" && v.is_number()) {
        if (v.get<double>() > arg.get<double>()) fail("above maximum");
      } else if (keyword == "exclusiveMinimum" && v.is_number()) {
        if (v.get<double>() <= arg.get<double>()) fail("not above minimum");
      } else if (keyword == "exclusiveMaximum" && v.is_number()) {
        if (v.get<double>() >= arg.get<double>()) fail("not below maximum");
      } else if (keyword == "allOf") {
        for (const json& sub : arg) Check(sub, v, path, errors);
      } else if (keyword == "not") {
        std::vector<std::string> sub_errors;
        Check(arg, v, path, &sub_errors);
        if (sub_errors.empty()) fail("must not match " + arg.dump());
      } else if (keyword == "if") {
        std::vector<std::string> condition;
        Check(arg, v, path, &condition);
        const char* branch = condition.empty() ? "then" : "else";
        if (schema.contains(branch)) Check(schema[branch], v, path, errors);
      }
      // Annotations, "then"/"else" (handled with "if") and keywords that do
      // not apply to this instance type need nothing here.
    }
  }

  void FindUnsupported(const json& schema, const std::string& where,
                       std::vector<std::string>* found) const {
    if (!schema.is_object()) return;
    for (const auto& [keyword, arg] : schema.items()) {
      const std::string at = where + "/" + keyword;
      if (keyword == "$defs" || keyword == "properties") {
        for (const auto& [name, sub] : arg.items()) {
          FindUnsupported(sub, at + "/" + name, found);
        }
      } else if (keyword == "allOf") {
        for (size_t i = 0; i < arg.size(); ++i) {
          FindUnsupported(arg[i], at + "/" + std::to_string(i), found);
        }
      } else if (keyword == "$ref") {
        if (Resolve(arg.get<std::string>()) == nullptr) {
          found->push_back(at + " (unresolvable)");
        }
      } else if (AnnotationKeywords().contains(keyword)) {
        continue;
      } else if (!AssertionKeywords().contains(keyword)) {
        found->push_back(at);
      } else {
        FindUnsupported(arg, at, found);  // Subschemas: not, if, items, ...
      }
    }
  }

  const json root_;
};

class SchemaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    schema_ =
        new SchemaValidator(ReadJson(RunfilesRoot() + "/policy/schema.json"));
  }
  static void TearDownTestSuite() {
    delete schema_;
    schema_ = nullptr;
  }

  // The property names the schema declares for the object at `pointer`.
  static std::set<std::string> SchemaProperties(const std::string& def) {
    const json* object = def.empty() ? &schema_->root() : schema_->Resolve(def);
    std::set<std::string> names;
    if (object == nullptr || !object->contains("properties")) return names;
    for (const auto& [name, unused] : (*object)["properties"].items()) {
      names.insert(name);
    }
    return names;
  }

  static std::set<std::string> AsSet(const std::vector<std::string_view>& v) {
    return std::set<std::string>(v.begin(), v.end());
  }

  // The enum a policy or target property declares.
  static std::set<std::string> SchemaEnum(const std::string& def,
                                          const std::string& property) {
    std::set<std::string> values;
    for (const json& v :
         (*schema_->Resolve(def))["properties"][property]["enum"]) {
      values.insert(v.get<std::string>());
    }
    return values;
  }

  // Variables named by password_env and sentinel_password_env must exist for the parser; their values
  // do not matter here.
  static void ProvidePasswords(const json& config) {
    if (!config.is_object() || !config.contains("redis") ||
        !config["redis"].is_object()) {
      return;
    }
    for (const auto& [name, target] : config["redis"].items()) {
      for (const char* field : {"password_env", "sentinel_password_env"}) {
        if (!target.is_object() || !target.contains(field)) continue;
        const json& var = target[field];
        if (var.is_string() && !var.get<std::string>().empty() &&
            var.get<std::string>() != "POLICY_TEST_NEVER_SET") {
          setenv(var.get<std::string>().c_str(), "test-password", 0);
        }
      }
    }
  }

  // A configuration that must be accepted by both the schema and the
  // parser, and whose explained form must pass the schema as well.
  static void ExpectValid(const std::string& path) {
    SCOPED_TRACE(path);
    const json config = ReadJson(path);
    EXPECT_THAT(schema_->Validate(config), IsEmpty());
    ProvidePasswords(config);
    absl::StatusOr<std::shared_ptr<const Snapshot>> snapshot =
        ParseConfig(ReadFile(path), path);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    const json explained = ExplainSnapshot(**snapshot);
    EXPECT_THAT(schema_->Validate(explained), IsEmpty()) << explained.dump(2);
  }

  static SchemaValidator* schema_;
};

SchemaValidator* SchemaTest::schema_ = nullptr;

TEST_F(SchemaTest, UsesOnlyKeywordsThisValidatorChecks) {
  EXPECT_THAT(schema_->UnsupportedKeywords(), IsEmpty());
  EXPECT_EQ(schema_->root()["$schema"],
            "https://json-schema.org/draft/2020-12/schema");
}

TEST_F(SchemaTest, DeclaresExactlyTheFieldsTheParserAccepts) {
  EXPECT_EQ(SchemaProperties(""), AsSet(TopLevelFieldNames()));
  EXPECT_EQ(SchemaProperties("#/$defs/target"), AsSet(TargetFieldNames()));
  EXPECT_EQ(SchemaProperties("#/$defs/policy"), AsSet(PolicyFieldNames()));
  EXPECT_EQ(SchemaProperties("#/$defs/wait"), AsSet(WaitFieldNames()));
  EXPECT_EQ(SchemaProperties("#/$defs/retry"), AsSet(RetryFieldNames()));
  EXPECT_EQ(SchemaProperties("#/$defs/renewal"), AsSet(RenewalFieldNames()));
  EXPECT_EQ(SchemaProperties("#/$defs/tls"), AsSet(TlsFieldNames()));
}

TEST_F(SchemaTest, EnumsMatchTheModel) {
  std::set<std::string> on_busy, on_failure, modes;
  for (OnBusy v : kAllOnBusy) on_busy.insert(std::string(OnBusyName(v)));
  for (OnRenewalFailure v : kAllOnRenewalFailure) {
    on_failure.insert(std::string(OnRenewalFailureName(v)));
  }
  for (RedisMode v : kAllRedisModes)
    modes.insert(std::string(RedisModeName(v)));
  EXPECT_EQ(SchemaEnum("#/$defs/policy", "on_busy"), on_busy);
  EXPECT_EQ(SchemaEnum("#/$defs/renewal", "on_failure"), on_failure);
  EXPECT_EQ(SchemaEnum("#/$defs/target", "mode"), modes);
  std::set<std::string> kinds;
  for (LockKind v : kAllLockKinds) kinds.insert(std::string(LockKindName(v)));
  EXPECT_EQ(SchemaEnum("#/$defs/policy", "kind"), kinds);
}

TEST_F(SchemaTest, EveryFieldIsDescribed) {
  for (const char* def : {"#/$defs/policy", "#/$defs/target", "#/$defs/retry",
                          "#/$defs/wait", "#/$defs/renewal", "#/$defs/tls"}) {
    for (const auto& [name, property] :
         (*schema_->Resolve(def))["properties"].items()) {
      const bool described =
          property.contains("description") ||
          (property.contains("$ref") &&
           schema_->Resolve(property["$ref"])->contains("description"));
      EXPECT_TRUE(described) << def << "/" << name;
    }
  }
}

TEST_F(SchemaTest, ValidTestConfigurationsPassSchemaAndParser) {
  int count = 0;
  for (const std::string& path :
       JsonFilesUnder(RunfilesRoot() + "/policy/testdata")) {
    if (BaseName(path).rfind("valid_", 0) != 0) continue;
    ExpectValid(path);
    ++count;
  }
  EXPECT_GE(count, 3) << "testdata/valid_*.json not found in the runfiles";
}

TEST_F(SchemaTest, InvalidTestConfigurationsAreRejected) {
  int count = 0;
  for (const std::string& path :
       JsonFilesUnder(RunfilesRoot() + "/policy/testdata")) {
    const std::string name = BaseName(path);
    if (name.rfind("invalid_", 0) != 0) continue;
    SCOPED_TRACE(path);
    ++count;
    const json config = ReadJson(path);
    ProvidePasswords(config);
    EXPECT_FALSE(ParseConfig(ReadFile(path), path).ok());
    if (name.rfind("invalid_beyond_schema_", 0) == 0) {
      // Cross-field and cross-entry rules: the schema cannot see them. If it
      // starts to, the file should lose the "beyond_schema" in its name.
      EXPECT_THAT(schema_->Validate(config), IsEmpty());
    } else {
      EXPECT_THAT(schema_->Validate(config), Not(IsEmpty()));
    }
  }
  EXPECT_GE(count, 10) << "testdata/invalid_*.json not found in the runfiles";
}

// Example programs' configurations, when an examples package exports them
// into this test's runfiles (see EXAMPLE_CONFIGS in policy/BUILD). None is
// fine.
TEST_F(SchemaTest, ExampleConfigurationsPassSchemaAndParser) {
  for (const std::string& path : JsonFilesUnder(RunfilesRoot() + "/examples")) {
    ExpectValid(path);
  }
}

// The validator itself: it must reject what the schema forbids, or the
// checks above prove nothing.
TEST_F(SchemaTest, ValidatorRejectsTypicalMistakes) {
  const json good = json::parse(R"({"redis": {"default": {"addrs": ["h:1"]}},
                                    "policies": {"a": {"ttl": "1s"}}})",
                                nullptr, false);
  ASSERT_THAT(schema_->Validate(good), IsEmpty());
  for (
      const char* bad : {
          R"({"policies": {"a": {"ttl": "1 s"}}})",
          R"({"policies": {"a": {"ttl": "0s"}}})",
          R"({"policies": {"a": {"retry": {"jitter": 2}}}})",
          R"({"policies": {"a": {"retry": {"max_attempts": 1.5}}}})",
          R"({"policies": {"a": {"renewal": {"threshold": 0}}}})",
          R"({"policies": {"a": {"on_busy": "maybe"}}})",
          R"({"policies": {"a b": {}}})",
          R"({"policies": {"a": {"kind": "rw"}}})",
          R"({"policies": {"a": {"kind": "semaphore", "permits": 0}}})",
          R"({"policies": {"a": {"kind": "semaphore", "permits": 1000001}}})",
          R"({"policies": {"a": {"kind": "mutex", "permits": 2}}})",
          R"({"policies": {"a": {"kind": "fair", "hold_at_least": "1s"}}})",
          R"({"policies": {"a": {"kind": "fair", "hold_at_least": "0.5s"}}})",
          R"({"defaults": {"extends": "a"}})",
          R"({"redis": {"r": {"addrs": []}}})",
          R"({"redis": {"r": {"addrs": ["h:1", "h:1"], "mode": "redlock"}}})",
          R"({"redis": {"r": {"mode": "sentinel", "sentinels": ["s:1"], "master_name": ""}}})",
          R"({"redis": {"r": {"addrs": ["h:1"], "master_name": "m"}}})",
          R"({"redis": {"r": {"addrs": ["h:1"], "password_env": "1X"}}})",
          R"({"redis": {"r": {"addrs": ["h:1"], "tls": {"cert_file": "c.pem"}}}})",
          R"({"redis": {"r": {"addrs": ["h:1"], "tls": {"key_file": "k.pem"}}}})",
          R"({"redis": {"r": {"addrs": ["h:1"], "tls": {"verify": false}}}})",
          R"({"redis": {"r": {"addrs": ["h:1"], "tls": {"enabled": "yes"}}}})",
          R"({"redis": {"r": {"addrs": ["h:1"], "tls": true}}})",
          R"({"redis": {"r": {"addrs": ["h:1"], "sentinel_username": "u"}}})",
          R"({"redis": {"r": {"addrs": ["h:1"], "sentinel_password_env": "P"}}})",
          R"({"redis": {"r": {"mode": "sentinel", "sentinels": ["s:1"], "master_name": "m", "sentinel_username": "u"}}})",
          R"({"extra": 1})",
      }) {
    EXPECT_THAT(schema_->Validate(json::parse(bad, nullptr, false)),
                Not(IsEmpty()))
        << bad;
  }
}

}  // namespace
}  // namespace policy
