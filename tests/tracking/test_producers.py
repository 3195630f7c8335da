"""Producers, the preferred one, ``latest``, hand-offs and the implicit run's segments, as the
Python API shows them; the realistic pipelines are in ``tests/lineage``."""

from __future__ import annotations

import sqlite3

import pytest
from ulid import ULID

import plait
from plait.formats import records as R
from plait.index import producers as P
from plait.index.schema import SCHEMA_VERSION
from plait.tracking.run import end_implicit_runs

pytestmark = pytest.mark.usefixtures("builtin_plugins_only")


def test_every_run_that_logs_the_same_content_is_a_producer(store):
    with plait.run("first", store=store) as first:
        made = first.log(b"weights", name="model")
    with pytest.raises(RuntimeError), plait.run("flow", store=store) as flow:
        with plait.run("task", store=store) as failed_flows_task:
            failed_flows_task.log(b"weights", name="model")
        raise RuntimeError("a later task failed")
    with plait.run("rerun", store=store) as rerun:
        again = rerun.log(b"weights", name="model")

    assert again.spec == made.spec == "model:v0" and again.created_by == first.id
    version = store.get("model:v0")
    assert [r.id for r in version.producers] == [first.id, failed_flows_task.id, rerun.id]
    assert version.produced_by.id == rerun.id
    assert [v.spec for v in store.get_run(rerun.id).outputs] == ["model:v0"]
    # the newest producer finished, but inside a failed flow: the older, clean one is preferred
    assert store.get_run(failed_flows_task.id).status == "finished" and store.get_run(flow.id).status == "failed"
    with plait.run("rerun", store=store) as logs_nothing:
        pass
    assert store.get("model:v0").produced_by.id == rerun.id and logs_nothing.outputs == []


def test_what_a_run_received_is_credited_to_a_producer_that_had_made_it_by_then(store):
    """A later rerun that made the same bytes is the preferred producer now, but not of what an
    earlier run received: the earlier report's lineage is the first run's, in both directions."""
    store.log(b"raw", name="raw")
    store.log(b"raw v2", name="raw2")
    with plait.run("clean", store=store) as first:
        first.use("raw:v0")
        first.log(b"clean rows", name="clean")
    with plait.run("report", store=store) as report:
        report.use("clean:v0")
        report.log(b"report", name="report")
    with plait.run("clean", store=store) as again:  # other raw data, the same clean rows
        again.use("raw2:v0")
        again.log(b"clean rows", name="clean")

    assert store.get("clean:v0").produced_by.id == again.id
    assert set(store.lineage("clean:v0").versions) == {"clean:v0", "raw2:v0"}
    up = store.lineage("report:v0")
    assert set(up.versions) == {"report:v0", "clean:v0", "raw:v0"} and again.id not in up.runs
    assert (f"run:{first.id}", "clean:v0", "produced") in up.edges
    assert "report:v0" in store.lineage("raw:v0", direction="downstream").versions
    assert "report:v0" not in store.lineage("raw2:v0", direction="downstream").versions


def test_a_failed_producer_is_preferred_only_when_no_other_finished(store):
    with pytest.raises(ValueError), plait.run("crashes", store=store) as crashed:
        crashed.log(b"half", name="out")
        raise ValueError("boom")
    assert store.get("out:v0").produced_by.id == crashed.id
    with plait.run("works", store=store) as works:
        works.log(b"half", name="out")
    assert store.get("out:v0").produced_by.id == works.id
    graph = store.lineage("out:v0", producers="all")
    assert set(graph.runs) == {crashed.id, works.id} and set(store.lineage("out:v0").runs) == {works.id}
    assert "classDef failed" in graph.to_mermaid() and '"#fecaca"' in graph.to_dot()
    with pytest.raises(plait.InvalidInputError, match="producers must be one of preferred, all, not 'some'"):
        store.lineage("out:v0", producers="some")


def test_latest_is_the_live_version_logged_last(store):
    a, b = store.log(b"a", name="x"), store.log(b"b", name="x")
    assert store.get("x:latest") == b
    assert store.log(b"a", name="x") == a and store.get("x").spec == "x:v0"
    assert [v.aliases for v in store.versions("x")] == [("latest",), ()]
    store.log(b"b", name="x")
    store.delete("x:v1")
    assert store.get("x:latest").spec == "x:v0"  # the newest logged is deleted: the one before it
    assert [v.spec for v in store.artifacts()] == ["x:v0"]


def test_a_run_that_logs_its_own_output_again_moves_latest_without_a_second_producer(store):
    with plait.run("r", store=store) as run:
        run.log(b"a", name="x")
        run.log(b"b", name="x")
        assert run.log(b"a", name="x").spec == "x:v0"
    version = store.get("x:latest")
    assert version.spec == "x:v0" and [r.id for r in version.producers] == [run.id]


def test_a_hand_off_prefers_the_upstream_run_then_the_callers_top_level_run_then_the_oldest(store, tmp_path):
    path = tmp_path / "shared.bin"
    path.write_bytes(b"the same bytes")
    with plait.run("old", store=store) as old:
        old.log(str(path), name="old")
    with plait.run("flow", store=store) as flow:
        with plait.run("a", store=store) as a:
            a.log(str(path), name="from-a")
        with plait.run("b", store=store) as b:
            b.log(str(path), name="from-b")
        with plait.run("reader", store=store) as reader:
            assert reader.use(str(path), upstream=[a.id]).spec == "from-a:v0"  # named upstream
            assert reader.use(str(path)).spec == "from-b:v0"  # produced last inside the flow
    with plait.run("outsider", store=store) as outsider:
        assert outsider.use(str(path)).spec == "old:v0"  # nothing identifies it: the oldest
        assert outsider.use(str(path), upstream=[flow]).spec == "from-b:v0"  # a run inside an upstream run
    assert {v.spec for v in store.get_run(reader.id).inputs} == {"from-a:v0", "from-b:v0"}


def test_the_implicit_run_rolls_over_when_it_uses_what_was_made_from_its_outputs(store, monkeypatch):
    monkeypatch.setenv("PLAIT_STORE", store.url)
    plait.log(b"a", name="a")
    first = plait.active_run()
    assert first is not None and first.implicit and first.parent is None
    with plait.run("derive") as derive:
        assert derive.parent is None  # the implicit run is never a parent
        derive.use("a:v0")
        derive.log(b"b", name="b")
    plait.use("b:v0")
    second = plait.active_run()
    assert second is not first and second.info["previous"] == first.id and first.current() is second
    assert store.get_run(first.id).status == "finished" and [v.spec for v in store.get_run(second.id).inputs] == ["b:v0"]
    first.log(b"c", name="c")  # a stale handle records in the current segment
    assert store.get("c:v0").created_by == second.id
    assert set(store.lineage("c:v0").versions) == {"c:v0", "b:v0", "a:v0"}
    plait.use("a:v0")  # an earlier segment's output is an input, not a loop of this segment
    assert plait.active_run() is second
    end_implicit_runs()


def test_a_version_produced_event_is_checked(store):
    with pytest.raises(Exception, match="version.produced event needs the producing run"):
        R.Event(id=str(ULID()), kind=R.VERSION_PRODUCED, time="t", data={"name": "x", "number": 0, "digest": "ab" * 16})
    with pytest.raises(Exception, match="digest that is not 32 to 64 hex digits"):
        R.Event(id=str(ULID()), kind=R.VERSION_PRODUCED, time="t", run="r", data={"name": "x", "number": 0, "digest": "zz"})
    made = store.log(b"x", name="x")
    liar = R.Event(id=str(ULID()), kind=R.VERSION_PRODUCED, time="2999-01-01T00:00:00.000000Z", run=str(ULID()),
                   data={"name": "x", "number": 0, "digest": "cd" * 16})
    store.append_event(liar)  # claims other content than x:v0 holds: not a producer, and latest is unmoved
    assert [r.id for r in store.get("x:v0").producers] == [made.created_by]


def test_producers_arriving_before_their_version_fold_the_same(file_store):
    store = file_store.init()
    run, digest = str(ULID()), "ab" * 16
    record = {"name": "x", "number": 0, "type": "dataset", "digest": digest, "size": 0, "file_count": 0,
              "created_at": "2024-05-01T12:00:00.000000Z", "created_by": run}
    store.backend.create(R.version_key("x", 0), R.encode(R.VersionRecord(**record)))  # the record decides the version
    produced = R.Event(id=str(ULID()), kind=R.VERSION_PRODUCED, time="2024-05-01T12:00:05.000000Z", run=str(ULID()),
                       data={"name": "x", "number": 0, "digest": digest})
    logged = R.Event(id=str(ULID()), kind=R.VERSION_LOGGED, time=record["created_at"], run=run, data=record)
    for event in (produced, logged):  # written in this order; the produced event's id is older
        store.write_event_record(event)
    version = store.get("x:v0")
    assert [r for r in P.runs_of(store.catalog, "x", 0)] == [run, produced.run]
    assert version.spec == store.get("x:latest").spec


def test_an_index_of_an_older_layout_is_rebuilt(file_store):
    file_store.log(b"x", name="x")
    path = file_store.catalog.path
    file_store._catalog.close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE producers")
    db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION - 1),))
    db.commit()
    db.close()
    fresh = plait.Store(file_store.url)
    assert fresh.get("x:latest").spec == "x:v0" and len(fresh.get("x:v0").producers) == 1


def test_a_chain_thousands_of_runs_deep_is_walked_and_drawn(memory_store):
    store, depth = memory_store, 1200
    events, records, prev, when = [], [], None, 0

    def at() -> str:
        nonlocal when
        when += 1
        return f"2024-05-01T{when // 3600:02d}:{when // 60 % 60:02d}:{when % 60:02d}.000000Z"

    for i in range(depth):
        run = str(ULID())
        events.append(R.Event(id=str(ULID()), kind=R.RUN_STARTED, time=at(), run=run,
                              data={"id": run, "name": f"s{i}", "kind": "manual", "started_at": at()}))
        if prev is not None:
            events.append(R.Event(id=str(ULID()), kind=R.VERSION_USED, time=at(), run=run, data={"name": "m", "number": prev}))
        record = {"name": "m", "number": i, "type": "model", "digest": f"{i:032x}", "size": 0, "file_count": 0,
                  "created_at": at(), "created_by": run}
        events.append(R.Event(id=str(ULID()), kind=R.VERSION_LOGGED, time=record["created_at"], run=run, data=record))
        records.append(R.VersionRecord(**record))
        prev = i
    store.init()
    for rec in records:  # the records decide the versions; the events go straight into the index
        store.backend.create(R.version_key(rec.name, rec.number), R.encode(rec))
    store.catalog.fold(events)
    graph = store.lineage(f"m:v{depth - 1}")
    assert len(graph.versions) == depth and len(graph.runs) == depth
    tree = graph.to_tree().splitlines()
    assert len(tree) == 2 * depth and "<- m:v0" in tree[-2] and "<- s0 [manual, running]" in tree[-1]
    assert len(store.lineage("m:v0", direction="downstream", depth=10).versions) == 11
