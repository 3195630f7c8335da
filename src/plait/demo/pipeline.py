"""The demo's three tracked Prefect flows: train, fine-tune on changed data, backtrack.

Nothing here names an input or output for plait: the flows are decorated with ``track`` and the
trainer gets ``PlaitCheckpoints``; the lineage stitches itself from what the tasks received and
returned.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

#: Rows per shard of the raw data: the changed dataset adds a shard, so its versions share bytes.
SHARD_ROWS = 100
EPOCHS = 6


@dataclass
class DemoResult:
    """What the demo made.

    :ivar first: the spec of the first flow's best model.
    :ivar surgery: the spec of the fine-tuned model.
    :ivar backtrack: the spec of the backtracked model.
    :ivar datasets: the specs of the raw dataset versions.
    :ivar metrics: accuracy per stage.
    """

    first: str = ""
    surgery: str = ""
    backtrack: str = ""
    datasets: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def write_raw_data(folder: Path, *, changed: bool) -> Path:
    """Write the shipped reviews as CSV shards; ``changed`` adds a shard of harder reviews."""
    source = resources.files("plait.demo").joinpath("data/reviews.csv").read_text()
    rows = list(csv.reader(source.splitlines()))
    header, body = rows[0], rows[1:]
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shards = [body[i : i + SHARD_ROWS] for i in range(0, len(body), SHARD_ROWS)]
    if changed:
        extra = [[str(1000 + i), text, str(label)] for i, (text, label) in enumerate(_harder_reviews())]
        shards.append(extra)
    for i, shard in enumerate(shards):
        with open(folder / f"part-{i}.csv", "w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(shard)
    return folder


def _harder_reviews() -> list[tuple[str, int]]:
    good = ["not bad at all", "better than expected", "no complaints", "does the job well"]
    bad = ["not good", "worse than expected", "stopped working", "would not recommend"]
    items = ["kettle", "lamp", "tent", "jacket", "keyboard"]
    out = []
    for i in range(60):
        label = i % 2
        phrase = (good if label else bad)[i % 4]
        out.append((f"The {items[i % 5]}: {phrase}.", label))
    return out


def build_flows(workdir: Path) -> dict[str, Any]:
    """Define the demo's tasks and tracked flows (imports Prefect, Lightning and datasets)."""
    from prefect import flow, task

    import plait
    from plait.demo.model import accuracy, featurize, loaders, make_module
    from plait.integrations.huggingface import load_dataset
    from plait.integrations.lightning import PlaitCheckpoints, checkpoint_path
    from plait.integrations.prefect import track

    @task
    def clean(raw: Path) -> Any:
        """Load the CSV shards, drop blank reviews, add features, split train/test."""
        files = sorted(str(p) for p in Path(raw).glob("*.csv"))
        ds = load_dataset("csv", data_files=files)["train"]
        ds = ds.filter(lambda r: bool(r["text"] and r["text"].strip()))
        ds = ds.map(lambda r: {"features": featurize(r["text"])})
        return ds.train_test_split(test_size=0.25, seed=0)

    @task
    def train(data: Any, lr: float, stage: str, init: str | None = None) -> Path:
        """Train (or fine-tune from ``init``) and return the best checkpoint."""
        import pytorch_lightning as pl
        import torch
        from pytorch_lightning.callbacks import ModelCheckpoint

        logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # Lightning resets it on import
        module = make_module(lr)
        if init is not None:
            state = torch.load(checkpoint_path(init), map_location="cpu", weights_only=True)
            module.load_state_dict(state["state_dict"])
        checkpoints = ModelCheckpoint(dirpath=workdir / "checkpoints" / stage, monitor="val_loss", mode="min",
                                      save_top_k=2, save_last=True, filename="{epoch}-{val_loss:.3f}")
        trainer = pl.Trainer(
            max_epochs=EPOCHS, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
            enable_model_summary=False, callbacks=[checkpoints, PlaitCheckpoints("classifier")],
            default_root_dir=workdir / "lightning", num_sanity_val_steps=0,
        )
        train_loader, val_loader = loaders(data)
        trainer.fit(module, train_loader, val_loader)
        return Path(checkpoints.best_model_path)

    @task
    def evaluate(model: Path, data: Any, stage: str) -> Any:
        """Measure test accuracy and return it as a ``result`` artifact."""
        import torch

        module = make_module(0.1)
        module.load_state_dict(torch.load(model, map_location="cpu", weights_only=True)["state_dict"])
        acc = accuracy(module, data)
        return plait.Artifact(f"metrics-{stage}", type="result").add_json({"stage": stage, "accuracy": acc}, "metrics.json")

    @track
    @flow(name="train-classifier")
    def train_classifier(raw: Path, lr: float = 0.5) -> Any:
        """Clean the raw reviews and train the first classifier."""
        data = clean(raw)
        model = train(data, lr, "first")
        return evaluate(model, data, "first")

    def fine_tuning(name: str, stage: str, default_lr: float, description: str) -> Any:
        @track
        @flow(name=name, description=description)
        def fine_tune(raw: Path, base: str, lr: float = default_lr) -> Any:
            data = clean(raw)
            model = train(data, lr, stage, init=base)
            return evaluate(model, data, stage)

        return fine_tune

    model_surgery = fine_tuning("model-surgery", "surgery", 0.2, "Fine-tune the best model on the changed dataset.")
    backtrack = fine_tuning("backtrack", "backtrack", 0.05,
                            "Go back to the first model and fine-tune it again, more gently, on the original data.")
    return {"train": train_classifier, "surgery": model_surgery, "backtrack": backtrack}


def run_pipeline(workdir: Path) -> DemoResult:
    """Run the three flows against the current default store and return what they made."""

    from prefect.settings import temporary_settings

    flows = build_flows(workdir)
    # both folders are called "reviews": their contents become two versions of one artifact
    original = write_raw_data(workdir / "original" / "reviews", changed=False)
    changed = write_raw_data(workdir / "changed" / "reviews", changed=True)
    # the flow heartbeat adds about a second to every flow; the demo's flows are short
    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        return _run_flows(flows, original, changed)


def _run_flows(flows: dict[str, Any], original: Path, changed: Path) -> DemoResult:
    import plait

    result = DemoResult()
    flows["train"](original)
    first = plait.get("classifier:best")
    result.first = first.spec
    flows["surgery"](changed, first.spec)
    result.surgery = plait.get("classifier:latest").spec
    flows["backtrack"](original, first.spec)
    result.backtrack = plait.get("classifier:latest").spec
    for stage in ("first", "surgery", "backtrack"):
        metrics = plait.get(f"metrics-{stage}:latest")
        result.metrics[stage] = float(__import__("json").loads(metrics.read_bytes("metrics.json"))["accuracy"])
    result.datasets = sorted({v.spec for v in plait.lineage(result.surgery).versions.values() if v.name.startswith("reviews")})
    return result


def quiet_environment() -> None:
    """Set what keeps the demo offline, quiet and fast before Prefect and datasets are imported."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
    # Prefect's local server starts in 6-10 s on an idle 2-core machine; its default limit of
    # 20 s is too tight on a busy one
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)  # device banners and tips, not errors
    warnings.filterwarnings("ignore", message=r".*treespec.*LeafSpec")  # torch deprecation inside Lightning
