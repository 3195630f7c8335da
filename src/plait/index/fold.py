"""Folding events into the index: one function per event kind, each idempotent.

:func:`apply` records the event and, the first time it is seen, applies it. An alias, a
store setting, a description or metadata keeps the value of the event with the greatest id, whatever order the
events arrive in; a version's later changes may arrive before the version itself and are
applied when it does. A version's producers and its ``touched`` moment (which decides
``latest``) are kept the same way: whatever order the events arrive in, the fold is the same.

A ``version.logged`` event only announces a version: what the version is (name, number, type,
digest, size, file count, creator, creation time) comes from its exclusively created record,
which the caller reads from the store and hands in. An announcement that disagrees with its
record, or whose record is missing or unreadable, is kept in ``rejected`` with the reason (for
``plait verify``) and changes nothing else.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any

from plait.formats import records as R
from plait.index.lifecycle import fold_expiry, fold_tags

#: What a version record holds that makes it that version (description and metadata may change later).
IDENTITY = ("name", "number", "type", "digest", "size", "file_count", "created_at", "created_by", "algorithm",
            "origin", "file_digest")

#: ``{(name, number): the record, or why it cannot be had}`` for the versions some events announce.
Records = Mapping[tuple[str, int], "R.VersionRecord | str"]


def apply(db: sqlite3.Connection, event: R.Event, records: Records) -> None:
    """Record ``event`` in ``events`` and, if it is new, apply it to the other tables.

    :param records: the records of the versions announced by ``version.logged`` events that
        the index does not hold yet (read from the store by the caller).
    """
    if event.kind == R.VERSION_LOGGED:
        reason = _announcement_problem(db, event, records)
        if reason is not None:
            db.execute("INSERT OR IGNORE INTO rejected VALUES (?, ?, ?, ?, ?)",
                       (event.id, event.kind, event.data.get("name"), event.data.get("number"), reason))
            return
    data = event.data
    inserted = db.execute(
        "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (event.id, event.kind, event.time, event.user, event.run, data.get("name"), data.get("number"),
         json.dumps(data, sort_keys=True)),
    ).rowcount
    if inserted:
        _FOLD[event.kind](db, event)


def _announcement_problem(db: sqlite3.Connection, event: R.Event, records: Records) -> str | None:
    """Index the version a ``version.logged`` event announces, from its record; return what is wrong, if anything."""
    name, number = event.data["name"], event.data["number"]
    row = db.execute(f"SELECT {', '.join(IDENTITY)} FROM versions WHERE name = ? AND number = ?", (name, number)).fetchone()
    if row is None:
        found = records.get((name, number), f"the record {R.version_key(name, number)} it announces is missing")
        if isinstance(found, str):
            return found
        insert_version(db, found.model_dump(mode="json"))
        row = db.execute(f"SELECT {', '.join(IDENTITY)} FROM versions WHERE name = ? AND number = ?", (name, number)).fetchone()
    indexed = dict(zip(IDENTITY, row))
    indexed["origin"] = json.loads(indexed["origin"]) if indexed["origin"] else None
    claimed = R.VersionRecord.model_validate(event.data).model_dump(mode="json")  # with its defaults filled in
    differ = [k for k in IDENTITY if claimed[k] != indexed[k]]
    if differ:
        shown = ", ".join(f"{k} {claimed[k]!r} (record: {indexed[k]!r})" for k in differ[:3])
        return f"it announces {name}:v{number} with {shown}; the record {R.version_key(name, number)} decides"
    return None


def moment(time: str | None, event_id: str) -> str:
    """Return the key that orders events by when they happened: ``<ISO time>|<event id>``.

    The time comes first because ``sync`` copies events under new ids but keeps their time.
    """
    return f"{time or ''}|{event_id}"


def insert_version(db: sqlite3.Connection, rec: dict[str, Any], at: str | None = None) -> None:
    """Index a version record; ``at`` is the moment of its ``version.logged`` event, if known."""
    at = at if at is not None else moment(rec["created_at"], "")
    db.execute(
        "INSERT OR IGNORE INTO versions (name, number, type, digest, size, file_count, description, metadata, "
        "created_at, created_by, algorithm, origin, file_digest, touched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (rec["name"], rec["number"], rec["type"], rec["digest"], rec["size"], rec["file_count"],
         rec.get("description", ""), json.dumps(rec.get("metadata") or {}, sort_keys=True), rec["created_at"],
         rec.get("created_by"), rec.get("algorithm", "xxh3-128"),
         json.dumps(rec["origin"], sort_keys=True) if rec.get("origin") else None, rec.get("file_digest"), at),
    )
    name, number = rec["name"], rec["number"]
    _credit_creator(db, name, number, rec.get("created_by"), at)
    # events about this version may have arrived before it: apply them now
    for (eid, kind, data) in db.execute(
        "SELECT id, kind, data FROM events WHERE name = ? AND number = ? AND kind IN (?, ?) ORDER BY id",
        (name, number, R.VERSION_UPDATED, R.VERSION_DELETED),
    ).fetchall():
        _apply_version_change(db, eid, kind, json.loads(data))


def _credit_creator(db: sqlite3.Connection, name: str, number: int, run: str | None, at: str) -> None:
    """Count the run that created a version as one of its producers, at the moment ``at``."""
    digest = db.execute("SELECT digest FROM versions WHERE name = ? AND number = ?", (name, number)).fetchone()[0]
    # a producer claiming other content than the record holds is not one (events never change a record)
    db.execute("DELETE FROM producers WHERE name = ? AND number = ? AND digest != ?", (name, number, digest))
    if run:
        _add_producer(db, name, number, run, digest, at)
    db.execute(
        "UPDATE versions SET touched = (SELECT MAX(m) FROM (SELECT touched AS m UNION ALL "
        "SELECT last_at FROM producers WHERE name = ? AND number = ?)) WHERE name = ? AND number = ?",
        (name, number, name, number),
    )


def _add_producer(db: sqlite3.Connection, name: str, number: int, run: str, digest: str, at: str) -> None:
    db.execute(
        "INSERT INTO producers VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name, number, run) DO UPDATE SET "
        "first_at = MIN(first_at, excluded.first_at), last_at = MAX(last_at, excluded.last_at)",
        (name, number, run, digest, at, at),
    )


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
    # the version itself was indexed from its record (see _announcement_problem), which this event matches
    d = event.data
    _credit_creator(db, d["name"], d["number"], d.get("created_by"), moment(d["created_at"], event.id))
    _add_scope(db, event.data.get("created_by"))


def _fold_produced(db: sqlite3.Connection, event: R.Event) -> None:
    """Add one more producer to a version (the same content logged again) and make it the newest."""
    d = event.data
    found = db.execute("SELECT digest FROM versions WHERE name = ? AND number = ?", (d["name"], d["number"])).fetchone()
    if found is not None and found[0] != d["digest"]:
        return  # not this version's content: a damaged or crafted event
    at = moment(event.time, event.id)
    assert event.run is not None  # validated in plait.formats.records
    _add_producer(db, d["name"], d["number"], event.run, d["digest"], at)
    db.execute("UPDATE versions SET touched = ? WHERE name = ? AND number = ? AND (touched IS NULL OR touched < ?)",
               (at, d["name"], d["number"], at))
    _add_scope(db, event.run)


def _fold_used(db: sqlite3.Connection, event: R.Event) -> None:
    d = event.data
    db.execute(
        "INSERT INTO uses VALUES (?, ?, ?, ?, ?) ON CONFLICT (run, name, number) DO UPDATE SET "
        "event_id = excluded.event_id, at = excluded.at WHERE excluded.at < uses.at",
        (event.run, d["name"], d["number"], event.id, moment(event.time, event.id)),
    )
    _add_scope(db, event.run)


def _fold_alias(db: sqlite3.Connection, event: R.Event) -> None:
    d = event.data
    number = d["number"] if event.kind == R.ALIAS_SET else None
    db.execute(
        "INSERT INTO aliases VALUES (?, ?, ?, ?) ON CONFLICT (name, alias) DO UPDATE SET "
        "number = excluded.number, event_id = excluded.event_id WHERE excluded.event_id > aliases.event_id",
        (d["name"], d["alias"], number, event.id),
    )


def _fold_setting(db: sqlite3.Connection, event: R.Event) -> None:
    d = event.data
    value = None if d["value"] is None else json.dumps(d["value"], sort_keys=True)  # NULL: unset, still newer
    db.execute(
        "INSERT INTO settings VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
        "value = excluded.value, event_id = excluded.event_id WHERE excluded.event_id > settings.event_id",
        (d["key"], value, event.id),
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
    if isinstance(d.get("previous"), str):  # the next segment of an implicit run goes on from the last one
        _add_scope(db, d["id"], d["previous"])


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
    R.VERSION_PRODUCED: _fold_produced,
    R.ALIAS_SET: _fold_alias,
    R.ALIAS_REMOVED: _fold_alias,
    R.VERSION_UPDATED: _fold_change,
    R.VERSION_DELETED: _fold_change,
    R.SETTING_SET: _fold_setting,
    R.TAGS_CHANGED: fold_tags,
    R.EXPIRY_SET: fold_expiry,
}
