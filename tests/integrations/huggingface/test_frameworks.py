"""Without extra code: a Prefect task returning a Dataset is logged, and a task given a loaded
Dataset is linked to its version (slow: it needs the session's Prefect server, see the root conftest)."""

from __future__ import annotations

import pytest

import plait
from plait.integrations.huggingface import load, track

pytestmark = pytest.mark.slow


def test_a_prefect_task_returning_a_dataset_is_tracked(prefect_server, tmp_path, monkeypatch, reviews):
    from prefect import flow, task

    from plait.integrations.prefect import track as track_flow

    monkeypatch.setenv("PLAIT_STORE", str(tmp_path / "store"))
    store = plait.Store(str(tmp_path / "store"))
    with plait.run("prep", store=store):
        track(reviews, "raw")

    @task
    def positives(ds):
        return ds.filter(lambda r: r["label"] == 1)

    @track_flow
    @flow
    def pipeline() -> int:
        return len(positives(load("raw")))

    assert pipeline() == 3
    (task_run,) = [r for r in store.runs(kind="prefect.task")]
    assert [v.spec for v in task_run.inputs] == ["raw:v0"]
    (output,) = task_run.outputs
    assert output.type == "dataset" and output.metadata["huggingface"]["num_rows"] == 3
