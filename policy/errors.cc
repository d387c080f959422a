#include "policy/internal/errors.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"

namespace policy::internal {

std::string Quoted(std::string_view s) { return Cat("\"", s, "\""); }

std::string PointerToken(std::string_view key) {
  std::string out;
  for (char c : key) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatConfigDuration(absl::Duration d) {
  // absl renders zero as "0"; "0s" reads better next to "30s".
  return d == absl::ZeroDuration() ? "0s" : absl::FormatDuration(d);
}

// ---------------------------------------------------------------------------
// Bad values as JSON text.

Shown Shorten(std::string s) {
  constexpr size_t kMaxLength = 80;
  if (s.size() > kMaxLength) {
    size_t cut = kMaxLength - 3;
    // Back up to a UTF-8 character boundary: status messages stay valid text.
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) {
      --cut;
    }
    s.resize(cut);
    s += "...";
  }
  return {std::move(s)};
}

Shown ShowString(std::string_view s) {
  // The escapes nlohmann::json::dump writes (without ensure_ascii).
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(c >> 4) & 0xF];
          out += kHex[c & 0xF];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return Shorten(std::move(out));
}

Shown ShowInt(int64_t x) { return {Cat(x)}; }

Shown ShowNumber(double x) {
  if (!std::isfinite(x)) return {"null"};
  std::string out;
  if (std::signbit(x)) {
    out += '-';
    x = -x;
  }
  if (x == 0) return {out + "0.0"};
  // The shortest digits that read back as x, and where the point goes:
  // x = 0.<digits> * 10^point.
  char buffer[64];
  const std::to_chars_result sci = std::to_chars(
      buffer, buffer + sizeof(buffer), x, std::chars_format::scientific);
  const std::string_view text(buffer, sci.ptr - buffer);  // "d.ddde+XX"
  const size_t e = text.find('e');
  std::string digits;
  for (char c : text.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exponent = 0;
  const std::string_view exponent_text = text.substr(e + 1);
  std::from_chars(exponent_text.data() + (exponent_text[0] == '+' ? 1 : 0),
                  exponent_text.data() + exponent_text.size(), exponent);
  const int k = static_cast<int>(digits.size());
  const int point = exponent + 1;
  // nlohmann's layout (printf's %g with its limits): fixed notation for
  // points in (-4, 15], a trailing ".0" on whole numbers, else d.ddde+XX.
  constexpr int kMinPoint = -4;
  constexpr int kMaxPoint = std::numeric_limits<double>::digits10;
  if (k <= point && point <= kMaxPoint) {
    return {Cat(out, digits, std::string(point - k, '0'), ".0")};
  }
  if (0 < point && point <= kMaxPoint) {
    return {Cat(out, digits.substr(0, point), ".", digits.substr(point))};
  }
  if (kMinPoint < point && point <= 0) {
    return {Cat(out, "0.", std::string(-point, '0'), digits)};
  }
  out += digits[0];
  if (k > 1) out += Cat(".", digits.substr(1));
  const int shown_exponent = point - 1;
  out += shown_exponent < 0 ? "e-" : "e+";
  const int magnitude = std::abs(shown_exponent);
  if (magnitude < 10) out += '0';
  out += Cat(magnitude);
  return {std::move(out)};
}

Shown ShowDuration(absl::Duration d) {
  return ShowString(FormatConfigDuration(d));
}

// ---------------------------------------------------------------------------
// ErrorList.

void ErrorList::Add(const Where& at, std::string_view message) {
  lines_.push_back(
      Cat(at.source, ": ", at.path.empty() ? "/" : at.path, ": ", message));
}

void ErrorList::Add(const Where& at, std::string_view message,
                    const Shown& got) {
  Add(at, Cat(message, ", got ", got.text));
}

void ErrorList::AddSourceError(std::string_view source,
                               std::string_view message) {
  lines_.push_back(Cat(source, ": ", message));
}

absl::Status ErrorList::ToStatus() const {
  if (lines_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(lines_, "\n"));
}

// ---------------------------------------------------------------------------
// "Did you mean" and name lists.

namespace {

// Optimal-string-alignment distance, case-insensitive, so that a swapped pair
// of letters ("tlt") counts as one edit.
size_t EditDistance(std::string_view a, std::string_view b) {
  const std::string x = absl::AsciiStrToLower(std::string(a));
  const std::string y = absl::AsciiStrToLower(std::string(b));
  std::vector<std::vector<size_t>> d(x.size() + 1,
                                     std::vector<size_t>(y.size() + 1));
  for (size_t i = 0; i <= x.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= y.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= x.size(); ++i) {
    for (size_t j = 1; j <= y.size(); ++j) {
      const size_t cost = x[i - 1] == y[j - 1] ? 0 : 1;
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && x[i - 1] == y[j - 2] && x[i - 2] == y[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[x.size()][y.size()];
}

}  // namespace

// Close enough to be a typo: about one edit per three letters.
std::optional<std::string_view> ClosestMatch(
    std::string_view got, const std::vector<std::string_view>& candidates) {
  std::optional<std::string_view> best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (std::string_view candidate : candidates) {
    const size_t distance = EditDistance(got, candidate);
    const size_t allowed = std::max<size_t>(1, candidate.size() / 3);
    if (distance <= allowed && distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (best) return best;
  constexpr size_t kMinPrefix = 3;
  for (std::string_view candidate : candidates) {
    if (got.size() >= kMinPrefix && candidate.starts_with(got)) {
      return candidate;
    }
  }
  return std::nullopt;
}

std::string DidYouMean(std::string_view got,
                       const std::vector<std::string_view>& candidates) {
  std::optional<std::string_view> match = ClosestMatch(got, candidates);
  return match ? Cat(" (did you mean ", Quoted(*match), "?)") : "";
}

std::string QuotedList(const std::vector<std::string_view>& names) {
  constexpr size_t kMaxNames = 20;
  std::vector<std::string> quoted;
  for (size_t i = 0; i < names.size() && i < kMaxNames; ++i) {
    quoted.push_back(Quoted(names[i]));
  }
  if (names.size() > kMaxNames) {
    quoted.push_back(Cat("... (", names.size() - kMaxNames, " more)"));
  }
  return absl::StrJoin(quoted, ", ");
}

}  // namespace policy::internal
