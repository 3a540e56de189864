"""Lightning integration: a Callback and a datamodule wrapper that report the
lifecycle to the reclaim harness through the process's probe.

    from reclaim_probe import ReclaimCallback, instrument
    trainer = Trainer(callbacks=[ReclaimCallback()])
    trainer.fit(model, datamodule=instrument(datamodule))

What reports what:

* :func:`instrument` wraps the datamodule's own hooks, so the harness sees
  which ones actually ran and a fault lands inside them: ``prepare_data``,
  ``setup``, ``*_dataloader`` and ``state_dict`` send HOOK on entry and fire
  their point when they return; ``teardown`` fires its point at its start and
  asks for the ``after-teardown`` audit when it returns; ``on_exception``
  reports HOOK and asks for the ``after-on_exception`` audit when it returns
  (also when it raises). Only hooks the datamodule has are wrapped: a
  datamodule without ``on_exception`` stays without one, so the harness can
  tell that nothing reacted to the failure.
* :class:`ReclaimCallback` reports what only the trainer knows: batch starts
  (``on_train_batch_start`` -> point ``train_batch#k``, likewise validation
  (sanity-check batches included), test and predict). For a datamodule that
  was not instrumented it instruments the rest of it in ``setup`` (the hooks
  that already ran, ``prepare_data`` and ``setup``, are reported from the
  callback after the fact) and reports ``teardown`` and ``on_exception``
  from its own hooks — without the audits, which must come after the
  datamodule's hook returned.

``ReclaimCallback`` is a ``lightning.pytorch.Callback`` when ``lightning`` (or
``pytorch_lightning``) is importable, else a plain class with the same hook
names, so it can be driven by any Lightning-shaped trainer.
"""

import functools
import os

from . import probe as _probe

__all__ = ["ReclaimCallback", "instrument", "is_instrumented", "Callback"]


def _find_callback_base():
    try:
        from lightning.pytorch import Callback as base  # Lightning 2.x
        return base
    except Exception:
        pass
    try:
        from pytorch_lightning import Callback as base  # the older package name
        return base
    except Exception:
        return object


Callback = _find_callback_base()

_HOOKS_AT_END = ("prepare_data", "train_dataloader", "val_dataloader", "test_dataloader",
                 "predict_dataloader", "state_dict")
_MARK = "_reclaim_instrumented"

# The entry the current run is in: set by setup(stage), read by hooks that
# have no stage argument (dataloaders, state_dict, batches).
_state = {"entry": None}


def _entry_name(stage):
    """"fit", "validate", "test", "predict" from a stage string or TrainerFn."""
    if stage is None:
        return None
    value = getattr(stage, "value", stage)
    value = str(value)
    return {"fitting": "fit", "validating": "validate", "testing": "test",
            "predicting": "predict"}.get(value, value)


def _current_entry(trainer=None):
    if trainer is not None:
        state = getattr(trainer, "state", None)
        fn = _entry_name(getattr(state, "fn", None))
        if fn:
            return fn
    return _state["entry"] or os.environ.get("RECLAIM_ENTRY") or "fit"


def is_instrumented(datamodule):
    return bool(getattr(datamodule, _MARK, False))


def instrument(datamodule, probe=None, after_point=None):
    """Wraps `datamodule`'s hooks in place (instance attributes, so the class
    and other instances are untouched) and returns it. Idempotent. `probe`
    defaults to the process's probe. Says HELLO now if not said yet, so the
    harness's baseline predates everything the datamodule creates.

    `after_point`, if given, is called right after each of the datamodule's
    points has fired — a trainer's safe point, where it may act on a signal
    that arrived with the fault (for teardown: before anything is released)."""
    if is_instrumented(datamodule):
        return datamodule
    p = probe if probe is not None else _probe.default()
    p.hello()

    def point(name):
        p.at(_current_entry(), name)
        if after_point is not None:
            after_point()

    def wrap(name, make):
        original = getattr(datamodule, name, None)
        if original is None or not callable(original):
            return
        wrapper = functools.wraps(original)(make(original))
        setattr(datamodule, name, wrapper)

    def at_end(name):
        def make(original):
            def hook(*args, **kwargs):
                p.hook(name)
                result = original(*args, **kwargs)
                point(name)
                return result
            return hook
        return make

    def make_setup(original):
        def setup(*args, **kwargs):
            stage = kwargs.get("stage", args[0] if args else None)
            entry = _entry_name(stage)
            if entry:
                _state["entry"] = entry
            p.hook("setup")
            result = original(*args, **kwargs)
            point("setup")
            return result
        return setup

    def make_teardown(original):
        def teardown(*args, **kwargs):
            p.hook("teardown")
            point("teardown")
            result = original(*args, **kwargs)
            p.audit("after-teardown")
            return result
        return teardown

    def make_on_exception(original):
        def on_exception(*args, **kwargs):
            p.hook("on_exception")
            try:
                return original(*args, **kwargs)
            finally:
                p.audit("after-on_exception")
        return on_exception

    for name in _HOOKS_AT_END:
        wrap(name, at_end(name))
    wrap("setup", make_setup)
    wrap("teardown", make_teardown)
    wrap("on_exception", make_on_exception)
    setattr(datamodule, _MARK, True)
    return datamodule


class ReclaimCallback(Callback):
    """Reports Lightning's stages and batch starts to the harness.

    `instrument_datamodule`: instrument the trainer's datamodule in ``setup``
    when it was not instrumented before (default True). `probe`: the probe to
    use (default: the process's probe).
    """

    def __init__(self, instrument_datamodule=True, probe=None):
        if Callback is not object:
            super().__init__()
        self._probe = probe if probe is not None else _probe.default()
        self._instrument = instrument_datamodule
        self._reports_hooks = False  # True: the datamodule's hooks are ours to report
        # HELLO as early as possible: the harness's baseline is taken then.
        self._probe.hello()

    # ---- stages -----------------------------------------------------------------

    def setup(self, trainer, pl_module, stage=None):
        entry = _entry_name(stage) or _current_entry(trainer)
        _state["entry"] = entry
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is not None and is_instrumented(datamodule):
            return  # its setup already reported itself
        # Lightning calls the datamodule's setup before the callbacks': report
        # it now, after the fact, and let the point fire here.
        self._reports_hooks = True
        if datamodule is not None and self._instrument:
            instrument(datamodule, self._probe)
        self._probe.hook("setup")
        self._probe.at(entry, "setup")

    def teardown(self, trainer, pl_module, stage=None):
        if not self._reports_hooks or self._datamodule_reports(trainer):
            return
        self._probe.hook("teardown")
        self._probe.at(_entry_name(stage) or _current_entry(trainer), "teardown")

    def on_exception(self, trainer, pl_module, exception):
        if not self._reports_hooks or self._datamodule_reports(trainer):
            return
        self._probe.event("error", "%s: %s" % (type(exception).__name__, exception))
        self._probe.hook("on_exception")

    @staticmethod
    def _datamodule_reports(trainer):
        # An instrumented datamodule reports its own teardown and on_exception —
        # or, lacking the hook, reports nothing, which is the finding.
        datamodule = getattr(trainer, "datamodule", None)
        return datamodule is not None and is_instrumented(datamodule)

    # ---- batches: the point fires once the batch is fetched, before the step ----

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx, *args, **kwargs):
        self._probe.at(_current_entry(trainer), "train_batch")

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._probe.at(_current_entry(trainer), "val_batch")

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._probe.at(_current_entry(trainer), "test_batch")

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._probe.at(_current_entry(trainer), "predict_batch")
