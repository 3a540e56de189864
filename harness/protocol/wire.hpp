// The reclaim/1 wire protocol (harness/protocol/protocol.md) as values: one struct per
// line, and pure functions to encode and decode them. Used by the harness and
// by the C++ probe; other probes implement the same text format.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace reclaim::wire {

inline constexpr std::string_view kVersion = "reclaim/1";
inline constexpr std::size_t kMaxLine = 4096;

// ---- rank -> harness ----
struct Hello { std::string version; long pid = 0; int rank = 0; std::string probe; };
struct HookEntered { std::string name; std::int64_t t_ns = 0; };
struct At { std::string entry; std::string point; };
struct AuditRequest { std::string label; };
struct Event { std::string name; std::int64_t t_ns = 0; std::string text; };
struct Bye { int code = 0; };
struct Barrier { std::string name; };  // multi-rank: wait for every rank here

// ---- harness -> rank ----
struct Welcome { std::string version; };
struct Arm { std::string entry; std::string point; };
struct Go {};
struct Raise { std::string type; std::string text; };
struct Exit { int code = 0; };
struct Hang {};
struct Audited { int leaks = 0; };
struct Error { std::string text; };
struct Abort { std::string text; };  // answer to BARRIER: another rank failed

// A line the decoder did not understand: unknown type (to be ignored) or malformed.
struct Unknown { std::string line; bool malformed = false; };

using Message = std::variant<Hello, HookEntered, At, AuditRequest, Event, Bye, Barrier, Welcome, Arm, Go,
                             Raise, Exit, Hang, Audited, Error, Abort, Unknown>;

// Encodes one message as a line, including the trailing '\n'.
std::string encode(const Message& m);

// Decodes one line (with or without its trailing '\n').
Message decode(std::string_view line);

// Splits a byte stream into lines. Feed bytes as they arrive; next() yields
// complete lines without '\n'. A line longer than kMaxLine is an error.
class LineBuffer {
 public:
  void feed(std::string_view bytes) { buf_.append(bytes); }
  // nullopt: no complete line yet.
  std::optional<std::string> next();
  bool overflowed() const { return overflow_; }
  bool empty() const { return buf_.empty(); }

 private:
  std::string buf_;
  bool overflow_ = false;
};

}  // namespace reclaim::wire
