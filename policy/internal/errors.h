// How the policy checks report problems (docs/DESIGN.md section 5): one line
// per problem, `<source>: <JSON pointer>: <message>[, got <bad value>]`, all
// of them in one absl::InvalidArgumentError.
//
// Shared by the JSON parser (config.h) and the struct checks (validate.h).
// Nothing here parses JSON: a bad value is shown as its JSON text, written
// out by the Show* functions, so that the struct checks need no JSON library.
#ifndef POLICY_INTERNAL_ERRORS_H_
#define POLICY_INTERNAL_ERRORS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace policy::internal {

// Debian's abseil is built with its own string_view type
// (ABSL_OPTION_USE_STD_STRING_VIEW is 0), which absl::StrCat does not accept;
// the public API uses std::string_view. Cat() bridges the two.
template <typename T>
decltype(auto) ToAlphaNum(const T& value) {
  if constexpr (std::is_convertible_v<const T&, std::string_view> &&
                !std::is_convertible_v<const T&, absl::string_view>) {
    const std::string_view view = value;
    return absl::string_view(view.data(), view.size());
  } else {
    return (value);
  }
}

template <typename... Args>
std::string Cat(const Args&... args) {
  return absl::StrCat(ToAlphaNum(args)...);
}

// `"s"`, for names inside messages.
std::string Quoted(std::string_view s);

// RFC 6901: '~' and '/' inside a key are escaped.
std::string PointerToken(std::string_view key);

// A value's position: the source's name and a JSON pointer.
struct Where {
  std::string_view source;
  std::string path;  // "" is the document root.

  Where operator/(std::string_view key) const {
    return {source, Cat(path, "/", PointerToken(key))};
  }
  Where operator/(size_t index) const {
    return {source, Cat(path, "/", index)};
  }
};

// Durations as the configuration spells them: "30s", "600ms", "0s".
std::string FormatConfigDuration(absl::Duration d);

// A bad value as an error shows it: its JSON text, cut when long (the path
// already says where to look). A type of its own, so that a raw string cannot
// be passed where its JSON spelling is meant.
struct Shown {
  std::string text;
};

// Cuts `json_text` to a readable length on a UTF-8 character boundary.
Shown Shorten(std::string json_text);
Shown ShowString(std::string_view s);
Shown ShowInt(int64_t x);
// As nlohmann::json dumps a double ("2.0", "0.3", "1e-05"); NaN and the
// infinities, which JSON cannot spell, are "null".
Shown ShowNumber(double x);
Shown ShowDuration(absl::Duration d);

// The one error collector: every problem found anywhere becomes one line.
class ErrorList {
 public:
  void Add(const Where& at, std::string_view message);
  void Add(const Where& at, std::string_view message, const Shown& got);
  // For problems that have no JSON path (the text is not JSON at all).
  void AddSourceError(std::string_view source, std::string_view message);

  size_t size() const { return lines_.size(); }

  absl::Status ToStatus() const;

 private:
  std::vector<std::string> lines_;
};

// The closest candidate if it is close enough to be a plausible typo, else one
// that starts with `got` (a shortened name such as "pool" for "pool_size").
std::optional<std::string_view> ClosestMatch(
    std::string_view got, const std::vector<std::string_view>& candidates);

// ` (did you mean "ttl"?)` or "".
std::string DidYouMean(std::string_view got,
                       const std::vector<std::string_view>& candidates);

// `"a", "b", "c"`, shortened when long: the point is a hint, not a dump.
std::string QuotedList(const std::vector<std::string_view>& names);

template <typename Map>
std::vector<std::string_view> KeysOf(const Map& map) {
  std::vector<std::string_view> keys;
  for (const auto& entry : map) keys.push_back(entry.first);
  return keys;
}

}  // namespace policy::internal

#endif  // POLICY_INTERNAL_ERRORS_H_
