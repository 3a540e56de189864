"""ReclaimCallback and instrument() driven by a Lightning-shaped stand-in trainer.

Lightning is not installed here. StandInTrainer calls hooks in the order
Lightning 2.x does (trainer/call.py, the fit/evaluation loops): the
datamodule's prepare_data and setup, then the callbacks' setup; loaders;
batch-start callbacks once a batch is fetched; the datamodule's state_dict;
on success the datamodule's teardown, then the callbacks'; on failure the
callbacks' on_exception, then the datamodule's (when it has one), and the
error propagates; teardown is not called.
"""

import types
import unittest

from fake_harness import FakeHarness, kinds

from reclaim_probe import lightning
from reclaim_probe.lightning import ReclaimCallback, instrument, is_instrumented

WELCOME = "WELCOME reclaim/1\n"


class StandInTrainer:
    def __init__(self, callbacks, sanity_steps=2, train_batches=3, val_batches=2):
        self.callbacks = callbacks
        self.sanity_steps = sanity_steps
        self.train_batches = train_batches
        self.val_batches = val_batches
        self.datamodule = None
        self.state = types.SimpleNamespace(fn=None)
        self.module = object()

    def fit(self, datamodule):
        return self._run("fit", datamodule)

    def test(self, datamodule):
        return self._run("test", datamodule)

    def _each_callback(self, hook, *args, **kwargs):
        for cb in self.callbacks:
            getattr(cb, hook)(self, self.module, *args, **kwargs)

    def _batches(self, loader, limit, start_hook):
        for i, batch in enumerate(loader):
            if i >= limit:
                break
            self._each_callback(start_hook, batch, i)

    def _run(self, fn, dm):
        self.state.fn = fn
        self.datamodule = dm
        try:
            dm.prepare_data()
            dm.setup(stage=fn)
            self._each_callback("setup", stage=fn)
            if fn == "fit":
                val = dm.val_dataloader()
                self._batches(val, self.sanity_steps, "on_validation_batch_start")
                train = dm.train_dataloader()
                self._batches(train, self.train_batches, "on_train_batch_start")
                self._batches(val, self.val_batches, "on_validation_batch_start")
                dm.state_dict()
            else:
                self._batches(dm.test_dataloader(), 3, "on_test_batch_start")
            dm.teardown(stage=fn)
            self._each_callback("teardown", stage=fn)
        except BaseException as e:
            self._each_callback("on_exception", e)
            if callable(getattr(dm, "on_exception", None)):  # as Lightning checks
                dm.on_exception(e)
            raise


class DataModule:
    """A datamodule that records which of its hooks ran."""

    def __init__(self):
        self.calls = []

    def prepare_data(self):
        self.calls.append("prepare_data")

    def setup(self, stage):
        self.calls.append("setup:" + stage)

    def train_dataloader(self):
        self.calls.append("train_dataloader")
        return list(range(10))

    def val_dataloader(self):
        self.calls.append("val_dataloader")
        return list(range(10))

    def test_dataloader(self):
        self.calls.append("test_dataloader")
        return list(range(10))

    def state_dict(self):
        self.calls.append("state_dict")
        return {"k": 1}

    def teardown(self, stage):
        self.calls.append("teardown:" + stage)

    def on_exception(self, exception):
        self.calls.append("on_exception:" + type(exception).__name__)


class NoOnException(DataModule):
    on_exception = None  # like a LightningDataModule before 2.3


class LightningTest(unittest.TestCase):
    def setUp(self):
        lightning._state["entry"] = None
        self.h = None

    def tearDown(self):
        if self.h:
            self.h.close()

    def harness(self, replies):
        self.h = FakeHarness(replies)
        return self.h.probe

    def test_callback_base_without_lightning(self):
        self.assertIs(lightning.Callback, object)
        for hook in ("setup", "teardown", "on_exception", "on_train_batch_start",
                     "on_validation_batch_start", "on_test_batch_start", "on_predict_batch_start"):
            self.assertTrue(callable(getattr(ReclaimCallback, hook)))

    def test_successful_fit_reports_every_hook_in_order_and_audits(self):
        p = self.harness(WELCOME + "GO\nAUDITED 0\n")
        dm = instrument(DataModule(), p)
        StandInTrainer([ReclaimCallback(probe=p)]).fit(dm)
        self.assertEqual(dm.calls, ["prepare_data", "setup:fit", "val_dataloader", "train_dataloader",
                                    "state_dict", "teardown:fit"])
        self.assertEqual(kinds(self.h.lines()), [
            "HELLO", "HOOK prepare_data", "HOOK setup", "HOOK val_dataloader", "HOOK train_dataloader",
            "HOOK state_dict", "HOOK teardown", "AUDIT after-teardown"])
        self.assertEqual(p.occurrences("fit", "val_batch"), 4)  # sanity steps count as val batches
        self.assertEqual(p.occurrences("fit", "train_batch"), 3)

    def test_fault_at_a_batch_runs_on_exception_and_no_teardown(self):
        p = self.harness(WELCOME + "ARM fit train_batch#2\nGO\n"
                         "RAISE RuntimeError injected\nAUDITED 0\n")
        dm = instrument(DataModule(), p)
        with self.assertRaises(RuntimeError):
            StandInTrainer([ReclaimCallback(probe=p)]).fit(dm)
        self.assertEqual(dm.calls[-1], "on_exception:RuntimeError")
        self.assertNotIn("teardown:fit", dm.calls)
        self.assertEqual(kinds(self.h.lines()), [
            "HELLO", "HOOK prepare_data", "HOOK setup", "HOOK val_dataloader", "HOOK train_dataloader",
            "AT fit train_batch#2", "HOOK on_exception", "AUDIT after-on_exception"])

    def test_sanity_batches_are_the_first_val_batches(self):
        p = self.harness(WELCOME + "ARM fit val_batch#3\nGO\nRAISE RuntimeError x\nAUDITED 0\n")
        dm = instrument(DataModule(), p)
        with self.assertRaises(RuntimeError):
            StandInTrainer([ReclaimCallback(probe=p)]).fit(dm)
        self.assertEqual(p.occurrences("fit", "train_batch"), 3)  # after training, 3rd val batch
        self.assertIn("AT fit val_batch#3", self.h.lines())

    def test_hook_points_fire_at_the_end_and_teardown_at_its_start(self):
        p = self.harness(WELCOME + "ARM fit setup\nARM fit teardown\nGO\nGO\n"
                         "RAISE KeyboardInterrupt stop\nAUDITED 0\n")
        dm = instrument(DataModule(), p)
        with self.assertRaises(KeyboardInterrupt):
            StandInTrainer([ReclaimCallback(probe=p)]).fit(dm)
        self.assertNotIn("teardown:fit", dm.calls)  # the fault came before it released anything
        self.assertEqual(dm.calls[-1], "on_exception:KeyboardInterrupt")
        lines = kinds(self.h.lines())
        self.assertEqual(lines[:3], ["HELLO", "HOOK prepare_data", "HOOK setup"])
        self.assertEqual(lines[3], "AT fit setup")
        self.assertEqual(lines[-4:], ["HOOK teardown", "AT fit teardown", "HOOK on_exception",
                                      "AUDIT after-on_exception"])

    def test_test_entry(self):
        p = self.harness(WELCOME + "ARM test test_batch#2\nGO\nGO\nAUDITED 0\n")
        dm = instrument(DataModule(), p)
        StandInTrainer([ReclaimCallback(probe=p)]).test(dm)
        self.assertEqual(kinds(self.h.lines()), [
            "HELLO", "HOOK prepare_data", "HOOK setup", "HOOK test_dataloader", "AT test test_batch#2",
            "HOOK teardown", "AUDIT after-teardown"])

    def test_callback_instruments_a_datamodule_that_was_not(self):
        p = self.harness(WELCOME + "ARM fit setup\nGO\nGO\nRAISE RuntimeError late\nAUDITED 0\n")
        dm = DataModule()
        cb = ReclaimCallback(probe=p)
        with self.assertRaises(RuntimeError):
            # the point after state_dict is not armed; the failure comes from the datamodule
            dm.state_dict = lambda: (_ for _ in ()).throw(RuntimeError("late"))
            StandInTrainer([cb]).fit(dm)
        self.assertTrue(is_instrumented(dm))
        # prepare_data ran before the callback could see it; setup is reported by the callback.
        self.assertEqual(kinds(self.h.lines()), [
            "HELLO", "HOOK setup", "AT fit setup", "HOOK val_dataloader", "HOOK train_dataloader",
            "HOOK state_dict", "HOOK on_exception", "AUDIT after-on_exception"])

    def test_without_instrumenting_the_callback_reports_teardown_and_on_exception_itself(self):
        p = self.harness(WELCOME + "GO\n")
        dm = DataModule()
        StandInTrainer([ReclaimCallback(instrument_datamodule=False, probe=p)]).fit(dm)
        self.assertFalse(is_instrumented(dm))
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "HOOK setup", "HOOK teardown"])

        p = self.harness(WELCOME + "ARM fit train_batch#1\nGO\nRAISE RuntimeError x\n")
        with self.assertRaises(RuntimeError):
            StandInTrainer([ReclaimCallback(instrument_datamodule=False, probe=p)]).fit(DataModule())
        self.assertEqual(kinds(self.h.lines()), [
            "HELLO", "HOOK setup", "AT fit train_batch#1", "EVENT error RuntimeError: x", "HOOK on_exception"])

    def test_a_datamodule_without_on_exception_reports_none(self):
        p = self.harness(WELCOME + "ARM fit setup\nGO\nRAISE RuntimeError x\n")
        dm = instrument(NoOnException(), p)
        with self.assertRaises(RuntimeError):
            StandInTrainer([ReclaimCallback(probe=p)]).fit(dm)
        self.assertNotIn("HOOK on_exception", kinds(self.h.lines()))

    def test_instrument_is_idempotent_and_keeps_wrapped_methods_visible(self):
        p = self.harness(WELCOME + "GO\n")
        dm = DataModule()
        instrument(dm, p)
        wrapped = dm.setup
        instrument(dm, p)
        self.assertIs(dm.setup, wrapped)
        # Lightning's is_overridden() looks through __wrapped__ at the original code.
        self.assertIs(dm.setup.__wrapped__.__func__, DataModule.setup)
        self.assertEqual(dm.setup.__name__, "setup")
        # The class and other instances are untouched.
        self.assertFalse(is_instrumented(DataModule()))

    def test_on_exception_audits_even_when_it_raises(self):
        p = self.harness(WELCOME + "GO\nAUDITED 0\n")

        class Broken(DataModule):
            def on_exception(self, exception):
                raise OSError("cleanup failed")

        dm = instrument(Broken(), p)
        with self.assertRaises(OSError):
            dm.on_exception(RuntimeError("x"))
        self.assertEqual(kinds(self.h.lines()), ["HELLO", "HOOK on_exception", "AUDIT after-on_exception"])

    def test_entry_names_from_trainer_functions(self):
        enum_like = types.SimpleNamespace(value="validate")
        self.assertEqual(lightning._entry_name(enum_like), "validate")
        self.assertEqual(lightning._entry_name("predicting"), "predict")
        self.assertEqual(lightning._entry_name("fit"), "fit")


if __name__ == "__main__":
    unittest.main()
