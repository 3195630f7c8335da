"""A tracked flow records every task run, whatever task runner runs it and in whichever process.

Real worker processes: Prefect's ``ProcessPoolTaskRunner`` (spawned workers, a fresh pool per
flow run) and prefect-dask's ``DaskTaskRunner`` on a ``distributed.LocalCluster`` with two worker
processes (one cluster for the module: a cluster takes seconds to start). Only the flow is
tracked; the tasks live in ``pipelines.py``, which never calls ``track``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prefect import flow
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

import plait
from plait.integrations.prefect import track

from .conftest import flow_runs, task_runs
from .pipelines import make_handoff, make_pipeline, prepare, train

pytestmark = pytest.mark.usefixtures("importable_tests")


@pytest.fixture(scope="module")
def dask_address(importable_tests: None) -> Iterator[str]:
    """A local Dask cluster with two worker processes of one thread each, for the whole module."""
    distributed = pytest.importorskip("distributed")
    pytest.importorskip("prefect_dask")
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address=":0") as cluster:  # a free port: 8787 may be taken
        yield cluster.scheduler_address


def dask_runner(address: str) -> Any:
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=address)


@pytest.fixture(scope="module")
def ray_address(importable_tests: None) -> Iterator[str]:
    """A local Ray instance for the module. Ray is not in the ``dev`` extra: a Ray instance takes
    30 s and more to start here, so these tests run where ``prefect-ray`` is installed by hand."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("prefect_ray")
    repo = str(Path(__file__).resolve().parents[3])
    context = ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": repo}})
    try:
        yield context.address_info["address"]
    finally:
        ray.shutdown()


@pytest.fixture(params=["thread", "process", "dask"])
def runner(request: pytest.FixtureRequest) -> tuple[str, Callable[[], Any]]:
    """``(name, make)``: a task runner of each kind (``make()`` returns a new runner)."""
    if request.param == "thread":
        return "thread", lambda: ThreadPoolTaskRunner(max_workers=2)
    if request.param == "process":
        return "process", lambda: ProcessPoolTaskRunner(max_workers=2)
    address = request.getfixturevalue("dask_address")
    return "dask", lambda: dask_runner(address)


@pytest.fixture
def plait_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """What plait said about Prefect runs (its warnings are logged when warnings are errors)."""
    caplog.set_level(logging.WARNING, logger="plait.prefect")
    return caplog


def said(log: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in log.records if r.name == "plait.prefect"]


def assert_recorded(store: plait.Store, *, elsewhere: bool, flow_run: plait.RunRecord | None = None,
                    version: int = 0) -> dict[str, plait.RunRecord]:
    """Assert the runs and edges of one run of ``make_pipeline``: exactly, both ways."""
    flow_run = flow_run or flow_runs(store)[0]
    runs = {r.name: r for r in store.runs(parent=flow_run.id)}
    assert sorted(runs) == ["evaluate", "prepare", "train"]
    assert {(r.kind, r.status) for r in runs.values()} == {("prefect.task", "finished")}
    assert flow_run.kind == "prefect.flow" and flow_run.status == "finished" and flow_run.parent is None
    pids = {r.info["pid"] for r in runs.values()}
    assert (os.getpid() not in pids) if elsewhere else (pids == {os.getpid()})
    prep, trn, ev = runs["prepare"], runs["train"], runs["evaluate"]
    data, model, report = f"prepare:v{version}", f"train:v{version}", f"report:v{version}"
    assert {n: (sorted(v.spec for v in r.inputs), [v.spec for v in r.outputs]) for n, r in runs.items()} == {
        "prepare": ([], [data]), "train": ([data], [model]), "evaluate": (sorted([data, model]), [report]),
    }
    assert {r.info["prefect"]["flow_run_id"] for r in runs.values()} == {flow_run.info["prefect"]["flow_run_id"]}
    up = store.lineage(report)
    parents = {(f"run:{flow_run.id}", f"run:{r.id}", "parent") for r in runs.values()}
    assert set(up.edges) == parents | {
        (f"run:{prep.id}", data, "produced"), (data, f"run:{trn.id}", "used"), (f"run:{trn.id}", model, "produced"),
        (data, f"run:{ev.id}", "used"), (model, f"run:{ev.id}", "used"), (f"run:{ev.id}", report, "produced"),
    }
    down = store.lineage(data, direction="downstream")
    assert set(down.versions) == {data, model, report}
    assert set(down.runs) == {trn.id, ev.id} | ({flow_run.id} if flow_run.id in down.runs else set())
    return runs


def test_a_tracked_flow_records_its_task_runs_as_children_on_every_runner(runner, store, tmp_path, plait_log):
    name, make = runner
    # track(store=<a Store object>): a Store used to hold an RLock, and pickling the tracked Flow
    # for a worker process failed the whole flow
    pipeline = make_pipeline(make(), store=store)

    result = pipeline(12, tmp_path)

    assert result["rows"] == 12 and (result["pid"] != os.getpid()) == (name != "thread")
    assert_recorded(store, elsewhere=name != "thread")
    assert store.get("report").read_bytes("report.txt") == b"slope 2.0 rows 12\n"
    assert said(plait_log) == []


def test_a_path_handed_from_task_to_task_links_the_version_the_upstream_task_logged(runner, store, tmp_path):
    name, make = runner
    flow_fn = make_handoff(make())

    flow_fn(tmp_path)

    runs = {r.name: r for r in store.runs(parent=flow_runs(store)[0].id)}
    assert sorted(runs) == ["consume", "export-a", "export-b"]
    a, b, consume = runs["export-a"], runs["export-b"], runs["consume"]
    assert [v.spec for v in a.outputs] == ["export-a:v0"] and [v.spec for v in b.outputs] == ["export-b:v0"]
    assert store.get("export-a:v0").digest == store.get("export-b:v0").digest  # the very same file
    if name != "process":  # Prefect names consume's upstream task run: the link goes to what it logged,
        # found in this process (thread pool) or in the store (another Dask worker logged it)
        assert consume.info["prefect"]["task_inputs"]["weights"] == [a.info["prefect"]["task_run_id"]]
        assert [v.spec for v in consume.inputs] == ["export-a:v0"]
        assert set(store.lineage("consume:v0").runs) == {consume.id, a.id, flow_runs(store)[0].id}
    else:  # ProcessPoolTaskRunner resolves futures before shipping a task: Prefect records no
        # task_inputs, and plait links the version produced last inside the flow's run
        assert "weights" not in consume.info["prefect"]["task_inputs"]
        assert [v.spec for v in consume.inputs] == ["export-b:v0"]


@pytest.mark.slow
def test_ray_workers_record_the_flows_task_runs_and_follow_its_hand_offs(ray_address, store, tmp_path):
    from prefect_ray import RayTaskRunner

    make_pipeline(RayTaskRunner(address=ray_address), store=store)(5, tmp_path)
    assert_recorded(store, elsewhere=True)

    (tmp_path / "handoff").mkdir()
    make_handoff(RayTaskRunner(address=ray_address), store=store)(tmp_path / "handoff")
    [handoff] = flow_runs(store, "handoff")
    runs = {r.name: r for r in store.runs(parent=handoff.id)}
    assert [v.spec for v in runs["consume"].inputs] == ["export-a:v0"]


def test_on_the_s3_store_a_dask_worker_links_the_version_another_worker_just_logged(dask_address, s3_url, s3_options,
                                                                                   tmp_path):
    store = plait.Store(s3_url, storage_options=s3_options)
    flow_fn = make_handoff(dask_runner(dask_address), store=store)

    flow_fn(tmp_path)

    runs = {r.name: r for r in store.runs(parent=flow_runs(store)[0].id)}
    assert [v.spec for v in runs["consume"].inputs] == ["export-a:v0"]
    assert store.get("export-a:v0").produced_by.id == runs["export-a"].id


def test_on_the_s3_store_a_dask_worker_records_with_the_credentials_the_flow_was_given(dask_address, s3_url, s3_options,
                                                                                       tmp_path, plait_log):
    store = plait.Store(s3_url, storage_options=s3_options)
    pipeline = make_pipeline(dask_runner(dask_address), store=store)

    assert pipeline(5, tmp_path)["rows"] == 5

    assert_recorded(store, elsewhere=True)
    assert said(plait_log) == []


def test_an_async_task_in_a_dask_worker_uses_the_report_another_worker_logged(dask_address, store, tmp_path):
    pipeline = make_pipeline(dask_runner(dask_address), summary=True)

    pipeline(3, tmp_path)

    [summarize] = task_runs(store, "summarize")
    [evaluate] = task_runs(store, "evaluate")
    assert summarize.parent == evaluate.parent == flow_runs(store)[0].id
    assert [v.spec for v in summarize.inputs] == ["report:v0"] and [v.spec for v in summarize.outputs] == ["summarize:v0"]
    assert store.get("report:v0").created_by == evaluate.id


def test_two_runs_of_one_flow_object_at_once_keep_their_tasks_apart(dask_address, store, tmp_path):
    pipeline = make_pipeline(dask_runner(dask_address))
    folders = [tmp_path / "a", tmp_path / "b"]
    for folder in folders:
        folder.mkdir()
    threads = [threading.Thread(target=pipeline, args=(n, folder)) for n, folder in zip((4, 6), folders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    flows = flow_runs(store)
    assert len(flows) == 2
    by_rows = {}
    for flow_run in flows:
        children = {r.name: r for r in store.runs(parent=flow_run.id)}
        assert sorted(children) == ["evaluate", "prepare", "train"]
        by_rows[flow_run.config["n"]] = store.get(children["prepare"].outputs[0].spec).read_bytes("data.csv").count(b"\n") - 1
    assert by_rows == {4: 4, 6: 6}


def test_a_failing_task_in_a_worker_is_recorded_failed_after_its_retries(dask_address, store, tmp_path):
    marker = tmp_path / "attempts"

    @track
    @flow(task_runner=dask_runner(dask_address))
    def flaky_flow(path: Path) -> None:
        prepare.with_options(retries=1).submit(-1, path).result()  # writes fine: the model step fails
        train.with_options(retries=1).submit(marker, path).result()

    with pytest.raises(Exception):
        flaky_flow(tmp_path)

    [failed] = task_runs(store, "train")
    assert failed.status == "failed" and failed.summary["prefect"]["attempts"] == 2
    assert failed.parent == flow_runs(store)[0].id and failed.outputs == []


def test_a_memory_store_with_a_process_runner_is_said_once_and_the_flow_still_runs(dask_address, tmp_path, plait_log):
    store = plait.Store("memory://plait-runners-test")
    pipeline = make_pipeline(dask_runner(dask_address), store=store)

    assert pipeline(2, tmp_path)["rows"] == 2
    assert pipeline(3, tmp_path)["rows"] == 3

    [message] = said(plait_log)
    assert message.startswith("plait: flow 'pipeline' records to memory://plait-runners-test, a memory:// store, which "
                              "lives in this process only, but its task runner DaskTaskRunner runs tasks in "
                              "other processes")
    assert message.endswith("Record to a folder or a bucket (track(flow, store=...) or $PLAIT_STORE).")
    assert len(flow_runs(store)) == 2 and task_runs(store) == []


class ReloadingRunner(ProcessPoolTaskRunner):
    """A runner that ships a rebuilt copy of the flow to its workers, as a runner that loads flows
    from their source would: the copy has the options ``track`` put on the function, but not the
    flow run's carrier, so plait cannot follow its tasks."""

    def _resolve_futures_and_submit(self, *args: Any, **kwargs: Any) -> Any:
        context = kwargs["context"]
        shipped = dict(context["flow_run_context"])
        shipped["flow"] = shipped["flow"].with_options()
        kwargs["context"] = {**context, "flow_run_context": shipped}
        return super()._resolve_futures_and_submit(*args, **kwargs)


def test_a_runner_plait_cannot_follow_is_said_once_at_the_end_of_the_flow(store, tmp_path, plait_log):
    pipeline = make_pipeline(ReloadingRunner(max_workers=1))

    assert pipeline(2, tmp_path)["rows"] == 2
    assert pipeline(2, tmp_path)["rows"] == 2  # said once, not per flow run

    [message] = said(plait_log)
    assert message.startswith("plait recorded none of the 3 finished task runs of flow 'pipeline': its task runner "
                              "ReloadingRunner ran them where plait could not follow, so only the flow run is in the store.")
    assert len(flow_runs(store)) == 2 and task_runs(store) == []


def test_the_carried_context_holds_no_more_than_the_flows_run_and_store(store, tmp_path):
    import pickle

    from plait.integrations.prefect.runners import CARRIERS_ATTR

    seen: dict[str, Any] = {}

    @track
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def peek() -> None:
        from prefect.context import FlowRunContext

        ctx = FlowRunContext.get()
        [carrier] = getattr(ctx.flow, CARRIERS_ATTR).values()
        seen["carrier"] = pickle.loads(pickle.dumps(carrier))
        seen["size"] = len(pickle.dumps(carrier))
        seen["flow_run_id"] = str(ctx.flow_run.id)

    peek()

    [flow_run] = flow_runs(store)
    carrier = seen["carrier"]
    assert (carrier.flow_run_id, carrier.parent, carrier.store, carrier.store_id) == (
        seen["flow_run_id"], flow_run.id, store, store.id)
    assert carrier.store is plait.current_store(store.url)  # reopened once per process, not per task
    assert seen["size"] < 1000
    assert getattr(peek, CARRIERS_ATTR) == {}  # taken off when the flow run ended
