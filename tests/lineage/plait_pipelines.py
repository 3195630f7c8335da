"""Realistic pipelines for the lineage suite, and the helpers that read their graphs.

Importable by name (``tests/lineage`` is put on ``sys.path`` by its conftest), so that worker
processes (a Prefect process pool, Dask workers) can import the tasks defined here.

Every pipeline test asserts exact sets: :func:`up` and :func:`down` return the versions and the
runs a lineage query finds, runs as ``name#n`` where ``n`` counts the runs of that name and kind
in the order they started (``train#1`` is the first ``train`` task run, ``train#2`` its rerun).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import plait

# -- reading graphs ---------------------------------------------------------------------------------


def labels(store: plait.Store) -> dict[str, str]:
    """Return ``{run id: "name#n"}`` for every run of the store (``n`` from 1, by start order per name)."""
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    for run in sorted(store.runs(), key=lambda r: r.id):
        seen[run.name] = seen.get(run.name, 0) + 1
        out[run.id] = f"{run.name}#{seen[run.name]}"
    return out


def run_id(store: plait.Store, label: str) -> str:
    """Return the id of the run labelled ``name#n`` (see :func:`labels`)."""
    return next(i for i, text in labels(store).items() if text == label)


def sets(store: plait.Store, graph: plait.LineageGraph) -> tuple[set[str], set[str]]:
    """Return ``(version specs, run labels)`` of a graph."""
    names = labels(store)
    return set(graph.versions), {names[r] for r in graph.runs}


def up(store: plait.Store, spec: str, **kwargs: Any) -> tuple[set[str], set[str]]:
    """Return the versions and runs upstream of ``spec`` (runs around the runs included)."""
    return sets(store, store.lineage(spec, **kwargs))


def down(store: plait.Store, spec: str, **kwargs: Any) -> tuple[set[str], set[str]]:
    """Return the versions and runs downstream of ``spec`` (runs around the runs included)."""
    return sets(store, store.lineage(spec, direction="downstream", **kwargs))


def specs(versions: list[plait.ArtifactVersion]) -> list[str]:
    """Return ``name:vN`` of each version."""
    return [v.spec for v in versions]


# -- a Prefect pipeline: clean, train, evaluate -------------------------------------------------------

try:
    from prefect import flow, task
except ImportError:  # the Prefect pipelines are skipped; the helpers above still work
    flow = task = None  # type: ignore[assignment]

if task is not None:
    from plait.integrations.prefect import track

    @task
    def clean(raw: Path) -> Path:
        """Upper-case every line of the raw folder into ``clean/``."""
        out = Path("clean")
        out.mkdir(exist_ok=True)
        for f in sorted(raw.iterdir()):
            (out / f.name).write_text(f.read_text().upper())
        return out

    @task
    def train(data: Path) -> Path:
        """Write deterministic "weights" from the data: the same data gives the same bytes."""
        text = "".join(p.read_text() for p in sorted(data.iterdir()))
        out = Path("model.bin")
        out.write_bytes(f"weights({len(text)}, {sum(map(ord, text))})".encode())
        return out

    @task
    def evaluate(model: Path) -> dict:
        """Score the model; fails while the file ``FAIL`` exists in the working folder."""
        if os.path.exists("FAIL"):
            raise RuntimeError("the evaluation cluster is down")
        return {"accuracy": len(model.read_bytes()) / 100}

    @track(names={"clean": "clean", "train": "model"}, types={"train": "model"})
    @flow
    def clean_train_evaluate(raw: Path) -> dict:
        """clean → train → evaluate, each a task: the pipeline of the failed-then-rerun test."""
        return evaluate(train(clean(raw)))

    @task
    def transform(i: int) -> Path:
        """Write one of two shards; the task runs of a flow log them all under one name."""
        out = Path(f"work-{i}") / "shard.txt"
        out.parent.mkdir(exist_ok=True)
        out.write_text(f"shard {i % 2}\n")
        return out

    @track(names={"transform": "transform"})
    @flow
    def submitted(n: int = 4) -> list[str]:
        """Submit ``n`` transforms at once (two distinct contents) and wait for them."""
        futures = [transform.submit(i) for i in range(n)]
        return [str(f.result()) for f in futures]

    @task
    def export(name: str) -> Path:
        """Write bytes that an older, unrelated version already holds."""
        out = Path(f"{name}.bin")
        out.write_bytes(b"the same bytes as the old seed")
        return out

    @task
    def consume(path: Path) -> Path:
        """Read what ``export`` wrote and derive a report from it."""
        out = Path("report.txt")
        out.write_text(f"{len(path.read_bytes())} bytes read\n")
        return out

    @track(names={"export": "export", "consume": "report"})
    @flow
    def hand_off() -> Path:
        """export → consume: the path handed on is the version ``export`` just logged."""
        return consume(export("export"))


# -- the natural sequence of a notebook or a script with Hugging Face datasets ---------------------------

#: What :func:`natural_sequence` runs, as the text of a script or of notebook cells.
NATURAL_SEQUENCE = '''
import datasets
from plait.integrations.huggingface import load, track

reviews = datasets.Dataset.from_dict({"text": ["good", "bad", "great", "meh"], "label": [1, 0, 1, 0]})
track(reviews, "a")
track(reviews.filter(lambda r: r["label"] == 1).map(lambda r: {"n": len(r["text"])}), "b")
b = load("b:latest")
track(b.map(lambda r: {"n2": r["n"] * 2}), "c")
'''


def natural_sequence() -> None:
    """Track a dataset, track one derived from it, load that back, derive and track once more."""
    exec(compile(NATURAL_SEQUENCE, "natural_sequence", "exec"), {})
