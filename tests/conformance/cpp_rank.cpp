// cpp_rank — a scripted rank for the C++ probe (harness/probe/probe.hpp).
//
//   cpp_rank SCRIPT
//
// Runs the `call` lines of a conformance transcript (README.md beside this
// file) against reclaim::Probe::from_environment() and prints each call's
// result on stdout, exactly as probe_test.c does for the C probe and
// python_rank.py for the Python probe.
//
// It also includes the C probe's header, so that the build proves
// reclaim_probe.h compiles as C++ under the project's warnings.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>

#include "../../harness/probe/c/reclaim_probe.h"
#include "probe/probe.hpp"

namespace {

volatile std::sig_atomic_t g_signals = 0;

extern "C" void record_signal(int) { g_signals = g_signals + 1; }

int signal_number(const std::string& name) {
  if (name == "SIGINT") return SIGINT;
  if (name == "SIGTERM") return SIGTERM;
  if (name == "SIGUSR1") return SIGUSR1;
  if (name == "SIGUSR2") return SIGUSR2;
  if (name == "SIGHUP") return SIGHUP;
  return 0;
}

// Splits off the next space-separated word of `rest`.
std::string next_word(std::string& rest) {
  auto sp = rest.find(' ');
  std::string word = rest.substr(0, sp);
  rest = sp == std::string::npos ? std::string() : rest.substr(sp + 1);
  return word;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s SCRIPT\n", argv[0]);
    return 2;
  }
  std::ifstream script(argv[1]);
  if (!script) {
    std::fprintf(stderr, "%s: cannot open %s\n", argv[0], argv[1]);
    return 2;
  }
  reclaim::Probe probe = reclaim::Probe::from_environment();
  std::string line;
  while (std::getline(script, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("call ", 0) != 0) continue;
    std::string rest = line.substr(5);
    std::string verb = next_word(rest);
    if (verb == "hello") {
      probe.hello();
    } else if (verb == "hook") {
      probe.hook(rest);
    } else if (verb == "at") {
      std::string entry = next_word(rest);
      reclaim::Directive d = probe.at(entry, rest);
      switch (d.kind) {
        case reclaim::DirectiveKind::go: std::cout << "go\n"; break;
        case reclaim::DirectiveKind::raise: std::cout << "raise " << d.type << ' ' << d.text << '\n'; break;
        case reclaim::DirectiveKind::exit: std::cout.flush(); ::_exit(d.code);
        case reclaim::DirectiveKind::hang:
          std::cout.flush();
          for (;;) ::pause();
      }
    } else if (verb == "barrier") {
      reclaim::BarrierResult b = probe.barrier(rest);
      if (b.ok) std::cout << "barrier ok\n";
      else std::cout << "barrier abort " << b.why << '\n';
    } else if (verb == "audit") {
      probe.audit(rest);
    } else if (verb == "event") {
      std::string name = next_word(rest);
      probe.event(name, rest);
    } else if (verb == "bye") {
      probe.bye(std::atoi(rest.c_str()));
    } else if (verb == "occurrences") {
      std::string entry = next_word(rest);
      std::cout << "occurrences " << probe.occurrences(entry, rest) << '\n';
    } else if (verb == "armed") {
      std::string entry = next_word(rest);
      std::cout << "armed " << (probe.armed(entry, rest) ? 1 : 0) << '\n';
    } else if (verb == "active") {
      std::cout << "active " << (probe.active() ? 1 : 0) << '\n';
    } else if (verb == "handle") {
      int signo = signal_number(rest);
      if (signo == 0) {
        std::fprintf(stderr, "%s: unknown signal '%s'\n", argv[0], rest.c_str());
        return 2;
      }
      struct sigaction sa {};
      sa.sa_handler = &record_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = 0;  // no SA_RESTART: a blocked read returns EINTR
      ::sigaction(signo, &sa, nullptr);
    } else if (verb == "exit") {
      std::cout.flush();
      return std::atoi(rest.c_str());
    } else {
      std::fprintf(stderr, "%s: unknown call '%s'\n", argv[0], verb.c_str());
      return 2;
    }
    std::cout.flush();
  }
  return 0;
}
