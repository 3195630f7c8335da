"""The SQLite index of a store: versions, aliases, runs, uses and events, folded from the store.

The store is the only source of truth; this index is a cache that answers queries fast and can
be deleted at any time. :meth:`Catalog.sync` lists only the event partitions that may hold
something new — the day of the last event seen, minus an overlap window for writers whose clock
runs behind or whose upload was slow — and folds the events it has not seen, in ULID order
(:mod:`plait.index.fold`). Folding is order-independent where it matters: an alias, a
description or metadata keeps the value of the event with the greatest id, whenever that event
arrives.

What keeps a sync cheap when nothing changed (every store query syncs first):

- the overlap window starts from the newest event seen *or now*, whichever is older, so one
  writer whose clock runs ahead cannot hide today's partition from everybody else;
- on a local store a partition whose directory mtime has not moved since the last listing is
  not listed again; a stamp is trusted only once it is :data:`STAMP_SETTLE` seconds old, since
  a file created in the same filesystem clock tick may leave the mtime unchanged ("racy git");
- the names already seen in a partition are remembered in memory, so a listing costs a set
  difference and only the few new names are looked up in SQLite;
- on a remote store (S3, GCS, …) listings cost a round trip each, so a store is listed at most
  once per :data:`REMOTE_SYNC_INTERVAL` seconds (``$PLAIT_SYNC_INTERVAL``); this process's own
  writes are folded directly and are visible at once.

The query modules beside this one (:mod:`~plait.index.versions`, :mod:`~plait.index.runs`,
:mod:`~plait.index.events`, :mod:`~plait.index.graph`, :mod:`~plait.index.pages`) hold every
SQL statement plait runs and return typed rows (:mod:`plait.index.rows`); they use the
package-internal methods :meth:`Catalog.fetch`, :meth:`Catalog.transaction` and
:meth:`Catalog.keys`.
"""

from __future__ import annotations

import datetime as _dt
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from plait.errors import CorruptRecordError
from plait.formats import records as R
from plait.index import fold as F
from plait.index.schema import SCHEMA, SCHEMA_VERSION, TABLES
from plait.storage.backend import Backend

#: Events older than the newest one seen by less than this are listed again on sync, so a
#: writer with a slow upload or a clock behind ours is not missed.
SYNC_OVERLAP = _dt.timedelta(minutes=15)
#: A partition's directory mtime is trusted to mean "unchanged" only once it is this old.
STAMP_SETTLE = 1.0
#: Rows of the first table in one :meth:`Catalog.fetch_with` query (SQLite allows 32,766 parameters).
VALUES_BATCH = 500
#: Seconds between two listings of a remote store (override with ``$PLAIT_SYNC_INTERVAL``).
REMOTE_SYNC_INTERVAL = 1.0


class Catalog:
    """The local index of one store.

    :param path: the SQLite file.
    :param backend: the store's primitives, to list and read events.
    :param store_id: the id of the store it indexes; an index of another store is emptied.
    """

    def __init__(self, path: str, backend: Backend, store_id: str = "") -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self.backend = backend
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        if self._meta("schema") not in (None, str(SCHEMA_VERSION)):
            # another layout: its tables may lack columns, so they are made again, not just emptied
            for table in TABLES:
                self._db.execute(f"DROP TABLE IF EXISTS {table}")
            self._db.execute("DELETE FROM meta")
        self._db.executescript(SCHEMA)
        self._set_meta("schema", str(SCHEMA_VERSION))
        self._forget_listings()
        self._last_event = self._meta("last_event")
        self._segments_done = {r[0][len("segment:"):] for r in self._db.execute(
            "SELECT key FROM meta WHERE key LIKE 'segment:%'")}
        remote = not backend.is_local and backend.protocol != "memory"
        self.sync_interval = float(os.environ.get("PLAIT_SYNC_INTERVAL", REMOTE_SYNC_INTERVAL)) if remote else 0.0
        if self._meta("store") != store_id:
            self.reset(store_id)

    # -- package-internal plumbing for the query modules ----------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the index's lock in an ``IMMEDIATE`` transaction; roll back on error."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def fetch(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query and return every row as a tuple."""
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    @contextmanager
    def keys(self, keys: Iterable[tuple[str, int]]) -> Iterator[sqlite3.Connection]:
        """Fill the temporary table ``seed (name, number)`` with ``keys`` and hold the lock.

        A join with ``seed`` is one indexed lookup per key, where a long ``OR`` of
        ``(name, number)`` pairs makes SQLite scan.
        """
        with self._lock:
            with self.transaction() as db:
                db.execute("CREATE TEMP TABLE IF NOT EXISTS seed (name TEXT, number INTEGER)")
                db.execute("DELETE FROM seed")
                db.executemany("INSERT INTO seed VALUES (?, ?)", list(keys))
            yield self._db

    def fetch_with(self, sql: str, tables: dict[str, tuple[tuple[str, ...], Sequence[tuple[Any, ...]]]],
                   params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query that joins small lists of rows given as ``WITH name(columns) AS (VALUES …)``.

        Unlike :meth:`keys` this needs no transaction (a walk step costs microseconds, not a
        commit); the first table is sent in batches of :data:`VALUES_BATCH` rows, so the query
        must be a join from it whose results can be concatenated.

        :param tables: ``{name: (column names, rows)}``; with any table empty nothing is run.
        """
        if any(not rows for _, rows in tables.values()):
            return []
        first, *rest = tables
        out: list[tuple[Any, ...]] = []
        columns, rows = tables[first]
        for start in range(0, len(rows), VALUES_BATCH):
            batch = {first: (columns, rows[start : start + VALUES_BATCH]), **{t: tables[t] for t in rest}}
            clauses, args = [], []
            for name, (cols, values) in batch.items():
                marks = "(" + ", ".join("?" * len(cols)) + ")"
                clauses.append(f"{name}({', '.join(cols)}) AS (VALUES {', '.join([marks] * len(values))})")
                args.extend(v for row in values for v in row)
            out += self.fetch(f"WITH {', '.join(clauses)} {sql}", [*args, *params])
        return out

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- life cycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def clear(self) -> None:
        """Forget everything indexed (the store is untouched)."""
        with self.transaction() as db:
            for table in TABLES:
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta WHERE key != 'schema'")
        self._forget_listings()
        self._last_event = None
        self._segments_done = set()

    def reset(self, store_id: str) -> None:
        """Forget everything and bind the index to the store ``store_id``."""
        self.clear()
        with self.transaction():
            self._set_meta("store", store_id)

    def _forget_listings(self) -> None:
        self._partition_stamps: dict[str, float | None] = {}
        self._partition_seen: dict[str, set[str]] = {}
        self._last_sync = 0.0
        self._days_cache: tuple[float | None, list[str]] = (None, [])

    # -- sync -----------------------------------------------------------------------------------

    def sync(self, *, force: bool = False) -> int:
        """Fold events written to the store since the last sync; return how many were new.

        Segments (days packed by ``plait compact``) are folded first, then the event files of
        each day, so an event file left beside its day's segment is simply a duplicate.

        :param force: list the store even if a remote store was listed less than
            :attr:`sync_interval` seconds ago.
        """
        now = time.time()
        if not force and self.sync_interval and now - self._last_sync < self.sync_interval:
            return 0
        self._last_sync = now
        days, segments = self._days_to_list(now)
        count = self._fold_segments(segments)
        new_keys: list[str] = []
        for day in days:
            new_keys.extend(self._new_in_partition(day, now))
        if not new_keys:
            return count
        blobs = self.backend.read_many(new_keys)
        gone = {key.split("/")[1] for key in new_keys if key not in blobs}
        for key in blobs:
            day, name = key.split("/")[1:]
            self._partition_seen.setdefault(day, set()).add(name)
        events, _ = R.decode_events(blobs)  # a damaged event is reported by `plait verify`; it must not block reads
        self.fold(events)
        if gone:  # listed, then gone: a compactor packed them into a segment meanwhile
            self._days_cache = (None, [])
            count += self._fold_segments([s for s in self.backend.listdir("events") if s[:10] in gone and R.parse_segment_name(s)])
        return count + len(events)

    def _fold_segments(self, names: list[str]) -> int:
        """Fold the segments (``events/<day>.<part>.segment``) not folded yet; return their events."""
        todo = [n for n in names if n not in self._segments_done]
        if not todo:
            return 0
        blobs = self.backend.read_many([f"events/{n}" for n in todo])
        events: list[R.Event] = []
        for key, data in blobs.items():
            try:
                events.extend(R.decode_segment(data, key)[0])
            except CorruptRecordError:
                continue  # reported by `plait verify`
        self.fold(events)
        with self.transaction():
            for key in blobs:
                self._set_meta("segment:" + key[len("events/"):], "1")
        self._segments_done.update(key[len("events/"):] for key in blobs)
        return len(events)

    def _days_to_list(self, now: float) -> tuple[list[str], list[str]]:
        """Return the day partitions and the segments that may hold events not folded yet."""
        stamp = self.backend.modified("events") if self.backend.is_local else None
        if stamp is None or self._days_cache[0] != stamp:
            listing = [d for d in self.backend.listdir("events") if len(d) == 10 or R.parse_segment_name(d)]
            self._days_cache = (stamp if stamp is not None and now - stamp > STAMP_SETTLE else None, listing)
        listing = self._days_cache[1]
        last = self._last_event
        if last:
            # min(): a writer whose clock runs ahead must not push the window past today
            newest = min(_ulid_seconds(last), now)
            cutoff = time.strftime("%Y-%m-%d", time.gmtime(newest - SYNC_OVERLAP.total_seconds()))
            listing = [d for d in listing if d[:10] >= cutoff]
        return [d for d in listing if len(d) == 10], [d for d in listing if len(d) > 10]

    def _new_in_partition(self, day: str, now: float) -> list[str]:
        """Return the keys of a day partition not folded yet (by anyone sharing this index)."""
        prefix = f"events/{day}"
        stamp = self.backend.modified(prefix) if self.backend.is_local else None
        if stamp is not None and self._partition_stamps.get(day) == stamp:
            return []
        seen = self._partition_seen.setdefault(day, set())
        fresh = [n for n in self.backend.listdir(prefix) if n not in seen and len(n) == 26]
        known: set[str] = set()
        for batch in (fresh[i : i + 500] for i in range(0, len(fresh), 500)):
            marks = ", ".join("?" * len(batch))
            known |= {r[0] for r in self.fetch(f"SELECT id FROM events WHERE id IN ({marks})", batch)}
        seen |= known
        self._partition_stamps[day] = stamp if stamp is not None and now - stamp > STAMP_SETTLE else None
        return [f"{prefix}/{n}" for n in fresh if n not in known]

    # -- writes ---------------------------------------------------------------------------------

    def fold(self, events: Iterable[R.Event]) -> None:
        """Apply events to the index (idempotent; any order gives the same state)."""
        ordered = sorted(events, key=lambda e: e.id)
        if not ordered:
            return
        with self.transaction() as db:
            for event in ordered:
                F.apply(db, event)
            last = self._meta("last_event")
            if last is None or ordered[-1].id > last:
                self._set_meta("last_event", ordered[-1].id)
        if self._last_event is None or ordered[-1].id > self._last_event:
            self._last_event = ordered[-1].id

    def add_version(self, record: R.VersionRecord) -> None:
        """Index a version record read directly from ``versions/`` (one whose event is missing)."""
        with self.transaction() as db:
            F.insert_version(db, record.model_dump(mode="json"))


_CROCKFORD = {c: i for i, c in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ")}


def _ulid_seconds(ulid: str) -> float:
    """Return the POSIX time of a ULID (its first ten characters are milliseconds, base 32)."""
    ms = 0
    for char in ulid[:10]:
        ms = ms * 32 + _CROCKFORD[char]
    return ms / 1000
