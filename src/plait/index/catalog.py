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
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from plait.errors import CorruptRecordError, PlaitWarning, StoreError
from plait.formats import records as R
from plait.index import fold as F
from plait.index.schema import SCHEMA, SCHEMA_VERSION, TABLES
from plait.index.sqlite import connect_wal
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
#: How far back the first sync of each index object, and one every :data:`WIDE_SYNC_INTERVAL`,
#: lists partitions: a writer whose clock runs this far behind is still seen without a reindex.
WIDE_SYNC_WINDOW = _dt.timedelta(days=7)
WIDE_SYNC_INTERVAL = 600.0


class Catalog:
    """The local index of one store.

    :param path: the SQLite file.
    :param backend: the store's primitives, to list and read events.
    :param store_id: the id of the store it indexes; an index of another store is emptied.
    """

    def __init__(self, path: str, backend: Backend, store_id: str = "") -> None:
        self.path = path
        self.backend = backend
        self._lock = threading.RLock()
        self._db = _open(path)
        if self._meta("schema") != str(SCHEMA_VERSION):  # written only when it changes: reads must work on a full disk
            self._set_meta("schema", str(SCHEMA_VERSION))
        self._forget_listings()
        self._stale_warned = False
        self._last_event = self._meta("last_event")
        self._segments_done = {r[0][len("segment:"):] for r in self._db.execute(
            "SELECT key FROM meta WHERE key LIKE 'segment:%'")}
        remote = not backend.is_local and backend.protocol != "memory"
        self.sync_interval = float(os.environ.get("PLAIT_SYNC_INTERVAL", REMOTE_SYNC_INTERVAL)) if remote else 0.0
        #: Seconds between two syncs that list :data:`WIDE_SYNC_WINDOW` of partitions (the first sync always does).
        self.wide_interval = WIDE_SYNC_INTERVAL
        if self._meta("store") != store_id:  # read first: reads must work on a read-only index
            self._bind(store_id)

    # -- package-internal plumbing for the query modules ----------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the index's lock in an ``IMMEDIATE`` transaction; roll back on error."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    yield self._db
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError):
                    raise
                raise damaged_index(self.path, exc) from None

    def fetch(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read query and return every row as a tuple.

        :raises StoreError: if the index file turns out to be damaged (with what to do).
        """
        with self._lock:
            try:
                return self._db.execute(sql, tuple(params)).fetchall()
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError):
                    raise
                raise damaged_index(self.path, exc) from None

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

    def discard(self) -> None:
        """Close the database and delete its files (``reindex`` starts from nothing, whatever their state)."""
        self.close()
        self.remove(self.path)

    @staticmethod
    def remove(path: str) -> None:
        """Delete the index file at ``path`` and its journal files, if they are there."""
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(path + suffix)
            except FileNotFoundError:
                pass

    def clear(self) -> None:
        """Forget everything indexed (the store is untouched)."""
        self._empty(None)

    def reset(self, store_id: str) -> None:
        """Forget everything and bind the index to the store ``store_id``."""
        self._empty(store_id)

    def _bind(self, store_id: str) -> None:
        """Bind a new index (or one of another store) to ``store_id``, emptying it.

        Checked again under the write lock: processes opening a new index at once all see it
        unbound, and only the first may empty it; a later one would wipe what the first has
        indexed since, which that process would then never read again.
        """
        self._empty(store_id, unless_bound=True)

    def _empty(self, store_id: str | None, *, unless_bound: bool = False) -> None:
        with self.transaction() as db:
            if unless_bound and self._meta("store") == store_id:
                return
            for table in TABLES:
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta WHERE key != 'schema'")
            if store_id is not None:
                self._set_meta("store", store_id)
        self._forget_listings()
        self._last_event = None
        self._segments_done = set()

    def _forget_listings(self) -> None:
        self._wide_sync = float("-inf")  # the first sync of this index object looks WIDE_SYNC_WINDOW back
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
        if not self._fold_if_possible(events):
            return count
        if gone:  # listed, then gone: a compactor packed them into a segment meanwhile
            self._days_cache = (None, [])
            count += self._fold_segments([s for s in self.backend.listdir("events") if s[:10] in gone and R.parse_segment_name(s)])
        return count + len(events)

    def _fold_if_possible(self, events: list[R.Event]) -> bool:
        """Fold ``events``; when the index cannot be written (a full disk, a read-only file), say so
        once and go on with what it holds, so that reading still works."""
        try:
            self.fold(events)
            return True
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise
            if not self._stale_warned:
                self._stale_warned = True
                warnings.warn(f"the index {self.path} cannot be updated ({exc}); showing what it held, which may miss "
                              "the newest changes", PlaitWarning, stacklevel=4)
            return False

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
        if not last:
            self._wide_sync = now  # every partition is listed: as wide as it gets
        else:
            # min(): a writer whose clock runs ahead must not push the window past today
            newest = min(_ulid_seconds(last), now)
            cutoff = time.strftime("%Y-%m-%d", time.gmtime(newest - SYNC_OVERLAP.total_seconds()))
            if now - self._wide_sync >= self.wide_interval:
                # now and then, look further back: a writer whose clock runs days behind writes
                # its events into old partitions, where the narrow window never looks
                self._wide_sync = now
                cutoff = min(cutoff, time.strftime("%Y-%m-%d", time.gmtime(now - WIDE_SYNC_WINDOW.total_seconds())))
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
            known |= {r[0] for r in self.fetch(
                f"SELECT id FROM events WHERE id IN ({marks}) UNION SELECT id FROM rejected WHERE id IN ({marks})", batch + batch)}
        seen |= known
        self._partition_stamps[day] = stamp if stamp is not None and now - stamp > STAMP_SETTLE else None
        return [f"{prefix}/{n}" for n in fresh if n not in known]

    # -- writes ---------------------------------------------------------------------------------

    def fold(self, events: Iterable[R.Event]) -> None:
        """Apply events to the index (idempotent; any order gives the same state).

        The versions that ``version.logged`` events announce are indexed from their records,
        read from the store (in one batch) for those the index does not hold yet.
        """
        ordered = sorted(events, key=lambda e: e.id)
        if not ordered:
            return
        records = self._records_for([e for e in ordered if e.kind == R.VERSION_LOGGED])
        with self.transaction() as db:
            for event in ordered:
                F.apply(db, event, records)
            last = self._meta("last_event")
            if last is None or ordered[-1].id > last:
                self._set_meta("last_event", ordered[-1].id)
        if self._last_event is None or ordered[-1].id > self._last_event:
            self._last_event = ordered[-1].id

    def _records_for(self, logged: list[R.Event]) -> dict[tuple[str, int], R.VersionRecord | str]:
        """Read the records of the versions ``logged`` announces that the index lacks; a missing
        or unreadable one maps to the reason."""
        wanted = sorted({(e.data["name"], e.data["number"]) for e in logged})
        if not wanted:
            return {}
        held: set[tuple[str, int]] = set()
        for batch in (wanted[i : i + 400] for i in range(0, len(wanted), 400)):
            pairs = ", ".join("(?, ?)" for _ in batch)
            held |= {(n, int(v)) for n, v in self.fetch(
                f"SELECT name, number FROM versions WHERE (name, number) IN (VALUES {pairs})", [x for k in batch for x in k])}
        todo = [k for k in wanted if k not in held]
        found = self.backend.read_many([R.version_key(*k) for k in todo]) if todo else {}
        out: dict[tuple[str, int], R.VersionRecord | str] = {}
        for name, number in todo:
            data = found.get(R.version_key(name, number))
            if data is None:
                continue  # the fold says it is missing
            try:
                out[(name, number)] = R.decode_version(data, name, number)
            except CorruptRecordError as exc:
                out[(name, number)] = f"the record it announces cannot be read ({exc})"
        return out

    def add_version(self, record: R.VersionRecord) -> None:
        """Index a version record read directly from ``versions/`` (one whose event is missing)."""
        with self.transaction() as db:
            F.insert_version(db, record.model_dump(mode="json"))


def _open(path: str) -> sqlite3.Connection:
    """Open (or create) the index at ``path``.

    A file that is not a sound SQLite database is deleted and made afresh (the index is a cache;
    the next sync refills it), with one warning saying so. An index that cannot be written where
    it lives (a read-only folder, a full disk) is kept in memory for this process instead.
    """
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return _connect(path)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):
            return _in_memory(path, exc)
        warnings.warn(f"the index {path} was damaged ({exc}); rebuilding it from the store", PlaitWarning, stacklevel=3)
        try:
            Catalog.remove(path)
        except OSError as err:
            return _in_memory(path, err)
        try:
            return _connect(path)
        except sqlite3.DatabaseError as err:
            return _in_memory(path, err)
    except OSError as exc:
        return _in_memory(path, exc)


def _connect(path: str) -> sqlite3.Connection:
    db = connect_wal(path, timeout=60, check_same_thread=False)
    try:
        db.execute("PRAGMA trusted_schema=OFF")  # the file may come from elsewhere: no functions from its schema
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
        found = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if found is not None and found[0] != str(SCHEMA_VERSION):
            # another layout: its tables may lack columns, so they are made again, not just emptied
            for table in TABLES:
                db.execute(f"DROP TABLE IF EXISTS {table}")
            db.execute("DELETE FROM meta")
        db.executescript(SCHEMA)
        return db
    except BaseException:
        db.close()
        raise


def _in_memory(path: str, exc: BaseException) -> sqlite3.Connection:
    warnings.warn(f"cannot use the index {path} ({exc}); indexing the store in memory for this command",
                  PlaitWarning, stacklevel=4)
    return _connect(":memory:")


def damaged_index(path: str, exc: BaseException) -> StoreError:
    """Return the error for an index found damaged while in use."""
    return StoreError(f"the index {path} is damaged ({exc}); run `plait reindex` to rebuild it (or delete the file)")


_CROCKFORD = {c: i for i, c in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ")}


def _ulid_seconds(ulid: str) -> float:
    """Return the POSIX time of a ULID (its first ten characters are milliseconds, base 32)."""
    ms = 0
    for char in ulid[:10]:
        ms = ms * 32 + _CROCKFORD[char]
    return ms / 1000
