"""A tiny classifier, its data and quiet CPU trainers for the Lightning tests (importable by
ddp_spawn's new processes, and by the lineage suite)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class TinyClassifier(pl.LightningModule):
    """Logistic regression on 4 features; logs ``val_loss`` and ``val_acc`` each epoch."""

    def __init__(self, lr: float = 0.5, hidden: int = 4, fail_at_epoch: int | None = None, interrupt: bool = False) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        if self.hparams.fail_at_epoch is not None and self.current_epoch == self.hparams.fail_at_epoch:
            if self.hparams.interrupt:
                raise KeyboardInterrupt
            raise RuntimeError("the GPU caught fire")
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y), prog_bar=False, sync_dist=True)
        self.log("val_acc", (logits.argmax(-1) == y).float().mean(), sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class TinyData(pl.LightningDataModule):
    """32 training and 16 validation points of a linearly separable problem, batches of 8."""

    def __init__(self, seed: int = 0, shift: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str) -> None:
        g = torch.Generator().manual_seed(self.hparams.seed)
        x = torch.randn(48, 4, generator=g) + self.hparams.shift
        y = (x[:, 0] + x[:, 1] > 2 * self.hparams.shift).long()
        self.train_set, self.val_set = TensorDataset(x[:32], y[:32]), TensorDataset(x[32:], y[32:])

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=8)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=8)


class HFData(pl.LightningDataModule):
    """Serve a Hugging Face dataset (columns x0..x3, y) held by the datamodule; uses ``extra`` while loading."""

    def __init__(self, dataset, extra: str | None = None) -> None:
        super().__init__()
        self.dataset, self.extra = dataset, extra

    def _loader(self, rows):
        import plait

        if self.extra:
            plait.use(self.extra)
        x = torch.tensor([[r[f"x{i}"] for i in range(4)] for r in rows], dtype=torch.float32)
        y = torch.tensor([r["y"] for r in rows])
        return DataLoader(TensorDataset(x, y), batch_size=8)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.dataset)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dataset)


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


def make_trainer_in(folder: Path) -> Callable[..., Any]:
    """Return a function building a quiet CPU trainer that writes checkpoints under ``folder/<dirname>``."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    def make(*callbacks: Any, dirname: str = "ckpts", max_epochs: int = 4, monitor: str | None = "val_loss",
             save_top_k: int = 2, save_last: bool = True, mode: str = "min", **kwargs: Any) -> tuple[Any, Any]:
        checkpoint = ModelCheckpoint(dirpath=str(folder / dirname), monitor=monitor, mode=mode, save_top_k=save_top_k,
                                     save_last=save_last, filename="{epoch}-{val_loss:.4f}")
        pl.seed_everything(0, verbose=False)
        settings = dict(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, deterministic=True)
        settings.update(kwargs)
        return pl.Trainer(callbacks=[checkpoint, *callbacks], **settings), checkpoint

    return make
