// The C++ probe: the rank's side of the reclaim/1 wire protocol (harness/protocol/protocol.md).
//
// A probe reports *where* the rank is (HELLO, HOOK, AT, AUDIT, EVENT, BYE) and
// obeys the directive the harness answers at an armed point. It never reports
// the rank's cleanliness: leaks are found from outside.
//
// Contract, for every member function:
//   - An inactive probe (no RECLAIM_CONTROL, or a channel that broke) does
//     nothing and returns at once; at() then returns Go.
//   - Nothing here throws or crashes on channel trouble: EOF, an error or a
//     protocol error ("ERR") makes the probe inactive and the program goes on.
//   - Reads retry on EINTR, because the harness delivers signals to the rank
//     while the rank is blocked waiting for a directive (signal, then GO).
//   - Writes use MSG_NOSIGNAL: a closed channel never raises SIGPIPE.
//
// Not thread-safe: one thread of the rank talks to the harness.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "protocol/wire.hpp"

namespace reclaim {

// What the harness wants done at an armed point.
enum class DirectiveKind {
  go,     // continue (any signal the fault called for is already pending or handled)
  raise,  // raise an error of `type` with message `text`
  exit,   // leave at once with `code`, running no cleanup (_exit)
  hang,   // block forever; the harness will kill the rank
};

// The outcome of a collective: every rank arrived, or the world failed.
struct BarrierResult {
  bool ok = true;
  std::string why;  // when !ok: what the harness said (which rank failed)
};

struct Directive {
  DirectiveKind kind = DirectiveKind::go;
  std::string type;  // for raise: "RuntimeError", "KeyboardInterrupt", ...
  std::string text;  // for raise
  int code = 0;      // for exit
};

class Probe {
 public:
  // An inactive probe.
  Probe() = default;

  // Adopts a connected stream socket `fd` (sets FD_CLOEXEC on it) as the control
  // channel of rank `rank` in a world of `world_size` ranks. A negative fd
  // gives an inactive probe.
  Probe(int fd, int rank, int world_size = 1);

  // Reads RECLAIM_CONTROL and the rank and world size. The control address is
  // "fd:N" (an inherited socket), "unix:PATH" ("unix:@NAME": abstract) or
  // "tcp:HOST:PORT" (a launcher such as mpirun started the rank). The rank is
  // RECLAIM_RANK, else RANK, OMPI_COMM_WORLD_RANK or PMI_RANK; the world size
  // RECLAIM_WORLD_SIZE, else WORLD_SIZE, OMPI_COMM_WORLD_SIZE or PMI_SIZE.
  // Absent RECLAIM_CONTROL: inactive. A malformed or unreachable address is
  // reported on stderr and gives an inactive probe.
  static Probe from_environment();

  Probe(Probe&& other) noexcept;
  Probe& operator=(Probe&& other) noexcept;
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;
  ~Probe();  // closes the channel

  bool active() const { return fd_ >= 0; }

  // HELLO, then reads WELCOME, the ARM lines and GO. Call once, first thing: the
  // harness baselines the rank's handles when it receives HELLO.
  void hello();

  // HOOK name T — the lifecycle hook `name` was entered. Fire-and-forget.
  void hook(std::string_view name);

  // The rank reached the end (or, for teardown, the start) of hook `hook` in
  // `entry` ("fit", "setup"). For a batch hook (name ending in "_batch") the
  // probe counts occurrences per (entry, hook) itself and the point is
  // "train_batch#k". Only an armed point costs a message (AT) and a blocking
  // read of the directive; an unarmed one makes no system call.
  Directive at(std::string_view entry, std::string_view hook);

  // AUDIT label, then waits for AUDITED.
  void audit(std::string_view label);

  // EVENT name T text. Newlines in `text` become spaces; overlong text is cut.
  void event(std::string_view name, std::string_view text);

  // BYE code.
  void bye(int code);

  // BARRIER name — a collective of all ranks (`prepare_data`, `post_setup`,
  // `train_batch#3`, ...); waits until every rank arrived (ok) or the harness
  // answers ABORT because a rank failed. With one rank, or a probe that never
  // had a harness, it returns ok at once. A probe whose channel broke returns
  // !ok: a rank that lost its rendezvous cannot take part in collectives.
  BarrierResult barrier(std::string_view name);

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

  // Whether (entry, point) was armed at HELLO ("fit", "train_batch#2").
  bool armed(std::string_view entry, std::string_view point) const;

  // The occurrences counted so far for a batch hook (0 before the first).
  int occurrences(std::string_view entry, std::string_view batch_hook) const;

 private:
  void send_line(const wire::Message& m);
  // Next decoded message; nullopt when the channel broke (the probe is then inactive).
  std::optional<wire::Message> receive();
  void deactivate(std::string_view why);

  int fd_ = -1;
  int rank_ = 0;
  int world_size_ = 1;
  bool lost_ = false;  // it had a channel, and the channel broke
  wire::LineBuffer in_;
  std::set<std::pair<std::string, std::string>, std::less<>> armed_;
  std::map<std::pair<std::string, std::string>, int, std::less<>> counts_;
};

// CLOCK_MONOTONIC in nanoseconds: the clock of every timestamp on the wire.
std::int64_t monotonic_ns();

}  // namespace reclaim
