// Reading the process table and the kernel's resource tables from /proc.
//
// Parsers are pure functions over the text the kernel prints, so they are
// tested on captured text (tests/data/proc/). Readers are thin wrappers that
// read one file and call a parser; they never throw and report an unreadable
// file as "nothing" (empty / nullopt), because a process may exit between
// listing it and reading it — that race is normal, not an error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace reclaim::sys {

// ---- processes -------------------------------------------------------------

// The fields of /proc/PID/stat that the harness uses.
struct ProcStat {
  int pid = 0;
  std::string comm;   // as the kernel prints it, without the parentheses
  char state = '?';   // R, S, D, Z, T, t, X, I, ...
  int ppid = 0;
  int pgrp = 0;
  int session = 0;
  std::uint64_t starttime = 0;  // clock ticks after boot; (pid, starttime) names a process uniquely
};

// Parses one /proc/PID/stat line. The comm may hold spaces and ')' (a process
// can name itself anything), so the comm ends at the LAST ')'. nullopt when
// the text is malformed or truncated before starttime.
std::optional<ProcStat> parse_stat(std::string_view text);

// NUL-separated argv -> arguments joined by one space (a trailing NUL is not
// an empty argument). Empty input (kernel threads, zombies) -> "".
std::string parse_cmdline(std::string_view raw);

// Whether a NUL-separated "K=V" list holds exactly `entry` ("K=V").
bool environ_contains(std::string_view raw_environ, std::string_view entry);

// Every process (thread-group leader) under proc_root, stat only. Processes
// that vanish while being scanned are skipped. Built for speed: it runs on
// every event of every scenario (opendir/readdir, one read() per stat file).
std::vector<ProcStat> scan_processes(const std::string& proc_root = "/proc");

// /proc/PID/stat of one process; nullopt when it does not exist (any more).
std::optional<ProcStat> read_stat(int pid);

// /proc/PID/cmdline, space-joined; nullopt when unreadable.
std::optional<std::string> read_cmdline(int pid);

// Whether /proc/PID/environ holds `entry` exactly. nullopt when unreadable:
// the process is gone, is a kernel thread (ESRCH) or is not ours (EACCES).
// A zombie has no environment any more: false.
std::optional<bool> process_environ_contains(int pid, std::string_view entry);

// Every descendant of `root` in `table` (not root itself), following ppid,
// in breadth-first order. Orphans re-parented to a subreaper `root` count as
// its descendants; orphans re-parented elsewhere (pid 1) do not.
std::vector<int> descendants(const std::vector<ProcStat>& table, int root);

// ---- file descriptors --------------------------------------------------------

struct FdEntry {
  int fd = -1;
  std::string target;  // readlink of /proc/PID/fd/N: a path ("/tmp/x (deleted)"), "socket:[123]", "pipe:[45]", ...
};

// The open descriptors of pid, sorted by fd; empty when unreadable. When pid
// is the calling process, the descriptor used for the listing is left out.
std::vector<FdEntry> list_fds(int pid);

// ---- locks -------------------------------------------------------------------

struct LockEntry {
  int id = 0;              // ordinal in /proc/locks: NOT stable across reads
  std::string type;        // FLOCK, POSIX, OFDLCK, LEASE, DELEG
  std::string access;      // READ, WRITE (UNLCK for a breaking lease)
  int pid = 0;             // holder (or waiter); -1 for OFD locks, which belong to an open file, not a process
  std::string dev_inode;   // "fe:00:10952918" (major:minor in hex, inode in decimal)
  std::string range;       // "0 EOF", "0 9"
  bool waiter = false;     // a "->" line: a process blocked waiting for lock `id`
};

// Parses /proc/locks. Malformed lines are skipped.
std::vector<LockEntry> parse_locks(std::string_view text);
std::vector<LockEntry> read_locks();

// The device and inode a lock is on, as printed in /proc/locks.
struct DevInode {
  unsigned major = 0;
  unsigned minor = 0;
  std::uint64_t inode = 0;
  friend bool operator==(const DevInode&, const DevInode&) = default;
};
std::optional<DevInode> parse_dev_inode(std::string_view text);  // "fe:00:10952918"

// ---- System V IPC --------------------------------------------------------------

enum class SysvKind { shm, sem, msg };
std::string_view to_string(SysvKind k);  // "shm", "sem", "msg"

struct SysvObject {
  SysvKind kind = SysvKind::shm;
  long key = 0;            // IPC key (0 = IPC_PRIVATE); printed signed by the kernel
  long id = 0;             // shmid / semid / msqid
  int cpid = 0;            // creator pid: shm only, 0 for sem/msg (the kernel does not record it)
  std::uint64_t size = 0;  // shm: segment size in bytes; msg: bytes queued; sem: number of semaphores
  int uid = 0;
};

// Parses /proc/sysvipc/{shm,sem,msg}. Columns are located by the header line
// (which is therefore required), so kernels that add columns still parse.
std::vector<SysvObject> parse_sysvipc(SysvKind kind, std::string_view text);
std::vector<SysvObject> read_sysvipc();  // all three tables

// ---- time ----------------------------------------------------------------------

std::int64_t monotonic_ns();  // CLOCK_MONOTONIC, the clock of every timeline

// ---- small helpers shared by the readers -----------------------------------------

// The whole content of a (/proc) file; nullopt when it cannot be opened/read.
std::optional<std::string> read_small_file(const std::string& path);

}  // namespace reclaim::sys

namespace reclaim::sys {

// What a process does with each signal, from /proc/PID/status: bit (signo-1)
// of `ignored` / `caught` (SigIgn / SigCgt). A signal in neither set takes
// its default action.
struct SignalDispositions {
  std::uint64_t ignored = 0;
  std::uint64_t caught = 0;
  std::uint64_t blocked = 0;  // SigBlk of the main thread: such a signal waits
  bool takes_default(int signo) const {
    const std::uint64_t bit = std::uint64_t{1} << (signo - 1);
    return ((ignored | caught) & bit) == 0;
  }
  // Whether the signal, sent now, ends the process now (default action, not blocked).
  bool dies_now(int signo) const {
    const std::uint64_t bit = std::uint64_t{1} << (signo - 1);
    return takes_default(signo) && (blocked & bit) == 0;
  }
};
std::optional<SignalDispositions> parse_signal_dispositions(std::string_view status);
std::optional<SignalDispositions> read_signal_dispositions(int pid);

}  // namespace reclaim::sys

namespace reclaim::sys {

// The children of `pid` (zombies included), from /proc/PID/task/*/children
// when the kernel has it (CONFIG_PROC_CHILDREN) — a few small reads instead
// of a scan of every process — else from scan_processes().
std::vector<ProcStat> children_of(int pid);

}  // namespace reclaim::sys

namespace reclaim::sys {

// The locks on the files `pid` has open, from the "lock:" lines of
// /proc/PID/fdinfo/N — a few small reads, where the machine-wide /proc/locks
// can take milliseconds to read on a busy machine. The lines name every
// lock on that file (other holders included); each comes with the fd it was
// seen on.
struct FdLock {
  FdEntry fd;
  LockEntry lock;
};
std::vector<FdLock> locks_on_fds(int pid, const std::vector<FdEntry>& fds);
// The "lock:" lines of one fdinfo text, parsed.
std::vector<LockEntry> parse_fdinfo_locks(std::string_view fdinfo);

}  // namespace reclaim::sys
