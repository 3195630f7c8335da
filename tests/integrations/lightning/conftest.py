"""Fixtures for the Lightning integration: a tiny model, its data, and quiet, fast trainers on CPU."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pytorch_lightning")

sys.path.insert(0, os.path.dirname(__file__))  # so ddp_spawn's processes can import the kit

#: Lightning's advice for real training runs, not errors of these tiny fits.
LIGHTNING_NOISE = [
    "ignore:.*does not have many workers.*",
    "ignore:.*number of training batches.*is smaller than the logging interval.*",
    "ignore:.*GPU available but not used.*",
    "ignore:.*`isinstance.*LeafSpec.*` is deprecated.*",
    "ignore:.*Checkpoint directory .* exists and is not empty.*",
    "ignore:.*is not supported on CPUs, hence setting .* to False.*",
    "ignore:.*The `srun` command is available.*",
    "ignore:.*Detected KeyboardInterrupt.*",
    "ignore:The dirpath has changed from.*",
    "ignore:.*torch.cuda.*:UserWarning",
    "ignore:.*unclosed.*:ResourceWarning",
]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Silence Lightning's training advice in these tests only."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            for spec in LIGHTNING_NOISE:
                item.add_marker(pytest.mark.filterwarnings(spec))


@pytest.fixture
def kit():
    """The module with TinyClassifier and TinyData."""
    import plait_lightning_kit

    return plait_lightning_kit


@pytest.fixture
def make_trainer(tmp_path: Path) -> Callable[..., Any]:
    """Build a quiet CPU trainer writing checkpoints under ``tmp_path/<dirname>``."""
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint

    def make(*callbacks: Any, dirname: str = "ckpts", max_epochs: int = 4, monitor: str | None = "val_loss",
             save_top_k: int = 2, save_last: bool = True, mode: str = "min", **kwargs: Any) -> tuple[Any, Any]:
        checkpoint = ModelCheckpoint(dirpath=str(tmp_path / dirname), monitor=monitor, mode=mode, save_top_k=save_top_k,
                                     save_last=save_last, filename="{epoch}-{val_loss:.4f}")
        pl.seed_everything(0, verbose=False)
        settings = dict(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, deterministic=True)
        settings.update(kwargs)
        return pl.Trainer(callbacks=[checkpoint, *callbacks], **settings), checkpoint

    return make
