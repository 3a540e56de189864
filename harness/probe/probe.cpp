#include "probe/probe.hpp"

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <initializer_list>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <pthread.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
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

Probe::Probe(int fd, int rank, int world_size) : fd_(fd), rank_(rank), world_size_(world_size < 1 ? 1 : world_size) {
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

namespace {

int env_int(std::initializer_list<const char*> names, int fallback) {
  for (const char* name : names) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') continue;
    int out = 0;
    std::string_view s(v);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    if (ec == std::errc{} && p == s.data() + s.size()) return out;
  }
  return fallback;
}

// Connects to "unix:PATH", "unix:@NAME" or "tcp:HOST:PORT"; -1 with errno set.
int connect_to(std::string_view spec) {
  if (spec.substr(0, 5) == "unix:") {
    std::string_view path = spec.substr(5);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof addr.sun_path) {
      errno = ENAMETOOLONG;
      return -1;
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
    else ++len;
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      int e = errno;
      ::close(fd);
      errno = e;
      return -1;
    }
    return fd;
  }
  if (spec.substr(0, 4) == "tcp:") {
    std::string_view hp = spec.substr(4);
    auto colon = hp.rfind(':');
    if (colon == std::string_view::npos) {
      errno = EINVAL;
      return -1;
    }
    std::string host(hp.substr(0, colon)), port(hp.substr(colon + 1));
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) {
      errno = EHOSTUNREACH;
      return -1;
    }
    int fd = -1;
    for (addrinfo* a = res; a; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
      ::close(fd);
      fd = -1;
    }
    ::freeaddrinfo(res);
    if (fd >= 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);  // one line per round trip
    }
    return fd;
  }
  errno = EINVAL;
  return -1;
}

}  // namespace

Probe Probe::from_environment() {
  const char* control = std::getenv("RECLAIM_CONTROL");
  if (control == nullptr || *control == '\0') return Probe();
  std::string_view spec(control);
  int fd = -1;
  if (spec.substr(0, 3) == "fd:") {
    auto digits = spec.substr(3);
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), fd);
    if (ec != std::errc{} || p != digits.data() + digits.size() || fd < 0) fd = -1;
    if (fd < 0) {
      std::fprintf(stderr, "reclaim probe: unsupported RECLAIM_CONTROL '%s'; probe inactive\n", control);
      return Probe();
    }
  } else if (spec.substr(0, 5) == "unix:" || spec.substr(0, 4) == "tcp:") {
    fd = connect_to(spec);
    if (fd < 0) {
      std::fprintf(stderr, "reclaim probe: cannot reach the harness at '%s': %s; probe inactive\n", control,
                   std::strerror(errno));
      return Probe();
    }
  } else {
    std::fprintf(stderr, "reclaim probe: unsupported RECLAIM_CONTROL '%s' (fd:N, unix:PATH, tcp:HOST:PORT); probe inactive\n",
                 control);
    return Probe();
  }
  int rank = env_int({"RECLAIM_RANK", "RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK"}, 0);
  int world = env_int({"RECLAIM_WORLD_SIZE", "WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}, 1);
  return Probe(fd, rank, world);
}

Probe::Probe(Probe&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      rank_(other.rank_),
      world_size_(other.world_size_),
      lost_(other.lost_),
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
    world_size_ = other.world_size_;
    lost_ = other.lost_;
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
  lost_ = true;
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

BarrierResult Probe::barrier(std::string_view name) {
  if (world_size_ <= 1) return {};
  if (fd_ < 0) {
    if (lost_) return {false, "the control channel to the harness is lost: this rank cannot take part in collectives"};
    return {};
  }
  // One word on the wire, as the other probes send it.
  std::string word(name.empty() ? std::string_view("collective") : name);
  for (char& c : word)
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') c = '_';
  send_line(wire::Barrier{word});
  while (auto m = receive()) {
    if (std::holds_alternative<wire::Go>(*m)) return {};
    if (auto* a = std::get_if<wire::Abort>(&*m)) return {false, a->text};
    if (auto* e = std::get_if<wire::Error>(&*m)) {
      deactivate("harness error: " + e->text);
      break;
    }
  }
  return {false, "the control channel to the harness is lost: this rank cannot take part in collectives"};
}

void Probe::bye(int code) {
  if (fd_ < 0) return;
  send_line(wire::Bye{code});
}

}  // namespace reclaim
