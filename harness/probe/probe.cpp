#include "probe/probe.hpp"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

namespace reclaim {

namespace {

// The control descriptor of the process's active probe, for the fork handler.
// A child forked without exec (a loader worker, a janitor) must not talk on
// the rank's channel, nor keep it open after the rank died, so it is closed in
// every child. Plain int: the handler runs in the child right after fork.
int g_control_fd = -1;
bool g_atfork_installed = false;

extern "C" void close_control_in_child() {
  if (g_control_fd >= 0) {
    ::close(g_control_fd);
    g_control_fd = -1;
  }
}

void register_control_fd(int fd) {
  if (!g_atfork_installed) {
    ::pthread_atfork(nullptr, nullptr, &close_control_in_child);
    g_atfork_installed = true;
  }
  g_control_fd = fd;
}

void unregister_control_fd(int fd) {
  if (g_control_fd == fd) g_control_fd = -1;
}

bool is_batch_hook(std::string_view hook) {
  constexpr std::string_view kSuffix = "_batch";
  return hook.size() > kSuffix.size() && hook.substr(hook.size() - kSuffix.size()) == kSuffix;
}

}  // namespace

std::int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Probe::Probe(int fd, int rank) : fd_(fd), rank_(rank) {
  if (fd_ < 0) return;
  int flags = ::fcntl(fd_, F_GETFD);
  if (flags < 0) {
    std::fprintf(stderr, "reclaim probe: control fd %d is not open; probe inactive\n", fd_);
    fd_ = -1;
    return;
  }
  ::fcntl(fd_, F_SETFD, flags | FD_CLOEXEC);
  register_control_fd(fd_);
}

Probe Probe::from_environment() {
  const char* control = std::getenv("RECLAIM_CONTROL");
  if (control == nullptr || *control == '\0') return Probe();
  std::string_view spec(control);
  int fd = -1;
  if (spec.substr(0, 3) == "fd:") {
    auto digits = spec.substr(3);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), fd);
    if (ec != std::errc{} || p != digits.data() + digits.size() || fd < 0) fd = -1;
  }
  if (fd < 0) {
    std::fprintf(stderr, "reclaim probe: unsupported RECLAIM_CONTROL '%s'; probe inactive\n", control);
    return Probe();
  }
  int rank = 0;
  if (const char* r = std::getenv("RECLAIM_RANK")) {
    std::string_view s(r);
    std::from_chars(s.data(), s.data() + s.size(), rank);
  }
  return Probe(fd, rank);
}

Probe::Probe(Probe&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      rank_(other.rank_),
      in_(std::move(other.in_)),
      armed_(std::move(other.armed_)),
      counts_(std::move(other.counts_)) {}

Probe& Probe::operator=(Probe&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) {
      unregister_control_fd(fd_);
      ::close(fd_);
    }
    fd_ = std::exchange(other.fd_, -1);
    rank_ = other.rank_;
    in_ = std::move(other.in_);
    armed_ = std::move(other.armed_);
    counts_ = std::move(other.counts_);
  }
  return *this;
}

Probe::~Probe() {
  if (fd_ >= 0) {
    unregister_control_fd(fd_);
    ::close(fd_);
  }
}

void Probe::deactivate(std::string_view why) {
  if (fd_ < 0) return;
  std::fprintf(stderr, "reclaim probe: %.*s; probe inactive, continuing\n",
               static_cast<int>(why.size()), why.data());
  unregister_control_fd(fd_);
  ::close(fd_);
  fd_ = -1;
}

void Probe::send_line(const wire::Message& m) {
  if (fd_ < 0) return;
  std::string line = wire::encode(m);
  std::size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::send(fd_, line.data() + done, line.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      deactivate(std::string("control channel send failed: ") + std::strerror(errno));
      return;
    }
    done += static_cast<std::size_t>(n);
  }
}

std::optional<wire::Message> Probe::receive() {
  while (fd_ >= 0) {
    if (auto line = in_.next()) {
      if (in_.overflowed()) {
        deactivate("control line longer than 4096 bytes");
        return std::nullopt;
      }
      return wire::decode(*line);
    }
    if (in_.overflowed()) {
      deactivate("control line longer than 4096 bytes");
      return std::nullopt;
    }
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;  // a signal the harness sent us; GO follows
    if (n == 0) {
      deactivate("control channel closed by the harness");
      return std::nullopt;
    }
    if (n < 0) {
      deactivate(std::string("control channel read failed: ") + std::strerror(errno));
      return std::nullopt;
    }
    in_.feed(std::string_view(buf, static_cast<std::size_t>(n)));
  }
  return std::nullopt;
}

void Probe::hello() {
  if (fd_ < 0) return;
  send_line(wire::Hello{std::string(wire::kVersion), static_cast<long>(::getpid()), rank_, "cpp"});
  bool welcomed = false;
  while (auto m = receive()) {
    if (auto* w = std::get_if<wire::Welcome>(&*m)) {
      if (w->version != wire::kVersion) {
        deactivate("harness speaks " + w->version + ", not reclaim/1");
        return;
      }
      welcomed = true;
    } else if (auto* a = std::get_if<wire::Arm>(&*m)) {
      armed_.emplace(a->entry, a->point);
    } else if (std::holds_alternative<wire::Go>(*m)) {
      if (!welcomed) std::fprintf(stderr, "reclaim probe: GO before WELCOME; continuing\n");
      return;
    } else if (auto* e = std::get_if<wire::Error>(&*m)) {
      deactivate("harness error: " + e->text);
      return;
    }
    // Anything else (unknown types) is ignored, as the protocol requires.
  }
}

void Probe::hook(std::string_view name) {
  if (fd_ < 0) return;
  send_line(wire::HookEntered{std::string(name), monotonic_ns()});
}

bool Probe::armed(std::string_view entry, std::string_view point) const {
  return armed_.find(std::pair<std::string, std::string>(entry, point)) != armed_.end();
}

int Probe::occurrences(std::string_view entry, std::string_view batch_hook) const {
  auto it = counts_.find(std::pair<std::string, std::string>(entry, batch_hook));
  return it == counts_.end() ? 0 : it->second;
}

Directive Probe::at(std::string_view entry, std::string_view hook) {
  // Counting happens even when inactive or unarmed, so occurrences() is
  // truthful; it is the only work an unarmed batch does.
  std::string point(hook);
  if (is_batch_hook(hook)) {
    std::pair<std::string, std::string> key(entry, hook);
    int k = ++counts_[key];
    point += '#';
    point += std::to_string(k);
  }
  if (fd_ < 0 || armed_.empty() || !armed(entry, point)) return Directive{};

  send_line(wire::At{std::string(entry), point});
  while (auto m = receive()) {
    if (std::holds_alternative<wire::Go>(*m)) return Directive{};
    if (auto* r = std::get_if<wire::Raise>(&*m))
      return Directive{DirectiveKind::raise, r->type, r->text, 0};
    if (auto* x = std::get_if<wire::Exit>(&*m)) return Directive{DirectiveKind::exit, {}, {}, x->code};
    if (std::holds_alternative<wire::Hang>(*m)) return Directive{DirectiveKind::hang, {}, {}, 0};
    if (auto* e = std::get_if<wire::Error>(&*m)) {
      deactivate("harness error: " + e->text);
      break;
    }
  }
  return Directive{};
}

void Probe::audit(std::string_view label) {
  if (fd_ < 0) return;
  send_line(wire::AuditRequest{std::string(label)});
  while (auto m = receive()) {
    if (std::holds_alternative<wire::Audited>(*m)) return;
    if (auto* e = std::get_if<wire::Error>(&*m)) {
      deactivate("harness error: " + e->text);
      return;
    }
  }
}

void Probe::event(std::string_view name, std::string_view text) {
  if (fd_ < 0) return;
  std::string clean(text);
  for (char& c : clean)
    if (c == '\n' || c == '\r') c = ' ';
  // "EVENT " + name + " " + 20 digits + " " + text + "\n" must fit in one line.
  if (name.size() + 64 > wire::kMaxLine) return;
  std::size_t room = wire::kMaxLine - 32 - name.size();
  if (clean.size() > room) clean.resize(room);
  send_line(wire::Event{std::string(name), monotonic_ns(), clean});
}

void Probe::bye(int code) {
  if (fd_ < 0) return;
  send_line(wire::Bye{code});
}

}  // namespace reclaim
