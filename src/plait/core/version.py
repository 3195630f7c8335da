"""ArtifactVersion: one logged, immutable version, and what can be done with it.

The files of a version never change. Its aliases, description and metadata can be changed;
each change is an event in the store, and the methods that make one return the version as it
is afterwards (the object itself is a value and is not modified).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plait.core import records as R
from plait.core.errors import NotFoundError
from plait.core.manifest import Entry, Manifest
from plait.core.names import check_alias
from plait.core.records import check_json

if TYPE_CHECKING:
    from plait.core.run import Run
    from plait.core.store import Store


@dataclass(frozen=True)
class HistoryEntry:
    """One change in a version's history.

    :ivar time: ISO UTC time.
    :ivar kind: ``logged``, ``alias.set``, ``alias.removed``, ``updated`` or ``deleted``.
    :ivar version: the ``name:vN`` it concerns.
    :ivar user: who made it.
    :ivar run: the run it happened in, if any.
    :ivar detail: the alias, field, old and new values.
    """

    time: str
    kind: str
    version: str
    user: str
    run: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        d = self.detail
        if self.kind == R.ALIAS_SET:
            moved = f" (from v{d['old']})" if d.get("old") is not None else ""
            what = f"alias {d['alias']!r} set{moved}"
        elif self.kind == R.ALIAS_REMOVED:
            what = f"alias {d['alias']!r} removed"
        elif self.kind == R.VERSION_UPDATED:
            what = "updated " + ", ".join(f"{k}: {json.dumps(d['old'].get(k))} -> {json.dumps(v)}" for k, v in d["new"].items())
        elif self.kind == R.VERSION_LOGGED:
            what = "logged"
        else:
            what = self.kind.split(".")[-1]
        return f"{self.time}  {self.version:<24} {what}  by {self.user}"


@dataclass(frozen=True)
class ArtifactVersion:
    """An immutable, logged artifact version.

    :ivar store: the store holding it.
    :ivar name: artifact name.
    :ivar number: version number.
    :ivar type: artifact type.
    :ivar digest: manifest digest (equal digests mean equal files).
    :ivar size: total bytes.
    :ivar file_count: number of files.
    :ivar description: current description.
    :ivar metadata: current metadata.
    :ivar created_at: ISO UTC time it was logged.
    :ivar created_by: id of the run that logged it.
    :ivar aliases: aliases pointing at it (``latest`` included when it is the newest).
    """

    store: Store = field(repr=False, compare=False)
    name: str
    number: int
    type: str
    digest: str
    size: int
    file_count: int
    description: str
    metadata: Mapping[str, Any]
    created_at: str
    created_by: str | None
    aliases: tuple[str, ...] = ()
    deleted: bool = False

    @classmethod
    def from_row(cls, store: Store, row: tuple) -> ArtifactVersion:
        """Build a version from an index row (see ``VERSION_COLUMNS``)."""
        name, number = row[0], row[1]
        catalog = store.catalog
        aliases = catalog.aliases_of(name, number).get(number, [])
        if not row[12] and catalog.latest_number(name) == number:
            aliases = ["latest", *aliases]
        return cls(
            store=store, name=name, number=number, type=row[2], digest=row[3], size=row[4], file_count=row[5],
            description=row[6], metadata=json.loads(row[7]), created_at=row[8], created_by=row[9],
            aliases=tuple(aliases), deleted=bool(row[12]),
        )

    def __str__(self) -> str:
        return self.spec

    @property
    def spec(self) -> str:
        """``name:vN``."""
        return f"{self.name}:v{self.number}"

    @property
    def version(self) -> str:
        """``vN``."""
        return f"v{self.number}"

    # -- content --------------------------------------------------------------------------------

    @property
    def manifest(self) -> Manifest:
        """The version's manifest."""
        return self.store.manifest(self.digest)

    def files(self) -> list[Entry]:
        """Return the version's entries (path, digest, size, chunks, reference), sorted by path."""
        return list(self.manifest.entries)

    def entry(self, path: str) -> Entry:
        """Return one entry.

        :raises NotFoundError: listing a few paths that exist.
        """
        entry = self.manifest.get(path)
        if entry is None:
            paths = [e.path for e in self.manifest.entries]
            sample = ", ".join(paths[:10]) + (" …" if len(paths) > 10 else "")
            raise NotFoundError(f"{self.spec} has no file {path!r} (it has {sample or 'no files'})", name=path, candidates=paths)
        return entry

    def open(self, path: str) -> io.BufferedReader:
        """Open one file of the version for reading (fetched and verified first).

        :raises NotFoundError: for a path that is not in the version.
        :raises IntegrityError: if its stored bytes are damaged.
        """
        from plait.core.download import fetch_entry

        return open(fetch_entry(self.store, self.entry(path)), "rb")  # noqa: SIM115

    def read_bytes(self, path: str) -> bytes:
        """Return the bytes of one file of the version."""
        with self.open(path) as f:
            return f.read()

    def download(self, dest: str | os.PathLike[str] | None = None, *, paths: list[str] | None = None) -> str:
        """Write the version's files below ``dest``, each verified against its digest.

        Each file is written to a temporary name and renamed into place only once its digest
        matched, so a damaged blob leaves nothing at ``dest``. Files already at ``dest`` with the
        right digest are left alone.

        :param dest: a folder (default: ``<cache>/versions/<name>/v<N>``).
        :param paths: only these entry paths.
        :returns: the folder.
        :raises IntegrityError: if stored bytes are damaged.
        """
        from plait.core.download import download

        return download(self, dest, paths=paths)

    def verify(self) -> list[str]:
        """Check every blob of this version; return the entry paths that are damaged or missing."""
        from plait.core.verify import verify_version

        return verify_version(self)

    # -- changes --------------------------------------------------------------------------------

    def set_alias(self, alias: str) -> ArtifactVersion:
        """Point ``alias`` at this version (moving it from another version of the name).

        :returns: this version as it is now.
        """
        self.store.set_alias(self.spec, check_alias(alias), run=_active_run_id(self.store))
        return self.refresh()

    def remove_alias(self, alias: str) -> ArtifactVersion:
        """Remove ``alias`` from this version.

        :raises NotFoundError: if the alias is not on this version.
        """
        self.store.remove_alias(self.spec, alias, run=_active_run_id(self.store))
        return self.refresh()

    def update(self, *, metadata: Mapping[str, Any] | None = None, description: str | None = None, replace: bool = False) -> ArtifactVersion:
        """Change the description and/or metadata; each change is recorded in the history.

        :param metadata: keys to set (merged into the current metadata unless ``replace``).
        :param description: the new description (Markdown).
        :param replace: replace the metadata entirely instead of merging.
        :returns: this version as it is now.
        :raises InvalidMetadataError: for metadata that is not JSON.
        """
        new: dict[str, Any] = {}
        old: dict[str, Any] = {}
        if metadata is not None:
            merged = dict(metadata) if replace else {**self.metadata, **metadata}
            check_json(merged)
            if merged != dict(self.metadata):
                new["metadata"], old["metadata"] = merged, dict(self.metadata)
        if description is not None and str(description) != self.description:
            new["description"], old["description"] = str(description), self.description
        if new:
            self.store.write_event(
                R.VERSION_UPDATED, {"name": self.name, "number": self.number, "old": old, "new": new},
                run=_active_run_id(self.store),
            )
        return self.refresh()

    def delete(self, *, force: bool = False) -> None:
        """Delete this version (see :meth:`Store.delete`)."""
        self.store.delete(self.spec, force=force, run=_active_run_id(self.store))

    def refresh(self) -> ArtifactVersion:
        """Return this version as the store has it now."""
        row = self.store.catalog.version(self.name, self.number)
        assert row is not None
        return ArtifactVersion.from_row(self.store, row)

    def history(self) -> list[HistoryEntry]:
        """Return every change to this version — logged, aliases, notes, metadata — oldest first.

        Alias moves away from this version (the alias set on another one) are included.
        """
        out = []
        for eid, kind, time, user, run, data in self.store.catalog.events_for(self.name):
            d = json.loads(data)
            number = d.get("number")
            if number != self.number and not (kind == R.ALIAS_SET and d.get("old") == self.number):
                continue
            detail = {k: v for k, v in d.items() if k in ("alias", "old", "new", "number")} if kind != R.VERSION_LOGGED else {}
            out.append(HistoryEntry(time, kind, f"{self.name}:v{number}", user, run, detail))
        # by the time each change happened: events copied in by `sync` arrive later than they happened
        return sorted(out, key=lambda h: h.time)

    # -- lineage --------------------------------------------------------------------------------

    @property
    def produced_by(self) -> Run | None:
        """The run that logged this version."""
        from plait.core.run import Run

        return Run.load(self.store, self.created_by) if self.created_by else None

    @property
    def used_by(self) -> list[Run]:
        """The runs that used this version, oldest first."""
        from plait.core.run import Run

        rows = self.store.catalog.query("SELECT run FROM uses WHERE name = ? AND number = ? ORDER BY event_id", (self.name, self.number))
        return [Run.load(self.store, r[0]) for r in rows]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        return {
            "name": self.name, "version": self.version, "spec": self.spec, "type": self.type, "digest": self.digest,
            "size": self.size, "file_count": self.file_count, "description": self.description,
            "metadata": dict(self.metadata), "created_at": self.created_at, "created_by": self.created_by,
            "aliases": list(self.aliases),
        }


def _active_run_id(store: Store) -> str | None:
    from plait.core.run import active_run

    run = active_run()
    return run.id if run is not None and run.store == store else None

