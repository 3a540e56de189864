"""Unit tests of the Python probe (reclaim_probe.probe) against a scripted harness."""

import os
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from unittest import mock

from fake_harness import FakeHarness, kinds, raise_while_waiting

from reclaim_probe import probe as probe_module
from reclaim_probe.probe import Directive, Probe

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WELCOME = "WELCOME reclaim/1\n"


class NoHarnessTest(unittest.TestCase):
    def test_without_control_variable_every_call_is_a_no_op(self):
        p = Probe.from_environment({})
        self.assertFalse(p.active)
        p.hello()
        p.hook("setup")
        p.at("fit", "setup")
        p.audit("after-teardown")
        p.event("note", "text")
        p.bye(0)
        with p.point("setup", entry="fit"):
            pass
        self.assertEqual(p.directive_at("fit", "train_batch"), Directive())

    def test_batches_are_counted_even_without_a_harness(self):
        p = Probe()
        for _ in range(3):
            p.at("fit", "train_batch")
        p.at("fit", "val_batch")
        p.at("test", "train_batch")
        self.assertEqual(p.occurrences("fit", "train_batch"), 3)
        self.assertEqual(p.occurrences("fit", "val_batch"), 1)
        self.assertEqual(p.occurrences("test", "train_batch"), 1)
        self.assertEqual(p.occurrences("fit", "test_batch"), 0)

    def test_module_functions_use_the_default_probe(self):
        previous = probe_module.use(Probe())
        try:
            self.assertFalse(probe_module.active())
            probe_module.hello()
            with probe_module.point("setup", entry="fit"):
                pass
            probe_module.at("fit", "train_batch")
            self.assertEqual(probe_module.occurrences("fit", "train_batch"), 1)
        finally:
            probe_module.use(previous)

    def test_importing_needs_neither_lightning_nor_torch_and_does_nothing(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECLAIM_")}
        code = ("import sys; import reclaim_probe; from reclaim_probe import probe;"
                "probe.hello(); probe.at('fit','train_batch');"
                "assert not probe.active();"
                "assert 'torch' not in sys.modules and 'lightning' not in sys.modules;"
                "import reclaim_probe.lightning as l; print(l.Callback is object or l.Callback.__name__)")
        out = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE_DIR, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr.decode())
        self.assertEqual(out.stderr, b"")

    def test_malformed_control_variable_gives_an_inactive_probe(self):
        with mock.patch("sys.stderr"):
            self.assertFalse(Probe.from_environment({"RECLAIM_CONTROL": "pipe:3"}).active)
            self.assertFalse(Probe.from_environment({"RECLAIM_CONTROL": "fd:"}).active)

    def test_an_fd_that_is_not_a_socket_is_never_written_to(self):
        with tempfile.TemporaryFile() as f, mock.patch("sys.stderr"):
            p = Probe.from_environment({"RECLAIM_CONTROL": "fd:%d" % f.fileno()})
            self.assertFalse(p.active)
            p.hook("setup")
            f.seek(0)
            self.assertEqual(f.read(), b"")


class ChannelTest(unittest.TestCase):
    def setUp(self):
        self.h = None

    def tearDown(self):
        if self.h:
            self.h.close()

    def harness(self, replies="", rank=0):
        if self.h:
            self.h.close()
        self.h = FakeHarness(replies, rank)
        return self.h.probe

    def test_hello_reads_welcome_arms_and_go_and_ignores_unknown_lines(self):
        p = self.harness("PING 1\n" + WELCOME + "ARM fit setup\nSOMETHING new\nARM fit train_batch#2\nGO\n", rank=3)
        p.hello()
        hello = self.h.lines()
        self.assertEqual(hello, ["HELLO reclaim/1 %d 3 python" % os.getpid()])
        self.assertTrue(p.armed("fit", "setup"))
        self.assertTrue(p.armed("fit", "train_batch#2"))
        self.assertFalse(p.armed("test", "setup"))
        p.hello()  # idempotent
        self.assertEqual(self.h.lines(), [])

    def test_first_call_says_hello(self):
        p = self.harness(WELCOME + "GO\n")
        p.hook("prepare_data")
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "HOOK prepare_data"])

    def test_hook_timestamps_are_monotonic_ns(self):
        p = self.harness(WELCOME + "GO\n")
        before = time.monotonic_ns()
        p.hook("setup")
        after = time.monotonic_ns()
        t = int(self.h.lines()[1].split()[2])
        self.assertTrue(before <= t <= after)

    def test_unarmed_points_send_nothing(self):
        p = self.harness(WELCOME + "ARM fit train_batch#3\nGO\n")
        p.hello()
        self.h.lines()
        p.at("fit", "setup")
        p.at("fit", "train_batch")
        p.at("fit", "train_batch")
        p.at("test", "train_batch")
        self.assertEqual(self.h.lines(), [])

    def test_armed_batch_fires_at_its_occurrence_only(self):
        p = self.harness(WELCOME + "ARM fit train_batch#2\nGO\n" + "GO\n")
        p.at("fit", "val_batch")
        p.at("fit", "train_batch")
        p.at("fit", "train_batch")
        p.at("fit", "train_batch")
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "AT fit train_batch#2"])

    def test_directives(self):
        cases = [
            ("RAISE RuntimeError boom here", RuntimeError, "boom here"),
            ("RAISE KeyboardInterrupt stop", KeyboardInterrupt, "stop"),
            ("RAISE ValueError bad", ValueError, "bad"),
            ("RAISE NoSuchError boom", RuntimeError, "NoSuchError: boom"),
            ("RAISE RuntimeError", RuntimeError, "reclaim: injected RuntimeError"),
        ]
        for reply, cls, text in cases:
            with self.subTest(reply=reply):
                p = self.harness(WELCOME + "ARM fit setup\nGO\n" + reply + "\n")
                with self.assertRaises(BaseException) as caught:
                    p.at("fit", "setup")
                self.assertIs(type(caught.exception), cls)
                self.assertEqual(str(caught.exception), text)

    def test_exit_and_hang_directives(self):
        p = self.harness(WELCOME + "ARM fit setup\nARM fit teardown\nGO\nEXIT 7\nHANG\n")
        self.assertEqual(p.directive_at("fit", "setup"), Directive("exit", code=7))
        self.assertEqual(p.directive_at("fit", "teardown"), Directive("hang"))

        class Stopped(Exception):
            pass

        with mock.patch("os._exit", side_effect=Stopped) as exit_:
            with self.assertRaises(Stopped):
                probe_module.obey(Directive("exit", code=7))
            exit_.assert_called_once_with(7)
        with mock.patch("signal.pause", side_effect=[None, None, Stopped]) as pause:
            with self.assertRaises(Stopped):
                probe_module.obey(Directive("hang"))
            self.assertEqual(pause.call_count, 3)  # it keeps waiting

    def test_exit_directive_leaves_without_cleanup(self):
        h, rank_end = socket.socketpair()
        code = ("import os,sys; sys.path.insert(0, %r); from reclaim_probe.probe import Probe;"
                "import atexit; atexit.register(lambda: print('cleanup ran'));"
                "p = Probe(int(sys.argv[1])); p.at('fit','setup'); print('continued')") % PACKAGE_DIR
        h.sendall(b"WELCOME reclaim/1\nARM fit setup\nGO\nEXIT 9\n")
        proc = subprocess.run([sys.executable, "-c", code, str(rank_end.fileno())],
                              pass_fds=[rank_end.fileno()], stdout=subprocess.PIPE, timeout=60)
        rank_end.close()
        h.close()
        self.assertEqual(proc.returncode, 9)
        self.assertEqual(proc.stdout, b"")

    def test_point_context_manager(self):
        p = self.harness(WELCOME + "ARM fit setup\nARM fit teardown\nARM fit train_batch#1\nGO\n"
                         "GO\nGO\nGO\n")
        with p.point("setup", entry="fit"):
            self.assertEqual(kinds(self.h.lines()), ["HELLO", "HOOK setup"])  # AT comes at the end
        self.assertEqual(self.h.lines(), ["AT fit setup"])
        with p.point("train_batch", entry="fit"):
            pass
        self.assertEqual(self.h.lines(), ["AT fit train_batch#1"])  # batches: no HOOK
        with p.point("teardown", entry="fit"):
            self.assertEqual(kinds(self.h.lines()), ["HOOK teardown", "AT fit teardown"])  # at the start

    def test_point_does_not_fire_when_the_body_raises(self):
        p = self.harness(WELCOME + "ARM fit setup\nGO\n")
        with self.assertRaises(ZeroDivisionError):
            with p.point("setup", entry="fit"):
                1 / 0
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "HOOK setup"])

    def test_point_entry_defaults_to_reclaim_entry(self):
        p = self.harness(WELCOME + "ARM test setup\nGO\nGO\n")
        with mock.patch.dict(os.environ, {"RECLAIM_ENTRY": "test"}):
            with p.point("setup"):
                pass
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "HOOK setup", "AT test setup"])

    def test_audit_waits_for_audited(self):
        p = self.harness(WELCOME + "GO\nPING\nAUDITED 2\n")
        p.audit("after-on_exception")
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "AUDIT after-on_exception"])

    def test_event_and_bye(self):
        p = self.harness(WELCOME + "GO\n")
        p.event("error", "line one\nline two")
        p.event("big", "x" * 10000)
        p.bye(1)
        lines = self.h.lines()
        self.assertEqual(kinds(lines[1:2]), ["EVENT error line one line two"])
        self.assertLessEqual(len(lines[2]) + 1, 4096)
        self.assertEqual(lines[3], "BYE 1")

    def test_names_are_single_fields(self):
        p = self.harness(WELCOME + "GO\n")
        p.hook("my hook\nname")
        self.assertEqual(kinds(self.h.lines())[1], "HOOK my_hook_name")

    def test_err_makes_the_probe_inactive(self):
        p = self.harness(WELCOME + "ARM fit setup\nGO\nERR no more\n")
        with mock.patch("sys.stderr"):
            p.at("fit", "setup")  # returns: GO
        self.assertFalse(p.active)
        p.hook("teardown")
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "AT fit setup"])

    def test_eof_and_overlong_lines_make_the_probe_inactive(self):
        p = self.harness(WELCOME + "ARM fit setup\nGO\n")
        p.hello()
        self.h.sock.shutdown(socket.SHUT_WR)
        with mock.patch("sys.stderr"):
            p.at("fit", "setup")
        self.assertFalse(p.active)

        p = self.harness("X" * 5000)
        with mock.patch("sys.stderr"):
            p.hello()
        self.assertFalse(p.active)

    def test_version_mismatch_makes_the_probe_inactive(self):
        p = self.harness("WELCOME reclaim/2\nARM fit setup\nGO\n")
        with mock.patch("sys.stderr"):
            p.hello()
        self.assertFalse(p.active)
        p.at("fit", "setup")

    def test_a_raising_signal_handler_does_not_lose_the_directive(self):
        # SIGUSR1's handler raises (as Python's SIGINT handler raises
        # KeyboardInterrupt) while the probe waits for its directive: the probe
        # finishes reading the directive, then re-raises.
        p = self.harness(WELCOME + "ARM fit setup\nGO\n")
        p.hello()
        self.h.lines()
        raise_while_waiting(self, self.h, b"AT fit setup\n", b"GO\nAUDITED 0\n", lambda: p.at("fit", "setup"))
        self.assertTrue(p.active)
        p.audit("after-on_exception")  # the next reply is AUDITED: GO was consumed
        self.assertTrue(p.active)

    def test_the_channel_is_not_inherited_and_is_closed_in_forked_children(self):
        p = self.harness(WELCOME + "GO\n")
        self.assertFalse(os.get_inheritable(self.h.fd))
        pid = os.fork()
        if pid == 0:  # the child: the probe must be inactive and the fd closed
            code = 0
            try:
                if p.active:
                    code = 3
                p.hook("child")  # must not reach the harness
                try:
                    os.fstat(self.h.fd)
                    code = 4
                except OSError:
                    pass
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)
        self.assertTrue(p.active)
        p.hook("parent")
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "HOOK parent"])

    def test_from_environment_adopts_the_fd_and_removes_the_variable(self):
        h, rank_end = socket.socketpair()
        fd = rank_end.detach()
        try:
            with mock.patch.dict(os.environ, {"RECLAIM_CONTROL": "fd:%d" % fd, "RECLAIM_RANK": "2"}):
                p = Probe.from_environment()
                self.assertNotIn("RECLAIM_CONTROL", os.environ)
            self.assertTrue(p.active)
            h.sendall(b"WELCOME reclaim/1\nGO\n")
            p.hello()
            self.assertEqual(h.recv(4096).split()[3], b"2")
            p.close()
        finally:
            h.close()


class CostTest(unittest.TestCase):
    def test_an_unarmed_batch_is_cheap(self):
        # A loose bound that only catches a round trip or a syscall per call
        # (tens of microseconds); the measured cost is reported separately.
        h = FakeHarness(WELCOME + "ARM fit train_batch#1000000000\nGO\n")
        try:
            h.probe.hello()
            n = 20000
            start = time.perf_counter()
            for _ in range(n):
                h.probe.at("fit", "train_batch")
            per_call = (time.perf_counter() - start) / n
            self.assertLess(per_call, 20e-6)
            self.assertEqual(h.lines()[1:], [])
        finally:
            h.close()


if __name__ == "__main__":
    unittest.main()
