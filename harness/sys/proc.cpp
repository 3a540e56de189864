#include "sys/proc.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <unordered_map>
#include <unordered_set>

namespace reclaim::sys {
namespace {

// Splits on runs of spaces/tabs.
std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < s.size() && s[j] != ' ' && s[j] != '\t') ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

template <class T>
bool to_number(std::string_view s, T& out, int base = 10) {
  if (s.empty()) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc{} && ptr == s.data() + s.size();
}

// Reads the whole file at `path` with plain read(): /proc files report size
// 0 in stat, so we read until EOF instead of trusting it.
std::optional<std::string> read_all(int dirfd, const char* path) {
  int fd = ::openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

bool all_digits(const char* s) {
  if (*s == '\0') return false;
  for (; *s; ++s)
    if (*s < '0' || *s > '9') return false;
  return true;
}

}  // namespace

std::optional<ProcStat> parse_stat(std::string_view text) {
  // "PID (COMM) S PPID PGRP SESSION TTY TPGID FLAGS MINFLT CMINFLT MAJFLT
  //  CMAJFLT UTIME STIME CUTIME CSTIME PRIO NICE THREADS ITREAL STARTTIME ..."
  // The comm is free text: only the last ')' reliably ends it.
  auto open = text.find('(');
  auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;
  ProcStat st;
  auto pid_text = text.substr(0, open);
  while (!pid_text.empty() && pid_text.back() == ' ') pid_text.remove_suffix(1);
  if (!to_number(pid_text, st.pid)) return std::nullopt;
  st.comm = std::string(text.substr(open + 1, close - open - 1));
  auto rest = text.substr(close + 1);
  while (!rest.empty() && (rest.back() == '\n' || rest.back() == '\0')) rest.remove_suffix(1);
  auto f = split_ws(rest);
  // f[0] state, f[1] ppid, f[2] pgrp, f[3] session, ..., f[19] starttime.
  constexpr std::size_t kStartTime = 19;
  if (f.size() <= kStartTime || f[0].size() != 1) return std::nullopt;
  st.state = f[0][0];
  if (!to_number(f[1], st.ppid) || !to_number(f[2], st.pgrp) || !to_number(f[3], st.session) ||
      !to_number(f[kStartTime], st.starttime))
    return std::nullopt;
  return st;
}

std::string parse_cmdline(std::string_view raw) {
  while (!raw.empty() && raw.back() == '\0') raw.remove_suffix(1);
  std::string out(raw);
  std::replace(out.begin(), out.end(), '\0', ' ');
  return out;
}

bool environ_contains(std::string_view raw_environ, std::string_view entry) {
  if (entry.empty()) return false;
  std::size_t i = 0;
  while (i < raw_environ.size()) {
    auto end = raw_environ.find('\0', i);
    if (end == std::string_view::npos) end = raw_environ.size();
    if (raw_environ.substr(i, end - i) == entry) return true;
    i = end + 1;
  }
  return false;
}

std::vector<ProcStat> scan_processes(const std::string& proc_root) {
  std::vector<ProcStat> out;
  int root_fd = ::open(proc_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) return out;
  DIR* dir = ::fdopendir(::dup(root_fd));
  if (dir == nullptr) {
    ::close(root_fd);
    return out;
  }
  out.reserve(256);
  // One openat+read per process, relative to the /proc fd: no path building
  // through iostreams, no allocation beyond the parsed comm.
  char path[64];
  char buf[1024];  // a stat line is ~350 bytes; the comm is at most 64
  while (dirent* e = ::readdir(dir)) {
    if (!all_digits(e->d_name)) continue;
    std::size_t len = std::char_traits<char>::length(e->d_name);
    if (len + sizeof "/stat" > sizeof path) continue;
    std::copy_n(e->d_name, len, path);
    std::copy_n("/stat", sizeof "/stat", path + len);
    int fd = ::openat(root_fd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;  // exited since readdir
    ssize_t n;
    do n = ::read(fd, buf, sizeof buf); while (n < 0 && errno == EINTR);
    ::close(fd);
    if (n <= 0) continue;
    if (auto st = parse_stat(std::string_view(buf, static_cast<std::size_t>(n)))) out.push_back(std::move(*st));
  }
  ::closedir(dir);
  ::close(root_fd);
  return out;
}

std::optional<std::string> read_small_file(const std::string& path) { return read_all(AT_FDCWD, path.c_str()); }

std::optional<ProcStat> read_stat(int pid) {
  auto text = read_small_file("/proc/" + std::to_string(pid) + "/stat");
  if (!text) return std::nullopt;
  return parse_stat(*text);
}

std::optional<std::string> read_cmdline(int pid) {
  auto raw = read_small_file("/proc/" + std::to_string(pid) + "/cmdline");
  if (!raw) return std::nullopt;
  return parse_cmdline(*raw);
}

std::optional<bool> process_environ_contains(int pid, std::string_view entry) {
  auto raw = read_small_file("/proc/" + std::to_string(pid) + "/environ");
  if (!raw) return std::nullopt;
  return environ_contains(*raw, entry);
}

std::vector<int> descendants(const std::vector<ProcStat>& table, int root) {
  std::unordered_multimap<int, int> children;
  children.reserve(table.size());
  for (const auto& p : table)
    if (p.pid != p.ppid) children.emplace(p.ppid, p.pid);
  std::vector<int> out;
  std::unordered_set<int> visited{root};  // guards against a malformed (cyclic) table
  std::vector<int> frontier{root};
  while (!frontier.empty()) {
    std::vector<int> next;
    for (int parent : frontier) {
      auto [b, e] = children.equal_range(parent);
      for (auto it = b; it != e; ++it)
        if (visited.insert(it->second).second) next.push_back(it->second);
    }
    std::sort(next.begin(), next.end());
    out.insert(out.end(), next.begin(), next.end());
    frontier = std::move(next);
  }
  return out;
}

std::vector<FdEntry> list_fds(int pid) {
  std::vector<FdEntry> out;
  std::string dir_path = "/proc/" + std::to_string(pid) + "/fd";
  DIR* dir = ::opendir(dir_path.c_str());
  if (dir == nullptr) return out;
  // When listing ourselves, the directory stream's own descriptor shows up.
  const int own = pid == ::getpid() ? ::dirfd(dir) : -1;
  char target[PATH_MAX];
  while (dirent* e = ::readdir(dir)) {
    if (!all_digits(e->d_name)) continue;
    int fd = 0;
    if (!to_number(std::string_view(e->d_name), fd) || fd == own) continue;
    ssize_t n = ::readlinkat(::dirfd(dir), e->d_name, target, sizeof target);
    if (n < 0) continue;  // closed since readdir
    out.push_back({fd, std::string(target, static_cast<std::size_t>(n))});
  }
  ::closedir(dir);
  std::sort(out.begin(), out.end(), [](const FdEntry& a, const FdEntry& b) { return a.fd < b.fd; });
  return out;
}

std::vector<LockEntry> parse_locks(std::string_view text) {
  // "3: FLOCK  ADVISORY  WRITE 4269 fe:00:10952918 0 EOF"
  // "3: -> FLOCK  ADVISORY  WRITE 4311 fe:00:10952918 0 EOF"
  // The second column (ADVISORY/MANDATORY, or ACTIVE/BREAKING for leases) is
  // not kept: the harness cares about who holds what, not how it is enforced.
  std::vector<LockEntry> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto f = split_ws(line);
    if (f.empty() || f[0].back() != ':') continue;
    LockEntry lock;
    if (!to_number(f[0].substr(0, f[0].size() - 1), lock.id)) continue;
    std::size_t i = 1;
    if (i < f.size() && f[i] == "->") {
      lock.waiter = true;
      ++i;
    }
    if (f.size() < i + 7) continue;
    lock.type = std::string(f[i]);
    lock.access = std::string(f[i + 2]);
    if (!to_number(f[i + 3], lock.pid)) continue;
    lock.dev_inode = std::string(f[i + 4]);
    lock.range = std::string(f[i + 5]) + " " + std::string(f[i + 6]);
    out.push_back(std::move(lock));
  }
  return out;
}

std::vector<LockEntry> read_locks() {
  auto text = read_small_file("/proc/locks");
  return text ? parse_locks(*text) : std::vector<LockEntry>{};
}

std::optional<DevInode> parse_dev_inode(std::string_view text) {
  auto c1 = text.find(':');
  if (c1 == std::string_view::npos) return std::nullopt;
  auto c2 = text.find(':', c1 + 1);
  if (c2 == std::string_view::npos) return std::nullopt;
  DevInode d;
  if (!to_number(text.substr(0, c1), d.major, 16) || !to_number(text.substr(c1 + 1, c2 - c1 - 1), d.minor, 16) ||
      !to_number(text.substr(c2 + 1), d.inode))
    return std::nullopt;
  return d;
}

std::string_view to_string(SysvKind k) {
  switch (k) {
    case SysvKind::shm: return "shm";
    case SysvKind::sem: return "sem";
    case SysvKind::msg: return "msg";
  }
  return "?";
}

std::vector<SysvObject> parse_sysvipc(SysvKind kind, std::string_view text) {
  std::vector<SysvObject> out;
  auto nl = text.find('\n');
  if (nl == std::string_view::npos) return out;
  auto header = split_ws(text.substr(0, nl));
  text = text.substr(nl + 1);
  auto column = [&](std::string_view name) -> int {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return static_cast<int>(i);
    return -1;
  };
  const std::string_view id_name = kind == SysvKind::shm ? "shmid" : kind == SysvKind::sem ? "semid" : "msqid";
  const std::string_view size_name = kind == SysvKind::shm ? "size" : kind == SysvKind::sem ? "nsems" : "cbytes";
  const int c_key = column("key"), c_id = column(id_name), c_size = column(size_name);
  const int c_cpid = kind == SysvKind::shm ? column("cpid") : -1;
  const int c_uid = column("uid");
  if (c_key < 0 || c_id < 0) return out;  // not the table we were told it is
  while (!text.empty()) {
    nl = text.find('\n');
    auto line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    auto f = split_ws(line);
    if (f.size() < header.size()) continue;
    SysvObject o;
    o.kind = kind;
    if (!to_number(f[static_cast<std::size_t>(c_key)], o.key) || !to_number(f[static_cast<std::size_t>(c_id)], o.id))
      continue;
    if (c_size >= 0) to_number(f[static_cast<std::size_t>(c_size)], o.size);
    if (c_cpid >= 0) to_number(f[static_cast<std::size_t>(c_cpid)], o.cpid);
    if (c_uid >= 0) to_number(f[static_cast<std::size_t>(c_uid)], o.uid);
    out.push_back(o);
  }
  return out;
}

std::vector<SysvObject> read_sysvipc() {
  std::vector<SysvObject> out;
  for (auto [kind, path] : {std::pair{SysvKind::shm, "/proc/sysvipc/shm"}, std::pair{SysvKind::sem, "/proc/sysvipc/sem"},
                            std::pair{SysvKind::msg, "/proc/sysvipc/msg"}}) {
    if (auto text = read_small_file(path)) {
      auto part = parse_sysvipc(kind, *text);
      out.insert(out.end(), part.begin(), part.end());
    }
  }
  return out;
}

std::int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace reclaim::sys

namespace reclaim::sys {

std::optional<SignalDispositions> parse_signal_dispositions(std::string_view status) {
  SignalDispositions d;
  int found = 0;
  while (!status.empty()) {
    auto nl = status.find('\n');
    std::string_view line = status.substr(0, nl);
    status = nl == std::string_view::npos ? std::string_view{} : status.substr(nl + 1);
    std::uint64_t* target = nullptr;
    if (line.substr(0, 7) == "SigIgn:") target = &d.ignored;
    else if (line.substr(0, 7) == "SigCgt:") target = &d.caught;
    else if (line.substr(0, 7) == "SigBlk:") target = &d.blocked;
    if (!target) continue;
    const bool required = target != &d.blocked;
    std::string_view hex = line.substr(7);
    while (!hex.empty() && (hex.front() == ' ' || hex.front() == '\t')) hex.remove_prefix(1);
    auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), *target, 16);
    if (ec != std::errc{} || p == hex.data()) return std::nullopt;
    if (required) ++found;
  }
  if (found != 2) return std::nullopt;
  return d;
}

std::optional<SignalDispositions> read_signal_dispositions(int pid) {
  auto text = read_small_file("/proc/" + std::to_string(pid) + "/status");
  if (!text) return std::nullopt;
  return parse_signal_dispositions(*text);
}

}  // namespace reclaim::sys

namespace reclaim::sys {

std::vector<ProcStat> children_of(int pid) {
  const std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
  std::vector<ProcStat> out;
  DIR* d = ::opendir(task_dir.c_str());
  if (!d) return out;
  bool supported = true;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    auto text = read_small_file(task_dir + "/" + e->d_name + "/children");
    if (!text) {
      supported = false;
      break;
    }
    std::string_view t = *text;
    while (!t.empty()) {
      auto sp = t.find(' ');
      std::string_view num = t.substr(0, sp);
      t = sp == std::string_view::npos ? std::string_view{} : t.substr(sp + 1);
      int child = 0;
      auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), child);
      if (ec != std::errc{} || child <= 0) continue;
      if (auto st = read_stat(child); st && st->ppid == pid) out.push_back(*st);
    }
  }
  ::closedir(d);
  if (supported) return out;
  out.clear();
  for (auto& p : scan_processes())
    if (p.ppid == pid) out.push_back(p);
  return out;
}

}  // namespace reclaim::sys

namespace reclaim::sys {

std::vector<LockEntry> parse_fdinfo_locks(std::string_view fdinfo) {
  std::string lines;
  while (!fdinfo.empty()) {
    auto nl = fdinfo.find('\n');
    std::string_view line = fdinfo.substr(0, nl);
    fdinfo = nl == std::string_view::npos ? std::string_view{} : fdinfo.substr(nl + 1);
    if (line.substr(0, 5) != "lock:") continue;
    line.remove_prefix(5);
    while (!line.empty() && (line.front() == '\t' || line.front() == ' ')) line.remove_prefix(1);
    lines.append(line);
    lines.push_back('\n');
  }
  return parse_locks(lines);
}

std::vector<FdLock> locks_on_fds(int pid, const std::vector<FdEntry>& fds) {
  std::vector<FdLock> out;
  const std::string dir = "/proc/" + std::to_string(pid) + "/fdinfo/";
  for (const auto& f : fds) {
    auto text = read_small_file(dir + std::to_string(f.fd));
    if (!text) continue;
    for (auto& l : parse_fdinfo_locks(*text)) out.push_back({f, std::move(l)});
  }
  return out;
}

}  // namespace reclaim::sys
