"""Without extra code: a Prefect task returning a Dataset is logged, and a task given a loaded
Dataset is linked to its version (slow: it starts Prefect's ephemeral server)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import plait
from plait.integrations.huggingface import load, track

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One ephemeral Prefect server for this module."""
    pytest.importorskip("prefect")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    results = tmp_path_factory.mktemp("prefect-results")
    with prefect_test_harness(server_startup_timeout=180), temporary_settings(
        updates={"flows.heartbeat_frequency": None, "results.local_storage_path": str(results)}
    ):
        yield


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
