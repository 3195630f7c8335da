"""Typed rows: what the index's queries return, so no caller reads a tuple by position.

Each row class names its columns once (``COLUMNS``, in the order the ``SELECT`` lists them)
and is built from a SQLite tuple by :meth:`from_sql`; JSON columns are parsed there.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class VersionRow:
    """One row of ``versions``: a version as the index knows it (current description and metadata).

    :ivar name: artifact name.
    :ivar number: version number.
    :ivar type: artifact type.
    :ivar digest: manifest digest.
    :ivar size: total bytes.
    :ivar file_count: number of files.
    :ivar description: current description.
    :ivar metadata: current metadata.
    :ivar created_at: ISO UTC time it was logged.
    :ivar created_by: id of the run that logged it, if any.
    :ivar algorithm: hash algorithm of its manifest.
    :ivar origin: where ``sync`` copied it from, if it did.
    :ivar deleted: whether it was deleted.
    :ivar file_digest: for a version of one stored file, that file's digest.
    """

    COLUMNS = ("name", "number", "type", "digest", "size", "file_count", "description", "metadata", "created_at",
               "created_by", "algorithm", "origin", "deleted", "file_digest")

    name: str
    number: int
    type: str
    digest: str
    size: int
    file_count: int
    description: str
    metadata: dict[str, Any]
    created_at: str
    created_by: str | None
    algorithm: str
    origin: dict[str, Any] | None
    deleted: bool
    file_digest: str | None

    @classmethod
    def select(cls, prefix: str = "") -> str:
        """Return the column list for a ``SELECT``, each qualified by ``prefix`` (e.g. ``"v."``)."""
        return ", ".join(prefix + c for c in cls.COLUMNS)

    @classmethod
    def from_sql(cls, row: Sequence[Any]) -> VersionRow:
        """Build a row from a tuple selected with :meth:`select`."""
        (name, number, type_, digest, size, file_count, description, metadata, created_at, created_by, algorithm,
         origin, deleted, file_digest) = row
        return cls(name, number, type_, digest, size, file_count, description, json.loads(metadata), created_at,
                   created_by, algorithm, json.loads(origin) if origin else None, bool(deleted), file_digest)

    @property
    def key(self) -> tuple[str, int]:
        """``(name, number)``."""
        return (self.name, self.number)


@dataclass(frozen=True)
class RunRow:
    """One row of ``runs``: a run folded from its start and finish events.

    :ivar id: the run's ULID.
    :ivar name: its name (``None`` until its start event arrives).
    :ivar kind: ``manual``, ``prefect.task``, …
    :ivar parent: the id of the run it ran inside.
    :ivar status: ``running``, ``finished`` or ``failed``.
    :ivar started_at: ISO UTC start time.
    :ivar ended_at: ISO UTC end time, once finished.
    :ivar body: everything recorded at start (config, host, git, integration facts).
    :ivar finish: everything recorded at the end (error, summary).
    """

    COLUMNS = ("id", "name", "kind", "parent", "status", "started_at", "ended_at", "body", "finish")

    id: str
    name: str | None
    kind: str | None
    parent: str | None
    status: str
    started_at: str | None
    ended_at: str | None
    body: dict[str, Any] = field(default_factory=dict)
    finish: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def select(cls, prefix: str = "") -> str:
        """Return the column list for a ``SELECT``, each qualified by ``prefix``."""
        return ", ".join(prefix + c for c in cls.COLUMNS)

    @classmethod
    def from_sql(cls, row: Sequence[Any]) -> RunRow:
        """Build a row from a tuple selected with :meth:`select`."""
        rid, name, kind, parent, status, started_at, ended_at, body, finish = row
        return cls(rid, name, kind, parent, status, started_at, ended_at, json.loads(body), json.loads(finish))


@dataclass(frozen=True)
class ProducerRow:
    """One run that produced a version: it logged the version, or logged the same content again.

    :ivar name: artifact name.
    :ivar number: version number.
    :ivar run: the producing run's id.
    :ivar first_at: moment (``<time>|<event id>``) of its first production of the version.
    :ivar last_at: moment of its last production of the version.
    :ivar status: the run's status (``running`` while its start or end is not indexed).
    :ivar inside_failed: whether a run around it (a flow around a task) failed.
    :ivar passed_on: whether the run had used the version before it logged the same content.
    """

    COLUMNS = ("name", "number", "run", "first_at", "last_at", "status", "inside_failed", "passed_on")

    name: str
    number: int
    run: str
    first_at: str
    last_at: str
    status: str
    inside_failed: bool
    passed_on: bool = False

    @classmethod
    def from_sql(cls, row: Sequence[Any]) -> ProducerRow:
        """Build a row from a tuple in :attr:`COLUMNS` order."""
        name, number, run, first_at, last_at, status, inside_failed, passed_on = row
        return cls(name, int(number), run, first_at, last_at, status or "running", bool(inside_failed), bool(passed_on))

    @property
    def key(self) -> tuple[str, int]:
        """``(name, number)``."""
        return (self.name, self.number)

    @property
    def standing(self) -> int:
        """0 for a finished run, 1 for one still running, 2 for a failed one or one inside a failed run."""
        if self.inside_failed or self.status == "failed":
            return 2
        return 0 if self.status == "finished" else 1


@dataclass(frozen=True)
class EventRow:
    """One folded event.

    :ivar id: its ULID.
    :ivar kind: ``alias.set``, ``version.logged``, …
    :ivar time: ISO UTC time.
    :ivar user: who made it.
    :ivar run: the run it happened in.
    :ivar data: what the kind carries.
    """

    COLUMNS = ("id", "kind", "time", "user", "run", "data")

    id: str
    kind: str
    time: str
    user: str
    run: str | None
    data: dict[str, Any]

    @classmethod
    def select(cls, prefix: str = "") -> str:
        """Return the column list for a ``SELECT``, each qualified by ``prefix``."""
        return ", ".join(prefix + c for c in cls.COLUMNS)

    @classmethod
    def from_sql(cls, row: Sequence[Any]) -> EventRow:
        """Build a row from a tuple selected with :meth:`select`."""
        eid, kind, time, user, run, data = row
        return cls(eid, kind, time or "", user or "", run, json.loads(data))
