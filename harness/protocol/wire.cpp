#include "protocol/wire.hpp"

#include <charconv>
#include <fmt/format.h>
#include <vector>

namespace reclaim::wire {

namespace {

template <class... F> struct Overload : F... { using F::operator()...; };
template <class... F> Overload(F...) -> Overload<F...>;

// Splits off the first `n` space-separated fields; the remainder (possibly
// empty, possibly containing spaces) is returned in `rest`.
std::vector<std::string_view> fields(std::string_view line, std::size_t n, std::string_view* rest) {
  std::vector<std::string_view> out;
  while (out.size() < n) {
    if (line.empty()) break;
    auto sp = line.find(' ');
    out.push_back(line.substr(0, sp));
    line = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
  }
  if (rest) *rest = line;
  return out;
}

template <class T> bool to_int(std::string_view s, T& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

}  // namespace

std::string encode(const Message& m) {
  return std::visit(
      Overload{
          [](const Hello& h) { return fmt::format("HELLO {} {} {} {}\n", h.version, h.pid, h.rank, h.probe); },
          [](const HookEntered& h) { return fmt::format("HOOK {} {}\n", h.name, h.t_ns); },
          [](const At& a) { return fmt::format("AT {} {}\n", a.entry, a.point); },
          [](const AuditRequest& a) { return fmt::format("AUDIT {}\n", a.label); },
          [](const Event& e) { return fmt::format("EVENT {} {} {}\n", e.name, e.t_ns, e.text); },
          [](const Bye& b) { return fmt::format("BYE {}\n", b.code); },
          [](const Barrier& b) { return fmt::format("BARRIER {}\n", b.name); },
          [](const Abort& a) { return fmt::format("ABORT {}\n", a.text); },
          [](const Welcome& w) { return fmt::format("WELCOME {}\n", w.version); },
          [](const Arm& a) { return fmt::format("ARM {} {}\n", a.entry, a.point); },
          [](const Go&) { return std::string("GO\n"); },
          [](const Raise& r) { return fmt::format("RAISE {} {}\n", r.type, r.text); },
          [](const Exit& e) { return fmt::format("EXIT {}\n", e.code); },
          [](const Hang&) { return std::string("HANG\n"); },
          [](const Audited& a) { return fmt::format("AUDITED {}\n", a.leaks); },
          [](const Error& e) { return fmt::format("ERR {}\n", e.text); },
          [](const Unknown& u) { return u.line + "\n"; },
      },
      m);
}

Message decode(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const Unknown malformed{std::string(line), true};
  std::string_view rest;
  auto f = fields(line, 1, &rest);
  if (f.empty()) return malformed;
  std::string_view type = f[0];

  if (type == "HELLO") {
    auto a = fields(rest, 4, &rest);
    Hello h;
    if (a.size() != 4 || !rest.empty() || !to_int(a[1], h.pid) || !to_int(a[2], h.rank)) return malformed;
    h.version = a[0];
    h.probe = a[3];
    return h;
  }
  if (type == "HOOK") {
    auto a = fields(rest, 2, &rest);
    HookEntered h;
    if (a.size() != 2 || !rest.empty() || !to_int(a[1], h.t_ns)) return malformed;
    h.name = a[0];
    return h;
  }
  if (type == "AT" || type == "ARM") {
    auto a = fields(rest, 2, &rest);
    if (a.size() != 2 || !rest.empty()) return malformed;
    if (type == "AT") return At{std::string(a[0]), std::string(a[1])};
    return Arm{std::string(a[0]), std::string(a[1])};
  }
  if (type == "AUDIT" || type == "BARRIER") {
    auto a = fields(rest, 1, &rest);
    if (a.size() != 1 || !rest.empty()) return malformed;
    if (type == "BARRIER") return Barrier{std::string(a[0])};
    return AuditRequest{std::string(a[0])};
  }
  if (type == "EVENT") {
    auto a = fields(rest, 2, &rest);
    Event e;
    if (a.size() != 2 || !to_int(a[1], e.t_ns)) return malformed;
    e.name = a[0];
    e.text = rest;
    return e;
  }
  if (type == "BYE" || type == "EXIT" || type == "AUDITED") {
    auto a = fields(rest, 1, &rest);
    int n = 0;
    if (a.size() != 1 || !rest.empty() || !to_int(a[0], n)) return malformed;
    if (type == "BYE") return Bye{n};
    if (type == "EXIT") return Exit{n};
    return Audited{n};
  }
  if (type == "WELCOME") {
    auto a = fields(rest, 1, &rest);
    if (a.size() != 1 || !rest.empty()) return malformed;
    return Welcome{std::string(a[0])};
  }
  if (type == "GO" || type == "HANG") {
    if (!rest.empty()) return malformed;
    if (type == "GO") return Go{};
    return Hang{};
  }
  if (type == "RAISE") {
    auto a = fields(rest, 1, &rest);
    if (a.size() != 1) return malformed;
    return Raise{std::string(a[0]), std::string(rest)};
  }
  if (type == "ERR") return Error{std::string(rest)};
  if (type == "ABORT") return Abort{std::string(rest)};
  return Unknown{std::string(line), false};
}

std::optional<std::string> LineBuffer::next() {
  auto nl = buf_.find('\n');
  if (nl == std::string::npos) {
    if (buf_.size() > kMaxLine) overflow_ = true;
    return std::nullopt;
  }
  if (nl + 1 > kMaxLine) overflow_ = true;
  std::string line = buf_.substr(0, nl);
  buf_.erase(0, nl + 1);
  return line;
}

}  // namespace reclaim::wire
