"""The Python probe: the rank's side of the reclaim/1 wire protocol.

The protocol is harness/protocol/protocol.md. A probe reports *where* the rank
is (HELLO, HOOK, AT, AUDIT, EVENT, BYE), obeys the directive the harness
answers at an armed point, and, with several ranks, waits at collectives
(BARRIER, answered by GO or ABORT). It never reports the rank's cleanliness:
leaks are found from outside.

Two ways to use it:

* the module-level functions, which talk through the process's default probe
  (built from the environment on first use)::

      from reclaim_probe import probe
      probe.hello()
      with probe.point("setup", entry="fit"):
          ...

* a :class:`Probe` of your own, on any connected stream socket (tests, or a
  program that manages its channel itself).

With several ranks, a collective is a barrier::

    probe.collective("post_setup")          # raises RuntimeError if the world failed
    result = probe.barrier("train_batch#3")  # or look at the outcome yourself
    if not result:
        shut_down(result.why)

Contract, for every call:

* Without ``RECLAIM_CONTROL`` in the environment every call is a no-op (batch
  occurrences are still counted, and a barrier is passed at once), so
  instrumented code runs as in production.
* Channel trouble (EOF, an error, ``ERR`` from the harness, an overlong line)
  never raises: the probe reports it once on stderr, becomes inactive, and the
  program goes on. From then on a barrier is not ok (``collective`` raises):
  a rank that lost its rendezvous cannot take part in collectives.
* Reads retry on EINTR. A signal handler that raises while the probe waits for
  a directive (Python's default SIGINT handler raises KeyboardInterrupt) does
  not lose the directive: the probe finishes reading it and then re-raises.
* The control descriptor is close-on-exec and non-inheritable, it is closed in
  every child created by ``os.fork`` (multiprocessing's ``fork`` start method
  included), and ``RECLAIM_CONTROL`` is removed from ``os.environ`` once
  adopted, so no child believes it has a channel.
* Not thread-safe: one thread of the rank talks to the harness.
"""

import builtins
import contextlib
import os
import re
import signal
import socket
import stat
import sys
import time
import weakref

VERSION = "reclaim/1"
MAX_LINE = 4096
PROBE_NAME = "python"

__all__ = [
    "BarrierResult", "Directive", "Probe", "hello", "hook", "at", "directive_at", "audit", "event",
    "bye", "barrier", "collective", "point", "armed", "occurrences", "active", "default", "use",
]

# Directive kinds, as the harness sends them.
GO = "go"
RAISE = "raise"
EXIT = "exit"
HANG = "hang"


class Directive:
    """What the harness wants done at an armed point."""

    __slots__ = ("kind", "type", "text", "code")

    def __init__(self, kind=GO, type="", text="", code=0):  # noqa: A002 - the protocol's word
        self.kind = kind
        self.type = type
        self.text = text
        self.code = code

    def __eq__(self, other):
        return isinstance(other, Directive) and (self.kind, self.type, self.text, self.code) == (
            other.kind, other.type, other.text, other.code)

    def __repr__(self):
        return "Directive(%r, %r, %r, %r)" % (self.kind, self.type, self.text, self.code)


_GO = Directive()


class BarrierResult:
    """The outcome of a collective: every rank arrived (``ok``), or the world
    failed and ``why`` says how (the harness's ABORT text, e.g. ``rank 1
    failed: killed by SIGKILL``, or that this rank lost its channel).

    Truthy exactly when ``ok``, so ``if not probe.barrier(name): ...`` reads
    as it should."""

    __slots__ = ("ok", "why")

    def __init__(self, ok=True, why=""):
        self.ok = bool(ok)
        self.why = why

    def __bool__(self):
        return self.ok

    def __eq__(self, other):
        return isinstance(other, BarrierResult) and (self.ok, self.why) == (other.ok, other.why)

    def __repr__(self):
        return "BarrierResult(%r, %r)" % (self.ok, self.why)


_LOST = "the control channel to the harness is lost: this rank cannot take part in collectives"


def exception_for(directive):
    """The exception a RAISE directive asks for.

    A builtin exception type named by the harness is used as it is
    (``KeyboardInterrupt``, ``ValueError``, ...); any other name gives a
    RuntimeError whose message names the requested type.
    """
    text = directive.text or ("reclaim: injected " + (directive.type or "RuntimeError"))
    cls = getattr(builtins, directive.type, None) if directive.type else RuntimeError
    if isinstance(cls, type) and issubclass(cls, BaseException):
        try:
            return cls(text)
        except Exception:  # an exception type with an unusual constructor
            pass
    if directive.type and directive.type != "RuntimeError":
        text = "%s: %s" % (directive.type, text)
    return RuntimeError(text)


def obey(directive):
    """Acts on a directive: returns for GO, raises for RAISE, ``os._exit`` for
    EXIT (no cleanup runs), blocks forever for HANG."""
    kind = directive.kind
    if kind == GO:
        return
    if kind == RAISE:
        raise exception_for(directive)
    if kind == EXIT:
        os._exit(directive.code)
    if kind == HANG:
        _hang_forever()


def _hang_forever():
    # Waits for signals forever. A handler that raises (KeyboardInterrupt) ends
    # the wait the way it would end any blocking call; the harness kills a
    # hanging rank with SIGTERM, then SIGKILL.
    while True:
        signal.pause()


def _clean_word(text):
    # A protocol field: no spaces, no newlines, never empty.
    word = "_".join(str(text).split())
    return word or "_"


def _is_batch_hook(hook):
    return hook.endswith("_batch") and len(hook) > len("_batch")


_INT = re.compile(r"-?[0-9]+\Z")
_RANK_VARIABLES = ("RECLAIM_RANK", "RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
_WORLD_SIZE_VARIABLES = ("RECLAIM_WORLD_SIZE", "WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


def _env_int(env, names, fallback):
    # The first of `names` that holds a whole decimal int; unset, empty and
    # malformed values fall through to the next name, as in the C++ probe.
    for name in names:
        value = env.get(name, "")
        if _INT.match(value):
            n = int(value)
            if -2 ** 31 <= n < 2 ** 31:
                return n
    return fallback


def _connect(spec):
    """A connected socket for "unix:PATH", "unix:@NAME" (abstract) or
    "tcp:HOST:PORT"; raises OSError (ValueError for a malformed address)."""
    if spec.startswith("unix:"):
        path = spec[5:]
        if not path:
            raise ValueError("no socket path")
        if path.startswith("@"):
            path = "\0" + path[1:]  # the abstract namespace
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
        except BaseException:
            s.close()
            raise
        return s
    if spec.startswith("tcp:"):
        host, colon, port = spec[4:].rpartition(":")
        if not colon:
            raise ValueError("no port")
        s = socket.create_connection((host, port))
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one line per round trip
        except OSError:
            pass
        return s
    raise ValueError("unknown address form")


# Every probe with an open channel, so that a forked child closes them all.
_live_probes = weakref.WeakSet()


def _close_in_child():
    # Runs in the child right after os.fork(): the rank's channel is not the
    # child's to talk on, nor to keep open once the rank has died.
    for p in list(_live_probes):
        p._drop_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_in_child)


class Probe:
    """One rank's end of the control channel.

    ``Probe()`` is inactive; ``Probe(fd, rank, world_size)`` adopts a
    connected stream socket as the channel of rank `rank` in a world of
    `world_size` ranks; :meth:`from_environment` reads ``RECLAIM_CONTROL``.
    """

    def __init__(self, fd=-1, rank=0, world_size=1):
        self._sock = None
        self._rank = int(rank)
        self._world_size = max(1, int(world_size))
        self._lost = False        # it had a channel, and the channel broke
        self._buf = b""
        self._armed = set()       # {(entry, point)}
        self._counts = {}         # {(entry, batch_hook): k}
        self._hello_done = False
        if fd is None or fd < 0:
            return
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            _warn("control fd %d is not open; probe inactive" % fd)
            return
        if not stat.S_ISSOCK(mode):
            # An fd number inherited through the environment by a process that
            # is not the rank (exec'd child) must never be written to.
            _warn("control fd %d is not a socket; probe inactive" % fd)
            return
        os.set_inheritable(fd, False)  # also sets FD_CLOEXEC
        try:
            self._sock = socket.socket(fileno=fd)
        except OSError as e:
            _warn("control fd %d unusable (%s); probe inactive" % (fd, e))
            return
        self._sock.setblocking(True)
        _live_probes.add(self)

    @classmethod
    def from_environment(cls, environ=None):
        """The probe described by the environment; inactive when
        ``RECLAIM_CONTROL`` is absent.

        ``RECLAIM_CONTROL`` is ``fd:N`` (an inherited socket), ``unix:PATH``
        (``unix:@NAME``: the abstract namespace) or ``tcp:HOST:PORT`` (a
        launcher such as mpirun started the rank; the probe connects). The
        rank is ``RECLAIM_RANK``, else ``RANK``, ``OMPI_COMM_WORLD_RANK`` or
        ``PMI_RANK`` (0 if none holds an integer); the world size
        ``RECLAIM_WORLD_SIZE``, else ``WORLD_SIZE``, ``OMPI_COMM_WORLD_SIZE``
        or ``PMI_SIZE`` (1 if none). A malformed or unreachable address is
        reported on stderr and gives an inactive probe. When ``environ`` is
        ``os.environ`` (the default), ``RECLAIM_CONTROL`` is removed from it
        once read."""
        env = os.environ if environ is None else environ
        spec = env.get("RECLAIM_CONTROL", "")
        if not spec:
            return cls()
        if env is os.environ:
            del os.environ["RECLAIM_CONTROL"]
        fd = -1
        if spec.startswith("fd:"):
            if spec[3:].isdigit():
                fd = int(spec[3:])
            else:
                _warn("unsupported RECLAIM_CONTROL %r; probe inactive" % spec)
                return cls()
        elif spec.startswith("unix:") or spec.startswith("tcp:"):
            try:
                fd = _connect(spec).detach()
            except (OSError, ValueError) as e:
                _warn("cannot reach the harness at %r: %s; probe inactive" % (spec, e))
                return cls()
        else:
            _warn("unsupported RECLAIM_CONTROL %r (fd:N, unix:PATH, tcp:HOST:PORT); probe inactive" % spec)
            return cls()
        rank = _env_int(env, _RANK_VARIABLES, 0)
        world_size = _env_int(env, _WORLD_SIZE_VARIABLES, 1)
        return cls(fd, rank, world_size)

    # ---- state --------------------------------------------------------------

    @property
    def active(self):
        return self._sock is not None

    @property
    def rank(self):
        return self._rank

    @property
    def world_size(self):
        return self._world_size

    def armed(self, entry, point):
        """Whether (entry, point) was armed at HELLO, e.g. ("fit", "train_batch#2")."""
        return (entry, point) in self._armed

    def occurrences(self, entry, batch_hook):
        """Batches of this kind counted so far in `entry` (0 before the first)."""
        return self._counts.get((entry, batch_hook), 0)

    def close(self):
        """Closes the channel; the probe becomes inactive."""
        if self._sock is not None:
            _live_probes.discard(self)
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    # ---- messages -----------------------------------------------------------

    def hello(self):
        """HELLO, then reads WELCOME, the ARM lines and GO. Idempotent; every
        other call says hello first if it has not been said, because the ARM
        lines arrive in reply to it. Say it early: the harness baselines the
        rank's handles when it receives HELLO."""
        if self._hello_done or self._sock is None:
            return
        self._hello_done = True
        self._send("HELLO %s %d %d %s\n" % (VERSION, os.getpid(), self._rank, PROBE_NAME))
        welcomed = False
        while self._sock is not None:
            line = self._receive()
            if line is None:
                return
            kind, _, rest = line.partition(" ")
            if kind == "WELCOME":
                if rest != VERSION:
                    self._deactivate("harness speaks %s, not %s" % (rest, VERSION))
                    return
                welcomed = True
            elif kind == "ARM":
                fields = rest.split(" ")
                if len(fields) == 2:
                    self._armed.add((fields[0], fields[1]))
            elif kind == "GO":
                if not welcomed:
                    _warn("GO before WELCOME; continuing")
                return
            elif kind == "ERR":
                self._deactivate("harness error: " + rest)
                return
            # Anything else is ignored, as the protocol requires.

    def hook(self, name):
        """HOOK name T — the lifecycle hook `name` was entered. Fire-and-forget."""
        if self._sock is None:
            return
        if not self._hello_done:
            self.hello()
        self._send("HOOK %s %d\n" % (_clean_word(name), time.monotonic_ns()))

    def directive_at(self, entry, hook):
        """The rank reached point `hook` of `entry`; returns the directive
        without acting on it. For a batch hook (a name ending in ``_batch``)
        the probe counts occurrences per (entry, hook) and the point is
        ``train_batch#k``. Only an armed point costs a message (AT) and a
        blocking read; an unarmed one makes no system call."""
        if hook.endswith("_batch"):
            key = (entry, hook)
            k = self._counts.get(key, 0) + 1
            self._counts[key] = k
            if not self._armed:  # the common case: one comparison, no message
                if self._hello_done or self._sock is None:
                    return _GO
                self.hello()
                if not self._armed:
                    return _GO
            point = "%s#%d" % (hook, k)
        else:
            if not self._hello_done and self._sock is not None:
                self.hello()
            if not self._armed:
                return _GO
            point = hook
        if (entry, point) not in self._armed or self._sock is None:
            return _GO
        return self._round_trip(entry, point)

    def at(self, entry, hook):
        """As :meth:`directive_at`, then obeys the directive: returns on GO,
        raises on RAISE, ``os._exit(code)`` on EXIT, blocks forever on HANG."""
        d = self.directive_at(entry, hook)
        if d is not _GO:
            obey(d)

    def audit(self, label):
        """AUDIT label, then waits for AUDITED: the harness audits the rank's
        handles while it is alive (labels ``after-on_exception``, ``after-teardown``)."""
        if self._sock is None:
            return
        if not self._hello_done:
            self.hello()
        self._send("AUDIT %s\n" % _clean_word(label))
        self._await(lambda kind, rest, line: True if kind == "AUDITED" else None, None)

    def event(self, name, text=""):
        """EVENT name T text: a free-form note for the report. Newlines in
        `text` become spaces; overlong text is cut."""
        if self._sock is None:
            return
        if not self._hello_done:
            self.hello()
        name = _clean_word(name)
        if len(name) + 64 > MAX_LINE:
            return
        clean = str(text).replace("\r", " ").replace("\n", " ")
        line = "EVENT %s %d %s" % (name, time.monotonic_ns(), clean)
        data = line.encode("utf-8", "replace")[: MAX_LINE - 1]
        self._send_bytes(data.decode("utf-8", "ignore").encode("utf-8") + b"\n")

    def bye(self, code):
        """BYE code: the rank is about to exit with `code`."""
        if self._sock is None:
            return
        self._send("BYE %d\n" % int(code))

    def barrier(self, name):
        """BARRIER name — a collective of all ranks (``prepare_data``,
        ``post_setup``, ``train_batch#3``, ...): waits until every rank has
        arrived, or until the harness answers ABORT because some rank failed.

        Returns a :class:`BarrierResult`; it never raises for the outcome.
        With one rank, or with a probe that never had a harness, it is ok at
        once and sends nothing. A probe whose channel broke (EOF, an error,
        ``ERR``) is not ok: a rank that lost its rendezvous cannot take part
        in collectives. As at an armed point, a signal handler that raises
        while the probe waits does not lose the answer: the probe reads it,
        then re-raises."""
        if self._world_size <= 1:
            return BarrierResult()
        if self._sock is not None and not self._hello_done:
            self.hello()
        if self._sock is None:
            return BarrierResult(False, _LOST) if self._lost else BarrierResult()
        self._send("BARRIER %s\n" % _clean_word(name))

        def answer(kind, rest, line):
            if kind == "GO" and not rest:
                return BarrierResult()
            if kind == "ABORT":
                return BarrierResult(False, rest)
            return None

        return self._await(answer, BarrierResult(False, _LOST))

    def collective(self, name):
        """As :meth:`barrier`, for code that treats a failed world as an
        error: returns when every rank arrived, raises ``RuntimeError(why)``
        when the collective was aborted or the channel is lost (as a failed
        collective does under torch.distributed)."""
        result = self.barrier(name)
        if not result.ok:
            raise RuntimeError(result.why or "reclaim: collective %r aborted" % name)

    @contextlib.contextmanager
    def point(self, name, entry=None):
        """A hook as a context manager, where the protocol says a point fires:
        HOOK on entering (not for batches); the point at the end of the body,
        except for ``teardown`` (at its start, before anything is released).
        When the body raises, the point does not fire."""
        if entry is None:
            entry = os.environ.get("RECLAIM_ENTRY") or "fit"
        batch = _is_batch_hook(name)
        if not batch:
            self.hook(name)
        if name == "teardown":
            self.at(entry, name)
            yield
        else:
            yield
            self.at(entry, name)

    # ---- channel --------------------------------------------------------------

    def _round_trip(self, entry, point):
        self._send("AT %s %s\n" % (_clean_word(entry), _clean_word(point)))

        def answer(kind, rest, line):
            if kind == "GO" and not rest:
                return _GO
            if kind == "RAISE":
                typ, _, text = rest.partition(" ")
                return Directive(RAISE, typ, text)
            if kind == "EXIT":
                try:
                    return Directive(EXIT, code=int(rest))
                except ValueError:
                    self._deactivate("malformed directive: " + line)
                    return _GO
            if kind == "HANG" and not rest:
                return Directive(HANG)
            return None

        return self._await(answer, _GO)

    def _await(self, answer, default):
        """Reads lines until ``answer(kind, rest, line)`` returns something
        other than None, which is the result. ERR deactivates the probe and a
        broken channel ends the wait; both give `default`. Other lines are
        ignored, as the protocol requires. A signal handler that raises while
        we wait (a signal the harness sent before its answer) does not lose the
        answer: it is read first, then the exception is re-raised — that
        exception is what happens at this point."""
        pending = None
        result = default
        while self._sock is not None:
            line, error = self._receive_keeping_interrupts()
            if error is not None and pending is None:
                pending = error
            if line is None:
                if error is None:
                    break
                continue
            kind, _, rest = line.partition(" ")
            if kind == "ERR":
                self._deactivate("harness error: " + rest)
                break
            got = answer(kind, rest, line)
            if got is not None:
                result = got
                break
        if pending is not None:
            raise pending
        return result

    def _receive_keeping_interrupts(self):
        """(line, None), or (None, exc) when a signal handler raised while we
        waited, or (None, None) when the channel broke."""
        try:
            return self._receive(), None
        except BaseException as e:  # KeyboardInterrupt, or a handler's own exception
            if self._sock is None:
                return None, None
            return None, e

    def _receive(self):
        """Next line without its newline; None when the channel broke."""
        while self._sock is not None:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                if nl + 1 > MAX_LINE:
                    self._deactivate("control line longer than %d bytes" % MAX_LINE)
                    return None
                raw, self._buf = self._buf[:nl], self._buf[nl + 1:]
                if raw.endswith(b"\r"):
                    raw = raw[:-1]
                return raw.decode("utf-8", "replace")
            if len(self._buf) > MAX_LINE:
                self._deactivate("control line longer than %d bytes" % MAX_LINE)
                return None
            try:
                data = self._sock.recv(4096)
            except InterruptedError:
                continue  # a signal the harness sent us; the directive follows
            except OSError as e:
                self._deactivate("control channel read failed: %s" % e)
                return None
            if not data:
                self._deactivate("control channel closed by the harness")
                return None
            self._buf += data
        return None

    def _send(self, line):
        self._send_bytes(line.encode("utf-8", "replace"))

    def _send_bytes(self, data):
        if self._sock is None:
            return
        view = memoryview(data)
        while view:
            try:
                n = self._sock.send(view, socket.MSG_NOSIGNAL)
            except InterruptedError:
                continue
            except OSError as e:
                self._deactivate("control channel send failed: %s" % e)
                return
            view = view[n:]

    def _deactivate(self, why):
        if self._sock is None:
            return
        _warn("%s; probe inactive, continuing" % why)
        self._lost = True
        self.close()

    def _drop_in_child(self):
        # After fork: close our copy without a word on the channel.
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
            self._armed = set()


def _warn(message):
    try:
        sys.stderr.write("reclaim probe: %s\n" % message)
        sys.stderr.flush()
    except Exception:
        pass


# ---- the process's default probe ---------------------------------------------

_default = None


def default():
    """The process's probe, built from the environment on first use."""
    global _default
    if _default is None:
        _default = Probe.from_environment()
    return _default


def use(p):
    """Makes `p` the process's default probe (tests, custom channels);
    returns the previous one (None if none was built yet)."""
    global _default
    previous, _default = _default, p
    return previous


def active():
    return default().active


def hello():
    default().hello()


def hook(name):
    default().hook(name)


def directive_at(entry, hook_name):
    return default().directive_at(entry, hook_name)


def at(entry, hook_name):
    default().at(entry, hook_name)


def audit(label):
    default().audit(label)


def event(name, text=""):
    default().event(name, text)


def bye(code):
    default().bye(code)


def barrier(name):
    """The default probe's :meth:`Probe.barrier`: a :class:`BarrierResult`."""
    return default().barrier(name)


def collective(name):
    """The default probe's :meth:`Probe.collective`: raises RuntimeError when
    the collective failed."""
    default().collective(name)


def point(name, entry=None):
    return default().point(name, entry)


def armed(entry, point_name):
    return default().armed(entry, point_name)


def occurrences(entry, batch_hook):
    return default().occurrences(entry, batch_hook)
