/* reclaim_probe.h — the C probe: the rank's side of the reclaim/1 wire protocol
 * (harness/protocol/protocol.md), in one dependency-free header for C99 and C++.
 *
 *   #include "reclaim_probe.h"
 *   reclaim_probe p;
 *   reclaim_probe_from_environment(&p);     // RECLAIM_CONTROL=fd:N, unix:PATH, tcp:HOST:PORT; absent: inactive
 *   reclaim_probe_hello(&p);                // first thing: the harness baselines handles now
 *   reclaim_probe_hook(&p, "setup");        // HOOK setup T
 *   ... setup ...
 *   reclaim_directive d = reclaim_probe_at(&p, "fit", "setup");
 *   if (d.kind == RECLAIM_RAISE) { fail here with d.type / d.text }
 *   else reclaim_probe_obey(&d);            // EXIT: _exit(code); HANG: blocks forever; GO: returns
 *   reclaim_barrier_result b = reclaim_probe_barrier(&p, "post_setup");  // several ranks
 *   if (!b.ok) { the world failed: shut down, reporting b.why }
 *
 * Contract, for every function:
 *   - An inactive probe (no RECLAIM_CONTROL, or a channel that broke) does
 *     nothing and returns at once; reclaim_probe_at then returns GO, and
 *     reclaim_probe_barrier ok (not ok once a channel it had broke).
 *   - Channel trouble (EOF, an error, ERR from the harness, a line over 4096
 *     bytes) never aborts: the probe says so once on stderr, closes the channel
 *     and becomes inactive.
 *   - Reads and writes retry on EINTR (the harness signals the rank while it
 *     waits for a directive); writes use MSG_NOSIGNAL, so a closed channel
 *     never raises SIGPIPE.
 *   - The control descriptor is set close-on-exec, and is closed in children
 *     created by fork() (a pthread_atfork handler), which must not talk on
 *     the rank's channel.
 *   - No allocation (but getaddrinfo's, connecting to a tcp: address): all
 *     state lives in the reclaim_probe struct (about 6 KiB).
 *     At most RECLAIM_PROBE_MAX_ARMED armed points and RECLAIM_PROBE_MAX_COUNTERS
 *     batch kinds are kept; names longer than the fixed fields are cut.
 *   - Not thread-safe: one thread of the rank talks to the harness. The
 *     fork handler tracks the most recently opened probe of each translation unit.
 *
 * Feature macros: glibc declares everything used here in its default (gnu)
 * mode; with -std=c99 define _POSIX_C_SOURCE 200809L (or _GNU_SOURCE) before
 * the first #include.
 */
#ifndef RECLAIM_PROBE_H
#define RECLAIM_PROBE_H

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RECLAIM_PROBE_VERSION "reclaim/1"
#define RECLAIM_PROBE_MAX_LINE 4096
#define RECLAIM_PROBE_MAX_ARMED 16
#define RECLAIM_PROBE_MAX_COUNTERS 16
#define RECLAIM_PROBE_NAME_MAX 64

typedef enum reclaim_directive_kind {
  RECLAIM_GO = 0,  /* continue (any signal the fault called for is already pending or handled) */
  RECLAIM_RAISE,   /* fail here with an error of `type` and message `text` */
  RECLAIM_EXIT,    /* leave at once with `code`, running no cleanup (_exit) */
  RECLAIM_HANG     /* block forever; the harness will kill the rank */
} reclaim_directive_kind;

typedef struct reclaim_directive {
  reclaim_directive_kind kind;
  char type[RECLAIM_PROBE_NAME_MAX]; /* RAISE: "RuntimeError", "KeyboardInterrupt", ... */
  char text[256];                    /* RAISE: the message (cut to fit) */
  int code;                          /* EXIT */
} reclaim_directive;

/* The outcome of a collective (reclaim_probe_barrier). */
typedef struct reclaim_barrier_result {
  int ok;         /* 1: every rank arrived; 0: the world failed, or this rank lost its channel */
  char why[256];  /* ok == 0: the harness's ABORT text ("rank 1 failed: ..."), cut to fit, or
                     why this rank cannot take part; "" when ok */
} reclaim_barrier_result;

typedef struct reclaim_probe_point {
  char entry[16];
  char point[RECLAIM_PROBE_NAME_MAX]; /* "setup", "train_batch#2" */
} reclaim_probe_point;

typedef struct reclaim_probe_counter {
  char entry[16];
  char hook[RECLAIM_PROBE_NAME_MAX]; /* "train_batch" */
  int count;
} reclaim_probe_counter;

typedef struct reclaim_probe {
  int fd; /* -1: inactive */
  int rank;
  int world_size; /* >= 1 */
  int lost;       /* it had a channel, and the channel broke */
  int hello_done;
  size_t in_len;
  char in[RECLAIM_PROBE_MAX_LINE + 1];
  int armed_count;
  reclaim_probe_point armed[RECLAIM_PROBE_MAX_ARMED];
  int counter_count;
  reclaim_probe_counter counters[RECLAIM_PROBE_MAX_COUNTERS];
} reclaim_probe;

/* ---- internals (names with a trailing underscore are not API) -------------------- */

/* The descriptor the fork handler closes in children: plain int, the handler
 * runs in the child right after fork. */
static int reclaim_probe_fork_fd_ = -1;
static int reclaim_probe_atfork_installed_ = 0;

static inline void reclaim_probe_close_in_child_(void) {
  if (reclaim_probe_fork_fd_ >= 0) {
    close(reclaim_probe_fork_fd_);
    reclaim_probe_fork_fd_ = -1;
  }
}

static inline int64_t reclaim_monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + (int64_t)ts.tv_nsec;
}

/* Copies at most size-1 bytes of src, replacing spaces and control characters
 * with '_' so that the result is one protocol field. */
static inline void reclaim_probe_copy_word_(char* dst, size_t size, const char* src) {
  size_t i = 0;
  if (src == NULL) src = "";
  for (; src[i] != '\0' && i + 1 < size; ++i) {
    unsigned char c = (unsigned char)src[i];
    dst[i] = (c <= ' ' || c == 0x7f) ? '_' : (char)c;
  }
  if (i == 0 && size > 1) dst[i++] = '_';
  dst[i] = '\0';
}

static inline void reclaim_probe_deactivate_(reclaim_probe* p, const char* why) {
  if (p->fd < 0) return;
  fprintf(stderr, "reclaim probe: %s; probe inactive, continuing\n", why);
  if (reclaim_probe_fork_fd_ == p->fd) reclaim_probe_fork_fd_ = -1;
  close(p->fd);
  p->fd = -1;
  p->lost = 1;
}

static inline void reclaim_probe_send_(reclaim_probe* p, const char* line, size_t len) {
  size_t done = 0;
  while (p->fd >= 0 && done < len) {
    ssize_t n = send(p->fd, line + done, len - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      reclaim_probe_deactivate_(p, "control channel send failed");
      return;
    }
    done += (size_t)n;
  }
}

/* Next line (without '\n', NUL-terminated) copied into out; 0 when the
 * channel broke (the probe is then inactive). */
static inline int reclaim_probe_receive_(reclaim_probe* p, char* out, size_t out_size) {
  while (p->fd >= 0) {
    char* nl = (char*)memchr(p->in, '\n', p->in_len);
    if (nl != NULL) {
      size_t len = (size_t)(nl - p->in);
      size_t copy = len < out_size - 1 ? len : out_size - 1;
      memcpy(out, p->in, copy);
      out[copy] = '\0';
      if (copy > 0 && out[copy - 1] == '\r') out[copy - 1] = '\0';
      memmove(p->in, nl + 1, p->in_len - len - 1);
      p->in_len -= len + 1;
      return 1;
    }
    if (p->in_len >= RECLAIM_PROBE_MAX_LINE) {
      reclaim_probe_deactivate_(p, "control line longer than 4096 bytes");
      return 0;
    }
    {
      ssize_t n = recv(p->fd, p->in + p->in_len, RECLAIM_PROBE_MAX_LINE - p->in_len, 0);
      if (n < 0 && errno == EINTR) continue; /* a signal the harness sent us; the directive follows */
      if (n == 0) {
        reclaim_probe_deactivate_(p, "control channel closed by the harness");
        return 0;
      }
      if (n < 0) {
        reclaim_probe_deactivate_(p, "control channel read failed");
        return 0;
      }
      p->in_len += (size_t)n;
    }
  }
  return 0;
}

/* If `line` is "WORD" or starts with "WORD ", returns what follows the space
 * ("" for a bare word); else NULL. */
static inline const char* reclaim_probe_after_(const char* line, const char* word) {
  size_t n = strlen(word);
  if (strncmp(line, word, n) != 0) return NULL;
  if (line[n] == '\0') return line + n;
  if (line[n] == ' ') return line + n + 1;
  return NULL;
}

static inline int reclaim_probe_is_batch_hook_(const char* hook) {
  size_t n = strlen(hook);
  return n > 6 && strcmp(hook + n - 6, "_batch") == 0;
}

/* The first of `names` (NULL-terminated) whose value is a whole decimal int
 * ("-3" yes; "", " 3", "+3", "3x" no: the next name is tried); else fallback. */
static inline int reclaim_probe_env_int_(const char* const* names, int fallback) {
  for (; *names != NULL; ++names) {
    const char* v = getenv(*names);
    char* end = NULL;
    long n;
    if (v == NULL || !((v[0] >= '0' && v[0] <= '9') || (v[0] == '-' && v[1] >= '0' && v[1] <= '9'))) continue;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno == 0 && *end == '\0' && n >= -2147483647L - 1 && n <= 2147483647L) return (int)n;
  }
  return fallback;
}

/* Connects to "unix:PATH", "unix:@NAME" (abstract namespace) or
 * "tcp:HOST:PORT"; the descriptor, or -1 with errno set. */
static inline int reclaim_probe_connect_(const char* spec) {
  int fd = -1;
  if (strncmp(spec, "unix:", 5) == 0) {
    const char* path = spec + 5;
    size_t len = strlen(path);
    struct sockaddr_un addr;
    socklen_t addr_len;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    if (len == 0 || len >= sizeof addr.sun_path) {
      errno = ENAMETOOLONG;
      return -1;
    }
    memcpy(addr.sun_path, path, len);
    addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
    if (path[0] == '@') addr.sun_path[0] = '\0'; /* abstract: the name is exactly len bytes */
    else ++addr_len;                             /* a path: with its NUL */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (connect(fd, (struct sockaddr*)&addr, addr_len) != 0) {
      int e = errno;
      close(fd);
      errno = e;
      return -1;
    }
    return fd;
  }
  if (strncmp(spec, "tcp:", 4) == 0) {
    const char* hp = spec + 4;
    const char* colon = strrchr(hp, ':');
    char host[256];
    struct addrinfo hints;
    struct addrinfo* res = NULL;
    struct addrinfo* a;
    size_t hlen;
    if (colon == NULL || (hlen = (size_t)(colon - hp)) >= sizeof host) {
      errno = EINVAL;
      return -1;
    }
    memcpy(host, hp, hlen);
    host[hlen] = '\0';
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || res == NULL) {
      errno = EHOSTUNREACH;
      return -1;
    }
    for (a = res; a != NULL; a = a->ai_next) {
      fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
      close(fd);
      fd = -1;
    }
    freeaddrinfo(res);
    if (fd >= 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* one line per round trip */
    } else {
      errno = ECONNREFUSED;
    }
    return fd;
  }
  errno = EINVAL;
  return -1;
}

static inline void reclaim_probe_hello_if_needed_(reclaim_probe* p);

/* ---- API ---------------------------------------------------------------------- */

/* An inactive probe. */
static inline void reclaim_probe_init(reclaim_probe* p) {
  memset(p, 0, sizeof *p);
  p->fd = -1;
  p->world_size = 1;
}

/* Adopts the connected stream socket `fd` (sets FD_CLOEXEC) as the control
 * channel of rank `rank` in a world of `world_size` ranks (below 1: 1). A
 * negative or closed fd gives an inactive probe. */
static inline void reclaim_probe_open_fd_in_world(reclaim_probe* p, int fd, int rank, int world_size) {
  int flags;
  reclaim_probe_init(p);
  p->rank = rank;
  p->world_size = world_size < 1 ? 1 : world_size;
  if (fd < 0) return;
  flags = fcntl(fd, F_GETFD);
  if (flags < 0) {
    fprintf(stderr, "reclaim probe: control fd %d is not open; probe inactive\n", fd);
    return;
  }
  fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
  p->fd = fd;
  if (!reclaim_probe_atfork_installed_) {
    pthread_atfork(NULL, NULL, &reclaim_probe_close_in_child_);
    reclaim_probe_atfork_installed_ = 1;
  }
  reclaim_probe_fork_fd_ = fd;
}

/* As reclaim_probe_open_fd_in_world, in a world of one rank. */
static inline void reclaim_probe_open_fd(reclaim_probe* p, int fd, int rank) {
  reclaim_probe_open_fd_in_world(p, fd, rank, 1);
}

/* Reads RECLAIM_CONTROL and the rank and world size. The control address is
 * "fd:N" (an inherited socket), "unix:PATH" ("unix:@NAME": abstract) or
 * "tcp:HOST:PORT" (a launcher such as mpirun started the rank; the probe
 * connects, with TCP_NODELAY). The rank is RECLAIM_RANK, else RANK,
 * OMPI_COMM_WORLD_RANK or PMI_RANK (0 if none holds an integer); the world
 * size RECLAIM_WORLD_SIZE, else WORLD_SIZE, OMPI_COMM_WORLD_SIZE or PMI_SIZE
 * (1 if none). Absent RECLAIM_CONTROL: inactive. A malformed or unreachable
 * address is reported on stderr and gives an inactive probe. */
static inline void reclaim_probe_from_environment(reclaim_probe* p) {
  static const char* const kRankVariables[] = {"RECLAIM_RANK", "RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", NULL};
  static const char* const kWorldSizeVariables[] = {"RECLAIM_WORLD_SIZE", "WORLD_SIZE", "OMPI_COMM_WORLD_SIZE",
                                                     "PMI_SIZE", NULL};
  const char* control = getenv("RECLAIM_CONTROL");
  long fd = -1;
  reclaim_probe_init(p);
  if (control == NULL || *control == '\0') return;
  if (strncmp(control, "fd:", 3) == 0) {
    if (control[3] >= '0' && control[3] <= '9') {
      char* end = NULL;
      errno = 0;
      fd = strtol(control + 3, &end, 10);
      if (errno != 0 || end == NULL || *end != '\0' || fd > 1000000) fd = -1;
    }
    if (fd < 0) {
      fprintf(stderr, "reclaim probe: unsupported RECLAIM_CONTROL '%s'; probe inactive\n", control);
      return;
    }
  } else if (strncmp(control, "unix:", 5) == 0 || strncmp(control, "tcp:", 4) == 0) {
    fd = reclaim_probe_connect_(control);
    if (fd < 0) {
      fprintf(stderr, "reclaim probe: cannot reach the harness at '%s': %s; probe inactive\n", control,
              strerror(errno));
      return;
    }
  } else {
    fprintf(stderr,
            "reclaim probe: unsupported RECLAIM_CONTROL '%s' (fd:N, unix:PATH, tcp:HOST:PORT); probe inactive\n",
            control);
    return;
  }
  reclaim_probe_open_fd_in_world(p, (int)fd, reclaim_probe_env_int_(kRankVariables, 0),
                                 reclaim_probe_env_int_(kWorldSizeVariables, 1));
}

static inline int reclaim_probe_active(const reclaim_probe* p) { return p->fd >= 0; }

/* Closes the channel; the probe becomes inactive. */
static inline void reclaim_probe_close(reclaim_probe* p) {
  if (p->fd < 0) return;
  if (reclaim_probe_fork_fd_ == p->fd) reclaim_probe_fork_fd_ = -1;
  close(p->fd);
  p->fd = -1;
}

/* HELLO, then reads WELCOME, the ARM lines and GO. Call once, first thing
 * (other calls say it if it was not said: the ARM lines come in reply). */
static inline void reclaim_probe_hello(reclaim_probe* p) {
  char line[RECLAIM_PROBE_MAX_LINE + 1];
  int welcomed = 0;
  int n;
  if (p->fd < 0 || p->hello_done) return;
  p->hello_done = 1;
  n = snprintf(line, sizeof line, "HELLO %s %ld %d c\n", RECLAIM_PROBE_VERSION, (long)getpid(), p->rank);
  reclaim_probe_send_(p, line, (size_t)n);
  while (reclaim_probe_receive_(p, line, sizeof line)) {
    const char* rest;
    if ((rest = reclaim_probe_after_(line, "WELCOME")) != NULL) {
      if (strcmp(rest, RECLAIM_PROBE_VERSION) != 0) {
        reclaim_probe_deactivate_(p, "the harness speaks another protocol version");
        return;
      }
      welcomed = 1;
    } else if ((rest = reclaim_probe_after_(line, "ARM")) != NULL) {
      const char* sp = strchr(rest, ' ');
      if (sp != NULL && strchr(sp + 1, ' ') == NULL && p->armed_count < RECLAIM_PROBE_MAX_ARMED) {
        reclaim_probe_point* a = &p->armed[p->armed_count++];
        size_t elen = (size_t)(sp - rest);
        if (elen >= sizeof a->entry) elen = sizeof a->entry - 1;
        memcpy(a->entry, rest, elen);
        a->entry[elen] = '\0';
        reclaim_probe_copy_word_(a->point, sizeof a->point, sp + 1);
      }
    } else if (strcmp(line, "GO") == 0) {
      if (!welcomed) fprintf(stderr, "reclaim probe: GO before WELCOME; continuing\n");
      return;
    } else if ((rest = reclaim_probe_after_(line, "ERR")) != NULL) {
      reclaim_probe_deactivate_(p, "harness error");
      return;
    }
    /* Anything else (unknown types) is ignored, as the protocol requires. */
  }
}

static inline void reclaim_probe_hello_if_needed_(reclaim_probe* p) {
  if (p->fd >= 0 && !p->hello_done) reclaim_probe_hello(p);
}

/* HOOK name T — the lifecycle hook `name` was entered. Fire-and-forget. */
static inline void reclaim_probe_hook(reclaim_probe* p, const char* name) {
  char word[RECLAIM_PROBE_NAME_MAX];
  char line[RECLAIM_PROBE_NAME_MAX + 48];
  int n;
  reclaim_probe_hello_if_needed_(p);
  if (p->fd < 0) return;
  reclaim_probe_copy_word_(word, sizeof word, name);
  n = snprintf(line, sizeof line, "HOOK %s %lld\n", word, (long long)reclaim_monotonic_ns());
  reclaim_probe_send_(p, line, (size_t)n);
}

/* Whether (entry, point) was armed at HELLO ("fit", "train_batch#2"). */
static inline int reclaim_probe_armed(const reclaim_probe* p, const char* entry, const char* point) {
  int i;
  for (i = 0; i < p->armed_count; ++i)
    if (strcmp(p->armed[i].entry, entry) == 0 && strcmp(p->armed[i].point, point) == 0) return 1;
  return 0;
}

/* Batches of this kind counted so far in `entry` (0 before the first). */
static inline int reclaim_probe_occurrences(const reclaim_probe* p, const char* entry, const char* batch_hook) {
  int i;
  for (i = 0; i < p->counter_count; ++i)
    if (strcmp(p->counters[i].entry, entry) == 0 && strcmp(p->counters[i].hook, batch_hook) == 0)
      return p->counters[i].count;
  return 0;
}

/* The rank reached the end (for teardown: the start) of hook `hook` in
 * `entry`. For a batch hook (name ending in "_batch") the probe counts
 * occurrences per (entry, hook) and the point is "train_batch#k". Only an
 * armed point costs a message (AT) and a blocking read of the directive; an
 * unarmed one makes no system call. Returns the directive without acting on
 * it (see reclaim_probe_obey). */
static inline reclaim_directive reclaim_probe_at(reclaim_probe* p, const char* entry, const char* hook) {
  reclaim_directive d;
  char point[RECLAIM_PROBE_NAME_MAX + 16];
  char line[RECLAIM_PROBE_MAX_LINE + 1];
  int n;
  memset(&d, 0, sizeof d);
  d.kind = RECLAIM_GO;
  reclaim_probe_hello_if_needed_(p);
  if (reclaim_probe_is_batch_hook_(hook)) {
    /* Counting happens even when inactive, so occurrences() is truthful. */
    int i, k = 0;
    for (i = 0; i < p->counter_count; ++i)
      if (strcmp(p->counters[i].entry, entry) == 0 && strcmp(p->counters[i].hook, hook) == 0) break;
    if (i == p->counter_count && p->counter_count < RECLAIM_PROBE_MAX_COUNTERS) {
      reclaim_probe_copy_word_(p->counters[i].entry, sizeof p->counters[i].entry, entry);
      reclaim_probe_copy_word_(p->counters[i].hook, sizeof p->counters[i].hook, hook);
      p->counters[i].count = 0;
      ++p->counter_count;
    }
    if (i < p->counter_count) k = ++p->counters[i].count;
    if (p->fd < 0 || p->armed_count == 0) return d;
    snprintf(point, sizeof point, "%s#%d", hook, k);
  } else {
    if (p->fd < 0 || p->armed_count == 0) return d;
    reclaim_probe_copy_word_(point, sizeof point, hook);
  }
  if (!reclaim_probe_armed(p, entry, point)) return d;

  {
    char word[16];
    reclaim_probe_copy_word_(word, sizeof word, entry);
    n = snprintf(line, sizeof line, "AT %s %s\n", word, point);
  }
  reclaim_probe_send_(p, line, (size_t)n);
  while (reclaim_probe_receive_(p, line, sizeof line)) {
    const char* rest;
    if (strcmp(line, "GO") == 0) return d;
    if ((rest = reclaim_probe_after_(line, "RAISE")) != NULL) {
      const char* sp = strchr(rest, ' ');
      size_t tlen = sp != NULL ? (size_t)(sp - rest) : strlen(rest);
      if (tlen >= sizeof d.type) tlen = sizeof d.type - 1;
      memcpy(d.type, rest, tlen);
      d.type[tlen] = '\0';
      if (sp != NULL) {
        strncpy(d.text, sp + 1, sizeof d.text - 1);
        d.text[sizeof d.text - 1] = '\0';
      }
      d.kind = RECLAIM_RAISE;
      return d;
    }
    if ((rest = reclaim_probe_after_(line, "EXIT")) != NULL) {
      d.kind = RECLAIM_EXIT;
      d.code = atoi(rest);
      return d;
    }
    if (strcmp(line, "HANG") == 0) {
      d.kind = RECLAIM_HANG;
      return d;
    }
    if (reclaim_probe_after_(line, "ERR") != NULL) {
      reclaim_probe_deactivate_(p, "harness error");
      break;
    }
  }
  return d;
}

/* Acts on the directives a C program cannot do otherwise: EXIT is _exit(code),
 * HANG blocks forever. Returns for GO and RAISE (the caller fails its own way). */
static inline void reclaim_probe_obey(const reclaim_directive* d) {
  if (d->kind == RECLAIM_EXIT) _exit(d->code);
  if (d->kind == RECLAIM_HANG)
    for (;;) pause();
}

/* AUDIT label, then waits for AUDITED. */
static inline void reclaim_probe_audit(reclaim_probe* p, const char* label) {
  char word[RECLAIM_PROBE_NAME_MAX];
  char line[RECLAIM_PROBE_MAX_LINE + 1];
  int n;
  reclaim_probe_hello_if_needed_(p);
  if (p->fd < 0) return;
  reclaim_probe_copy_word_(word, sizeof word, label);
  n = snprintf(line, sizeof line, "AUDIT %s\n", word);
  reclaim_probe_send_(p, line, (size_t)n);
  while (reclaim_probe_receive_(p, line, sizeof line)) {
    if (reclaim_probe_after_(line, "AUDITED") != NULL) return;
    if (reclaim_probe_after_(line, "ERR") != NULL) {
      reclaim_probe_deactivate_(p, "harness error");
      return;
    }
  }
}

/* EVENT name T text. Newlines in `text` become spaces; overlong text is cut. */
static inline void reclaim_probe_event(reclaim_probe* p, const char* name, const char* text) {
  char word[RECLAIM_PROBE_NAME_MAX];
  char line[RECLAIM_PROBE_MAX_LINE + 1];
  int n;
  size_t room, i, len;
  reclaim_probe_hello_if_needed_(p);
  if (p->fd < 0) return;
  reclaim_probe_copy_word_(word, sizeof word, name);
  n = snprintf(line, sizeof line, "EVENT %s %lld ", word, (long long)reclaim_monotonic_ns());
  room = RECLAIM_PROBE_MAX_LINE - 1 - (size_t)n; /* keep one byte for '\n' */
  len = text != NULL ? strlen(text) : 0;
  if (len > room) len = room;
  for (i = 0; i < len; ++i) line[(size_t)n + i] = (text[i] == '\n' || text[i] == '\r') ? ' ' : text[i];
  line[(size_t)n + len] = '\n';
  reclaim_probe_send_(p, line, (size_t)n + len + 1);
}

/* BYE code: the rank is about to exit with `code`. */
static inline void reclaim_probe_bye(reclaim_probe* p, int code) {
  char line[32];
  int n;
  if (p->fd < 0) return;
  n = snprintf(line, sizeof line, "BYE %d\n", code);
  reclaim_probe_send_(p, line, (size_t)n);
}

/* BARRIER name — a collective of all ranks ("prepare_data", "post_setup",
 * "train_batch#3", ...): waits until every rank arrived (GO: ok = 1) or the
 * harness answers ABORT because a rank failed (ok = 0, why = its text). With
 * one rank, or a probe that never had a harness, it is ok at once and sends
 * nothing. A probe whose channel broke (EOF, an error, ERR) gives ok = 0: a
 * rank that lost its rendezvous cannot take part in collectives. Reads retry
 * on EINTR, so a signal while waiting does not end the wait. */
static inline reclaim_barrier_result reclaim_probe_barrier(reclaim_probe* p, const char* name) {
  static const char kLost[] =
      "the control channel to the harness is lost: this rank cannot take part in collectives";
  reclaim_barrier_result r;
  char word[RECLAIM_PROBE_NAME_MAX];
  char line[RECLAIM_PROBE_MAX_LINE + 1];
  int n;
  memset(&r, 0, sizeof r);
  r.ok = 1;
  if (p->world_size <= 1) return r;
  reclaim_probe_hello_if_needed_(p);
  if (p->fd >= 0) {
    reclaim_probe_copy_word_(word, sizeof word, name);
    n = snprintf(line, sizeof line, "BARRIER %s\n", word);
    reclaim_probe_send_(p, line, (size_t)n);
    while (reclaim_probe_receive_(p, line, sizeof line)) {
      const char* rest;
      if (strcmp(line, "GO") == 0) return r;
      if ((rest = reclaim_probe_after_(line, "ABORT")) != NULL) {
        r.ok = 0;
        strncpy(r.why, rest, sizeof r.why - 1);
        r.why[sizeof r.why - 1] = '\0';
        return r;
      }
      if (reclaim_probe_after_(line, "ERR") != NULL) {
        reclaim_probe_deactivate_(p, "harness error");
        break;
      }
      /* Anything else (unknown types) is ignored, as the protocol requires. */
    }
  }
  if (p->lost) {
    r.ok = 0;
    snprintf(r.why, sizeof r.why, "%s", kLost);
  }
  return r;
}

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* RECLAIM_PROBE_H */
