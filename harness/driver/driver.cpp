#include "driver/driver.hpp"

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include "probe/probe.hpp"

namespace reclaim {

// The default loaders: a module that does not override a *_dataloader hook
// has no batches for that stage, as a LightningDataModule without the hook
// would give the trainer nothing to iterate.
std::unique_ptr<Loader> DataModule::train_dataloader() { return std::make_unique<EmptyLoader>(); }
std::unique_ptr<Loader> DataModule::val_dataloader() { return std::make_unique<EmptyLoader>(); }
std::unique_ptr<Loader> DataModule::test_dataloader() { return std::make_unique<EmptyLoader>(); }
std::unique_ptr<Loader> DataModule::predict_dataloader() { return std::make_unique<EmptyLoader>(); }

Interrupted::Interrupted(int signo)
    : std::runtime_error(std::string("interrupted by ") + (signo == SIGINT ? "SIGINT" : signo == SIGTERM ? "SIGTERM" : "a signal")),
      signo_(signo) {}

namespace {

// Set by the handler, read at safe points. Like Lightning's signal connector,
// the handler only records: all real work happens in normal control flow.
volatile std::sig_atomic_t g_signal = 0;

extern "C" void record_signal(int signo) { g_signal = signo; }

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = &record_signal;
  sigemptyset(&sa.sa_mask);
  // No SA_RESTART: a blocked read returns EINTR and the code that loops on it
  // gets a chance to look at the flag (probe reads simply retry).
  sa.sa_flags = 0;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  // A datamodule writing to a pipe whose reader died (a killed loader worker)
  // must get EPIPE, not die silently: Python ignores SIGPIPE the same way.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, nullptr);
}

void check_interrupt() {
  if (int s = g_signal) throw Interrupted(s);
}

struct Options {
  Stage stage = Stage::fit;
  int train_batches = 4;
  int val_batches = 3;
  int sanity_steps = 2;
  int test_batches = 3;
  int predict_batches = 3;
  std::vector<char*> rest;  // argv for the datamodule, argv[0] first, nullptr-terminated
};

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int parse_count(std::string_view flag, std::string_view value) {
  int n = 0;
  auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (value.empty() || ec != std::errc{} || p != value.data() + value.size() || n < 0)
    throw ConfigError(std::string(flag) + ": expected a non-negative integer, got '" + std::string(value) + "'");
  return n;
}

Stage parse_stage_or_throw(std::string_view value) {
  auto s = parse_stage(value);
  if (!s) throw ConfigError("unknown entry '" + std::string(value) + "' (fit, validate, test, predict)");
  return *s;
}

Options parse_options(int argc, char** argv) {
  Options o;
  if (const char* e = std::getenv("RECLAIM_ENTRY"); e != nullptr && *e != '\0') o.stage = parse_stage_or_throw(e);
  o.rest.push_back(argc > 0 ? argv[0] : const_cast<char*>("datamodule"));
  struct Flag {
    std::string_view name;
    int* count;  // nullptr: --entry
  };
  const Flag flags[] = {
      {"--entry", nullptr},
      {"--train-batches", &o.train_batches},
      {"--val-batches", &o.val_batches},
      {"--sanity-steps", &o.sanity_steps},
      {"--test-batches", &o.test_batches},
      {"--predict-batches", &o.predict_batches},
  };
  for (int i = 1; i < argc; ++i) {
    std::string_view arg(argv[i]);
    const Flag* match = nullptr;
    std::string_view value;
    bool has_value = false;
    for (const Flag& f : flags) {
      if (arg == f.name) {
        match = &f;
      } else if (arg.size() > f.name.size() && arg.substr(0, f.name.size()) == f.name &&
                 arg[f.name.size()] == '=') {
        match = &f;
        value = arg.substr(f.name.size() + 1);
        has_value = true;
      }
      if (match) break;
    }
    if (!match) {
      o.rest.push_back(argv[i]);
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc) throw ConfigError(std::string(match->name) + ": missing value");
      value = argv[++i];
    }
    if (match->count)
      *match->count = parse_count(match->name, value);
    else
      o.stage = parse_stage_or_throw(value);
  }
  o.rest.push_back(nullptr);
  return o;
}

// prepare_data runs once per node, on local rank 0 (Lightning's default
// prepare_data_per_node): LOCAL_RANK, else RECLAIM_RANK, else "0".
bool is_local_rank_zero() {
  const char* r = std::getenv("LOCAL_RANK");
  if (r == nullptr || *r == '\0') r = std::getenv("RECLAIM_RANK");
  return r == nullptr || *r == '\0' || std::string_view(r) == "0";
}

[[noreturn]] void hang_forever() {
  for (;;) ::pause();
}

// One run of one entry. Every hook: HOOK when entered, the user's code, then
// the point (at the end, except teardown: at its start).
class Run {
 public:
  Run(Probe& probe, DataModule& module, const Options& options)
      : probe_(probe), module_(module), o_(options), entry_(stage_name(options.stage)) {}

  // With several ranks the harness brokers Lightning's collectives: the
  // barriers around prepare_data and setup, "run-stage", one per batch (the
  // step's all-reduce) and a last one after teardown (the process group's
  // destruction). A failed rank turns a collective into an exception here.
  void execute() {
    if (is_local_rank_zero()) {
      probe_.hook("prepare_data");
      module_.prepare_data();
      point("prepare_data");
    }
    collective("prepare_data");
    collective("pre_setup");
    probe_.hook("setup");
    module_.setup(o_.stage);
    point("setup");
    collective("post_setup");
    collective("run-stage");

    switch (o_.stage) {
      case Stage::fit: fit(); break;
      case Stage::validate: evaluate("val_dataloader", &DataModule::val_dataloader, "val_batch", o_.val_batches); break;
      case Stage::test: evaluate("test_dataloader", &DataModule::test_dataloader, "test_batch", o_.test_batches); break;
      case Stage::predict:
        evaluate("predict_dataloader", &DataModule::predict_dataloader, "predict_batch", o_.predict_batches);
        break;
    }

    probe_.hook("teardown");
    point("teardown");
    module_.teardown(o_.stage);
    collective("teardown");
  }

 private:
  using LoaderHook = std::unique_ptr<Loader> (DataModule::*)();

  // Lightning keeps one validation DataLoader: the sanity check takes its
  // first batches, the epoch's validation continues on the same loader.
  void fit() {
    auto val = make_loader("val_dataloader", &DataModule::val_dataloader);
    run_batches(*val, "val_batch", o_.sanity_steps);
    auto train = make_loader("train_dataloader", &DataModule::train_dataloader);
    run_batches(*train, "train_batch", o_.train_batches);
    run_batches(*val, "val_batch", o_.val_batches);
    probe_.hook("state_dict");
    [[maybe_unused]] std::string state = module_.state_dict();
    point("state_dict");
  }

  void evaluate(const char* loader_hook, LoaderHook make, const char* batch_hook, int limit) {
    auto loader = make_loader(loader_hook, make);
    run_batches(*loader, batch_hook, limit);
  }

  std::unique_ptr<Loader> make_loader(const char* hook, LoaderHook make) {
    probe_.hook(hook);
    std::unique_ptr<Loader> loader = (module_.*make)();
    if (!loader) loader = std::make_unique<EmptyLoader>();
    point(hook);
    return loader;
  }

  void run_batches(Loader& loader, const char* batch_hook, int limit) {
    for (int i = 0; i < limit; ++i) {
      check_interrupt();
      std::optional<Batch> batch = loader.next();
      if (!batch) return;
      point(batch_hook);  // the step would use the batch here
      collective(std::string(batch_hook) + "#" + std::to_string(probe_.occurrences(entry_, batch_hook)));
    }
  }

  void collective(const std::string& name) {
    BarrierResult r = probe_.barrier(name);
    if (!r.ok) throw std::runtime_error("collective '" + name + "' failed: " + r.why);
    check_interrupt();
  }

  void point(const char* hook) {
    Directive d = probe_.at(entry_, hook);
    switch (d.kind) {
      case DirectiveKind::go: break;
      case DirectiveKind::raise:
        if (d.type == "KeyboardInterrupt") throw Interrupted(SIGINT);
        throw std::runtime_error(d.text.empty() ? d.type : d.text);
      case DirectiveKind::exit: ::_exit(d.code);
      case DirectiveKind::hang: hang_forever();
    }
    check_interrupt();
  }

  Probe& probe_;
  DataModule& module_;
  const Options& o_;
  std::string_view entry_;
};

// The failure path: on_exception exactly once, an audit while alive, then an
// exit that tells what happened (the signal, or code 1).
int fail(Probe& probe, DataModule& module, const std::exception& error, int signo) {
  probe.event("error", error.what());
  probe.hook("on_exception");
  try {
    module.on_exception(error);
  } catch (const std::exception& e) {
    probe.event("on_exception_error", e.what());
  } catch (...) {
    probe.event("on_exception_error", "unknown exception");
  }
  probe.audit("after-on_exception");
  if (signo != 0) {
    std::signal(signo, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signo);
    ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
    std::raise(signo);
    ::_exit(128 + signo);  // not reached unless the signal could not kill us
  }
  probe.bye(1);
  return 1;
}

}  // namespace

int run_datamodule(int argc, char** argv, DataModuleFactory factory) {
  // First: the harness baselines our handles when it receives HELLO.
  Probe probe = Probe::from_environment();
  probe.hello();
  install_signal_handlers();

  Options options;
  std::unique_ptr<DataModule> module;
  try {
    options = parse_options(argc, argv);
    module = factory(static_cast<int>(options.rest.size()) - 1, options.rest.data());
    if (!module) throw ConfigError("the datamodule factory returned nothing");
  } catch (const std::exception& e) {
    // Invalid configuration: no hook ran, nothing to reclaim.
    std::fprintf(stderr, "%s: %s\n", argc > 0 ? argv[0] : "reclaim-driver", e.what());
    probe.event("config_error", e.what());
    probe.bye(2);
    return 2;
  }

  try {
    Run(probe, *module, options).execute();
  } catch (const Interrupted& e) {
    return fail(probe, *module, e, e.signo());
  } catch (const std::exception& e) {
    // A signal that arrived while the failure was under way (a process-group
    // SIGTERM also kills the loader workers) still decides the exit status.
    return fail(probe, *module, e, g_signal);
  } catch (...) {
    return fail(probe, *module, std::runtime_error("unknown exception"), g_signal);
  }
  probe.audit("after-teardown");
  probe.bye(0);
  return 0;
}

}  // namespace reclaim
