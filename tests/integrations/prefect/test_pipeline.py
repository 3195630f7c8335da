"""The feature as the issue states it: decorate a flow, and every task's data is versioned and linked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import xxhash
from click.testing import CliRunner
from prefect import flow, task

import plait
from plait.cli import main
from plait.integrations.prefect import track

from .conftest import flow_runs, task_runs


@task
def prepare(raw: Path) -> Path:
    out = Path("data")
    out.mkdir(exist_ok=True)
    for f in sorted(raw.rglob("*.txt")):
        (out / f.name).write_text(f.read_text().upper())
    return out


@task
def train(data: Path, lr: float) -> Path:
    text = "".join(p.read_text() for p in sorted(data.iterdir()))
    out = Path("checkpoint.bin")
    out.write_bytes(f"weights({text!r}, lr={lr})".encode())
    return out


@track(names={"prepare": "data", "train": "checkpoint"}, types={"train": "model"})
@flow
def pipeline(raw: Path, lr: float = 1e-3) -> Path:
    data = prepare(raw)
    return train(data, lr)


def test_a_tracked_flow_records_its_runs_inputs_and_outputs_linked(store, data):
    result = pipeline(data, lr=0.5)

    assert result == Path("checkpoint.bin")  # tracking does not change what the flow returns
    [flow_run] = flow_runs(store)
    prep, trn = task_runs(store)
    assert (flow_run.name, flow_run.status, flow_run.config) == ("pipeline", "finished", {"raw": str(data), "lr": 0.5})
    assert flow_run.info["prefect"]["flow_name"] == "pipeline" and len(flow_run.info["prefect"]["flow_run_id"]) == 36
    assert [r.parent for r in (prep, trn)] == [flow_run.id, flow_run.id]
    assert (prep.name, trn.name, trn.config) == ("prepare", "train", {"lr": 0.5})
    assert trn.info["prefect"]["task_inputs"] == {"data": [prep.info["prefect"]["task_run_id"]]}
    assert trn.info["prefect"]["flow_run_id"] == flow_run.info["prefect"]["flow_run_id"]

    assert [v.spec for v in prep.inputs] == ["raw:v0"] and [v.spec for v in prep.outputs] == ["data:v0"]
    assert [v.spec for v in trn.inputs] == ["data:v0"] and [v.spec for v in trn.outputs] == ["checkpoint:v0"]
    assert trn.summary["inputs"] == {"data": "data:v0"} and trn.summary["outputs"] == {"train": "checkpoint:v0"}
    checkpoint = store.get("checkpoint")
    assert checkpoint.type == "model" and checkpoint.created_by == trn.id
    expected = b"weights('ALPHA\\nBETA\\n', lr=0.5)"
    assert checkpoint.read_bytes("checkpoint.bin") == expected
    assert checkpoint.files()[0].digest.endswith(xxhash.xxh3_128_hexdigest(expected))
    assert sorted(e.path for e in store.get("data:v0").files()) == ["a.txt", "b.txt"]

    edges = set(store.lineage("checkpoint:v0").edges)
    assert edges == {
        ("raw:v0", f"run:{prep.id}", "used"), (f"run:{prep.id}", "data:v0", "produced"),
        ("data:v0", f"run:{trn.id}", "used"), (f"run:{trn.id}", "checkpoint:v0", "produced"),
        (f"run:{flow_run.id}", f"run:{prep.id}", "parent"), (f"run:{flow_run.id}", f"run:{trn.id}", "parent"),
    }


def test_plait_lineage_shows_raw_prepare_data_train_checkpoint_and_the_flow(store, data):
    pipeline(data)
    flow_id = flow_runs(store)[0].id

    out = CliRunner().invoke(main, ["--store", store.url, "lineage", "checkpoint"])

    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "checkpoint:v0"
    assert lines[1].startswith("└─ <- train [prefect.task, finished]") and lines[1].endswith(f"in pipeline [prefect.flow] {flow_id[-8:]}")
    assert lines[2].strip() == "└─ <- data:v0"
    assert lines[3].strip().startswith("└─ <- prepare [prefect.task, finished]") and "in pipeline" in lines[3]
    assert lines[4].strip() == "└─ <- raw:v0"


def test_two_flows_are_stitched_by_the_bytes_they_share(store, data, tmp_path):
    @track
    @flow
    def evaluate(checkpoint: Path) -> float:
        return score(checkpoint)

    pipeline(data)
    copy = tmp_path / "elsewhere" / "checkpoint.bin"  # the same bytes under another path and no name
    copy.parent.mkdir()
    copy.write_bytes(Path("checkpoint.bin").read_bytes())

    assert evaluate(copy) == float(len(copy.read_bytes()))

    [scoring] = task_runs(store, "score")
    assert [v.spec for v in scoring.inputs] == ["checkpoint:v0"]
    assert scoring.summary["values"] == {"score": float(len(copy.read_bytes()))}  # a small value is a parameter, not an artifact
    up = store.lineage(f"run:{scoring.id}")
    assert {r.name for r in up.runs.values()} == {"score", "evaluate", "train", "prepare", "pipeline"}


@task
def score(checkpoint: Path) -> float:
    return float(len(checkpoint.read_bytes()))


def test_a_version_used_in_another_process_links_to_the_task_that_produced_it(store, data, tmp_path):
    pipeline(data)
    code = (
        "import plait, sys\n"
        "with plait.run('report') as r:\n"
        "    v = r.use(sys.argv[1])\n"
        "print(v.spec, v.created_by)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "checkpoint.bin")], capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "PLAIT_STORE": store.url})

    assert done.returncode == 0, done.stderr
    [trn] = task_runs(store, "train")
    assert done.stdout.split() == ["checkpoint:v0", trn.id]


def test_a_ten_stage_flow_has_exactly_the_lineage_it_ran(store, tmp_path):
    @task
    def stage(src: Path, i: int) -> Path:
        out = tmp_path / f"s{i}.txt"
        out.write_text(src.read_text() + f"+{i}")
        return out

    @track
    @flow
    def ten(raw: Path) -> Path:
        current = raw
        for i in range(10):
            current = stage(current, i)
        return current

    raw = tmp_path / "raw.txt"
    raw.write_text("r")

    assert ten(raw).read_text() == "r+0+1+2+3+4+5+6+7+8+9"

    [parent] = flow_runs(store)
    runs = task_runs(store)
    assert [r.config for r in runs] == [{"i": i} for i in range(10)]
    inputs = ["raw.txt:v0"] + [f"stage:v{i}" for i in range(9)]
    expected = {(f"run:{parent.id}", f"run:{r.id}", "parent") for r in runs}
    for i, r in enumerate(runs):
        expected |= {(inputs[i], f"run:{r.id}", "used"), (f"run:{r.id}", f"stage:v{i}", "produced")}
    graph = plait.lineage("stage:v9", store=store)
    assert set(graph.edges) == expected
    assert store.get("stage:v9").read_bytes("s9.txt") == b"r+0+1+2+3+4+5+6+7+8+9"
    assert json.loads(graph.to_json())["root"] == "stage:v9"
