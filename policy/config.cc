// How a configuration becomes a Snapshot, in three passes:
//
//  1. Syntax (here): a SAX pass finds malformed JSON (with line/column) and
//     duplicate object keys, which the DOM parser would silently collapse to
//     the last one (a copy-pasted policy would vanish without a word).
//  2. Fields (fields.cc, merge.cc): every JSON object of every source is read
//     exactly once through a field table (one per object kind). Readers type-
//     and range-check single values by the rules of rules.h and report errors
//     at the value's JSON pointer.
//  3. Resolution (resolve.cc): each policy is rebuilt by overlaying, on a
//     default Policy, the "defaults" objects and the extends chain (base
//     first) with the same readers. Their errors were reported in pass 2, so
//     this pass reads into a throwaway ErrorList. Rules over several resolved
//     fields run only for policies whose objects were all clean, and the
//     target reference only when the winning "redis" value was readable, so
//     one mistake does not cascade into several reports.
#include "policy/config.h"

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "policy/internal/errors.h"
#include "policy/internal/merged.h"

namespace policy {
namespace {

using internal::Cat;
using internal::ErrorList;
using internal::PointerToken;
using internal::Where;
using nlohmann::json;

// ---------------------------------------------------------------------------
// Pass 1: syntax.

// Finds the first syntax error and every duplicate object key, with paths.
class SyntaxChecker : public nlohmann::json_sax<json> {
 public:
  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override {
    return Value();
  }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override {
    stack_.push_back(Frame{.is_object = true});
    return true;
  }
  bool key(string_t& key) override {
    Frame& frame = stack_.back();
    if (!frame.keys.insert(key).second) {
      duplicates_.push_back(Cat(ParentPath(), "/", PointerToken(key)));
    }
    frame.key = key;
    return true;
  }
  bool end_object() override { return End(); }
  bool start_array(std::size_t) override {
    stack_.push_back(Frame{.is_object = false});
    return true;
  }
  bool end_array() override { return End(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::json::exception& e) override {
    // what() is "[json.exception.parse_error.101] parse error at line 3,
    // column 5: syntax error ..."; keep the part after "parse error ".
    std::string_view what = e.what();
    constexpr std::string_view kMarker = "parse error ";
    if (size_t at = what.find(kMarker); at != std::string_view::npos) {
      what.remove_prefix(at + kMarker.size());
    }
    syntax_error_ = Cat("malformed JSON ", what, " (byte ", position, ")");
    return false;
  }

  const std::string& syntax_error() const { return syntax_error_; }
  const std::vector<std::string>& duplicates() const { return duplicates_; }

 private:
  struct Frame {
    bool is_object = false;
    std::set<std::string> keys = {};  // objects: keys seen so far
    std::string key = {};             // objects: the current key
    size_t index = 0;                 // arrays: the current element
  };

  // The path of the innermost open container.
  std::string ParentPath() const {
    std::string path;
    for (size_t i = 0; i + 1 < stack_.size(); ++i) {
      const Frame& f = stack_[i];
      path += Cat("/", f.is_object ? PointerToken(f.key) : Cat(f.index));
    }
    return path;
  }
  bool Value() {
    if (!stack_.empty() && !stack_.back().is_object) ++stack_.back().index;
    return true;
  }
  bool End() {
    stack_.pop_back();
    return Value();
  }

  std::vector<Frame> stack_;
  std::vector<std::string> duplicates_;
  std::string syntax_error_;
};

}  // namespace

absl::StatusOr<std::shared_ptr<const Snapshot>> ParseConfig(
    std::string_view json, std::string_view source_name) {
  const ConfigSource source{std::string(source_name), std::string(json)};
  return ParseConfig(absl::MakeConstSpan(&source, 1));
}

absl::StatusOr<std::shared_ptr<const Snapshot>> ParseConfig(
    absl::Span<const ConfigSource> sources) {
  return ParseConfig(sources, nullptr);
}

absl::StatusOr<std::shared_ptr<const Snapshot>> ParseConfig(
    absl::Span<const ConfigSource> sources,
    std::map<std::string, std::string>* files) {
  ErrorList errors;
  internal::Merged merged;
  // Entries of `merged` point into these documents: reserve so that they
  // never move.
  std::vector<nlohmann::json> documents;
  documents.reserve(sources.size());
  bool all_parsed = true;
  for (const ConfigSource& source : sources) {
    SyntaxChecker checker;
    if (!nlohmann::json::sax_parse(source.text, &checker)) {
      errors.AddSourceError(source.name, checker.syntax_error());
      all_parsed = false;
      continue;
    }
    for (const std::string& path : checker.duplicates()) {
      errors.Add({source.name, path},
                 "duplicate key: JSON would silently keep only the last one");
    }
    documents.push_back(nlohmann::json::parse(source.text, nullptr,
                                              /*allow_exceptions=*/false));
    // Cannot fail once the SAX pass accepted the text; checked so that a
    // disagreement between the two parsers is an error, not a crash.
    if (documents.back().is_discarded()) {
      errors.AddSourceError(source.name, "malformed JSON");
      all_parsed = false;
      continue;
    }
    merged.directory = source.directory;
    internal::ReadObject(documents.back(), Where{source.name, ""},
                         internal::TopLevelFields(), errors, &merged);
  }
  // Cross-source references are meaningless when a source could not be read.
  std::vector<Policy> policies;
  if (all_parsed) policies = internal::ResolvePolicies(merged, errors);
  // Also when invalid: a watcher must notice when a missing or bad TLS file
  // is fixed.
  if (files != nullptr) *files = merged.files;
  if (absl::Status status = errors.ToStatus(); !status.ok()) return status;

  std::vector<RedisTarget> targets;
  for (auto& [name, entry] : merged.targets) targets.push_back(entry.target);
  std::vector<std::string> names;
  for (const ConfigSource& source : sources) names.push_back(source.name);
  return std::make_shared<const Snapshot>(std::move(policies),
                                          std::move(targets), std::move(names));
}

}  // namespace policy
