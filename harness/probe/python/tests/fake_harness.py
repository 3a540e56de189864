"""A scripted harness for the probe's unit tests: one end of a socketpair.

The harness's replies are written before the probe reads them (the probe
reads them in order), so tests need no threads and no waiting: what the probe
sent is in the socket by the time its call returns.
"""

import os
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from reclaim_probe.probe import Probe  # noqa: E402


class FakeHarness:
    def __init__(self, replies="", rank=0):
        self.sock, rank_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.fd = rank_end.detach()
        self.probe = Probe(self.fd, rank)
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
