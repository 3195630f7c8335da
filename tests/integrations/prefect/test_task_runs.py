"""Every way a task runs inside a tracked flow is tracked: submit, map, async, subflows, threads,
failures, retries and Prefect's cache; and tracking never changes what the flow does."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prefect import flow, task
from prefect.cache_policies import INPUTS
from prefect.task_runners import ThreadPoolTaskRunner

from plait.integrations.prefect import PrefectTrackingWarning, track

from .conftest import collect_closed_sockets, flow_runs, task_runs


@task
def write(name: str, text: str) -> Path:
    out = Path(name)
    out.write_text(text)
    return out


@task
def concat(parts: list[Path]) -> Path:
    out = Path("all.txt")
    out.write_text("".join(p.read_text() for p in parts))
    return out


@task
async def awrite(name: str, text: str) -> Path:
    await asyncio.sleep(0)
    out = Path(name)
    out.write_text(text)
    return out


def test_submitted_and_mapped_tasks_in_a_thread_pool_are_children_of_the_flow(store):
    @track
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def fan(texts: list[str]) -> Path:
        parts = write.map([f"p{i}.txt" for i in range(len(texts))], texts)
        first = write.submit("first.txt", "F").result()
        return concat([first, *parts.result()])

    assert fan(["a", "b", "c"]).read_text() == "Fabc"

    [parent] = flow_runs(store)
    writes = task_runs(store, "write")
    [joined] = task_runs(store, "concat")
    assert len(writes) == 4 and {r.parent for r in writes} == {parent.id} and joined.parent == parent.id
    assert sorted(r.config["text"] for r in writes) == ["F", "a", "b", "c"]
    assert sorted(v.spec for v in joined.inputs) == sorted(w.outputs[0].spec for w in writes)
    assert joined.summary["inputs"] == {f"parts.{i}": s for i, s in enumerate(joined.summary["inputs"].values())}
    assert store.get(joined.outputs[0].spec).read_bytes("all.txt") == b"Fabc"


# Prefect's async client leaves a socket to the ephemeral server open when asyncio.run closes its loop.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_async_tasks_and_subflows_are_tracked_as_nested_runs(store):
    @flow
    async def inner(text: str) -> Path:  # not decorated: tracked because it runs inside a tracked flow
        return await awrite("inner.txt", text)

    @track
    @flow
    async def outer() -> str:
        path = await inner("sub")
        submitted = awrite.submit("outer.txt", path.read_text() + "!")
        return submitted.result().read_text()

    assert asyncio.run(outer()) == "sub!"
    collect_closed_sockets()

    by_name = {r.name: r for r in flow_runs(store)}
    assert set(by_name) == {"outer", "inner"} and by_name["inner"].parent == by_name["outer"].id
    assert by_name["inner"].config == {"text": "sub"}
    runs = {r.config["name"]: r for r in task_runs(store, "awrite")}
    assert runs["inner.txt"].parent == by_name["inner"].id and runs["outer.txt"].parent == by_name["outer"].id
    assert runs["outer.txt"].outputs[0].read_bytes("outer.txt") == b"sub!"


def test_a_failed_task_is_a_failed_run_with_its_inputs_and_no_outputs_and_the_flow_still_raises(store, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("x")

    @task
    def explode(path: Path) -> Path:
        raise ValueError(f"cannot read {path.name}")

    @track
    @flow
    def doomed(path: Path) -> Path:
        return explode(path)

    with pytest.raises(ValueError, match="cannot read in.txt"):
        doomed(src)

    [run] = task_runs(store, "explode")
    [parent] = flow_runs(store)
    assert (run.status, run.error) == ("failed", "ValueError: cannot read in.txt")
    assert [v.spec for v in run.inputs] == ["in.txt:v0"] and run.outputs == []
    assert run.summary["prefect"] == {"state": "Failed", "attempts": 1, "cached": False}
    assert parent.status == "failed" and parent.error == "ValueError: cannot read in.txt"


def test_retries_are_one_run_with_the_attempt_count(store):
    attempts = []

    @task(retries=2)
    def flaky(text: str) -> Path:
        attempts.append(text)
        if len(attempts) < 3:
            raise OSError("try again")
        return write.fn("flaky.txt", text)

    @track
    @flow
    def retrying() -> Path:
        return flaky("ok")

    assert retrying().read_text() == "ok"

    [run] = task_runs(store, "flaky")
    assert run.status == "finished" and run.info["prefect"]["retries"] == 2
    assert run.summary["prefect"] == {"state": "Completed", "attempts": 3, "cached": False}
    assert [v.spec for v in run.outputs] == ["flaky:v0"]


def test_a_cached_task_is_recorded_as_cached_and_linked_to_the_versions_it_returned(store):
    calls = []

    @task(cache_policy=INPUTS, persist_result=True)
    def expensive(text: str) -> Path:
        calls.append(text)
        return write.fn("cached.txt", text)

    @track
    @flow
    def twice(text: str) -> Path:
        return expensive(text)

    twice("same")
    twice("same")

    assert calls == ["same"]
    first, second = task_runs(store, "expensive")
    assert first.summary["prefect"]["cached"] is False and [v.spec for v in first.outputs] == ["expensive:v0"]
    assert second.summary["prefect"] == {"state": "Cached", "attempts": 1, "cached": True}
    assert second.summary["outputs"] == {"expensive": "expensive:v0"} and second.outputs == []
    assert [v.spec for v in second.inputs] == ["expensive:v0"]
    assert {r.id for r in store.get("expensive:v0").used_by} == {second.id}


def test_an_error_inside_plait_is_a_warning_and_the_flow_result_is_unchanged(store, tmp_path):
    missing = tmp_path / "gone"

    @task
    def vanish() -> Path:
        return missing  # a path that does not exist cannot be logged

    @track
    @flow
    def careless() -> Path:
        return vanish()

    with pytest.warns(PrefectTrackingWarning, match="output 'vanish'.*does not exist"):
        assert careless() == missing

    [run] = task_runs(store, "vanish")
    assert run.status == "finished" and run.outputs == []


def test_tracking_a_single_task_records_it_outside_any_tracked_flow(store):
    tracked = track(task(lambda text: write.fn("one.txt", text), name="one"))

    @flow
    def untracked() -> Path:
        write("ignored.txt", "no")
        return tracked("yes")

    assert untracked().read_text() == "yes"

    assert [r.name for r in task_runs(store)] == ["one"] and flow_runs(store) == []
    assert [v.spec for v in task_runs(store)[0].outputs] == ["one:v0"]


def test_with_options_keeps_a_flow_tracked(store):
    @track
    @flow
    def base() -> Path:
        return write("w.txt", "w")

    base.with_options(name="renamed")()

    assert [r.name for r in flow_runs(store)] == ["renamed"] and len(task_runs(store, "write")) == 1
