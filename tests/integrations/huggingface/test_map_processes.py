"""``Dataset.map(num_proc=N)`` runs the function in worker processes (``multiprocess``, forked): what
they use is recorded in the run that called ``map``, and the transform chain is the same as with
one process."""

from __future__ import annotations

import os
from pathlib import Path

import datasets

import plait
from plait.integrations.huggingface import TRANSFORM_KIND, track


def add_side(row: dict) -> dict:
    """Read the row's side file (an input of the run, recorded from the worker)."""
    side = Path(row["side"])
    plait.use(str(side))
    return {"text": f"{row['text']} {side.read_text().strip()}", "pid": os.getpid()}


def test_map_with_worker_processes_records_every_file_the_workers_used_in_the_calling_run(file_store, tmp_path):
    sides = []
    for i in range(4):
        side = tmp_path / f"side-{i}.txt"
        side.write_text(f" side{i}")
        sides.append(str(side))
    ds = datasets.Dataset.from_dict({"text": [f"row{i}" for i in range(4)], "side": sides})

    with plait.run("prep", store=file_store) as run:
        track(ds, "raw")
        mapped = ds.map(add_side, num_proc=2)
        track(mapped, "prepared")

    pids = set(mapped["pid"])
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes did the work
    assert mapped["text"] == [f"row{i} side{i}" for i in range(4)]
    record = file_store.get_run(run.id)
    assert {v.spec for v in record.inputs} == {f"side-{i}.txt:v0" for i in range(4)}  # the last use of each worker too
    graph = plait.lineage("prepared:v0", store=file_store)
    [producer] = graph.producers("prepared:v0")
    transform = graph.runs[producer[4:]]
    assert (transform.kind, transform.parent) == (TRANSFORM_KIND, run.id)
    assert [s["transform"] for s in transform.config["transforms"]] == ["map"]
    assert set(graph.producers(producer)) == {"raw:v0"} and (f"run:{run.id}", producer, "parent") in graph.edges
    assert set(graph.producers(f"run:{run.id}")) == {f"side-{i}.txt:v0" for i in range(4)}  # the workers' uses
    assert {r.id for r in file_store.runs()} == {run.id, transform.id}  # nothing recorded apart in the workers
