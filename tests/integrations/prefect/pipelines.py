"""A small tracked pipeline (prepare -> train -> evaluate) to run on every Prefect task runner.

The tasks are plain module-level ``@task``s; the flow is built and tracked in the test process by
:func:`make_pipeline`, so a worker process that imports this module never runs ``track`` itself:
whatever it records, it records because the flow run's context brought plait along. Paths are
absolute, since a worker may run in another folder.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from prefect import Flow, flow, task

import plait
from plait.integrations.prefect import track


@task
def prepare(n: int, out_dir: Path) -> Path:
    """Write a small CSV of ``n`` rows."""
    out = out_dir / "data.csv"
    out.write_text("x,y\n" + "".join(f"{i},{2 * i}\n" for i in range(n)))
    return out


@task
def train(data: Path, out_dir: Path) -> Path:
    """Fit a slope to the CSV and write it as a model file."""
    rows = [line.split(",") for line in data.read_text().splitlines()[1:]]
    slope = sum(float(y) for _, y in rows) / max(1.0, sum(float(x) for x, _ in rows))
    model = out_dir / "model.json"
    model.write_text(json.dumps({"slope": slope, "rows": len(rows)}))
    return model


@task
def evaluate(data: Path, model: Path) -> dict[str, Any]:
    """Write a report and log it from inside the task (user code calling plait in a worker)."""
    fitted = json.loads(model.read_text())
    report = model.with_name("report.txt")
    report.write_text(f"slope {fitted['slope']} rows {fitted['rows']}\n")
    plait.log(report, name="report")
    return {"rows": len(data.read_text().splitlines()) - 1, "pid": os.getpid()}


@task
async def summarize(report: Path) -> Path:
    """An async task: copy the report's first word into a summary file."""
    await asyncio.sleep(0)
    out = report.with_name("summary.txt")
    out.write_text(report.read_text().split()[0] + "\n")
    return out


@task
def export(out_dir: Path, label: str) -> Path:
    """Write the same bytes under the same file name as every other ``export`` (in its own folder)."""
    path = out_dir / label / "weights.bin"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(b"identical weights\n")
    return path


@task
def consume(weights: Path) -> Path:
    """Derive a report from the weights it was handed."""
    report = weights.parent.parent / "consumed.txt"
    report.write_text(f"{len(weights.read_bytes())} bytes\n")
    return report


def make_handoff(runner: Any, **options: Any) -> Flow:
    """Return a tracked flow where two tasks log identical files and a third gets the first one's.

    ``export-a`` runs first, ``export-b`` after it (so it produced last), and ``consume``
    receives ``export-a``'s path: only Prefect's ``task_inputs`` tell the two apart.

    :param options: passed to ``track``.
    """

    @flow(name="handoff", task_runner=runner)
    def handoff(out_dir: Path) -> Path:
        first = export.with_options(name="export-a").submit(out_dir, "a")
        second = export.with_options(name="export-b").submit(out_dir, "b", wait_for=[first])
        return consume.submit(first, wait_for=[second]).result()

    return track(handoff, skip_params=["out_dir"], **options)


def make_pipeline(runner: Any, *, name: str = "pipeline", summary: bool = False, **options: Any) -> Flow:
    """Return a tracked flow ``prepare -> train -> evaluate`` (and ``summarize``) on ``runner``.

    :param options: passed to ``track`` (``out_dir`` is never recorded).
    """

    @flow(name=name, task_runner=runner)
    def pipeline(n: int, out_dir: Path) -> dict[str, Any]:
        data = prepare.submit(n, out_dir)
        model = train.submit(data, out_dir)
        result = evaluate.submit(data, model).result()
        if summary:
            summarize.submit(model.result().with_name("report.txt")).result()
        return result

    return track(pipeline, skip_params=["out_dir"], **options)
