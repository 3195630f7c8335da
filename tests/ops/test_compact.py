"""Compaction packs old days into segments without changing what the index folds: a rebuilt
index, an incremental sync, a late event file in a packed day and two racing compactors all give
the same state as the uncompacted store."""

from __future__ import annotations

import time

import pytest
from ulid import ULID

import plait
from plait.base.ids import utcnow
from plait.errors import StoreError
from plait.formats import records as R
from plait.index import runs as RQ
from plait.index import versions as V
from plait.index.catalog import Catalog
from plait.ops.compact import compact

DAY = 86_400
TABLES = {
    "versions": "SELECT * FROM versions ORDER BY name, number",
    "aliases": "SELECT * FROM aliases ORDER BY name, alias",
    "runs": "SELECT * FROM runs ORDER BY id",
    "uses": "SELECT * FROM uses ORDER BY run, name, number",
    "events": "SELECT * FROM events ORDER BY id",
    "run_scope": "SELECT * FROM run_scope ORDER BY run, scope",
}


pytestmark = pytest.mark.usefixtures("builtin_plugins_only")


def event(days_ago: float, kind: str, data: dict, run: str | None = None) -> R.Event:
    """An event whose ULID dates it ``days_ago`` days back."""
    ulid = str(ULID.from_timestamp(time.time() - days_ago * DAY))
    return R.Event(id=ulid, kind=kind, time=utcnow(), user="past", run=run, data=data)


def version(store: plait.Store, name: str, days_ago: float, run: str | None = None) -> tuple[str, int]:
    record = store.create_version({"name": name, "type": "model", "digest": "ab" * 16, "size": 1, "file_count": 1,
                                   "created_at": utcnow(), "created_by": run})
    store.append_event(event(days_ago, R.VERSION_LOGGED, record.model_dump(mode="json"), run=run))
    return record.name, record.number


def history(store: plait.Store, days: int = 6) -> None:
    """A run per day over ``days`` days: each uses the last model, logs a new one, moves an alias."""
    previous = None
    for d in range(days, -1, -1):
        run = str(ULID.from_timestamp(time.time() - d * DAY))
        store.append_event(event(d, R.RUN_STARTED, {"id": run, "name": f"day-{d}", "kind": "manual", "parent": None,
                                                    "config": {}, "started_at": utcnow()}, run=run))
        if previous:
            store.append_event(event(d, R.VERSION_USED, {"name": previous[0], "number": previous[1]}, run=run))
        previous = version(store, "model", d, run)
        store.append_event(event(d, R.ALIAS_SET, {"name": "model", "alias": "best", "number": previous[1], "old": None},
                                 run=run))
        if d == 4:
            store.append_event(event(d, R.VERSION_UPDATED, {"name": "model", "number": 0, "new": {"description": "first"}}))
        store.append_event(event(d, R.RUN_FINISHED, {"id": run, "status": "finished", "ended_at": utcnow()}, run=run))


def state(catalog: Catalog) -> dict[str, list[tuple]]:
    return {table: catalog.fetch(sql) for table, sql in TABLES.items()}


def files_of(store: plait.Store, day: str) -> list[str]:
    return store.backend.listdir(f"events/{day}")


def test_compacted_store_reindexes_to_the_same_state(any_store):
    history(any_store)
    before = state(any_store.catalog)
    days = sorted(d for d in any_store.backend.listdir("events") if len(d) == 10)
    old = [d for d in days if d < time.strftime("%Y-%m-%d", time.gmtime(time.time() - 2 * DAY))]
    in_old_days = sum(len(files_of(any_store, d)) for d in old)

    report = any_store.compact(before_days=2)

    assert report.days == old and len(old) >= 4
    assert report.deleted == report.events == in_old_days
    for day in old:
        assert files_of(any_store, day) == []
        assert f"{day}.0.segment" in any_store.backend.listdir("events")
    any_store.reindex()
    assert state(any_store.catalog) == before
    assert any_store.compact(before_days=2).events == 0  # nothing left to pack


def test_a_fresh_index_and_an_existing_one_both_fold_a_compacted_store(store, tmp_path):
    history(store)
    before = state(store.catalog)
    behind = Catalog(str(tmp_path / "behind" / "index.sqlite"), store.backend)  # synced before compaction…
    behind.sync()
    store.compact(before_days=1)
    late = event(0, R.ALIAS_SET, {"name": "model", "alias": "prod", "number": 1, "old": None})
    store.append_event(late)  # …and it keeps syncing incrementally afterwards
    behind.sync()
    fresh = Catalog(str(tmp_path / "fresh" / "index.sqlite"), store.backend)
    fresh.sync()
    expected = state(store.catalog)
    assert expected["events"][:-1] == before["events"]
    assert state(behind) == state(fresh) == expected
    assert V.alias_number(fresh, "model", "prod") == 1


def test_a_late_event_file_in_a_compacted_day_is_folded_and_packed_next_time(store):
    history(store)
    store.compact(before_days=2)
    late = event(5, R.ALIAS_SET, {"name": "model", "alias": "late", "number": 0, "old": None})
    assert store.backend.create(late.key, R.encode(late))  # a writer whose clock is five days behind
    day = late.key.split("/")[1]

    store.reindex()
    assert V.alias_number(store.catalog, "model", "late") == 0
    before = state(store.catalog)

    report = store.compact(before_days=2)
    assert report.segments == [f"events/{day}.1.segment"] and report.events == 1
    assert files_of(store, day) == []
    store.reindex()
    assert state(store.catalog) == before


def test_a_reader_that_listed_files_a_compactor_then_deleted_still_folds_them(file_store, tmp_path, monkeypatch):
    history(file_store, days=4)
    expected = state(file_store.catalog)
    reader = Catalog(str(tmp_path / "reader" / "index.sqlite"), file_store.backend)
    real = file_store.backend.read_many
    compactor = plait.Store(file_store.url)  # another process: its own backend
    raced = []

    def read_after_compaction(keys):
        if not raced and any(k.count("/") == 2 for k in keys):
            raced.append(compact(compactor, before_days=1))  # between the listing and the read
        return real(keys)

    monkeypatch.setattr(file_store.backend, "read_many", read_after_compaction)
    reader.sync()
    assert raced and raced[0].deleted > 0
    assert state(reader) == expected


def test_two_compactors_lose_no_event(file_store):
    history(file_store, days=4)
    before = state(file_store.catalog)
    day = [d for d in file_store.backend.listdir("events") if len(d) == 10][0]
    other = plait.Store(file_store.url)
    # the other compactor wrote part 0 with only some of the day's events
    names = files_of(file_store, day)
    first = [file_store.backend.read(f"events/{day}/{n}") for n in names[:2]]
    assert file_store.backend.create(R.segment_key(day, 0), R.encode_segment(day, first))

    report = compact(other, before_days=1)

    assert f"events/{day}.1.segment" in report.segments
    assert files_of(file_store, day) == []
    file_store.reindex()
    assert state(file_store.catalog) == before


def test_a_damaged_event_file_is_kept_reported_and_never_breaks_the_fold(store):
    history(store, days=3)
    before = state(store.catalog)
    day = [d for d in store.backend.listdir("events") if len(d) == 10][0]
    bad = f"events/{day}/{ULID()}"
    store.backend.write(bad, b'{"id": "not an event"')

    report = store.compact(before_days=1)

    assert bad in report.damaged and files_of(store, day) == [bad.rsplit("/", 1)[1]]
    store.reindex()
    assert state(store.catalog) == before
    verified = store.verify()
    assert [p[1] for p in verified.problems if p[0] == "events"] == [bad] and not verified.ok


def test_a_damaged_segment_is_reported_by_verify(store):
    history(store, days=3)
    store.compact(before_days=1)
    key = next(f"events/{n}" for n in store.backend.listdir("events") if n.endswith(".segment"))
    store.backend.write(key, b"not zlib")
    store.reindex()  # the other days still fold
    assert RQ.count(store.catalog) >= 1
    assert [p[1] for p in store.verify().problems if p[0] == "events"] == [key]


def test_compact_refuses_a_negative_age(store):
    with pytest.raises(StoreError):
        store.compact(before_days=-1)
