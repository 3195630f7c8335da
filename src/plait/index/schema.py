"""The tables of a store's SQLite index, and the version of their layout.

A change here bumps :data:`SCHEMA_VERSION`; an index of another version is emptied and folded
again from the store (it is only a cache).

Times that order things are *moments*: ``<ISO time of the event>|<event id>`` (see
:func:`plait.index.fold.moment`). They keep their order when ``sync`` copies the events into
another store under new ids, because the time travels with the event.

- ``versions.touched``: the moment of the newest ``version.logged``/``version.produced`` event of
  the version; ``latest`` is the live version of a name touched last.
- ``producers``: every run that logged a version (its creator first) with the moments of its
  first and last production.
- ``uses.at``: the moment of the use; a run's output depends on what the run used before it.
- ``tags``: one row per tag ever put on a version; ``present`` says whether it is on it now
  (the ``tags.changed`` event with the greatest id decides, like an alias).
- ``expiry``: when a version expires (its TTL), from ``expiry.set`` events; ``NULL``: never.
- ``run_scope``: the closure of "runs inside" (a run's parent, and an implicit run's previous
  segment), each run with itself.
"""

from __future__ import annotations

SCHEMA_VERSION = 7

SCHEMA = """
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
    file_digest TEXT, touched TEXT,
    PRIMARY KEY (name, number)
);
CREATE INDEX IF NOT EXISTS versions_digest ON versions (digest);
CREATE INDEX IF NOT EXISTS versions_file_digest ON versions (file_digest);
CREATE INDEX IF NOT EXISTS versions_type ON versions (type);
CREATE INDEX IF NOT EXISTS versions_touched ON versions (name, touched);
CREATE TABLE IF NOT EXISTS producers (
    name TEXT NOT NULL, number INTEGER NOT NULL, run TEXT NOT NULL, digest TEXT NOT NULL,
    first_at TEXT NOT NULL, last_at TEXT NOT NULL,
    PRIMARY KEY (name, number, run)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS producers_run ON producers (run);
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
    run TEXT NOT NULL, name TEXT NOT NULL, number INTEGER NOT NULL, event_id TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (run, name, number)
);
CREATE INDEX IF NOT EXISTS uses_version ON uses (name, number);
CREATE TABLE IF NOT EXISTS run_scope (
    run TEXT NOT NULL, scope TEXT NOT NULL, PRIMARY KEY (run, scope)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS run_scope_scope ON run_scope (scope);
CREATE TABLE IF NOT EXISTS rejected (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT, number INTEGER, reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejected_version ON rejected (name, number);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY, value TEXT, event_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tags (
    name TEXT NOT NULL, number INTEGER NOT NULL, tag TEXT NOT NULL, present INTEGER NOT NULL, event_id TEXT NOT NULL,
    PRIMARY KEY (name, number, tag)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_tag ON tags (tag, present);
CREATE TABLE IF NOT EXISTS expiry (
    name TEXT NOT NULL, number INTEGER NOT NULL, expires_at TEXT, event_id TEXT NOT NULL,
    PRIMARY KEY (name, number)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS versions_created ON versions (created_at);
CREATE TABLE IF NOT EXISTS fingerprints (
    fingerprint TEXT NOT NULL, name TEXT NOT NULL, number INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, name)
);
"""

#: The tables :meth:`~plait.index.catalog.Catalog.clear` empties (everything but ``meta``'s schema).
TABLES = ("events", "versions", "producers", "aliases", "runs", "uses", "run_scope", "rejected", "fingerprints",
          "settings", "tags", "expiry")
