"""Folding events into the index: one function per event kind, each idempotent.

:func:`apply` records the event and, the first time it is seen, applies it. An alias, a
store setting, a description or metadata keeps the value of the event with the greatest id, whatever order the
events arrive in; a version's later changes may arrive before the version itself and are
applied when it does.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from plait.formats import records as R


def apply(db: sqlite3.Connection, event: R.Event) -> None:
    """Record ``event`` in ``events`` and, if it is new, apply it to the other tables."""
    data = event.data
    inserted = db.execute(
        "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (event.id, event.kind, event.time, event.user, event.run, data.get("name"), data.get("number"),
         json.dumps(data, sort_keys=True)),
    ).rowcount
    if inserted:
        _FOLD[event.kind](db, event)


def insert_version(db: sqlite3.Connection, rec: dict[str, Any]) -> None:
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
    insert_version(db, event.data)
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
    R.SETTING_SET: _fold_setting,
}
