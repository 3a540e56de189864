"""The C probe (harness/probe/c/reclaim_probe.h) with several ranks: barriers,
the unix:/tcp: control addresses, and the launchers' rank / world size
variables. probe_test (probe_test.c, built by CMake) is the rank, run with a
script of `call` lines; the test plays the harness on a real socketpair or a
real listening socket.

probe_test is $RECLAIM_C_PROBE_TEST, else ./probe_test: ctest runs these tests
in build/tests/python, where CMake puts it.
"""

import os
import select
import socket
import subprocess
import tempfile
import unittest

from fake_harness import DEADLINE_S, Listener, read_to_eof, unreachable

WELCOME = "WELCOME reclaim/1\n"
LOST = "the control channel to the harness is lost: this rank cannot take part in collectives"
LAUNCHER_VARIABLES = ("RECLAIM_CONTROL", "RECLAIM_RANK", "RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK",
                      "RECLAIM_WORLD_SIZE", "WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


def probe_test_binary():
    path = os.environ.get("RECLAIM_C_PROBE_TEST") or os.path.abspath("probe_test")
    if not os.access(path, os.X_OK):
        raise AssertionError("no probe_test at %s: build it (cmake --build) and run these tests from "
                             "build/tests/python, or set RECLAIM_C_PROBE_TEST" % path)
    return path


class Run:
    """How one run of probe_test went: what it sent the harness, printed, and exited with."""

    def __init__(self, sent, out, err, code):
        self.sent, self.out, self.err, self.code = sent, out, err, code


def run_rank(calls, variables, replies="", channel="socketpair"):
    """Runs probe_test with `calls` (["hello", "barrier post_setup", ...]) and
    `variables` in its environment (no other launcher variable), reaching the
    harness over `channel`: "socketpair" (fd:N), "path", "abstract", "tcp", or
    None (no RECLAIM_CONTROL). The harness writes `replies` at once, then
    hangs up its sending side: a probe that waits for more than the replies
    finds EOF (a lost channel) rather than hanging."""
    binary = probe_test_binary()
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARIABLES}
    env.update(variables)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as script:
        script.write("".join("call %s\n" % c for c in calls))
        script.flush()
        listener = harness_end = rank_end = None
        try:
            if channel == "socketpair":
                harness_end, rank_end = socket.socketpair()
                harness_end.settimeout(DEADLINE_S)
                env["RECLAIM_CONTROL"] = "fd:%d" % rank_end.fileno()
            elif channel is not None:
                listener = Listener(channel)
                env["RECLAIM_CONTROL"] = listener.address
            proc = subprocess.Popen([binary, script.name], env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    pass_fds=[rank_end.fileno()] if rank_end else [])
            try:
                if rank_end is not None:
                    rank_end.close()
                if listener is not None:
                    connected_or_exited(listener, proc)
                    harness_end = listener.accept()
                sent = []
                if harness_end is not None:
                    # A rank that expects nothing may have finished and closed
                    # its end already: what it sent is still read below.
                    try:
                        if replies:
                            harness_end.sendall(replies.encode("utf-8"))
                        harness_end.shutdown(socket.SHUT_WR)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    sent = read_to_eof(harness_end)
                out, err = proc.communicate(timeout=DEADLINE_S)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
                proc.stderr.close()
        finally:
            if harness_end is not None:
                harness_end.close()
            if listener is not None:
                listener.close()
    return Run(sent, out.decode("utf-8").splitlines(), err.decode("utf-8", "replace"), proc.returncode)


def connected_or_exited(listener, proc):
    """Waits until the rank connects to `listener`; fails at once if it exits first."""
    pidfd = os.pidfd_open(proc.pid)
    try:
        ready, _, _ = select.select([listener.sock, pidfd], [], [], DEADLINE_S)
    finally:
        os.close(pidfd)
    if listener.sock not in ready:
        proc.wait(DEADLINE_S)
        raise AssertionError("probe_test did not connect to %s; stderr: %s"
                             % (listener.address, proc.stderr.read().decode("utf-8", "replace")))


def hello(rank, pid="{pid}"):
    return "HELLO reclaim/1 %s %d c" % (pid, rank)


class CProbeTest(unittest.TestCase):
    def assertSent(self, run, expected):
        # HELLO carries probe_test's pid, which only the run knows: compare it word by word.
        self.assertEqual(len(run.sent), len(expected), run.sent)
        for got, want in zip(run.sent, expected):
            if want.startswith("HELLO"):
                g, w = got.split(" "), want.split(" ")
                self.assertTrue(g[2].isdigit(), got)
                self.assertEqual(g[:2] + g[3:], w[:2] + w[3:])
            else:
                self.assertEqual(got, want)

    def test_go_releases_the_barrier_over_every_channel(self):
        for channel in ("socketpair", "path", "abstract", "tcp"):
            with self.subTest(channel=channel):
                run = run_rank(["hello", "barrier post_setup", "active", "bye 0"],
                               {"RECLAIM_RANK": "1", "RECLAIM_WORLD_SIZE": "2"},
                               WELCOME + "GO\n" + "GO\n", channel)
                self.assertEqual(run.code, 0, run.err)
                self.assertEqual(run.out, ["barrier ok", "active 1"])
                self.assertSent(run, [hello(1), "BARRIER post_setup", "BYE 0"])

    def test_abort_answers_not_ok_with_the_harness_text(self):
        for channel in ("socketpair", "path", "abstract", "tcp"):
            with self.subTest(channel=channel):
                run = run_rank(["barrier post_setup", "barrier train_batch#2", "bye 1"],
                               {"RECLAIM_RANK": "0", "RECLAIM_WORLD_SIZE": "3"},
                               WELCOME + "GO\n" + "GO\n" + "ABORT rank 2 failed: killed by signal SIGKILL\n",
                               channel)
                self.assertEqual(run.code, 0, run.err)
                self.assertEqual(run.out, ["barrier ok", "barrier abort rank 2 failed: killed by signal SIGKILL"])
                # The first call says hello; an ABORT leaves the channel usable.
                self.assertSent(run, [hello(0), "BARRIER post_setup", "BARRIER train_batch#2", "BYE 1"])

    def test_unknown_lines_while_waiting_are_ignored_and_a_long_abort_text_is_cut(self):
        text = "rank 1 failed: " + "x" * 400
        run = run_rank(["hello", "barrier a", "barrier b"], {"WORLD_SIZE": "2"},
                       WELCOME + "GO\n" + "PING 1\nGOT it\nGO\n" + "ABORT " + text + "\n")
        self.assertEqual(run.out, ["barrier ok", "barrier abort " + text[:255]])

    def test_with_one_rank_no_message_is_sent(self):
        # RECLAIM_WORLD_SIZE wins over WORLD_SIZE.
        run = run_rank(["hello", "barrier post_setup", "bye 0"], {"RECLAIM_WORLD_SIZE": "1", "WORLD_SIZE": "4"},
                       WELCOME + "GO\n")
        self.assertEqual(run.out, ["barrier ok"])
        self.assertSent(run, [hello(0), "BYE 0"])

        run = run_rank(["barrier post_setup", "bye 0"], {}, "")  # no world size at all: one rank, not even HELLO
        self.assertEqual(run.out, ["barrier ok"])
        self.assertSent(run, ["BYE 0"])

    def test_without_a_harness_every_barrier_is_passed(self):
        run = run_rank(["barrier post_setup", "active"], {"RECLAIM_WORLD_SIZE": "4"}, channel=None)
        self.assertEqual(run.out, ["barrier ok", "active 0"])

    def test_a_channel_lost_while_waiting_is_not_ok(self):
        for channel in ("socketpair", "tcp"):
            with self.subTest(channel=channel):
                # The harness hangs up after its HELLO replies: EOF instead of an answer.
                run = run_rank(["hello", "barrier post_setup", "barrier teardown", "active", "bye 1"],
                               {"RECLAIM_WORLD_SIZE": "2"}, WELCOME + "GO\n", channel)
                self.assertEqual(run.code, 0, run.err)
                self.assertEqual(run.out, ["barrier abort " + LOST, "barrier abort " + LOST, "active 0"])
                self.assertIn("control channel closed by the harness", run.err)
                # Once lost, nothing more is sent: neither the second BARRIER nor BYE.
                self.assertSent(run, [hello(0), "BARRIER post_setup"])

    def test_err_while_waiting_is_not_ok(self):
        run = run_rank(["barrier post_setup", "active"], {"RECLAIM_WORLD_SIZE": "2"},
                       WELCOME + "GO\n" + "ERR unexpected BARRIER\n")
        self.assertEqual(run.out, ["barrier abort " + LOST, "active 0"])

    def test_names_are_single_fields(self):
        run = run_rank(["barrier my barrier"], {"RECLAIM_WORLD_SIZE": "2"}, WELCOME + "GO\n" + "GO\n")
        self.assertSent(run, [hello(0), "BARRIER my_barrier"])

    def test_the_rank_comes_from_the_launchers_variables(self):
        cases = [
            ({}, 0),
            ({"RANK": "3"}, 3),
            ({"OMPI_COMM_WORLD_RANK": "5"}, 5),
            ({"PMI_RANK": "2"}, 2),
            ({"RECLAIM_RANK": "1", "RANK": "3", "OMPI_COMM_WORLD_RANK": "5", "PMI_RANK": "2"}, 1),
            ({"RANK": "6", "OMPI_COMM_WORLD_RANK": "5"}, 6),
            # Empty or malformed values fall through to the next variable.
            ({"RECLAIM_RANK": "", "RANK": "x", "OMPI_COMM_WORLD_RANK": " 2", "PMI_RANK": "7"}, 7),
            ({"RECLAIM_RANK": "+4", "RANK": "4x", "PMI_RANK": "9"}, 9),
        ]
        for variables, rank in cases:
            with self.subTest(variables=variables):
                run = run_rank(["hello"], variables, WELCOME + "GO\n")
                self.assertSent(run, [hello(rank)])

    def test_the_world_size_comes_from_the_launchers_variables(self):
        # A world of several ranks sends BARRIER; a world of one does not.
        cases = [
            ({"WORLD_SIZE": "2"}, True),
            ({"OMPI_COMM_WORLD_SIZE": "4"}, True),
            ({"PMI_SIZE": "3"}, True),
            ({"WORLD_SIZE": "1", "OMPI_COMM_WORLD_SIZE": "4"}, False),
            ({"RECLAIM_WORLD_SIZE": "", "WORLD_SIZE": "two", "PMI_SIZE": "2"}, True),
            ({"RECLAIM_WORLD_SIZE": "0", "WORLD_SIZE": "4"}, False),  # 0 is read, and means one rank
        ]
        for variables, several in cases:
            with self.subTest(variables=variables):
                run = run_rank(["hello", "barrier post_setup"], variables,
                               WELCOME + "GO\n" + ("GO\n" if several else ""))
                self.assertEqual(run.out, ["barrier ok"])
                self.assertSent(run, [hello(0)] + (["BARRIER post_setup"] if several else []))

    def test_unreachable_addresses_give_an_inactive_probe(self):
        for form in ("path", "abstract", "tcp"):
            with self.subTest(form=form):
                address, release = unreachable(form)
                try:
                    run = run_rank(["active", "barrier post_setup"],
                                   {"RECLAIM_CONTROL": address, "RECLAIM_WORLD_SIZE": "2"}, channel=None)
                finally:
                    release()
                self.assertEqual(run.out, ["active 0", "barrier ok"])  # it never had a harness
                self.assertIn("cannot reach the harness at '%s'" % address, run.err)

    def test_malformed_addresses_give_an_inactive_probe(self):
        for spec in ("pipe:3", "fd:", "fd:x", "unix:", "tcp:no-port", "tcp:127.0.0.1:"):
            with self.subTest(spec=spec):
                run = run_rank(["active"], {"RECLAIM_CONTROL": spec}, channel=None)
                self.assertEqual(run.out, ["active 0"])
                self.assertIn("probe inactive", run.err)


if __name__ == "__main__":
    unittest.main()
