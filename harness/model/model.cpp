#include "model/model.hpp"

#include <csignal>
#include <cstring>
#include <fmt/format.h>

namespace reclaim {

namespace {

struct SignalName {
  const char* name;  // lower case, without "sig"
  int signo;
};
constexpr SignalName kSignals[] = {
    {"hup", SIGHUP},   {"int", SIGINT},   {"quit", SIGQUIT}, {"ill", SIGILL},
    {"abrt", SIGABRT}, {"bus", SIGBUS},   {"fpe", SIGFPE},   {"kill", SIGKILL},
    {"usr1", SIGUSR1}, {"segv", SIGSEGV}, {"usr2", SIGUSR2}, {"pipe", SIGPIPE},
    {"alrm", SIGALRM}, {"term", SIGTERM}, {"xcpu", SIGXCPU},
};

constexpr std::pair<Hook, std::string_view> kHookNames[] = {
    {Hook::prepare_data, "prepare_data"},
    {Hook::setup, "setup"},
    {Hook::train_dataloader, "train_dataloader"},
    {Hook::val_dataloader, "val_dataloader"},
    {Hook::test_dataloader, "test_dataloader"},
    {Hook::predict_dataloader, "predict_dataloader"},
    {Hook::train_batch, "train_batch"},
    {Hook::val_batch, "val_batch"},
    {Hook::test_batch, "test_batch"},
    {Hook::predict_batch, "predict_batch"},
    {Hook::state_dict, "state_dict"},
    {Hook::teardown, "teardown"},
    {Hook::on_exception, "on_exception"},
};

}  // namespace

std::string_view to_string(Entry e) {
  switch (e) {
    case Entry::fit: return "fit";
    case Entry::validate: return "validate";
    case Entry::test: return "test";
    case Entry::predict: return "predict";
  }
  return "?";
}

std::optional<Entry> parse_entry(std::string_view s) {
  for (Entry e : kAllEntries)
    if (to_string(e) == s) return e;
  return std::nullopt;
}

std::string_view to_string(Hook h) {
  for (auto& [hook, name] : kHookNames)
    if (hook == h) return name;
  return "?";
}

std::optional<Hook> parse_hook(std::string_view s) {
  for (auto& [hook, name] : kHookNames)
    if (name == s) return hook;
  return std::nullopt;
}

bool is_batch(Hook h) {
  return h == Hook::train_batch || h == Hook::val_batch || h == Hook::test_batch ||
         h == Hook::predict_batch;
}

std::string to_string(const Point& p) {
  if (is_batch(p.hook)) return fmt::format("{}#{}", to_string(p.hook), p.occurrence);
  return std::string(to_string(p.hook));
}

std::optional<Point> parse_point(std::string_view s) {
  auto hash = s.find('#');
  auto hook = parse_hook(s.substr(0, hash));
  if (!hook) return std::nullopt;
  if (!is_batch(*hook)) {
    if (hash != std::string_view::npos) return std::nullopt;
    return Point{*hook, 0};
  }
  if (hash == std::string_view::npos || hash + 1 >= s.size()) return std::nullopt;
  int k = 0;
  for (char c : s.substr(hash + 1)) {
    if (c < '0' || c > '9' || k > 100000) return std::nullopt;
    k = k * 10 + (c - '0');
  }
  if (k < 1) return std::nullopt;
  return Point{*hook, k};
}

const std::vector<Hook>& hooks_of(Entry e) {
  static const std::vector<Hook> fit = {Hook::prepare_data,   Hook::setup,
                                        Hook::val_dataloader, Hook::train_dataloader,
                                        Hook::train_batch,    Hook::val_batch,
                                        Hook::state_dict,     Hook::teardown};
  static const std::vector<Hook> validate = {Hook::prepare_data, Hook::setup,
                                             Hook::val_dataloader, Hook::val_batch,
                                             Hook::teardown};
  static const std::vector<Hook> test = {Hook::prepare_data, Hook::setup, Hook::test_dataloader,
                                         Hook::test_batch, Hook::teardown};
  static const std::vector<Hook> predict = {Hook::prepare_data, Hook::setup,
                                            Hook::predict_dataloader, Hook::predict_batch,
                                            Hook::teardown};
  switch (e) {
    case Entry::fit: return fit;
    case Entry::validate: return validate;
    case Entry::test: return test;
    case Entry::predict: return predict;
  }
  return fit;
}

bool hook_valid_for(Entry e, Hook h) {
  for (Hook x : hooks_of(e))
    if (x == h) return true;
  return false;
}

bool Fault::rank_can_react() const {
  switch (kind) {
    case FaultKind::none: return true;
    case FaultKind::exception: return true;
    case FaultKind::signal:
      if (target == SignalTarget::worker) return true;  // surfaces as an exception in the rank
      return signo == SIGINT || signo == SIGTERM;       // turned into a graceful interrupt
    case FaultKind::crash:
    case FaultKind::exit:
    case FaultKind::hang:
      return false;
    case FaultKind::disconnect:
      return false;  // it runs on, but nothing it does can be observed any more
  }
  return false;
}

bool is_rank_failure(const Fault& f) {
  return f.kind == FaultKind::crash || f.kind == FaultKind::exit || f.kind == FaultKind::hang ||
         f.kind == FaultKind::disconnect;
}

std::string_view to_string(Launcher l) {
  switch (l) {
    case Launcher::torchrun: return "torchrun";
    case Launcher::lightning_ddp: return "lightning-ddp";
    case Launcher::none: return "none";
    case Launcher::mpirun: return "mpirun";
  }
  return "?";
}

std::optional<Launcher> parse_launcher(std::string_view s) {
  for (Launcher l : {Launcher::torchrun, Launcher::lightning_ddp, Launcher::none, Launcher::mpirun})
    if (to_string(l) == s) return l;
  return std::nullopt;
}

int parse_signal(std::string_view s) {
  if (s.size() > 3 && (s.substr(0, 3) == "sig" || s.substr(0, 3) == "SIG")) s.remove_prefix(3);
  std::string lower(s);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (auto& sig : kSignals)
    if (lower == sig.name) return sig.signo;
  return 0;
}

std::string signal_name(int signo) {
  for (auto& sig : kSignals) {
    if (sig.signo == signo) {
      std::string up = sig.name;
      for (char& c : up) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      return "SIG" + up;
    }
  }
  return fmt::format("signal {}", signo);
}

std::string to_string(const Fault& f) {
  switch (f.kind) {
    case FaultKind::none: return "none";
    case FaultKind::exception: return "exception";
    case FaultKind::crash: return "crash";
    case FaultKind::exit: return "exit";
    case FaultKind::hang: return "hang";
    case FaultKind::disconnect: return "disconnect";
    case FaultKind::signal: {
      std::string name = signal_name(f.signo);
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (f.target == SignalTarget::group) return "pg-" + name;
      if (f.target == SignalTarget::worker) return "worker-" + name;
      return name;
    }
  }
  return "?";
}

std::optional<Fault> parse_fault(std::string_view s) {
  if (s == "none") return Fault{};
  if (s == "exception") return Fault{FaultKind::exception, 0, SignalTarget::rank};
  if (s == "crash") return Fault{FaultKind::crash, SIGKILL, SignalTarget::rank};
  if (s == "exit") return Fault{FaultKind::exit, 0, SignalTarget::rank};
  if (s == "hang") return Fault{FaultKind::hang, 0, SignalTarget::rank};
  if (s == "disconnect") return Fault{FaultKind::disconnect, 0, SignalTarget::rank};
  SignalTarget target = SignalTarget::rank;
  if (s.substr(0, 3) == "pg-") {
    target = SignalTarget::group;
    s.remove_prefix(3);
  } else if (s.substr(0, 7) == "worker-") {
    target = SignalTarget::worker;
    s.remove_prefix(7);
  }
  if (s.substr(0, 3) != "sig") return std::nullopt;
  int signo = parse_signal(s);
  if (signo == 0) return std::nullopt;
  return Fault{FaultKind::signal, signo, target};
}

bool fault_valid_at(const Fault& f, Hook h) {
  if (f.kind == FaultKind::signal && f.target == SignalTarget::worker) return is_batch(h);
  return h != Hook::on_exception || f.kind != FaultKind::none;
}

std::string_view to_string(Contract c) {
  switch (c) {
    case Contract::lightning: return "lightning";
    case Contract::none: return "none";
  }
  return "?";
}

std::optional<Contract> parse_contract(std::string_view s) {
  if (s == "lightning") return Contract::lightning;
  if (s == "none") return Contract::none;
  return std::nullopt;
}

std::string Scenario::id() const {
  std::string id(to_string(entry));
  if (point) id += "/" + to_string(*point);
  id += "/" + to_string(fault);
  if (world_size > 1) id += fmt::format("/ws{}/r{}", world_size, rank);
  return id;
}

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::pass: return "pass";
    case Verdict::leak: return "leak";
    case Verdict::contract: return "contract";
    case Verdict::hang: return "hang";
    case Verdict::error: return "error";
  }
  return "?";
}

std::string_view to_string(LeakKind k) {
  switch (k) {
    case LeakKind::process: return "process";
    case LeakKind::zombie: return "zombie";
    case LeakKind::temp_file: return "temp_file";
    case LeakKind::fd: return "fd";
    case LeakKind::shm: return "shm";
    case LeakKind::sysv_ipc: return "sysv_ipc";
    case LeakKind::lock: return "lock";
  }
  return "?";
}

std::string ExitStatus::describe() const {
  if (!exited) return "not exited";
  if (signal != 0) return "killed by " + signal_name(signal);
  if (code < 0) return "exited (status unknown: its launcher reaped it)";
  return fmt::format("exit {}", code);
}

double ScenarioResult::reclaim_latency_ms() const {
  if (timeline.all_reclaimed_ns == 0) return -1;
  std::int64_t from = timeline.fault_injected_ns ? timeline.fault_injected_ns : timeline.rank_exited_ns;
  if (from == 0) return -1;
  return static_cast<double>(timeline.all_reclaimed_ns - from) / 1e6;
}

}  // namespace reclaim
