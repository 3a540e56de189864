"""The Python probe with several ranks: barriers (BARRIER, answered by GO or
ABORT), the unix:/tcp: control addresses, and the rank / world size variables
of the launchers. The test plays the harness on a real socketpair or on a
real listening socket the probe connects to."""

import os
import socket
import unittest
from unittest import mock

from fake_harness import FakeHarness, Listener, kinds, raise_while_waiting, read_to_eof, unreachable

import reclaim_probe
from reclaim_probe import probe as probe_module
from reclaim_probe.probe import BarrierResult, Probe

WELCOME = "WELCOME reclaim/1\n"
LOST = "the control channel to the harness is lost: this rank cannot take part in collectives"
LAUNCHER_VARIABLES = ("RECLAIM_CONTROL", "RECLAIM_RANK", "RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK",
                      "RECLAIM_WORLD_SIZE", "WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


class BarrierTest(unittest.TestCase):
    def setUp(self):
        self.h = None

    def tearDown(self):
        if self.h:
            self.h.close()

    def harness(self, replies="", world_size=2, hang_up=True):
        """A probe of rank 1 whose harness has written `replies`; with
        `hang_up`, it then shuts its sending side, so a probe that waits for
        more than the replies finds EOF (a lost channel) rather than hanging."""
        if self.h:
            self.h.close()
        self.h = FakeHarness(replies, rank=1, world_size=world_size)
        if hang_up:
            self.h.sock.shutdown(socket.SHUT_WR)
        return self.h.probe

    def test_go_releases_the_barrier(self):
        p = self.harness(WELCOME + "GO\n" + "GO\n")
        result = p.barrier("post_setup")
        self.assertEqual(result, BarrierResult(True, ""))
        self.assertTrue(result)
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "BARRIER post_setup"])  # the first call says hello
        self.assertTrue(p.active)

    def test_abort_answers_not_ok_with_the_harness_text(self):
        p = self.harness(WELCOME + "GO\n" + "ABORT rank 0 failed: killed by signal SIGKILL\n")
        result = p.barrier("train_batch#3")
        self.assertFalse(result)
        self.assertFalse(result.ok)
        self.assertEqual(result.why, "rank 0 failed: killed by signal SIGKILL")
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "BARRIER train_batch#3"])
        self.assertTrue(p.active)  # an aborted collective is an answer, not channel trouble
        p.bye(1)
        self.assertEqual(self.h.lines(), ["BYE 1"])

    def test_unknown_lines_while_waiting_are_ignored(self):
        p = self.harness(WELCOME + "GO\n" + "PING 1\nGO extra\n" + "GO\n")
        self.assertTrue(p.barrier("teardown").ok)

    def test_with_one_rank_no_message_is_sent(self):
        p = self.harness(WELCOME + "GO\n", world_size=1)
        p.hello()
        self.assertEqual(p.barrier("post_setup"), BarrierResult(True, ""))
        p.bye(0)
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "BYE 0"])

    def test_with_one_rank_not_even_hello_is_said(self):
        p = self.harness("", world_size=1)
        self.assertTrue(p.barrier("post_setup").ok)
        self.assertEqual(self.h.lines(), [])

    def test_without_a_harness_every_barrier_is_passed(self):
        p = Probe.from_environment({"RECLAIM_WORLD_SIZE": "4", "RECLAIM_RANK": "1"})
        self.assertFalse(p.active)
        self.assertTrue(p.barrier("post_setup").ok)
        p.collective("teardown")  # does not raise

    def test_a_channel_lost_while_waiting_is_not_ok(self):
        p = self.harness(WELCOME + "GO\n")  # then the harness hangs up: EOF instead of an answer
        with mock.patch("sys.stderr"):
            result = p.barrier("post_setup")
        self.assertEqual(result, BarrierResult(False, LOST))
        self.assertFalse(p.active)
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "BARRIER post_setup"])

    def test_a_channel_lost_earlier_is_not_ok_and_sends_nothing(self):
        p = self.harness(WELCOME + "ARM fit setup\nGO\n")
        with mock.patch("sys.stderr"):
            p.at("fit", "setup")  # EOF instead of the directive
        self.assertFalse(p.active)
        self.assertEqual(p.barrier("post_setup"), BarrierResult(False, LOST))
        self.assertEqual(p.barrier("teardown"), BarrierResult(False, LOST))
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "AT fit setup"])

    def test_err_while_waiting_is_not_ok(self):
        p = self.harness(WELCOME + "GO\n" + "ERR unexpected BARRIER\n")
        with mock.patch("sys.stderr"):
            result = p.barrier("post_setup")
        self.assertEqual(result, BarrierResult(False, LOST))
        self.assertFalse(p.active)

    def test_a_probe_closed_on_purpose_has_not_lost_its_channel(self):
        p = self.harness(WELCOME + "GO\n")
        p.hello()
        p.close()
        self.assertTrue(p.barrier("teardown").ok)

    def test_names_are_single_fields(self):
        p = self.harness(WELCOME + "GO\n" + "GO\n")
        p.barrier("my barrier\nname")
        self.assertEqual(kinds(self.h.lines())[1], "BARRIER my_barrier_name")

    def test_collective_returns_on_go_and_raises_the_abort_text(self):
        p = self.harness(WELCOME + "GO\n" + "GO\n" + "ABORT rank 0 failed: exited with code 1\n" + "ABORT\n")
        self.assertIsNone(p.collective("post_setup"))
        with self.assertRaises(RuntimeError) as caught:
            p.collective("train_batch#1")
        self.assertEqual(str(caught.exception), "rank 0 failed: exited with code 1")
        with self.assertRaises(RuntimeError) as caught:
            p.collective("train_batch#2")  # an ABORT without text still says what failed
        self.assertEqual(str(caught.exception), "reclaim: collective 'train_batch#2' aborted")

    def test_collective_raises_when_the_channel_is_lost(self):
        p = self.harness(WELCOME + "GO\n")
        with mock.patch("sys.stderr"), self.assertRaises(RuntimeError) as caught:
            p.collective("post_setup")
        self.assertEqual(str(caught.exception), LOST)

    def test_module_and_package_functions_use_the_default_probe(self):
        p = self.harness(WELCOME + "GO\n" + "GO\n" + "ABORT rank 1 failed: hung\n" + "GO\n")
        previous = probe_module.use(p)
        try:
            self.assertTrue(probe_module.barrier("a").ok)
            self.assertEqual(reclaim_probe.barrier("b"), BarrierResult(False, "rank 1 failed: hung"))
            reclaim_probe.collective("c")
        finally:
            probe_module.use(previous)
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "BARRIER a", "BARRIER b", "BARRIER c"])
        for name in ("BarrierResult", "barrier", "collective"):
            self.assertIn(name, reclaim_probe.__all__)
            self.assertIn(name, probe_module.__all__)

    def test_a_raising_signal_handler_does_not_lose_the_answer(self):
        # A handler raises while the probe waits at a barrier (under torchrun
        # the harness signals survivors before it answers ABORT): the probe
        # reads the answer, then re-raises; the next barrier gets its own answer.
        p = self.harness(WELCOME + "GO\n", hang_up=False)
        p.hello()
        self.h.lines()
        raise_while_waiting(self, self.h, b"BARRIER post_setup\n",
                            b"ABORT rank 0 failed: killed by signal SIGKILL\nGO\n",
                            lambda: p.barrier("post_setup"))
        self.assertTrue(p.active)
        self.assertTrue(p.barrier("teardown").ok)  # GO is this one's: ABORT was consumed


class AddressTest(unittest.TestCase):
    """RECLAIM_CONTROL=unix:PATH, unix:@NAME and tcp:HOST:PORT: the probe connects."""

    def test_each_address_form_connects_and_passes_barriers(self):
        for form in ("path", "abstract", "tcp"):
            with self.subTest(form=form):
                listener = Listener(form)
                try:
                    p = Probe.from_environment({"RECLAIM_CONTROL": listener.address, "RECLAIM_RANK": "1",
                                                "RECLAIM_WORLD_SIZE": "2"})
                    self.assertTrue(p.active)
                    conn = listener.accept()
                    try:
                        conn.sendall((WELCOME + "GO\n" + "GO\n" + "ABORT rank 0 failed: hung\n").encode())
                        conn.shutdown(socket.SHUT_WR)  # a probe that waits for more finds EOF
                        self.assertEqual(p.barrier("post_setup"), BarrierResult(True, ""))
                        self.assertEqual(p.barrier("train_batch#1"), BarrierResult(False, "rank 0 failed: hung"))
                        p.bye(1)
                        p.close()
                        self.assertEqual(read_to_eof(conn), [
                            "HELLO reclaim/1 %d 1 python" % os.getpid(), "BARRIER post_setup",
                            "BARRIER train_batch#1", "BYE 1"])
                    finally:
                        conn.close()
                finally:
                    listener.close()

    def test_a_connected_channel_is_not_inherited_and_the_variable_is_removed(self):
        listener = Listener("path")
        try:
            with mock.patch.dict(os.environ, {"RECLAIM_CONTROL": listener.address}):
                p = Probe.from_environment()
                self.assertNotIn("RECLAIM_CONTROL", os.environ)
            conn = listener.accept()
            try:
                self.assertTrue(p.active)
                self.assertFalse(os.get_inheritable(p._sock.fileno()))
                p.close()
            finally:
                conn.close()
        finally:
            listener.close()

    def test_a_tcp_channel_has_nodelay(self):
        listener = Listener("tcp")
        try:
            p = Probe.from_environment({"RECLAIM_CONTROL": listener.address})
            conn = listener.accept()
            try:
                self.assertEqual(p._sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY), 1)
                p.close()
            finally:
                conn.close()
        finally:
            listener.close()

    def test_unreachable_addresses_give_an_inactive_probe(self):
        for form in ("path", "abstract", "tcp"):
            with self.subTest(form=form):
                address, release = unreachable(form)
                try:
                    with mock.patch("sys.stderr") as stderr:
                        p = Probe.from_environment({"RECLAIM_CONTROL": address, "RECLAIM_WORLD_SIZE": "2"})
                    self.assertFalse(p.active)
                    self.assertIn("cannot reach the harness", "".join(c.args[0] for c in stderr.write.call_args_list))
                    self.assertTrue(p.barrier("post_setup").ok)  # it never had a harness
                finally:
                    release()

    def test_malformed_addresses_give_an_inactive_probe(self):
        for spec in ("pipe:3", "fd:", "fd:x", "unix:", "tcp:no-port", "tcp:127.0.0.1:"):
            with self.subTest(spec=spec), mock.patch("sys.stderr"):
                self.assertFalse(Probe.from_environment({"RECLAIM_CONTROL": spec}).active)


class RankVariablesTest(unittest.TestCase):
    """The rank and world size come from RECLAIM_* first, then torchrun's,
    Open MPI's and PMI's variables."""

    def probe_with(self, variables):
        harness_end, rank_end = socket.socketpair()
        env = dict(variables, RECLAIM_CONTROL="fd:%d" % rank_end.detach())
        p = Probe.from_environment(env)
        rank, world_size = p.rank, p.world_size
        p.close()
        harness_end.close()
        return rank, world_size

    def test_fallbacks(self):
        cases = [
            ({}, (0, 1)),
            ({"RANK": "3", "WORLD_SIZE": "4"}, (3, 4)),
            ({"OMPI_COMM_WORLD_RANK": "5", "OMPI_COMM_WORLD_SIZE": "8"}, (5, 8)),
            ({"PMI_RANK": "2", "PMI_SIZE": "3"}, (2, 3)),
            ({"RECLAIM_RANK": "1", "RANK": "3", "RECLAIM_WORLD_SIZE": "2", "WORLD_SIZE": "4"}, (1, 2)),
            ({"RANK": "6", "OMPI_COMM_WORLD_RANK": "5", "WORLD_SIZE": "7", "PMI_SIZE": "9"}, (6, 7)),
            # Empty or malformed values fall through to the next variable.
            ({"RECLAIM_RANK": "", "RANK": "x", "OMPI_COMM_WORLD_RANK": " 2", "PMI_RANK": "7"}, (7, 1)),
            ({"RECLAIM_WORLD_SIZE": "+2", "WORLD_SIZE": "2_0", "PMI_SIZE": "5"}, (0, 5)),
            ({"RECLAIM_WORLD_SIZE": "0"}, (0, 1)),  # at least one rank
        ]
        for variables, expected in cases:
            with self.subTest(variables=variables):
                self.assertEqual(self.probe_with(variables), expected)

    def test_hello_carries_the_rank_from_the_launcher(self):
        harness_end, rank_end = socket.socketpair()
        try:
            p = Probe.from_environment({"RECLAIM_CONTROL": "fd:%d" % rank_end.detach(), "OMPI_COMM_WORLD_RANK": "3",
                                        "OMPI_COMM_WORLD_SIZE": "4"})
            harness_end.sendall((WELCOME + "GO\n" + "GO\n").encode())
            harness_end.shutdown(socket.SHUT_WR)
            self.assertTrue(p.barrier("post_setup").ok)
            p.close()
            self.assertEqual(read_to_eof(harness_end), ["HELLO reclaim/1 %d 3 python" % os.getpid(),
                                                        "BARRIER post_setup"])
        finally:
            harness_end.close()

    def test_os_environ_is_read_by_default(self):
        harness_end, rank_end = socket.socketpair()
        variables = {k: "" for k in LAUNCHER_VARIABLES}
        variables.update({"RECLAIM_CONTROL": "fd:%d" % rank_end.detach(), "PMI_RANK": "2", "PMI_SIZE": "3"})
        try:
            with mock.patch.dict(os.environ, variables):
                p = Probe.from_environment()
            self.assertEqual((p.rank, p.world_size), (2, 3))
            p.close()
        finally:
            harness_end.close()


if __name__ == "__main__":
    unittest.main()
