// The vocabulary of reclaim as values: entries, points, faults, scenarios,
// leaks, violations, timelines and verdicts. Everything else in the harness
// passes these around; nothing here touches the operating system.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace reclaim {

// ---- entries ---------------------------------------------------------------

// The trainer entry point, as in Lightning: trainer.fit / validate / test / predict.
enum class Entry { fit, validate, test, predict };

std::string_view to_string(Entry e);
std::optional<Entry> parse_entry(std::string_view s);
inline constexpr Entry kAllEntries[] = {Entry::fit, Entry::validate, Entry::test, Entry::predict};

// ---- points ----------------------------------------------------------------

// A hook or batch in the lifecycle where a fault can land.
enum class Hook {
  prepare_data,
  setup,
  train_dataloader,
  val_dataloader,
  test_dataloader,
  predict_dataloader,
  train_batch,
  val_batch,
  test_batch,
  predict_batch,
  state_dict,
  teardown,
  on_exception,
};

std::string_view to_string(Hook h);
std::optional<Hook> parse_hook(std::string_view s);
bool is_batch(Hook h);

// A point: a hook, and for batch hooks the 1-based occurrence within the run
// (`train_batch#2` is the second training batch the rank fetches).
struct Point {
  Hook hook = Hook::setup;
  int occurrence = 0;  // 0 for non-batch hooks, >= 1 for batches

  friend bool operator==(const Point&, const Point&) = default;
};

// "setup", "train_batch#2".
std::string to_string(const Point& p);
// Accepts "setup", "train_batch#2"; a batch hook without "#k" is rejected.
std::optional<Point> parse_point(std::string_view s);

// The hooks of an entry, in the order Lightning calls them. Batch hooks
// appear once; a suite expands them into occurrences.
//   fit:      prepare_data, setup, val_dataloader (sanity check), train_dataloader,
//             train_batch, val_batch, state_dict, teardown
//   validate: prepare_data, setup, val_dataloader, val_batch, teardown
//   test:     prepare_data, setup, test_dataloader, test_batch, teardown
//   predict:  prepare_data, setup, predict_dataloader, predict_batch, teardown
const std::vector<Hook>& hooks_of(Entry e);
bool hook_valid_for(Entry e, Hook h);

// ---- faults ----------------------------------------------------------------

enum class FaultKind {
  none,       // no fault: the success path
  exception,  // the rank raises an exception at the point
  signal,     // a signal sent through pidfds to a target
  // Rank failures (multi-rank scenarios; they also run with one rank):
  crash,       // SIGKILL to the failing rank
  exit,        // the failing rank leaves at once with exit code 1, running no cleanup
  hang,        // the failing rank stops at the point and never answers again
  disconnect,  // the failing rank's control channel drops (as a lost store connection)
};

enum class SignalTarget {
  rank,    // the rank process
  group,   // every process in the rank's process group (a terminal Ctrl-C, killpg)
  worker,  // one child process of the rank (a loader worker: the OOM killer)
};

struct Fault {
  FaultKind kind = FaultKind::none;
  int signo = 0;                            // for kind == signal
  SignalTarget target = SignalTarget::rank;  // for kind == signal

  friend bool operator==(const Fault&, const Fault&) = default;

  // Whether the rank can still run code after this fault: then the contract
  // "on_exception once, no teardown" applies. SIGKILL/SIGSEGV/SIGABRT to the
  // rank give it no chance; a killed worker surfaces as an exception.
  bool rank_can_react() const;
  bool is_failure() const { return kind != FaultKind::none; }
};

// Names: "none", "exception", "sigterm", "sigint", "sigkill", "sigsegv",
// "sigabrt", "sighup", "sigquit", "sigusr1", "sigusr2"; "pg-sigterm" targets the
// process group; "worker-sigkill" one worker; rank failures "crash", "exit",
// "hang", "disconnect".
std::string to_string(const Fault& f);
std::optional<Fault> parse_fault(std::string_view s);
// Signal names without target: "sigterm" -> SIGTERM. 0 when unknown.
int parse_signal(std::string_view s);
std::string signal_name(int signo);  // "SIGTERM"

// Whether a fault can land at a hook: worker faults only at batch points,
// where loader workers exist.
bool fault_valid_at(const Fault& f, Hook h);

// Whether a fault is a rank failure (crash, exit, hang, disconnect).
bool is_rank_failure(const Fault& f);

// ---- launchers ----------------------------------------------------------------

// What happens to the surviving ranks once one rank has failed.
enum class Launcher {
  torchrun,      // SIGTERM to each surviving rank's process group, shutdown_timeout, then SIGKILL
  lightning_ddp, // SIGKILL to every surviving rank (Lightning's ddp script launcher)
  none,          // nothing: survivors must notice on their own (abort or collective timeout)
  mpirun,        // the ranks are started by OpenMPI's mpirun, which handles a failure itself
};
std::string_view to_string(Launcher l);  // "torchrun", "lightning-ddp", "none", "mpirun"
std::optional<Launcher> parse_launcher(std::string_view s);

// ---- expectations ------------------------------------------------------------

// The hook contract a target promises. reclaim's own driver follows `lightning`.
enum class Contract {
  lightning,  // failure: on_exception exactly once, no teardown; success: teardown once, no on_exception
  none,       // do not check hooks (programs that report no hooks)
};
std::string_view to_string(Contract c);
std::optional<Contract> parse_contract(std::string_view s);

struct Expectations {
  std::chrono::milliseconds grace{1000};    // after the rank exits, leftovers may take this long
  std::chrono::milliseconds timeout{10000}; // the rank must exit within this after it started
  std::chrono::milliseconds kill_after{1000};  // SIGTERM -> SIGKILL escalation at the deadline
  Contract contract = Contract::lightning;
  // Multi-rank: a collective where some rank has not arrived this long after
  // the first one did declares the missing ranks hung (NCCL's and gloo's
  // collective timeout, short enough for a test suite).
  std::chrono::milliseconds collective_timeout{2000};
  Launcher launcher = Launcher::torchrun;
  // torchrun's TORCH_ELASTIC_SHUTDOWN_TIMEOUT: SIGTERM -> SIGKILL for survivors.
  std::chrono::milliseconds shutdown_timeout{30000};
};

// ---- scenarios -------------------------------------------------------------

struct Target {
  std::vector<std::string> argv;  // argv[0] is resolved against PATH by the supervisor
};

struct Scenario {
  Entry entry = Entry::fit;
  std::optional<Point> point;  // empty iff fault.kind == none
  Fault fault;
  int world_size = 1;
  int rank = 0;  // the failing rank
  Expectations expect;
  Target target;
  int repeat_index = 0;  // 0-based, for --repeat

  // Stable id: "fit/none", "fit/setup/sigterm", "fit/train_batch#2/exception";
  // multi-rank scenarios append "/ws4/r3".
  std::string id() const;
};

// ---- results ---------------------------------------------------------------

enum class Verdict { pass, leak, contract, hang, error };
std::string_view to_string(Verdict v);

enum class LeakKind { process, zombie, temp_file, fd, shm, sysv_ipc, lock };
std::string_view to_string(LeakKind k);

// One thing left behind. `what` is a one-line human description; `details`
// carries the structured fields (pid, ppid, cmdline, path, size, type, fd,
// target, ...) as key/value strings, written as-is into JSON.
struct Leak {
  LeakKind kind = LeakKind::process;
  int rank = 0;  // the rank it is attributed to; -1 when no rank can be named
  std::string what;
  std::vector<std::pair<std::string, std::string>> details;
};

// A broken hook contract: what was expected and what happened.
struct Violation {
  std::string expected;
  std::string actual;
};

// Monotonic timestamps (CLOCK_MONOTONIC, ns) of one scenario. 0 = did not happen.
struct Timeline {
  std::int64_t started_ns = 0;             // first rank spawned
  std::int64_t fault_injected_ns = 0;      // signal sent / exception ordered
  std::int64_t on_exception_ns = 0;        // probe reported on_exception entered
  std::int64_t rank_exited_ns = 0;         // the rank's pidfd became readable
  std::int64_t last_process_gone_ns = 0;   // no descendant left
  std::int64_t last_temp_file_gone_ns = 0; // sandbox (and private /dev/shm) empty
  std::int64_t all_reclaimed_ns = 0;       // everything above reclaimed
  std::int64_t finished_ns = 0;            // verdict reached
};

// How the rank ended (exit code and signal kept apart).
struct ExitStatus {
  bool exited = false;  // false: never observed (still running / not started)
  int code = -1;        // valid when signal == 0
  int signal = 0;       // terminating signal, 0 if it exited normally
  std::string describe() const;  // "exit 0", "killed by SIGTERM"
};

// What one rank of a scenario did.
struct RankResult {
  int rank = 0;
  int pid = 0;
  ExitStatus exit;
  std::vector<std::string> hooks;     // hooks it entered, in order
  std::int64_t on_exception_ns = 0;   // when it reported on_exception
  std::int64_t exited_ns = 0;         // its pidfd became readable
  bool failed = false;                // it is (one of) the rank(s) whose failure stopped the world
  std::string failure;                // how it failed ("exit 1", "hung at collective 'post_setup'", ...)
};

struct ScenarioResult {
  Scenario scenario;
  Verdict verdict = Verdict::error;
  std::vector<Leak> leaks;
  std::vector<Violation> violations;
  std::vector<std::string> hooks;  // hooks the failing rank ran, in order ("setup", "on_exception", ...)
  Timeline timeline;               // rank_exited_ns: when the last rank exited
  ExitStatus rank_exit;            // the failing rank's
  std::vector<RankResult> ranks;   // one per rank, rank 0 first
  std::int64_t world_failed_ns = 0;  // multi-rank: when the harness saw a rank fail
  std::vector<std::string> notes;  // e.g. "private /tmp unavailable: ..."
  std::string error;               // for verdict error / hang: what went wrong
  std::string repro;               // command that reproduces just this scenario

  // fault -> all reclaimed, in ms; negative when not applicable.
  double reclaim_latency_ms() const;
};

}  // namespace reclaim
