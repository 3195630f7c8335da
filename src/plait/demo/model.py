"""The demo's tiny text classifier: hashed bag-of-words features and a linear Lightning model."""

from __future__ import annotations

import re
from typing import Any

import xxhash

N_FEATURES = 64
_WORD = re.compile(r"[a-z]+")


def featurize(text: str) -> list[float]:
    """Turn a review into a fixed-size vector of hashed word counts."""
    vec = [0.0] * N_FEATURES
    for word in _WORD.findall(text.lower()):
        vec[xxhash.xxh32_intdigest(word.encode()) % N_FEATURES] += 1.0
    return vec


def make_module(lr: float) -> Any:
    """Return a fresh :class:`ReviewClassifier` LightningModule (imports torch lazily)."""
    import pytorch_lightning as pl
    import torch
    from torch import nn

    class ReviewClassifier(pl.LightningModule):
        """Logistic regression over hashed word counts."""

        def __init__(self, lr: float = 0.1, n_features: int = N_FEATURES) -> None:
            super().__init__()
            self.save_hyperparameters()
            self.linear = nn.Linear(n_features, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x)

        def _loss(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = batch
            logits = self(x)
            return nn.functional.cross_entropy(logits, y), (logits.argmax(-1) == y).float().mean()

        def training_step(self, batch: Any, _: int) -> torch.Tensor:
            loss, _acc = self._loss(batch)
            return loss

        def validation_step(self, batch: Any, _: int) -> None:
            loss, acc = self._loss(batch)
            self.log("val_loss", loss, prog_bar=False)
            self.log("val_acc", acc, prog_bar=False)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    return ReviewClassifier(lr=lr)


def loaders(data: Any, batch_size: int = 32) -> tuple[Any, Any]:
    """Return ``(train, validation)`` DataLoaders from a DatasetDict with ``features``/``label``."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    def tensors(split: Any) -> TensorDataset:
        return TensorDataset(torch.tensor(split["features"], dtype=torch.float32), torch.tensor(split["label"]))

    generator = torch.Generator().manual_seed(0)
    return (
        DataLoader(tensors(data["train"]), batch_size=batch_size, shuffle=True, generator=generator),
        DataLoader(tensors(data["test"]), batch_size=batch_size),
    )


def accuracy(module: Any, data: Any) -> float:
    """Return the accuracy of ``module`` on the ``test`` split."""
    import torch

    x = torch.tensor(data["test"]["features"], dtype=torch.float32)
    y = torch.tensor(data["test"]["label"])
    with torch.no_grad():
        return float((module(x).argmax(-1) == y).float().mean())
