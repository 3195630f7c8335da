"""Find the installed Lightning: ``pytorch_lightning`` 2.x, else the ``lightning.pytorch`` namespace."""

from __future__ import annotations

from types import SimpleNamespace

from plait import MissingExtraError


def lightning() -> SimpleNamespace:
    """Return the Lightning classes plait needs: ``Callback``, ``CheckpointIO``, ``LightningModule``.

    :returns: a namespace with those classes and ``package`` (the import name) and ``version``.
    :raises MissingExtraError: if neither ``pytorch_lightning`` nor ``lightning`` is installed.
    """
    try:
        import pytorch_lightning as pl
        from lightning_fabric.plugins import CheckpointIO
        from pytorch_lightning.callbacks import Callback, ModelCheckpoint

        package = "pytorch_lightning"
    except ImportError:
        try:
            import lightning.pytorch as pl  # type: ignore[no-redef]
            from lightning.fabric.plugins import CheckpointIO  # type: ignore[no-redef]
            from lightning.pytorch.callbacks import Callback, ModelCheckpoint  # type: ignore[no-redef]

            package = "lightning.pytorch"
        except ImportError:
            raise MissingExtraError(
                "the Lightning integration needs PyTorch Lightning: pip install 'plait[lightning]' "
                "(install a pinned torch first so pip does not pull a CUDA build)",
                extra="lightning",
            ) from None
    return SimpleNamespace(
        package=package, version=pl.__version__, Callback=Callback, CheckpointIO=CheckpointIO,
        ModelCheckpoint=ModelCheckpoint, LightningModule=pl.LightningModule,
    )
