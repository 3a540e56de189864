#include "suite/duration.hpp"

#include <cstdint>
#include <fmt/format.h>

namespace reclaim::suite {

namespace {

constexpr std::size_t kMaxIntegerDigits = 9;  // 999'999'999 s * 1000 still fits in int64

bool all_digits(std::string_view s) {
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::int64_t to_int(std::string_view digits) {
  std::int64_t v = 0;
  for (char c : digits) v = v * 10 + (c - '0');
  return v;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::int64_t scale = 0;  // milliseconds per unit
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms") {
    scale = 1;
    text.remove_suffix(2);
  } else if (text.size() > 1 && text.back() == 's') {
    scale = 1000;
    text.remove_suffix(1);
  } else {
    return std::nullopt;
  }

  auto dot = text.find('.');
  std::string_view whole = text.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? std::string_view{} : text.substr(dot + 1);
  if (whole.empty() || whole.size() > kMaxIntegerDigits || !all_digits(whole)) return std::nullopt;
  if (dot != std::string_view::npos) {
    // "1." is not a number, and a fraction of a millisecond is not a duration
    // the harness can honour, so it is rejected rather than rounded.
    if (frac.empty() || !all_digits(frac) || scale == 1 || frac.size() > 3) return std::nullopt;
  }

  std::int64_t ms = to_int(whole) * scale;
  if (!frac.empty()) {
    std::int64_t f = to_int(frac);
    for (std::size_t i = frac.size(); i < 3; ++i) f *= 10;
    ms += f;
  }
  return std::chrono::milliseconds{ms};
}

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms <= 0) return fmt::format("{}ms", ms);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  if (ms < 1000) return fmt::format("{}ms", ms);
  std::string frac = fmt::format("{:03}", ms % 1000);
  while (frac.back() == '0') frac.pop_back();
  return fmt::format("{}.{}s", ms / 1000, frac);
}

}  // namespace reclaim::suite
