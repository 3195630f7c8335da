"""Version every checkpoint PyTorch Lightning writes, and record each ``trainer.fit`` as a run.

::

    from plait.integrations.lightning import PlaitCheckpoints, checkpoint_path

    trainer = Trainer(callbacks=[ModelCheckpoint(monitor="val_loss"), PlaitCheckpoints("classifier")])
    trainer.fit(model, datamodule=dm)
    trainer.fit(model2, datamodule=dm2, ckpt_path=checkpoint_path("classifier:best"))

Works with ``pytorch_lightning`` 2.x and the ``lightning.pytorch`` namespace. ``PlaitCheckpoints``
is imported on first access so that the plugin module imports without torch or Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plait.integrations.lightning.callback import PlaitCheckpoints
    from plait.integrations.lightning.paths import checkpoint_path

__all__ = ["PlaitCheckpoints", "checkpoint_path"]


def __getattr__(name: str) -> Any:
    """Import an exported name on first access (PEP 562): importing Lightning here would make
    every plait.log load torch, and loading the plugin (every plait command does) imports none."""
    if name == "PlaitCheckpoints":
        from plait.integrations.lightning.callback import PlaitCheckpoints

        return PlaitCheckpoints
    if name == "checkpoint_path":
        from plait.integrations.lightning.paths import checkpoint_path

        return checkpoint_path
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
