// Durations as written in suite files and on the command line.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace reclaim::suite {

// Parses "250ms", "2s", "1.5s", "0.25s". The unit is required ("ms" or "s");
// seconds take at most three decimals, milliseconds none, so every accepted
// text is a whole number of milliseconds. No sign, no spaces, no exponent.
// Returns nullopt for anything else, and for values above ~11 days
// (integer part longer than 9 digits), so the result never overflows.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// The shortest text parse_duration reads back to `d`: "1s", "1.5s", "250ms".
// Negative durations are formatted as milliseconds with a sign ("-5ms");
// parse_duration does not read those back.
std::string format_duration(std::chrono::milliseconds d);

}  // namespace reclaim::suite
