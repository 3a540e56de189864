#include "sys/cgroup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "sys/proc.hpp"

namespace reclaim::sys {

std::string parse_cgroup2_mount(std::string_view mounts) {
  while (!mounts.empty()) {
    auto nl = mounts.find('\n');
    std::string_view line = mounts.substr(0, nl);
    mounts = nl == std::string_view::npos ? std::string_view{} : mounts.substr(nl + 1);
    // "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0"
    auto a = line.find(' ');
    if (a == std::string_view::npos) continue;
    auto b = line.find(' ', a + 1);
    if (b == std::string_view::npos) continue;
    auto c = line.find(' ', b + 1);
    if (line.substr(b + 1, c == std::string_view::npos ? std::string_view::npos : c - b - 1) == "cgroup2")
      return std::string(line.substr(a + 1, b - a - 1));
  }
  return {};
}

std::string cgroup2_mount() {
  auto text = read_small_file("/proc/self/mounts");
  return text ? parse_cgroup2_mount(*text) : std::string{};
}

std::vector<int> cgroup_procs(const std::string& dir) {
  std::vector<int> out;
  auto text = read_small_file(dir + "/cgroup.procs");
  if (!text) return out;
  std::string_view t = *text;
  while (!t.empty()) {
    auto nl = t.find('\n');
    std::string_view num = t.substr(0, nl);
    t = nl == std::string_view::npos ? std::string_view{} : t.substr(nl + 1);
    int pid = 0;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), pid);
    if (ec == std::errc{} && pid > 0) out.push_back(pid);
  }
  return out;
}

std::error_code cgroup_kill(const std::string& dir) {
  int fd = ::open((dir + "/cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return {errno, std::system_category()};
  std::error_code ec;
  if (::write(fd, "1", 1) != 1) ec = {errno, std::system_category()};
  ::close(fd);
  return ec;
}

}  // namespace reclaim::sys
