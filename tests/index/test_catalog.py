"""The SQLite index is only a cache of the store: it syncs incrementally, misses no late or
skewed event, folds in any order to the same state, and can be rebuilt from the store alone."""

from __future__ import annotations

import json
import os
import time

import pytest
from ulid import ULID

import plait
from plait.base.ids import utcnow
from plait.formats import records as R
from plait.index import catalog as catalog_module
from plait.index import versions as V
from plait.index.catalog import WIDE_SYNC_WINDOW, Catalog

pytestmark = pytest.mark.usefixtures("builtin_plugins_only")


def event_at(seconds_from_now: float, kind: str, data: dict, run: str | None = None) -> R.Event:
    """An event whose ULID says it was made ``seconds_from_now`` from now (negative: earlier)."""
    moment = time.time() + seconds_from_now
    ulid = str(ULID.from_timestamp(moment))
    return R.Event(id=ulid, kind=kind, time=utcnow(), user="other-machine", run=run, data=data)


def put_event(store: plait.Store, event: R.Event) -> None:
    """Write an event straight into the store, as another process or machine would."""
    assert store.backend.create(event.key, R.encode(event))


def started(run_id: str, name: str) -> dict:
    return {"id": run_id, "name": name, "kind": "manual", "parent": None, "config": {}, "started_at": utcnow()}


def second_index(store: plait.Store, tmp_path, name: str = "other") -> Catalog:
    """An independent index over the same store, as another machine would have."""
    return Catalog(str(tmp_path / name / "index.sqlite"), store.backend)


def test_a_late_event_with_an_older_ulid_is_picked_up_by_the_next_sync(store):
    store.log(b"x", name="x")
    assert store.catalog.sync() == 0
    late_run = str(ULID.from_timestamp(time.time() - 300))
    put_event(store, event_at(-300, R.RUN_STARTED, started(late_run, "slow-upload"), run=late_run))
    assert [r.name for r in store.runs(name="slow-upload")] == ["slow-upload"]


def test_an_event_written_in_the_same_clock_tick_as_a_listing_is_not_missed(file_store, monkeypatch):
    monkeypatch.setattr(catalog_module, "STAMP_SETTLE", 3600.0)  # fresh however slowly this machine gets to the sync
    file_store.log(b"x", name="x")
    catalog = file_store.catalog  # synced right after a write: the partition's mtime is fresh
    event = event_at(0, R.RUN_STARTED, started(str(ULID()), "same-tick"))
    partition = file_store.backend.local_path(event.key.rsplit("/", 1)[0])
    before = os.stat(partition)
    put_event(file_store, event)
    os.utime(partition, ns=(before.st_atime_ns, before.st_mtime_ns))  # a coarse clock: mtime unchanged
    assert catalog.sync() == 1
    assert [r.name for r in file_store.runs(name="same-tick")] == ["same-tick"]


def test_a_settled_unchanged_partition_is_not_listed_again(file_store, monkeypatch):
    file_store.log(b"x", name="x")
    catalog = file_store.catalog
    old = time.time() - 60
    for folder in ("events", *(f"events/{d}" for d in file_store.backend.listdir("events"))):
        os.utime(file_store.backend.local_path(folder), (old, old))
    catalog.sync()  # records the settled stamps
    listed: list[str] = []
    real = file_store.backend.listdir
    monkeypatch.setattr(file_store.backend, "listdir", lambda prefix: listed.append(prefix) or real(prefix))
    assert catalog.sync() == 0 and listed == []
    put_event(file_store, event_at(0, R.RUN_STARTED, started(str(ULID()), "new")))
    assert catalog.sync() == 1 and listed


def test_a_writer_whose_clock_runs_ahead_does_not_hide_todays_events(store, tmp_path):
    store.log(b"x", name="x")
    future_run = str(ULID.from_timestamp(time.time() + 2 * 86400))
    put_event(store, event_at(2 * 86400, R.RUN_STARTED, started(future_run, "from-the-future"), run=future_run))
    other = second_index(store, tmp_path)
    assert other.sync() >= 2
    now_run = str(ULID())
    put_event(store, event_at(0, R.RUN_STARTED, started(now_run, "today"), run=now_run))
    assert other.sync() == 1
    assert {r[0] for r in other.fetch("SELECT name FROM runs")} >= {"from-the-future", "today"}


def test_a_writer_whose_clock_is_days_behind_is_seen_without_reindex(any_store, tmp_path):
    """Its events land in old day partitions, beyond the narrow window: the wide sync finds them."""
    store = any_store
    store.log(b"x", name="x")
    other = second_index(store, tmp_path)
    other.sync(force=True)
    behind = event_at(-2 * 86400, R.RUN_STARTED, started(str(ULID()), "two-days-behind"))
    put_event(store, behind)
    assert other.sync(force=True) == 0  # the narrow window of an index that just looked wide
    other.wide_interval = 0.0  # as once WIDE_SYNC_INTERVAL has passed
    assert other.sync(force=True) == 1
    assert {r[0] for r in other.fetch("SELECT name FROM runs")} >= {"two-days-behind"}
    assert second_index(store, tmp_path, "next-process").sync(force=True) >= 1  # a new process sees it at once
    assert [r.name for r in plait.Store(store.url, storage_options=getattr(store.backend, "fs", None) and
                                        store.backend.fs.storage_options).runs(name="two-days-behind")] == ["two-days-behind"]


def test_events_older_than_the_wide_window_are_left_to_reindex(store, tmp_path):
    store.log(b"x", name="x")
    other = second_index(store, tmp_path)
    other.sync()
    ancient = event_at(-(WIDE_SYNC_WINDOW.total_seconds() + 2 * 86400), R.RUN_STARTED, started(str(ULID()), "ancient"))
    put_event(store, ancient)
    other.wide_interval = 0.0
    assert other.sync() == 0  # beyond the wide window: incremental sync does not look that far back
    store.reindex()
    assert [r.name for r in store.runs(name="ancient")] == ["ancient"]


def test_two_indexes_over_one_store_agree(store, tmp_path):
    with plait.run("prepare", store=store) as run:
        run.log(b"clean", name="clean", aliases=["good"])
    other = second_index(store, tmp_path)
    other.sync()
    tables = ("SELECT * FROM versions ORDER BY name, number", "SELECT * FROM runs ORDER BY id",
              "SELECT * FROM aliases ORDER BY name, alias", "SELECT * FROM events ORDER BY id")
    for sql in tables:
        assert other.fetch(sql) == store.catalog.fetch(sql)


def test_a_process_that_saw_a_new_index_unbound_does_not_empty_it_once_another_filled_it(store, monkeypatch):
    # eight writers open one new index at once: all read it unbound, the first binds it and logs
    store.log(b"first", name="x")
    real_meta, looks = Catalog._meta, []

    def unbound_at_first_look(catalog, key):  # the late process looked before the first bound it
        looks.append(key)
        return None if looks.count("store") == 1 and key == "store" else real_meta(catalog, key)

    monkeypatch.setattr(Catalog, "_meta", unbound_at_first_look)
    late = Catalog(store.catalog.path, store.backend, store.id)
    assert looks.count("store") == 2  # the stale look, then the one under the write lock
    assert V.version(late, "x", 0) is not None
    monkeypatch.undo()
    assert [v.number for v in store.versions("x")] == [0]  # the first process still sees its version


def test_an_index_of_another_store_is_emptied_when_opened_for_this_one(store, tmp_path):
    store.log(b"first", name="x")
    assert V.version(Catalog(store.catalog.path, store.backend, "another-store-id"), "x", 0) is None


def test_folding_events_in_any_order_gives_the_same_index(store, tmp_path):
    with plait.run("a", store=store) as run:
        run.log(b"one", name="m", aliases=["best"])
        run.log(b"two", name="m")
        store.set_alias("m:v1", "best", run=run.id)
        store.get("m:v0").update(description="first try", metadata={"acc": 0.5})
    events = [R.decode(R.Event, store.backend.read(k), k) for k in sorted(store.backend.find("events"))]
    forward, backward = second_index(store, tmp_path, "f"), second_index(store, tmp_path, "b")
    forward.fold(events)
    for event in reversed(events):
        backward.fold([event])
    for sql in ("SELECT * FROM versions ORDER BY name, number", "SELECT * FROM aliases", "SELECT * FROM runs"):
        assert forward.fetch(sql) == backward.fetch(sql) == store.catalog.fetch(sql)
    assert forward.fetch("SELECT number FROM aliases WHERE alias = 'best'") == [(1,)]


def test_a_damaged_event_does_not_block_the_index(store):
    store.log(b"x", name="x")
    bad_key = f"{event_at(0, R.RUN_STARTED, started(str(ULID()), 'x')).key}"
    store.backend.create(bad_key, b"{not json")
    store.log(b"y", name="y")
    store.reindex()
    assert [v.name for v in store.artifacts()] == ["x", "y"]


def test_reindex_rebuilds_from_the_store_alone(file_store):
    with plait.run("prepare", store=file_store) as run:
        run.log(b"clean", name="clean", aliases=["good"])
        file_store.get("clean:v0").update(description="ok")
    before = file_store.catalog.fetch("SELECT * FROM versions")
    file_store.catalog.close()
    file_store._catalog = None
    os.remove(os.path.join(file_store.cache_dir, "index.sqlite"))
    assert file_store.reindex() == 1
    assert file_store.catalog.fetch("SELECT * FROM versions") == before
    assert file_store.get("clean:good").description == "ok"


def test_a_version_record_whose_event_was_lost_is_indexed_by_reindex(store):
    store.init()
    record = store.create_version({"name": "orphan", "type": "dataset", "digest": "0" * 32, "size": 0,
                                   "file_count": 0, "created_at": utcnow()})  # a crash before the event
    assert record.number == 0
    assert store.reindex() == 1
    assert V.version(store.catalog, "orphan", 0) is not None


def test_a_remote_store_is_listed_at_most_once_per_interval(memory_store, tmp_path):
    memory_store.log(b"x", name="x")
    remote_like = second_index(memory_store, tmp_path)
    remote_like.sync_interval = 60.0
    remote_like.sync(force=True)
    put_event(memory_store, event_at(0, R.RUN_STARTED, started(str(ULID()), "new")))
    assert remote_like.sync() == 0  # listed less than a minute ago
    assert remote_like.sync(force=True) == 1


def test_the_interval_comes_from_the_environment_for_remote_backends(monkeypatch, memory_store, tmp_path):
    monkeypatch.setenv("PLAIT_SYNC_INTERVAL", "5")
    assert second_index(memory_store, tmp_path).sync_interval == 0.0  # memory:// is in-process: always list

    class Remote(type(memory_store.backend)):
        protocol = "s3"

    remote = Remote.__new__(Remote)
    remote.__dict__.update(memory_store.backend.__dict__)
    remote.protocol = "s3"
    assert Catalog(str(tmp_path / "r" / "i.sqlite"), remote).sync_interval == 5.0


@pytest.mark.parametrize("kind,data,message", [
    (R.VERSION_USED, {"name": "x"}, "needs 'number'"),
    (R.ALIAS_SET, {"name": "x", "alias": "../up", "number": 0}, "'../up' is not allowed"),
    ("run.teleported", {}, "unknown event kind"),
])
def test_a_crafted_event_is_refused_when_read(kind, data, message):
    raw = json.dumps({"format": 1, "id": str(ULID()), "kind": kind, "time": utcnow(), "data": data}).encode()
    with pytest.raises(plait.CorruptRecordError, match=message):
        R.decode(R.Event, raw, "events/x")
