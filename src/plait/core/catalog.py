"""The SQLite index of a store: versions, aliases, runs, uses and events, folded from the store.

The store is the only source of truth; this index is a cache that answers queries fast and can
be deleted at any time. :meth:`Catalog.sync` lists only the event partitions that may hold
something new — the day of the last event seen, minus an overlap window for writers whose clock
runs behind or whose upload was slow — and folds the events it has not seen, in ULID order.
Folding is order-independent where it matters: an alias, a description or metadata keeps the
value of the event with the greatest id, whenever that event arrives.

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
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from plait.core import records as R
from plait.core.backend import Backend
from plait.core.errors import CorruptRecordError

SCHEMA_VERSION = 3
#: Events older than the newest one seen by less than this are listed again on sync, so a
#: writer with a slow upload or a clock behind ours is not missed.
SYNC_OVERLAP = _dt.timedelta(minutes=15)
#: A partition's directory mtime is trusted to mean "unchanged" only once it is this old.
STAMP_SETTLE = 1.0
#: Seconds between two listings of a remote store (override with ``$PLAIT_SYNC_INTERVAL``).
REMOTE_SYNC_INTERVAL = 1.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, time TEXT, user TEXT, run TEXT,
    name TEXT, number INTEGER, data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_version ON events (name, number);
CREATE INDEX IF NOT EXISTS events_run ON events (run);
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL, number INTEGER NOT NULL, type TEXT NOT NULL, digest TEXT NOT NULL,
    size INTEGER NOT NULL, file_count INTEGER NOT NULL, description TEXT NOT NULL,
    metadata TEXT NOT NULL, created_at TEXT NOT NULL, created_by TEXT, algorithm TEXT NOT NULL,
    origin TEXT, deleted INTEGER NOT NULL DEFAULT 0, description_event TEXT, metadata_event TEXT,
    file_digest TEXT,
    PRIMARY KEY (name, number)
);
CREATE INDEX IF NOT EXISTS versions_digest ON versions (digest);
CREATE INDEX IF NOT EXISTS versions_file_digest ON versions (file_digest);
CREATE INDEX IF NOT EXISTS versions_created_by ON versions (created_by);
CREATE INDEX IF NOT EXISTS versions_type ON versions (type);
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL, alias TEXT NOT NULL, number INTEGER, event_id TEXT NOT NULL,
    PRIMARY KEY (name, alias)
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, name TEXT, kind TEXT, parent TEXT, status TEXT NOT NULL,
    started_at TEXT, ended_at TEXT, body TEXT NOT NULL DEFAULT '{}', finish TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_name ON runs (name);
CREATE INDEX IF NOT EXISTS runs_parent ON runs (parent);
CREATE TABLE IF NOT EXISTS uses (
    run TEXT NOT NULL, name TEXT NOT NULL, number INTEGER NOT NULL, event_id TEXT NOT NULL,
    PRIMARY KEY (run, name, number)
);
CREATE INDEX IF NOT EXISTS uses_version ON uses (name, number);
CREATE TABLE IF NOT EXISTS run_scope (
    run TEXT NOT NULL, scope TEXT NOT NULL, PRIMARY KEY (run, scope)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_scope_scope ON run_scope (scope);
CREATE TABLE IF NOT EXISTS fingerprints (
    fingerprint TEXT NOT NULL, name TEXT NOT NULL, number INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, name)
);
"""

VERSION_COLUMNS = (
    "name, number, type, digest, size, file_count, description, metadata, created_at, created_by, "
    "algorithm, origin, deleted"
)


def version_columns(prefix: str = "") -> str:
    """Return :data:`VERSION_COLUMNS` with each column qualified by ``prefix`` (e.g. ``"v."``)."""
    return ", ".join(prefix + c.strip() for c in VERSION_COLUMNS.split(","))


class Catalog:
    """The local index of one store.

    :param path: the SQLite file.
    :param backend: the store's primitives, to list and read events.
    """

    def __init__(self, path: str, backend: Backend) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self.backend = backend
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        if self._meta("schema") not in (None, str(SCHEMA_VERSION)):
            self.clear()
        self._set_meta("schema", str(SCHEMA_VERSION))
        self._partition_stamps: dict[str, float | None] = {}
        self._partition_seen: dict[str, set[str]] = {}
        self._last_sync = 0.0
        self._days_cache: tuple[float | None, list[str]] = (None, [])
        self._last_event = self._meta("last_event")
        self._segments_done = {r[0][len("segment:"):] for r in self._db.execute(
            "SELECT key FROM meta WHERE key LIKE 'segment:%'")}
        remote = not backend.is_local and backend.protocol != "memory"
        self.sync_interval = float(os.environ.get("PLAIT_SYNC_INTERVAL", REMOTE_SYNC_INTERVAL)) if remote else 0.0

    # -- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        """Run a read query and return all rows (as tuples)."""
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    def clear(self) -> None:
        """Forget everything indexed (the store is untouched)."""
        with self._tx() as db:
            for table in ("events", "versions", "aliases", "runs", "uses", "run_scope", "fingerprints"):
                db.execute(f"DELETE FROM {table}")
            db.execute("DELETE FROM meta WHERE key != 'schema'")
        self._partition_stamps = {}
        self._partition_seen = {}
        self._last_sync = 0.0
        self._days_cache = (None, [])
        self._last_event = None
        self._segments_done = set()

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
        # a damaged event is reported by `plait verify`; it must not block reads
        events, _ = R.decode_events(blobs)
        self.fold(events)
        if gone:
            # listed, then gone: a compactor packed them into a segment meanwhile
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
        with self._tx() as db:
            for key in blobs:
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')", ("segment:" + key[len("events/"):],))
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
            known |= {r[0] for r in self.query(f"SELECT id FROM events WHERE id IN ({marks})", batch)}
        seen |= known
        self._partition_stamps[day] = stamp if stamp is not None and now - stamp > STAMP_SETTLE else None
        return [f"{prefix}/{n}" for n in fresh if n not in known]

    def fold(self, events: Iterable[R.Event]) -> None:
        """Apply events to the index (idempotent; any order gives the same state)."""
        ordered = sorted(events, key=lambda e: e.id)
        if not ordered:
            return
        with self._tx() as db:
            for event in ordered:
                data = event.data
                inserted = db.execute(
                    "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (event.id, event.kind, event.time, event.user, event.run, data.get("name"),
                     data.get("number"), json.dumps(data, sort_keys=True)),
                ).rowcount
                if inserted:
                    _FOLD[event.kind](db, event)
            last = self._meta("last_event")
            if last is None or ordered[-1].id > last:
                self._set_meta("last_event", ordered[-1].id)
            if self._last_event is None or ordered[-1].id > self._last_event:
                self._last_event = ordered[-1].id

    def remember_fingerprint(self, fingerprint: str, name: str, number: int) -> None:
        """Remember that an object with this fingerprint was logged as ``name:v<number>``.

        Fingerprints are a local shortcut (they live only in this index, not in the store).
        """
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO fingerprints VALUES (?, ?, ?)", (fingerprint, name, number))

    def add_version(self, record: R.VersionRecord) -> None:
        """Index a version record read directly from ``versions/`` (one whose event is missing)."""
        with self._tx() as db:
            _insert_version(db, record.model_dump(mode="json"))

    # -- queries --------------------------------------------------------------------------------

    def version(self, name: str, number: int) -> tuple | None:
        """Return the row of ``name:v<number>``, deleted or not."""
        rows = self.query(f"SELECT {VERSION_COLUMNS} FROM versions WHERE name = ? AND number = ?", (name, number))
        return rows[0] if rows else None

    def latest_number(self, name: str) -> int | None:
        """Return the newest live version number of ``name``."""
        row = self.query("SELECT MAX(number) FROM versions WHERE name = ? AND deleted = 0", (name,))
        return row[0][0] if row and row[0][0] is not None else None

    def alias_number(self, name: str, alias: str) -> int | None:
        """Return the version an alias points at, if it is set."""
        row = self.query("SELECT number FROM aliases WHERE name = ? AND alias = ?", (name, alias))
        return row[0][0] if row else None

    def aliases_of(self, name: str, number: int | None = None) -> dict[int, list[str]]:
        """Return ``{number: [alias, …]}`` for one name (or one version)."""
        sql = "SELECT number, alias FROM aliases WHERE name = ? AND number IS NOT NULL"
        params: list[Any] = [name]
        if number is not None:
            sql += " AND number = ?"
            params.append(number)
        out: dict[int, list[str]] = {}
        for num, alias in self.query(sql + " ORDER BY alias", params):
            out.setdefault(num, []).append(alias)
        return out

    def names(self) -> list[str]:
        """Return every artifact name with a live version."""
        return [r[0] for r in self.query("SELECT DISTINCT name FROM versions WHERE deleted = 0 ORDER BY name")]

    def by_digest(self, digest: str) -> list[tuple]:
        """Return live version rows with this manifest digest, oldest first."""
        return self.query(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE digest = ? AND deleted = 0 ORDER BY created_at, name, number",
            (digest,),
        )

    def by_content(self, digest: str, file_digest: str | None) -> list[tuple]:
        """Return live version rows holding this content, oldest first: the same manifest digest,
        or, for one file, the same file bytes under any file name."""
        if file_digest is None:
            return self.by_digest(digest)
        return self.query(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE (digest = ? OR file_digest = ?) AND deleted = 0 "
            "ORDER BY digest != ?, created_at, name, number",
            (digest, file_digest, digest),
        )

    def run_row(self, run_id: str) -> tuple | None:
        """Return ``(id, name, kind, parent, status, started_at, ended_at, body, finish)``."""
        rows = self.query("SELECT * FROM runs WHERE id = ?", (run_id,))
        return rows[0] if rows else None

    def events_for(self, name: str, number: int | None = None) -> list[tuple]:
        """Return ``(id, kind, time, user, run, data)`` of a name's (or version's) events, oldest first."""
        sql = "SELECT id, kind, time, user, run, data FROM events WHERE name = ?"
        params: list[Any] = [name]
        if number is not None:
            sql += " AND (number = ? OR kind IN ('alias.set', 'alias.removed'))"
            params.append(number)
        return self.query(sql + " ORDER BY id", params)


_CROCKFORD = {c: i for i, c in enumerate("0123456789ABCDEFGHJKMNPQRSTVWXYZ")}


def _ulid_seconds(ulid: str) -> float:
    """Return the POSIX time of a ULID (its first ten characters are milliseconds, base 32)."""
    ms = 0
    for char in ulid[:10]:
        ms = ms * 32 + _CROCKFORD[char]
    return ms / 1000


# -- folds, one per event kind -------------------------------------------------------------------


def _insert_version(db: sqlite3.Connection, rec: dict[str, Any]) -> None:
    db.execute(
        "INSERT OR IGNORE INTO versions (name, number, type, digest, size, file_count, description, metadata, "
        "created_at, created_by, algorithm, origin, file_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (rec["name"], rec["number"], rec["type"], rec["digest"], rec["size"], rec["file_count"],
         rec.get("description", ""), json.dumps(rec.get("metadata") or {}, sort_keys=True), rec["created_at"],
         rec.get("created_by"), rec.get("algorithm", "xxh3-128"),
         json.dumps(rec["origin"], sort_keys=True) if rec.get("origin") else None, rec.get("file_digest")),
    )
    # events about this version may have arrived before it: apply them now
    for (eid, kind, data) in db.execute(
        "SELECT id, kind, data FROM events WHERE name = ? AND number = ? AND kind IN (?, ?) ORDER BY id",
        (rec["name"], rec["number"], R.VERSION_UPDATED, R.VERSION_DELETED),
    ).fetchall():
        _apply_version_change(db, eid, kind, json.loads(data))


def _apply_version_change(db: sqlite3.Connection, event_id: str, kind: str, data: dict[str, Any]) -> None:
    if kind == R.VERSION_DELETED:
        db.execute("UPDATE versions SET deleted = 1 WHERE name = ? AND number = ?", (data["name"], data["number"]))
        return
    for field in ("description", "metadata"):
        if field not in data.get("new", {}):
            continue
        value = data["new"][field]
        stored = value if field == "description" else json.dumps(value, sort_keys=True)
        db.execute(
            f"UPDATE versions SET {field} = ?, {field}_event = ? WHERE name = ? AND number = ? "
            f"AND ({field}_event IS NULL OR {field}_event < ?)",
            (stored, event_id, data["name"], data["number"], event_id),
        )


def _fold_logged(db: sqlite3.Connection, event: R.Event) -> None:
    _insert_version(db, event.data)
    _add_scope(db, event.data.get("created_by"))


def _fold_used(db: sqlite3.Connection, event: R.Event) -> None:
    d = event.data
    db.execute("INSERT OR IGNORE INTO uses VALUES (?, ?, ?, ?)", (event.run, d["name"], d["number"], event.id))
    _add_scope(db, event.run)


def _fold_alias(db: sqlite3.Connection, event: R.Event) -> None:
    d = event.data
    number = d["number"] if event.kind == R.ALIAS_SET else None
    db.execute(
        "INSERT INTO aliases VALUES (?, ?, ?, ?) ON CONFLICT (name, alias) DO UPDATE SET "
        "number = excluded.number, event_id = excluded.event_id WHERE excluded.event_id > aliases.event_id",
        (d["name"], d["alias"], number, event.id),
    )


def _fold_change(db: sqlite3.Connection, event: R.Event) -> None:
    _apply_version_change(db, event.id, event.kind, event.data)


def _fold_run_started(db: sqlite3.Connection, event: R.Event) -> None:
    d = event.data
    db.execute(
        "INSERT INTO runs (id, name, kind, parent, status, started_at, body) VALUES (?, ?, ?, ?, 'running', ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET name = excluded.name, kind = excluded.kind, parent = excluded.parent, "
        "started_at = excluded.started_at, body = excluded.body",
        (d["id"], d.get("name"), d.get("kind"), d.get("parent"), d.get("started_at"), json.dumps(d, sort_keys=True)),
    )
    _add_scope(db, d["id"], d.get("parent"))


def _add_scope(db: sqlite3.Connection, run: str | None, parent: str | None = None) -> None:
    """Record that ``run`` works inside itself and, with ``parent``, inside every run around it.

    ``run_scope`` is the closure of the parent relation: a run inherits the inputs its parents
    had used before it started (a Lightning fit inside a Prefect task trains on the task's
    data). Runs may be folded before their parents; the closure is completed when they arrive.
    """
    if run is None:
        return
    db.execute("INSERT OR IGNORE INTO run_scope VALUES (?, ?)", (run, run))
    if parent is None:
        return
    db.execute("INSERT OR IGNORE INTO run_scope VALUES (?, ?)", (run, parent))
    db.execute("INSERT OR IGNORE INTO run_scope SELECT ?, scope FROM run_scope WHERE run = ?", (run, parent))
    # runs folded earlier that sit inside this one now also sit inside its ancestors
    db.execute(
        "INSERT OR IGNORE INTO run_scope SELECT inner_.run, outer_.scope FROM run_scope inner_ "
        "JOIN run_scope outer_ ON outer_.run = inner_.scope WHERE inner_.scope = ?",
        (run,),
    )


def _fold_run_finished(db: sqlite3.Connection, event: R.Event) -> None:
    d = event.data
    db.execute(
        "INSERT INTO runs (id, status, ended_at, finish) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "status = excluded.status, ended_at = excluded.ended_at, finish = excluded.finish",
        (d["id"], d.get("status", "finished"), d.get("ended_at"), json.dumps(d, sort_keys=True)),
    )


_FOLD = {
    R.RUN_STARTED: _fold_run_started,
    R.RUN_FINISHED: _fold_run_finished,
    R.VERSION_LOGGED: _fold_logged,
    R.VERSION_USED: _fold_used,
    R.ALIAS_SET: _fold_alias,
    R.ALIAS_REMOVED: _fold_alias,
    R.VERSION_UPDATED: _fold_change,
    R.VERSION_DELETED: _fold_change,
}
