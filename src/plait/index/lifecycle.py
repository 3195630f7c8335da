"""Folding the events that label and time versions: ``tags.changed`` and ``expiry.set``.

Both keep, per version (and per tag), the value of the event with the greatest id, whatever
order the events arrive in, like aliases. The queries over them live in
:mod:`plait.index.tags` and :mod:`plait.index.retention`.
"""

from __future__ import annotations

import sqlite3

from plait.formats import records as R


def fold_tags(db: sqlite3.Connection, event: R.Event) -> None:
    """Put on or take off each tag a ``tags.changed`` event names, unless a later event decided it."""
    d = event.data
    rows = [(d["name"], d["number"], tag, 1, event.id) for tag in d["added"]]
    rows += [(d["name"], d["number"], tag, 0, event.id) for tag in d["removed"]]
    db.executemany(
        "INSERT INTO tags VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, number, tag) DO UPDATE SET "
        "present = excluded.present, event_id = excluded.event_id WHERE excluded.event_id > tags.event_id",
        rows,
    )


def fold_expiry(db: sqlite3.Connection, event: R.Event) -> None:
    """Set when a version expires (``NULL``: never), unless a later event decided it."""
    d = event.data
    db.execute(
        "INSERT INTO expiry VALUES (?, ?, ?, ?) ON CONFLICT (name, number) DO UPDATE SET "
        "expires_at = excluded.expires_at, event_id = excluded.event_id WHERE excluded.event_id > expiry.event_id",
        (d["name"], d["number"], d.get("expires_at"), event.id),
    )
