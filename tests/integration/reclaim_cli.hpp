// Runs the reclaim binary as a user would and collects what it printed.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace reclaim::testing {

struct CliResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out, err;
};

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json load_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

// The source tree and the reference fixture, as the build placed them.
inline const std::string kSource = RECLAIM_SOURCE_DIR;
inline const std::string kWorkerPool = RECLAIM_WORKER_POOL;

// A private temporary directory, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* t = std::getenv("TMPDIR");
    std::string templ = std::string(t && *t ? t : "/tmp") + "/reclaim-test.XXXXXX";
    path_ = ::mkdtemp(templ.data()) ? templ : "";
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Starts reclaim with `args`, output to files; `on_line` (optional) sees each
// stdout line as it arrives and may return true to interrupt the run with
// `interrupt_signal`. Waits for the exit with a pidfd (no sleeps).
inline CliResult run_reclaim(const std::vector<std::string>& args, const std::vector<std::string>& env_extra = {},
                             std::function<bool(const std::string&)> on_line = {}, int interrupt_signal = SIGINT) {
  TempDir dir;
  std::string err_path = dir.path() + "/err";
  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return {};
  std::fflush(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(err, 2);
    for (const auto& e : env_extra) ::putenv(const_cast<char*>(e.c_str()));
    ::setenv("NO_COLOR", "1", 1);
    std::vector<char*> argv{const_cast<char*>(RECLAIM_BIN)};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(RECLAIM_BIN, argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  CliResult r;
  std::string pending;
  bool interrupted = false;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.out.append(buf, static_cast<std::size_t>(n));
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (on_line && !interrupted && on_line(line)) {
        ::syscall(SYS_pidfd_send_signal, pidfd, interrupt_signal, nullptr, 0);
        interrupted = true;
      }
    }
  }
  ::close(out_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(pidfd);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = read_file(err_path);
  return r;
}

}  // namespace reclaim::testing
