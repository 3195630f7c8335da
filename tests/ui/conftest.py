"""Fixtures for the dashboard: a small but real store (a dataset, its preparation, a model, a
twenty-stage fine-tuning chain with branches) and clients for the app built over it."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the dashboard needs the ui extra: pip install 'plait[ui]'")

import plait  # noqa: E402

#: How many fine-tuning stages the chain has (the issue's legibility case).
STAGES = 20


def png_bytes(width: int = 4, height: int = 3) -> bytes:
    """Return a real RGB PNG image (a small gradient)."""
    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 60, y * 80, 200)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


RAW_FILES = {
    "data.csv": "id,text,label\n1,hello,0\n2,world,1\n3,\"a, quoted\",0\n",
    "README.md": "# Raw data\nCollected in 2024.\n",
    "config.json": '{"source": "crawl", "languages": ["en", "fr"]}',
    "images/pixel.png": png_bytes(),
    "weights.bin": bytes(range(256)) * 4,
}


def build_demo(store: plait.Store, root: Path) -> dict[str, object]:
    """Fill ``store`` with a pipeline and return what the tests look for.

    raw:v0 -> raw:v1 (prod) -> prepare -> clean:v0 -> train -> model:v0 (best), then a
    fine-tuning chain ft:v0..v19 from model:v0, each stage a run; stages 5, 10 and 15 also log
    an eval result, and stage 10 switches to a second instructions dataset.
    """
    def write(folder: str, files: dict[str, bytes | str]) -> Path:
        base = root / folder
        for rel, content in files.items():
            path = base / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode() if isinstance(content, str) else content)
        return base

    with plait.run("ingest", store=store, config={"source": "crawl"}) as ingest:
        raw0 = ingest.log(write("raw0", RAW_FILES), name="raw", type="dataset", description="First crawl.")
        changed = {**RAW_FILES, "data.csv": RAW_FILES["data.csv"] + "4,again,1\n", "extra.txt": "new file\n"}
        del changed["weights.bin"]
        raw1 = ingest.log(write("raw1", changed), name="raw", type="dataset", aliases=["prod"],
                          metadata={"rows": 4, "license": "cc-by"})
    with plait.run("prepare", store=store, config={"lowercase": True}) as prepare:
        prepare.use("raw:prod")
        clean = prepare.log(b"id,text\n1,hello\n", name="clean", type="dataset")
    with plait.run("train", store=store, config={"lr": 0.001, "epochs": 3}) as train:
        train.use(clean)
        model = train.log(b"weights-0", name="model", type="model", aliases=["best"])
    with plait.run("collect-instructions", store=store) as collect:
        instructions = [collect.log(b"instructions-a", name="instructions", type="dataset"),
                        collect.log(b"instructions-b", name="instructions", type="dataset")]
    previous = model
    stages = []
    for i in range(STAGES):
        with plait.run(f"finetune-{i:02d}", store=store, config={"stage": i}) as stage:
            stage.use(previous)
            if i in (0, 10):
                stage.use(instructions[i // 10])
            previous = stage.log(f"ft-weights-{i}".encode(), name="ft", type="model")
            if i % 5 == 0 and i:
                stage.log(f'{{"stage": {i}, "loss": {1 / (i + 1):.3f}}}'.encode(), name=f"eval-{i:02d}", type="result")
            stages.append(stage.id)
    previous.set_alias("release")
    return {"raw0": raw0, "raw1": raw1, "clean": clean, "model": model, "ft_last": previous, "stages": stages,
            "ingest": ingest.id, "prepare": prepare.id, "train": train.id, "raw_files": RAW_FILES, "png": png_bytes()}


@pytest.fixture(scope="session")
def shared_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[plait.Store, dict[str, object]]:
    """The demo pipeline in a local store built once, for tests that only read."""
    root = tmp_path_factory.mktemp("ui-demo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PLAIT_CACHE_DIR", str(root / "_cache"))
        store = plait.Store(str(root / "store"))
        return store, build_demo(store, root / "src")


@pytest.fixture
def demo(file_store: plait.Store, tmp_path: Path) -> tuple[plait.Store, dict[str, object]]:
    """A fresh local store holding the demo pipeline, and its landmarks, for tests that write."""
    return file_store, build_demo(file_store, tmp_path / "src")


@pytest.fixture
def client(shared_demo):
    """A test client of a read-only dashboard over the shared demo store."""
    from fastapi.testclient import TestClient

    from plait.ui import create_app

    with TestClient(create_app(shared_demo[0])) as c:
        c.headers["X-CSRF-Token"] = c.get("/api/session").json()["csrf"]
        yield c


@pytest.fixture
def edit_client(demo):
    """A test client of a dashboard started with ``--allow-edit``."""
    from fastapi.testclient import TestClient

    from plait.ui import create_app

    with TestClient(create_app(demo[0], allow_edit=True)) as c:
        c.headers["X-CSRF-Token"] = c.get("/api/session").json()["csrf"]
        yield c


# -- a team's store: a flow with tasks, a failed attempt, checkpoints, tables and images ----------

def build_team(store: plait.Store, root: Path) -> dict[str, object]:
    """Add to the demo store what a team's pipeline leaves: a Prefect-like flow of three tasks
    (the training task failed once and then logged twelve checkpoints), a Parquet table, a
    Hugging Face dataset when ``datasets`` is installed, and a folder of images."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = root / "team"
    (data / "images" / "cats").mkdir(parents=True)
    for i in range(6):
        (data / "images" / "cats" / f"cat-{i}.png").write_bytes(png_bytes(3 + i % 2, 3))
    wide = pa.table({f"feature_{c:02d}": [float(r * c) for r in range(300)] for c in range(65)})
    pq.write_table(wide, data / "features.parquet", row_group_size=50)
    marks: dict[str, object] = {}
    with plait.run("nightly", store=store, kind="prefect.flow", config={"date": "2024-06-01"}) as flow:
        with plait.run("clean", store=store, kind="prefect.task") as clean:
            clean.use("raw:prod")
            cleaned = clean.log(str(data), name="team-data", type="dataset")
        try:
            with plait.run("train", store=store, kind="prefect.task") as failed:
                failed.use(cleaned)
                raise RuntimeError("CUDA out of memory")
        except RuntimeError:
            pass
        with plait.run("train", store=store, kind="prefect.task", config={"lr": 0.01}) as train:
            train.use(cleaned)
            checkpoints = [train.log(f"ckpt {i}".encode(), name="classifier", type="model",
                                     metadata={"epoch": i, "val_loss": round(1 / (i + 1), 4)}) for i in range(12)]
            best = checkpoints[-1].set_alias("best")
            train.finish(summary={"metrics": {"val_loss": 0.0833, "val_acc": 0.91}})
        with plait.run("evaluate", store=store, kind="prefect.task") as evaluate:
            evaluate.use(best)
            evaluate.use(cleaned)
            metrics = evaluate.log(b'{"accuracy": 0.91}', name="team-metrics", type="result")
    marks.update(flow=flow.id, clean=clean.id, failed=failed.id, train=train.id, evaluate=evaluate.id, data=cleaned,
                 best=best, metrics=metrics, checkpoints=checkpoints)
    try:
        import datasets
    except ImportError:
        return marks
    ds = datasets.Dataset.from_dict({"text": [f"review {i}" for i in range(2500)], "label": [i % 2 for i in range(2500)]})
    ds.save_to_disk(str(root / "hf"), max_shard_size="20KB")
    marks["hf"] = store.log(str(root / "hf"), name="reviews-hf", type="dataset")
    return marks


@pytest.fixture
def team_demo(demo, tmp_path, monkeypatch):
    """The demo store with a team's pipeline added (see :func:`build_team`)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    store, marks = demo
    return store, {**marks, **build_team(store, tmp_path / "team-src")}
