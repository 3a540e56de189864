/* probe_test — a scripted rank for the C probe (reclaim_probe.h).
 *
 *   probe_test SCRIPT
 *
 * Runs the `call` lines of SCRIPT (a conformance transcript,
 * tests/conformance/README.md) in order against the probe built from the
 * environment, and prints what each call returned on stdout, one line each:
 *
 *   call hello | hook NAME | audit LABEL | bye CODE     (print nothing)
 *   call event NAME TEXT...                             (print nothing)
 *   call at ENTRY HOOK        "go" or "raise TYPE TEXT"; EXIT and HANG are obeyed
 *   call barrier NAME         "barrier ok" or "barrier abort WHY"
 *   call occurrences ENTRY HOOK                         "occurrences N"
 *   call armed ENTRY POINT                              "armed 0" / "armed 1"
 *   call active                                         "active 0" / "active 1"
 *   call handle SIGNAME       a handler that only records (no SA_RESTART)
 *   call exit CODE            exit(CODE)
 *
 * Other lines are ignored. Exit status: 0 at the end of the script, 2 for an
 * unreadable script or an unknown call. The probe's address, rank and world
 * size come from the environment (RECLAIM_CONTROL fd:/unix:/tcp:, RECLAIM_RANK
 * or RANK..., RECLAIM_WORLD_SIZE or WORLD_SIZE...), so a harness under test
 * can reach it every way a launcher would.
 */
#include "reclaim_probe.h"

static volatile sig_atomic_t g_signals = 0;

static void record_signal(int signo) {
  (void)signo;
  g_signals = g_signals + 1;
}

static int signal_number(const char* name) {
  static const struct {
    const char* name;
    int signo;
  } kSignals[] = {{"SIGINT", SIGINT}, {"SIGTERM", SIGTERM}, {"SIGUSR1", SIGUSR1},
                  {"SIGUSR2", SIGUSR2}, {"SIGHUP", SIGHUP}};
  size_t i;
  for (i = 0; i < sizeof kSignals / sizeof kSignals[0]; ++i)
    if (strcmp(kSignals[i].name, name) == 0) return kSignals[i].signo;
  return 0;
}

/* Splits off the next space-separated word of *rest (NUL-terminating it). */
static char* next_word(char** rest) {
  char* start = *rest;
  char* sp;
  if (start == NULL || *start == '\0') return NULL;
  sp = strchr(start, ' ');
  if (sp != NULL) {
    *sp = '\0';
    *rest = sp + 1;
  } else {
    *rest = start + strlen(start);
  }
  return start;
}

int main(int argc, char** argv) {
  reclaim_probe probe;
  FILE* script;
  char line[RECLAIM_PROBE_MAX_LINE + 2];

  if (argc != 2) {
    fprintf(stderr, "usage: %s SCRIPT\n", argv[0]);
    return 2;
  }
  script = fopen(argv[1], "r");
  if (script == NULL) {
    fprintf(stderr, "%s: cannot open %s\n", argv[0], argv[1]);
    return 2;
  }
  reclaim_probe_from_environment(&probe);

  while (fgets(line, sizeof line, script) != NULL) {
    char* rest = line;
    char* verb;
    size_t len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
    if (strncmp(line, "call ", 5) != 0) continue;
    rest = line + 5;
    verb = next_word(&rest);
    if (verb == NULL) continue;

    if (strcmp(verb, "hello") == 0) {
      reclaim_probe_hello(&probe);
    } else if (strcmp(verb, "hook") == 0) {
      reclaim_probe_hook(&probe, rest);
    } else if (strcmp(verb, "at") == 0) {
      char* entry = next_word(&rest);
      reclaim_directive d = reclaim_probe_at(&probe, entry != NULL ? entry : "", rest);
      if (d.kind == RECLAIM_RAISE) {
        printf("raise %s %s\n", d.type, d.text);
      } else {
        if (d.kind == RECLAIM_EXIT || d.kind == RECLAIM_HANG) fflush(stdout);
        reclaim_probe_obey(&d);
        printf("go\n");
      }
    } else if (strcmp(verb, "barrier") == 0) {
      reclaim_barrier_result b = reclaim_probe_barrier(&probe, rest);
      if (b.ok) printf("barrier ok\n");
      else printf("barrier abort %s\n", b.why);
    } else if (strcmp(verb, "audit") == 0) {
      reclaim_probe_audit(&probe, rest);
    } else if (strcmp(verb, "event") == 0) {
      char* name = next_word(&rest);
      reclaim_probe_event(&probe, name != NULL ? name : "", rest);
    } else if (strcmp(verb, "bye") == 0) {
      reclaim_probe_bye(&probe, atoi(rest));
    } else if (strcmp(verb, "occurrences") == 0) {
      char* entry = next_word(&rest);
      printf("occurrences %d\n", reclaim_probe_occurrences(&probe, entry != NULL ? entry : "", rest));
    } else if (strcmp(verb, "armed") == 0) {
      char* entry = next_word(&rest);
      printf("armed %d\n", reclaim_probe_armed(&probe, entry != NULL ? entry : "", rest));
    } else if (strcmp(verb, "active") == 0) {
      printf("active %d\n", reclaim_probe_active(&probe));
    } else if (strcmp(verb, "handle") == 0) {
      struct sigaction sa;
      int signo = signal_number(rest);
      if (signo == 0) {
        fprintf(stderr, "%s: unknown signal '%s'\n", argv[0], rest);
        return 2;
      }
      memset(&sa, 0, sizeof sa);
      sa.sa_handler = record_signal;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = 0; /* no SA_RESTART: a blocked read returns EINTR */
      sigaction(signo, &sa, NULL);
    } else if (strcmp(verb, "exit") == 0) {
      fflush(stdout);
      fclose(script);
      return atoi(rest);
    } else {
      fprintf(stderr, "%s: unknown call '%s'\n", argv[0], verb);
      return 2;
    }
    fflush(stdout);
  }
  fclose(script);
  reclaim_probe_close(&probe);
  return 0;
}
