"""A scripted harness for the probe's unit tests: one end of a socketpair, or
a listening socket the probe connects to (unix:PATH, unix:@NAME, tcp:HOST:PORT).

The harness's replies are written before the probe reads them (the probe
reads them in order), so tests need no threads and no waiting: what the probe
sent is in the socket by the time its call returns (for a socketpair; over a
listening socket, read it with read_to_eof once the probe closed its end).
"""

import os
import signal
import socket
import sys
import tempfile
import threading
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from reclaim_probe.probe import Probe  # noqa: E402


DEADLINE_S = 30.0  # generous: a loaded 2-core CI machine; only reached when a test fails


class FakeHarness:
    def __init__(self, replies="", rank=0, world_size=1):
        self.sock, rank_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.fd = rank_end.detach()
        self.probe = Probe(self.fd, rank, world_size)
        self._pending = b""
        if replies:
            self.send(replies)

    def send(self, text):
        self.sock.sendall(text.encode("utf-8"))

    def lines(self):
        """Every complete line the probe has sent since the last call."""
        self.sock.setblocking(False)
        try:
            while True:
                try:
                    data = self.sock.recv(65536)
                except BlockingIOError:
                    break
                if not data:
                    break
                self._pending += data
        finally:
            self.sock.setblocking(True)
        *done, self._pending = self._pending.split(b"\n")
        return [d.decode("utf-8") for d in done]

    def close(self):
        self.probe.close()
        self.sock.close()


class Listener:
    """The harness's listening end for a probe that connects: `form` is
    "path" (unix:PATH), "abstract" (unix:@NAME) or "tcp" (tcp:127.0.0.1:PORT,
    the port from binding port 0). `address` is the RECLAIM_CONTROL value."""

    def __init__(self, form):
        self._dir = None
        if form == "tcp":
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.bind(("127.0.0.1", 0))
            self.address = "tcp:127.0.0.1:%d" % self.sock.getsockname()[1]
        elif form == "abstract":
            name = "reclaim-probe-test-%d-%s" % (os.getpid(), uuid.uuid4().hex)
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind("\0" + name)
            self.address = "unix:@" + name
        elif form == "path":
            self._dir = tempfile.TemporaryDirectory()
            path = os.path.join(self._dir.name, "control.sock")
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(path)
            self.address = "unix:" + path
        else:
            raise ValueError(form)
        self.sock.listen(4)
        self.sock.settimeout(DEADLINE_S)

    def accept(self):
        """The probe's connection (blocking, with the deadline)."""
        conn, _ = self.sock.accept()
        conn.settimeout(DEADLINE_S)
        return conn

    def close(self):
        self.sock.close()
        if self._dir is not None:
            self._dir.cleanup()


def unreachable(form):
    """(address, release): a RECLAIM_CONTROL address of `form` nobody listens
    on, and the call that frees what keeps it so (a tcp port bound without
    listening, which no one else can take meanwhile)."""
    if form == "tcp":
        keep = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        keep.bind(("127.0.0.1", 0))
        return "tcp:127.0.0.1:%d" % keep.getsockname()[1], keep.close
    if form == "abstract":
        return "unix:@reclaim-probe-test-nobody-%d-%s" % (os.getpid(), uuid.uuid4().hex), lambda: None
    keep = tempfile.TemporaryDirectory()
    return "unix:" + os.path.join(keep.name, "nobody.sock"), keep.cleanup


def read_to_eof(sock):
    """Every line `sock` receives until the other end closes (with the
    deadline set on the socket; a connection reset counts as the close)."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            break
        data += chunk
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # else a partial last line stays, for the test to see
    return [line.decode("utf-8") for line in lines]


def kinds(lines):
    """["HOOK setup 123", "AT fit setup"] -> ["HOOK setup", "AT fit setup"]:
    drops timestamps so tests compare what happened, not when."""
    out = []
    for line in lines:
        words = line.split(" ")
        if words[0] == "HOOK":
            out.append("HOOK " + words[1])
        elif words[0] == "EVENT":
            out.append("EVENT " + words[1] + " " + " ".join(words[3:]))
        elif words[0] == "HELLO":
            out.append("HELLO")
        else:
            out.append(line)
    return out


class Interrupt(Exception):
    """What the SIGUSR1 handler of raise_while_waiting raises."""


def raise_while_waiting(test, harness, expect, replies, call):
    """Runs `call()` while, on another thread, the harness waits for the probe
    to send `expect`, raises SIGUSR1 in the main thread (whose handler raises
    Interrupt, as Python's SIGINT handler raises KeyboardInterrupt) and only
    then sends `replies`. Asserts that `call()` raised Interrupt."""
    handled = threading.Event()

    def handler(signo, frame):
        handled.set()
        raise Interrupt()

    def harness_side():
        # The signal must reach the main thread, blocked in its read.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        harness.sock.settimeout(DEADLINE_S)
        test.assertEqual(harness.sock.recv(4096), expect)
        os.kill(os.getpid(), signal.SIGUSR1)
        if handled.wait(DEADLINE_S):
            harness.sock.sendall(replies)

    old = signal.signal(signal.SIGUSR1, handler)
    thread = threading.Thread(target=harness_side)
    try:
        thread.start()
        with test.assertRaises(Interrupt):
            call()
        thread.join(DEADLINE_S)
    finally:
        signal.signal(signal.SIGUSR1, old)
        harness.sock.settimeout(None)
