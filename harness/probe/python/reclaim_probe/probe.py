"""The Python probe: the rank's side of the reclaim/1 wire protocol.

The protocol is harness/protocol/protocol.md. A probe reports *where* the rank
is (HELLO, HOOK, AT, AUDIT, EVENT, BYE) and obeys the directive the harness
answers at an armed point. It never reports the rank's cleanliness: leaks are
found from outside.

Two ways to use it:

* the module-level functions, which talk through the process's default probe
  (built from the environment on first use)::

      from reclaim_probe import probe
      probe.hello()
      with probe.point("setup", entry="fit"):
          ...

* a :class:`Probe` of your own, on any connected stream socket (tests, or a
  program that manages its channel itself).

Contract, for every call:

* Without ``RECLAIM_CONTROL`` in the environment every call is a no-op (batch
  occurrences are still counted), so instrumented code runs as in production.
* Channel trouble (EOF, an error, ``ERR`` from the harness, an overlong line)
  never raises: the probe reports it once on stderr, becomes inactive, and the
  program goes on.
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
    "Directive", "Probe", "hello", "hook", "at", "directive_at", "audit", "event", "bye",
    "point", "armed", "occurrences", "active", "default", "use",
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

    ``Probe()`` is inactive; ``Probe(fd, rank)`` adopts a connected stream
    socket; :meth:`from_environment` reads ``RECLAIM_CONTROL``.
    """

    def __init__(self, fd=-1, rank=0):
        self._sock = None
        self._rank = int(rank)
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
        """The probe described by ``RECLAIM_CONTROL`` (``fd:N``) and
        ``RECLAIM_RANK``; inactive when the variable is absent. A malformed
        value is reported on stderr and gives an inactive probe. When
        ``environ`` is ``os.environ`` (the default), ``RECLAIM_CONTROL`` is
        removed from it once read."""
        env = os.environ if environ is None else environ
        spec = env.get("RECLAIM_CONTROL", "")
        if not spec:
            return cls()
        if env is os.environ:
            del os.environ["RECLAIM_CONTROL"]
        fd = -1
        if spec.startswith("fd:") and spec[3:].isdigit():
            fd = int(spec[3:])
        if fd < 0:
            _warn("unsupported RECLAIM_CONTROL %r; probe inactive" % spec)
            return cls()
        try:
            rank = int(env.get("RECLAIM_RANK", "0") or "0")
        except ValueError:
            rank = 0
        return cls(fd, rank)

    # ---- state --------------------------------------------------------------

    @property
    def active(self):
        return self._sock is not None

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
        pending = None
        while self._sock is not None:
            line, error = self._receive_keeping_interrupts()
            if error is not None and pending is None:
                pending = error
            if line is None:
                if error is None:
                    break
                continue
            kind, _, rest = line.partition(" ")
            if kind == "AUDITED":
                break
            if kind == "ERR":
                self._deactivate("harness error: " + rest)
                break
        if pending is not None:
            raise pending

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
        pending = None
        directive = _GO
        while self._sock is not None:
            line, error = self._receive_keeping_interrupts()
            if error is not None and pending is None:
                pending = error
            if line is None:
                if error is None:
                    break
                continue
            kind, _, rest = line.partition(" ")
            if kind == "GO" and not rest:
                break
            if kind == "RAISE":
                typ, _, text = rest.partition(" ")
                directive = Directive(RAISE, typ, text)
                break
            if kind == "EXIT":
                try:
                    directive = Directive(EXIT, code=int(rest))
                except ValueError:
                    self._deactivate("malformed directive: " + line)
                break
            if kind == "HANG" and not rest:
                directive = Directive(HANG)
                break
            if kind == "ERR":
                self._deactivate("harness error: " + rest)
                break
        if pending is not None:
            # The signal the harness sent before its directive ended up raising
            # in our handler: that exception is what happens at this point.
            raise pending
        return directive

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


def point(name, entry=None):
    return default().point(name, entry)


def armed(entry, point_name):
    return default().armed(entry, point_name)


def occurrences(entry, batch_hook):
    return default().occurrences(entry, batch_hook)
