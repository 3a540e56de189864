// reclaim-host LIBRARY.so [args...]
//
// Runs a DataModule that lives in a shared library under reclaim's driver, so
// a module can be tested without writing a main(). The library exports
//   extern "C" reclaim::DataModule* reclaim_create_datamodule(int argc, char** argv);
// (RECLAIM_MODULE(Type) in driver.hpp writes it). The driver sees argv without
// the host's own argv[0]: the library path becomes the module's argv[0].
//
// Exit status: that of the driver (driver.hpp); 2 when the library cannot be
// loaded or lacks the factory.
#include <cstdio>
#include <dlfcn.h>
#include <memory>

#include "driver/driver.hpp"

namespace {

using CreateFn = reclaim::DataModule* (*)(int, char**);
constexpr const char* kFactorySymbol = "reclaim_create_datamodule";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: reclaim-host LIBRARY.so [args...]\n");
    return 2;
  }
  // RTLD_NOW: a module with unresolved symbols fails here, with dlerror's
  // message, rather than in the middle of a hook.
  void* library = ::dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    std::fprintf(stderr, "reclaim-host: cannot load '%s': %s\n", argv[1], ::dlerror());
    return 2;
  }
  ::dlerror();
  auto create = reinterpret_cast<CreateFn>(::dlsym(library, kFactorySymbol));
  if (create == nullptr) {
    std::fprintf(stderr, "reclaim-host: '%s' does not export %s (use RECLAIM_MODULE(Type)): %s\n", argv[1],
                 kFactorySymbol, "symbol not found");
    return 2;
  }
  // The library stays loaded until exit: the module's code runs to the end,
  // and its destructors (if any) run before main returns.
  return reclaim::run_datamodule(argc - 1, argv + 1, [create](int module_argc, char** module_argv) {
    return std::unique_ptr<reclaim::DataModule>(create(module_argc, module_argv));
  });
}
