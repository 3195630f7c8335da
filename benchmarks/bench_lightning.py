"""Lightning benchmark: what PlaitCheckpoints costs per ~100 MB checkpoint, and what ten fine-tuning
checkpoints store (only the layers that changed, thanks to content-defined chunking).

Run: ``python benchmarks/bench_lightning.py [--mb 100] [--epochs 3] [--finetune 10]``.
Prints a table and writes ``benchmarks/results/lightning.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import pytorch_lightning as pl  # noqa: E402
import torch  # noqa: E402
from pytorch_lightning.callbacks import ModelCheckpoint  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import plait  # noqa: E402
from plait.integrations.lightning import PlaitCheckpoints  # noqa: E402


class Big(pl.LightningModule):
    """A frozen ``mb``-sized embedding table (the "backbone") and a small trainable head."""

    def __init__(self, mb: int = 100, train_backbone: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters()
        rows = mb * 1024 * 1024 // (4 * 256)
        self.backbone = torch.nn.Embedding(rows, 256)
        self.backbone.weight.requires_grad_(train_backbone)
        self.head = torch.nn.Linear(256, 2)

    def training_step(self, batch, batch_idx):
        idx, y = batch
        return torch.nn.functional.cross_entropy(self.head(self.backbone(idx)), y)

    def configure_optimizers(self):
        return torch.optim.SGD([p for p in self.parameters() if p.requires_grad], lr=0.1)


def loader() -> DataLoader:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randint(0, 1000, (64,), generator=g), torch.randint(0, 2, (64,), generator=g)), batch_size=16)


def fit(model: Big, root: Path, epochs: int, callbacks: list, ckpt_path: str | None = None) -> float:
    mc = ModelCheckpoint(dirpath=str(root), save_top_k=-1, every_n_epochs=1, filename="{epoch}")
    trainer = pl.Trainer(max_epochs=epochs, callbacks=[mc, *callbacks], accelerator="cpu", devices=1, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader(), ckpt_path=ckpt_path)
    return time.perf_counter() - start


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--finetune", type=int, default=10)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["PLAIT_CACHE_DIR"] = str(root / "cache")
        torch.manual_seed(0)
        fit(Big(1), root / "warmup", 1, [])  # imports, first-call costs
        torch.manual_seed(0)
        plain = fit(Big(args.mb), root / "plain", args.epochs, [])
        ckpt_size = os.path.getsize(next((root / "plain").glob("*.ckpt")))
        store = plait.Store(str(root / "store"))
        torch.manual_seed(0)
        tracked = fit(Big(args.mb), root / "tracked", args.epochs, [PlaitCheckpoints("big", store=store, log="all")])
        per_ckpt = (tracked - plain) / args.epochs
        rows += [("checkpoint size (MB)", ckpt_size / 1e6), ("fit without plait (s)", plain),
                 ("fit with PlaitCheckpoints (s)", tracked), ("overhead per checkpoint (s)", per_ckpt),
                 ("overhead per checkpoint (MB/s)", ckpt_size / 1e6 / per_ckpt if per_ckpt > 0 else float("inf"))]

        # fine-tuning: backbone frozen, only the head changes; ten checkpoints into a fresh store
        ft_store = plait.Store(str(root / "ft-store"))
        base = Big(args.mb, train_backbone=False)
        start = time.perf_counter()
        fit(base, root / "ft", args.finetune, [PlaitCheckpoints("tuned", store=ft_store, log="all")])
        ft_time = time.perf_counter() - start
        logged = ft_store.versions("tuned")
        raw = sum(v.size for v in logged)
        stored = folder_bytes(root / "ft-store" / "blobs")
        rows += [("fine-tune checkpoints logged", len(logged)), ("fine-tune bytes written by Lightning (MB)", raw / 1e6),
                 ("fine-tune bytes stored by plait (MB)", stored / 1e6), ("fine-tune dedup ratio", raw / stored),
                 ("fine-tune fit with PlaitCheckpoints (s)", ft_time)]
    width = max(len(k) for k, _ in rows)
    print(f"{'measure':<{width}}  value")
    for key, value in rows:
        print(f"{key:<{width}}  {value:.2f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    out = Path(__file__).parent / "results" / "lightning.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                           "torch": torch.__version__, "lightning": pl.__version__},
                               "params": vars(args), "results": dict(rows)}, indent=2) + "\n")


if __name__ == "__main__":
    main()
