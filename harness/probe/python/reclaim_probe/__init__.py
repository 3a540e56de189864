"""reclaim_probe: report a Python program's lifecycle to the reclaim harness.

Stdlib only, Python >= 3.8, importable without Lightning or torch::

    from reclaim_probe import probe            # the wire protocol, as functions
    with probe.point("setup", entry="fit"):
        ...

    import reclaim_probe                       # several ranks: wait at a collective
    reclaim_probe.collective("post_setup")     # RuntimeError(why) if a rank failed
    if not reclaim_probe.barrier("teardown"):  # or a BarrierResult(ok, why) to inspect
        ...

    from reclaim_probe import ReclaimCallback, instrument   # Lightning users
    trainer = Trainer(callbacks=[ReclaimCallback()])
    trainer.fit(model, datamodule=instrument(datamodule))

Without ``RECLAIM_CONTROL`` in the environment (no harness) every call is a no-op.
"""

from . import probe
from .probe import BarrierResult, Directive, Probe, barrier, collective

# Adopt the control channel now, before the program can fork or exec: the
# descriptor becomes non-inheritable and is closed in forked children.
probe.default()


def __getattr__(name):
    # The Lightning integration is imported on demand: it may import Lightning,
    # which a program that only uses the probe should not pay for.
    if name in ("ReclaimCallback", "instrument", "lightning"):
        import importlib
        lightning = importlib.import_module(__name__ + ".lightning")
        return lightning if name == "lightning" else getattr(lightning, name)
    raise AttributeError("module 'reclaim_probe' has no attribute %r" % name)


__all__ = ["probe", "Probe", "Directive", "BarrierResult", "barrier", "collective", "ReclaimCallback",
           "instrument"]
