#!/usr/bin/python3
"""Plays the harness side of reclaim/1 against a probe, from shared transcripts.

    run_conformance.py --probe NAME [--expect-mismatch] [TRANSCRIPT...] -- CMD [ARGS...]

For each transcript (default: every *.txt beside this script) it starts
``CMD ARGS... TRANSCRIPT`` with one end of a socketpair as its control channel
(``RECLAIM_CONTROL=fd:N``) and the transcript's ``env`` variables, then walks
the transcript: writes the ``harness>`` lines, acts on the ``harness!`` lines
(a signal, closing the channel), reads and matches the ``rank<`` lines, and
finally checks the rank's stdout (``out<``) and how it ended (``exit<``). The
format is README.md beside this script. Exit status: 0 when every transcript
matched (with --expect-mismatch: when every transcript failed to match), 1
otherwise, 2 for a bad command line or transcript.

Every wait has a deadline; nothing sleeps.
"""

import argparse
import glob
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DEADLINE_S = 10.0      # generous: a loaded 2-core CI machine
QUIET_S = 0.3          # "nothing more happens": how long a hanging rank must stay silent

# Where the probes read their rank and world size. A transcript's rank must
# not inherit them from whoever runs this script (a CI job under a launcher):
# RECLAIM_RANK is always set, the world size only by an `env` line.
RANK_VARIABLES = ("RECLAIM_RANK", "RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK",
                  "RECLAIM_WORLD_SIZE", "WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


class Mismatch(Exception):
    pass


class TranscriptError(Exception):
    pass


def parse_transcript(path, probe):
    """Returns (env, steps, outs, end): the variables to set in the rank's
    environment, the conversation, the expected stdout lines for `probe`, and
    the expected end ("0", "7", "signal SIGTERM", "hang")."""
    env, steps, outs, end = {}, [], [], "0"
    closed = False
    with open(path, encoding="utf-8") as f:
        for number, raw in enumerate(f.read().splitlines(), 1):
            line = raw.rstrip("\r")
            if not line or line.startswith("#") or line.startswith("call "):
                continue
            where = "%s:%d" % (path, number)
            if line.startswith("env "):
                m = re.fullmatch(r"env ([A-Za-z_][A-Za-z0-9_]*)=(.*)", line)
                if not m:
                    raise TranscriptError("%s: expected 'env NAME=VALUE', got %r" % (where, line))
                if m.group(1) == "RECLAIM_CONTROL":
                    raise TranscriptError("%s: RECLAIM_CONTROL is the runner's (the socketpair)" % where)
                env[m.group(1)] = m.group(2)
                continue
            m = re.match(r"^(harness>|harness!|rank<|exit<|out(?:\[([a-z,+]+)\])?<) ?(.*)$", line)
            if not m:
                raise TranscriptError("%s: cannot read %r" % (where, line))
            tag, only, text = m.group(1), m.group(2), m.group(3)
            if tag.startswith("out"):
                if only is None or probe in only.split(","):
                    outs.append(text)
            elif tag == "exit<":
                end = text.strip()
            else:
                words = text.split()
                if tag == "harness!" and words != ["close"] and (len(words) != 2 or words[0] != "signal"):
                    raise TranscriptError("%s: expected 'harness! signal NAME' or 'harness! close'" % where)
                if tag == "harness>" and closed:
                    raise TranscriptError("%s: the harness writes after 'harness! close'" % where)
                closed = closed or (tag == "harness!" and words == ["close"])
                steps.append((number, tag, text))
    return env, steps, outs, end


def matches(pattern, line, ctx):
    """Token-wise match: {pid} the rank's pid, {probe} the probe's name,
    {t} a monotonic timestamp (an integer not before the previous one and
    not after now), {int} any integer. Everything else literally."""
    pw, lw = pattern.split(" "), line.split(" ")
    if len(pw) != len(lw):
        return False
    for p, w in zip(pw, lw):
        if p == "{pid}":
            if w != str(ctx["pid"]):
                return False
        elif p == "{probe}":
            if w != ctx["probe"]:
                return False
        elif p == "{t}":
            if not re.fullmatch(r"[0-9]+", w):
                return False
            t = int(w)
            if t < ctx["last_t"] or t > time.monotonic_ns():
                return False
            ctx["last_t"] = t
        elif p == "{int}":
            if not re.fullmatch(r"-?[0-9]+", w):
                return False
        elif p != w:
            return False
    return True


class Channel:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def read_line(self, deadline):
        """The next line, or None at EOF; raises Mismatch at the deadline."""
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line, self.buf = self.buf[:nl], self.buf[nl + 1:]
                return line.decode("utf-8", "replace")
            if self.eof:
                if self.buf:
                    raise Mismatch("the rank sent a partial line %r before closing" % self.buf)
                return None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Mismatch("timed out waiting for the rank")
            ready, _, _ = select.select([self.sock], [], [], remaining)
            if not ready:
                continue
            try:
                data = self.sock.recv(4096)
            except ConnectionResetError:
                # The probe closed its end with our lines still unread in it
                # (Linux reports that as a reset): it hung up, like EOF.
                data = b""
            if not data:
                self.eof = True
            self.buf += data

    def quiet_for(self, seconds):
        """True when nothing arrives for `seconds` (a hanging rank)."""
        if self.buf:
            return False
        ready, _, _ = select.select([self.sock], [], [], seconds)
        return not ready

    def write_line(self, text):
        try:
            self.sock.sendall((text + "\n").encode("utf-8"), socket.MSG_NOSIGNAL)
        except OSError:
            pass  # a probe that closed its channel: what it does next is the test

    def close_for_writing(self):
        """The harness drops the channel as the rank sees it: its reads find
        EOF. We keep reading, so whatever the rank still sends (it should
        send nothing) is seen rather than lost in a closed socket."""
        self.sock.shutdown(socket.SHUT_WR)


def wait_blocked(pid, deadline):
    # The rank should be blocked in its read of the directive when the signal
    # comes, so that the read is the thing interrupted. Its scheduler state is
    # the only outside view of that; we look until it says "sleeping".
    while time.monotonic() < deadline:
        try:
            with open("/proc/%d/stat" % pid) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "S":
            return
        os.sched_yield()


def wait_exit(proc, deadline):
    """The process's returncode, or None if it is still running at the deadline."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    try:
        while proc.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if pidfd is not None:
                select.select([pidfd], [], [], remaining)
            else:
                try:
                    proc.wait(timeout=remaining)
                except subprocess.TimeoutExpired:
                    return None
        return proc.returncode
    finally:
        if pidfd is not None:
            os.close(pidfd)


def describe_end(code):
    if code is None:
        return "hang"
    if code < 0:
        return "signal " + signal.Signals(-code).name
    return str(code)


def run_one(path, probe, command):
    extra_env, steps, outs, end = parse_transcript(path, probe)
    harness_end, rank_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = {k: v for k, v in os.environ.items() if k not in RANK_VARIABLES}
    env["RECLAIM_RANK"] = "0"
    env["RECLAIM_ENTRY"] = "fit"
    env.update(extra_env)
    env["RECLAIM_CONTROL"] = "fd:%d" % rank_end.fileno()
    proc = subprocess.Popen(command + [path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            env=env, pass_fds=[rank_end.fileno()])
    rank_end.close()
    channel = Channel(harness_end)
    ctx = {"pid": proc.pid, "probe": probe, "last_t": 0}
    deadline = time.monotonic() + DEADLINE_S
    try:
        for number, tag, text in steps:
            where = "%s:%d" % (os.path.basename(path), number)
            if tag == "harness>":
                channel.write_line(text)
            elif tag == "harness!":
                words = text.split()
                if words == ["close"]:
                    channel.close_for_writing()
                else:
                    wait_blocked(proc.pid, deadline)
                    os.kill(proc.pid, getattr(signal, words[1]))
            else:  # rank<
                line = channel.read_line(deadline)
                if text == "EOF":
                    if line is not None:
                        raise Mismatch("%s: expected the channel to close, got %r" % (where, line))
                elif line is None:
                    raise Mismatch("%s: expected %r, the channel closed" % (where, text))
                elif not matches(text, line, ctx):
                    raise Mismatch("%s: expected %r, got %r" % (where, text, line))
        if end == "hang":
            if not channel.quiet_for(QUIET_S) or proc.poll() is not None:
                raise Mismatch("expected the rank to hang silently; it did not (%s)" % describe_end(proc.poll()))
            proc.kill()
            wait_exit(proc, deadline)
            code = None
        else:
            # Nothing more may come: the rank's next word is EOF.
            line = channel.read_line(deadline)
            if line is not None:
                raise Mismatch("unexpected line from the rank after the transcript: %r" % line)
            code = wait_exit(proc, deadline)
            if code is None:
                raise Mismatch("the rank did not exit")
        got_out = proc.stdout.read().decode("utf-8", "replace").splitlines()
        if got_out != outs:
            raise Mismatch("stdout: expected %r, got %r" % (outs, got_out))
        if describe_end(code) != end:
            raise Mismatch("expected the rank to end with %s, it ended with %s" % (end, describe_end(code)))
    finally:
        if proc.poll() is None:
            proc.kill()
            wait_exit(proc, time.monotonic() + DEADLINE_S)
        proc.stdout.close()
        harness_end.close()


def main(argv):
    if "--" not in argv:
        sys.stderr.write("usage: run_conformance.py --probe NAME [--expect-mismatch] [TRANSCRIPT...] -- CMD...\n")
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(prog="run_conformance.py")
    parser.add_argument("--probe", required=True, help="the name the probe gives in HELLO: cpp, python, c")
    parser.add_argument("--expect-mismatch", action="store_true",
                        help="every transcript must fail to match (tests this runner)")
    parser.add_argument("transcripts", nargs="*")
    args = parser.parse_args(argv[:split])
    command = argv[split + 1:]
    if not command:
        sys.stderr.write("run_conformance.py: no rank command after --\n")
        return 2
    transcripts = args.transcripts or sorted(glob.glob(os.path.join(HERE, "*.txt")))
    if not transcripts:
        sys.stderr.write("run_conformance.py: no transcripts\n")
        return 2
    failures = 0
    for path in transcripts:
        name = os.path.basename(path)
        try:
            run_one(path, args.probe, command)
            outcome = None
        except Mismatch as e:
            outcome = str(e)
        except TranscriptError as e:
            sys.stderr.write("run_conformance.py: %s\n" % e)
            return 2
        if args.expect_mismatch:
            if outcome is None:
                failures += 1
                print("FAIL %s [%s]: matched, but a mismatch was expected" % (name, args.probe))
            else:
                print("ok   %s [%s]: mismatch as expected: %s" % (name, args.probe, outcome))
        elif outcome is None:
            print("ok   %s [%s]" % (name, args.probe))
        else:
            failures += 1
            print("FAIL %s [%s]: %s" % (name, args.probe, outcome))
    sys.stdout.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
