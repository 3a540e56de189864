// reclaim's driver: runs a C++ DataModule through one trainer entry in
// Lightning's order, reporting every hook through the probe (probe.hpp) and
// obeying the harness's directive at each point.
//
// Command line (flags the driver consumes; everything else is passed on to
// the factory as argv, argv[0] first):
//   --entry NAME            fit | validate | test | predict (default: $RECLAIM_ENTRY, else fit)
//   --train-batches N       training batches in fit            (default 4)
//   --val-batches N         validation batches after training  (default 3)
//   --sanity-steps N        sanity-check validation batches    (default 2)
//   --test-batches N        (default 3)
//   --predict-batches N     (default 3)
// Both "--flag N" and "--flag=N" are accepted.
//
// Outcome (exit status of the process whose main returns run_datamodule):
//   0                    the entry ran to the end; teardown ran; AUDIT after-teardown; BYE 0.
//   1                    a hook, loader or directive failed: on_exception ran once, AUDIT
//                        after-on_exception, BYE 1. teardown is not called after a failure.
//   killed by SIGINT/SIGTERM
//                        the signal arrived; at the next safe point (after a point, before a
//                        batch fetch) the run failed as above, then the signal is re-raised
//                        with its default action so the exit status reports it.
//   2                    invalid configuration (bad flag, or the factory threw).
//   EXIT directive       _exit(code) at the point; HANG blocks forever.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <type_traits>

#include "driver/datamodule.hpp"

namespace reclaim {

// The failure raised at a safe point after SIGINT/SIGTERM (or a KeyboardInterrupt
// directive). The driver re-raises signo after on_exception.
class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signo);
  int signo() const { return signo_; }

 private:
  int signo_;
};

using DataModuleFactory = std::function<std::unique_ptr<DataModule>(int argc, char** argv)>;

// Runs the datamodule the factory builds. Returns the exit code (see above);
// does not return when the run ends by a signal or an EXIT/HANG directive.
int run_datamodule(int argc, char** argv, DataModuleFactory factory);

// Type(argc, argv) when that constructor exists, else Type().
template <class Type> std::unique_ptr<DataModule> make_datamodule(int argc, char** argv) {
  if constexpr (std::is_constructible_v<Type, int, char**>)
    return std::make_unique<Type>(argc, argv);
  else
    return std::make_unique<Type>();
}

}  // namespace reclaim

// A program that runs `Type` under the driver: `RECLAIM_MAIN(MyModule)`.
#define RECLAIM_MAIN(Type)                                                           \
  int main(int argc, char** argv) {                                                  \
    return ::reclaim::run_datamodule(argc, argv, &::reclaim::make_datamodule<Type>); \
  }

// The factory reclaim-host looks up in a shared library: `RECLAIM_MODULE(MyModule)`.
// The module owns nothing else; the host runs it with the driver.
#define RECLAIM_MODULE(Type)                                                                     \
  extern "C" __attribute__((visibility("default"))) ::reclaim::DataModule*                       \
  reclaim_create_datamodule(int argc, char** argv) {                                             \
    return ::reclaim::make_datamodule<Type>(argc, argv).release();                               \
  }
