"""The two kinds of node in the lineage graph: artifact versions and the runs that used and logged them.

An :class:`ArtifactVersion` is one logged, immutable version. Its files never change; its
aliases, description and metadata can, each change an event in the store, and the methods that
make one return the version as it is afterwards (the object itself is a value). A
:class:`RunRecord` is a run as the store records it: what it was, what it used and what it
logged. The live :class:`~plait.tracking.run.Run` a user logs into is a ``RunRecord`` too.

The two refer to each other (a version's producing run, a run's input versions), so they live
in one module.
"""

from __future__ import annotations

import contextvars
import copy
import io
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from plait.errors import CorruptRecordError, NotFoundError
from plait.formats import records as R
from plait.formats.artifact import Artifact
from plait.formats.manifest import Entry, Manifest
from plait.formats.names import check_alias
from plait.formats.records import check_json
from plait.formats.treeview import FileList, TreeManifest, entry_of
from plait.index import events as E
from plait.index import producers as P
from plait.index import runs as RQ
from plait.index import tags as T
from plait.index import versions as V
from plait.index.rows import EventRow, RunRow, VersionRow
from plait.store.base import BaseStore as Store
from plait.store.checks import damaged_paths, tree_problems
from plait.store.download import download, fetch_entry
from plait.store.labels import change_tags, set_ttl
from plait.store.references import ReferenceReader

#: The run the current context works in (a live :class:`~plait.tracking.run.Run`); see
#: :func:`plait.active_run`.
ACTIVE_RUN: contextvars.ContextVar[RunRecord | None] = contextvars.ContextVar("plait_active_run", default=None)


#: What a history entry keeps of its event's data.
_DETAIL = ("alias", "old", "new", "number", "protected", "added", "removed", "expires_at", "reason")


@dataclass(frozen=True)
class HistoryEntry:
    """One change in a version's history.

    :ivar time: ISO UTC time.
    :ivar kind: the event kind: ``version.logged``, ``alias.set``, ``alias.removed``,
        ``tags.changed``, ``expiry.set``, ``version.updated`` or ``version.deleted``.
    :ivar version: the ``name:vN`` it concerns.
    :ivar user: who made it.
    :ivar run: the run it happened in, if any.
    :ivar detail: the alias, field, old and new values.
    :ivar id: the event's id (a ULID).
    """

    time: str
    kind: str
    version: str
    user: str
    run: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    @classmethod
    def of_event(cls, event: R.Event | EventRow) -> HistoryEntry:
        """Return the history entry of one event about a version."""
        d = event.data
        detail = {k: v for k, v in d.items() if k in _DETAIL} if event.kind != R.VERSION_LOGGED else {}
        return cls(event.time, event.kind, f"{d.get('name')}:v{d.get('number')}", event.user, event.run, detail, event.id)

    def __str__(self) -> str:
        d = self.detail
        if self.kind == R.ALIAS_SET:
            moved = f" (from v{d['old']})" if d.get("old") is not None else ""
            what = f"alias {d['alias']!r} set{moved}" + (" (protected)" if d.get("protected") else "")
        elif self.kind == R.ALIAS_REMOVED:
            what = f"alias {d['alias']!r} removed" + (" (protected)" if d.get("protected") else "")
        elif self.kind == R.VERSION_UPDATED:
            what = "updated " + ", ".join(f"{k}: {json.dumps(d['old'].get(k))} -> {json.dumps(v)}" for k, v in d["new"].items())
        elif self.kind == R.VERSION_LOGGED:
            what = "logged"
        elif self.kind == R.TAGS_CHANGED:
            what = "tags " + " ".join([f"+{t}" for t in d.get("added", [])] + [f"-{t}" for t in d.get("removed", [])])
        elif self.kind == R.EXPIRY_SET:
            what = f"expires {d['expires_at']}" if d.get("expires_at") else "expiry cleared"
        elif self.kind == R.VERSION_DELETED and d.get("reason"):
            what = f"deleted ({d['reason']})"
        else:
            what = self.kind.split(".")[-1]
        return f"{self.time}  {self.version:<24} {what}  by {self.user}"


class History(list[HistoryEntry]):
    """A version's history: a list of :class:`HistoryEntry`, oldest first, shown as a table in a notebook."""

    def _repr_html_(self) -> str:
        from plait.tracking import html  # here: notebooks need it, commands do not

        return html.history_html(self)


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
    :ivar created_by: id of the run that logged it first (:attr:`producers` lists every run
        that produced it, :attr:`produced_by` the preferred one).
    :ivar aliases: aliases pointing at it (``latest`` included when it is its name's latest).
    :ivar tags: the tags on it, sorted.
    :ivar deleted: whether it was deleted.
    :ivar expires_at: when ``plait gc`` may delete it (its TTL), as ISO UTC time, or ``None``.
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
    tags: tuple[str, ...] = ()
    expires_at: str | None = None

    @classmethod
    def from_rows(cls, store: Store, rows: Iterable[VersionRow]) -> list[ArtifactVersion]:
        """Build versions from index rows, with their aliases (``latest`` first where it applies)."""
        rows = list(rows)
        catalog = store.catalog
        labels = V.labels(catalog, rows) if rows else {}
        tags = T.of_keys(catalog, [r.key for r in rows]) if rows else {}
        expiries = T.expiries(catalog, [r.key for r in rows]) if rows else {}
        return [
            cls(store=store, name=r.name, number=r.number, type=r.type, digest=r.digest, size=r.size,
                file_count=r.file_count, description=r.description, metadata=r.metadata, created_at=r.created_at,
                created_by=r.created_by, aliases=labels[r.key], deleted=r.deleted, tags=tags.get(r.key, ()),
                expires_at=expiries.get(r.key))
            for r in rows
        ]

    @classmethod
    def from_row(cls, store: Store, row: VersionRow) -> ArtifactVersion:
        """Build one version from its index row."""
        return cls.from_rows(store, [row])[0]

    @classmethod
    def by_fingerprint(cls, store: Store, fingerprint: str, name: str | None = None) -> ArtifactVersion | None:
        """Return the live version an object with this fingerprint was logged as (of ``name``, if given).

        Fingerprints (see the ``plait_fingerprint`` hook) are remembered in the local index only.
        """
        catalog = store.catalog
        for row_name, number in V.fingerprinted(catalog, fingerprint):
            if name is not None and row_name != name:
                continue
            row = V.version(catalog, row_name, number)
            if row is not None and not row.deleted:
                return cls.from_row(store, row)
        return None

    @classmethod
    def at(cls, store: Store, name: str, number: int) -> ArtifactVersion | None:
        """Return ``name:v<number>`` as the index has it, deleted or not, or ``None`` if it is unknown."""
        row = V.version(store.catalog, name, number)
        return None if row is None else cls.from_row(store, row)

    @classmethod
    def load(cls, store: Store, spec: str) -> ArtifactVersion:
        """Return the version a spec names: ``name``, ``name:v3``, ``name:latest``, ``name:<alias>``.

        :raises NotFoundError: listing what exists.
        """
        return cls.from_row(store, store.row(spec))

    def __str__(self) -> str:
        return self.spec

    def __repr__(self) -> str:
        from plait.tracking import html  # here: notebooks need it, commands do not

        return html.version_repr(self)

    def _repr_html_(self) -> str:
        from plait.tracking import html  # here: notebooks need it, commands do not

        return html.version_html(self)

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
    def manifest(self) -> Manifest | TreeManifest:
        """The version's manifest (on a format-2 store, a lazy view of its tree)."""
        return self.store.manifest(self.digest)

    def files(self) -> FileList:
        """Return the version's entries (path, digest, size, chunks, reference), sorted by path.

        A sequence that streams: iterating it reads the tree node by node, ``len`` is free and
        ``files()[:200]`` reads only the nodes those entries are in.
        """
        return FileList(self.manifest)

    def entry(self, path: str) -> Entry:
        """Return one entry.

        :raises NotFoundError: listing a few paths that exist.
        """
        entry = self.manifest.get(path)
        if entry is None:
            paths = [e.path for e in self.manifest]
            sample = ", ".join(paths[:10]) + (" …" if len(paths) > 10 else "")
            raise NotFoundError(f"{self.spec} has no file {path!r} (it has {sample or 'no files'})", name=path, candidates=paths)
        return entry

    def open(self, path: str) -> io.BufferedReader:
        """Open one file of the version for reading (fetched and verified first).

        A reference is read from its source only as it was logged (see :mod:`plait.store.references`).

        :raises NotFoundError: for a path that is not in the version.
        :raises IntegrityError: if its stored bytes are damaged.
        :raises ReferenceChangedError: if it is a reference whose source changed since it was logged.
        :raises ReferenceRefusedError: if it is a reference this machine does not follow.
        """
        return open(fetch_entry(self.store, self.entry(path), self.spec), "rb")  # noqa: SIM115

    def read_bytes(self, path: str) -> bytes:
        """Return the bytes of one file of the version."""
        with self.open(path) as f:
            return f.read()

    def download(self, dest: str | os.PathLike[str] | None = None, *, paths: Iterable[str] | None = None,
                 force: bool = False) -> str:
        """Write the version's files below ``dest``, each verified against its digest.

        Each file is written to a temporary name and renamed into place only once its digest
        matched, so a damaged blob leaves nothing at ``dest``. Files already at ``dest`` with the
        right digest are left alone; a different file at one of the version's paths is refused
        (every one named, nothing written) unless ``force``.

        A reference is read from its source only as it was logged (see :mod:`plait.store.references`);
        every reference is checked against the reader's rules before anything is read or written.

        :param dest: a folder (default: this store's folder in the user's cache,
            ``<cache>/stores/<key>/versions/<name>/v<N>``, never inside the store).
        :param paths: only these entry paths, or the files below these folders (``images/train``).
        :param force: overwrite different files at ``dest``.
        :returns: the folder.
        :raises NotFoundError: for a path that is neither a file nor a folder of the version.
        :raises InvalidInputError: for different files at ``dest`` without ``force``.
        :raises IntegrityError: if stored bytes are damaged.
        :raises ReferenceChangedError: for a reference whose source changed since it was logged.
        :raises ReferenceRefusedError: for a reference this machine does not follow.
        """
        if dest is None:
            folder, force = os.path.join(self.store.files_cache_dir, "versions", self.name, self.version), True
        else:
            folder = os.fspath(dest)
        entries = self.select(paths) if paths is not None else self.files()
        return download(self.store, entries, folder, self.spec, force=force)

    def select(self, paths: Iterable[str]) -> list[Entry]:
        """Return the entries at these paths or below these folders, sorted by path.

        :raises NotFoundError: for a path that is neither a file nor a folder of the version.
        """
        wanted = [str(p).strip("/") for p in ([paths] if isinstance(paths, str) else paths)]
        files = self.files()
        chosen: dict[str, Entry] = {}
        for path in wanted:
            below = path + "/"
            found = [e for e in files if e.path == path or e.path.startswith(below) or not path]
            if not found:
                have = [e.path for e in files]
                sample = ", ".join(have[:10]) + (" …" if len(have) > 10 else "")
                raise NotFoundError(f"{self.spec} has no file or folder {path!r} (it has {sample or 'no files'})",
                                    name=path, candidates=have)
            chosen.update((e.path, e) for e in found)
        return [chosen[p] for p in sorted(chosen)]

    def new_draft(self) -> Artifact:
        """Return a draft of a new version holding this version's files by digest.

        Nothing is downloaded: change the draft with ``add_file``/``add_dir``/``add_bytes`` and
        ``remove(path)``, and logging it reads and stores only the files added. It starts with
        this version's type, description and metadata (a copy: changing them changes the draft only).

        :returns: the draft (an :class:`~plait.Artifact` named like this version).
        :raises NotFoundError: if this version has been deleted.
        """
        row = V.version(self.store.catalog, self.name, self.number)
        if row is None or row.deleted:
            raise NotFoundError(f"{self.spec} has been deleted; make the draft from a live version "
                                f"(plait versions {self.name})", name=self.spec)
        draft = Artifact(self.name, type=self.type, description=self.description, metadata=copy.deepcopy(dict(self.metadata)))
        return draft.add_stored(self.files(), self.spec, self.store.id)

    def verify(self) -> list[str]:
        """Check every blob of this version and look every reference up; return the entry paths
        whose bytes are damaged or missing, or whose reference changed, is gone or cannot be read."""
        try:
            manifest = self.manifest
        except CorruptRecordError:
            return [""]
        if isinstance(manifest, TreeManifest):  # one walk: a damaged node is a problem, not an error
            problems, found = tree_problems(self.store, manifest.digest)
            bad = {path for path, _, _ in problems}
            refs = [(self.spec, entry_of(p, n, i)) for p, n, i in found]
        else:
            bad = set(damaged_paths(self.store, manifest))
            refs = [(self.spec, e) for e in manifest if e.ref is not None]
        if refs:
            bad.update(p.path for p in ReferenceReader(self.store).check(refs))
        return sorted(bad)

    # -- changes --------------------------------------------------------------------------------

    def set_alias(self, alias: str, *, force_protected: bool = False) -> ArtifactVersion:
        """Point ``alias`` at this version (moving it from another version of the name).

        :param force_protected: needed for a protected alias (store setting ``aliases.protected``);
            the change is recorded as a protected one.
        :returns: this version as it is now.
        :raises ProtectedAliasError: for a protected alias without ``force_protected``.
        """
        self.store.set_alias(self.spec, check_alias(alias), run=_active_run_id(self.store), force_protected=force_protected)
        return self.refresh()

    def remove_alias(self, alias: str, *, force_protected: bool = False) -> ArtifactVersion:
        """Remove ``alias`` from this version.

        :param force_protected: needed for a protected alias (see :meth:`set_alias`).
        :raises NotFoundError: if the alias is not on this version.
        :raises ProtectedAliasError: for a protected alias without ``force_protected``.
        """
        self.store.remove_alias(self.spec, alias, run=_active_run_id(self.store), force_protected=force_protected)
        return self.refresh()

    def add_tags(self, *tags: str) -> ArtifactVersion:
        """Put tags on this version (one event for them all; tags already on it are left alone).

        :param tags: names like ``eu`` or ``reviewed`` (letters, digits, ``.``, ``_``, ``-``).
        :returns: this version as it is now.
        :raises InvalidNameError: for a malformed tag.
        """
        change_tags(self.store, self.name, self.number, add=_flat(tags), run=_active_run_id(self.store))
        return self.refresh()

    def remove_tags(self, *tags: str) -> ArtifactVersion:
        """Take tags off this version (one event for them all).

        :returns: this version as it is now.
        :raises NotFoundError: for a tag that is not on it (nothing is changed then).
        """
        change_tags(self.store, self.name, self.number, remove=_flat(tags), run=_active_run_id(self.store))
        return self.refresh()

    def set_ttl(self, ttl: str | float | timedelta | None) -> ArtifactVersion:
        """Let ``plait gc --delete`` delete this version once ``ttl`` has passed from now (``None``: never).

        A version an alias points at is never expired: gc reports it instead.

        :param ttl: ``30d``, ``12h``, ``1w2d``, seconds, or a :class:`datetime.timedelta`.
        :returns: this version as it is now (:attr:`expires_at` set).
        :raises InvalidInputError: for a malformed, zero or negative TTL (one in the past).
        """
        set_ttl(self.store, self.name, self.number, ttl, run=_active_run_id(self.store))
        return self.refresh()

    def update(self, *, metadata: Mapping[str, Any] | None = None, description: str | None = None, replace: bool = False) -> ArtifactVersion:
        """Change the description and/or metadata; each change is recorded in the history.

        :param metadata: keys to set (merged into the current metadata unless ``replace``).
        :param description: the new description (Markdown).
        :param replace: replace the metadata entirely instead of merging.
        :returns: this version as it is now.
        :raises InvalidMetadataError: for metadata that is not JSON.
        """
        return self.update_by(_active_run_id(self.store), metadata=metadata, description=description, replace=replace)

    def update_by(self, run: str | None, *, metadata: Mapping[str, Any] | None = None, description: str | None = None,
                  replace: bool = False) -> ArtifactVersion:
        """:meth:`update`, recorded as done by the run with id ``run`` (a re-log applying its notes)."""
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
                R.VERSION_UPDATED, {"name": self.name, "number": self.number, "old": old, "new": new}, run=run)
        return self.refresh()

    def delete(self, *, force: bool = False, force_protected: bool = False) -> None:
        """Delete this version (see :meth:`Store.delete`)."""
        self.store.delete(self.spec, force=force, run=_active_run_id(self.store), force_protected=force_protected)

    def refresh(self) -> ArtifactVersion:
        """Return this version as the store has it now."""
        row = V.version(self.store.catalog, self.name, self.number)
        assert row is not None
        return ArtifactVersion.from_row(self.store, row)

    def history(self) -> History:
        """Return every change to this version — logged, aliases, notes, metadata — oldest first.

        Alias moves away from this version (the alias set on another one) are included.
        """
        return History(history_of(self.store, self.name, self.number))

    # -- lineage --------------------------------------------------------------------------------

    @property
    def producers(self) -> list[RunRecord]:
        """Every run that produced this version, oldest first: the run that logged it, then each
        run that logged the same content again under this name (a rerun, a revert)."""
        catalog = self.store.catalog
        ids = P.runs_of(catalog, self.name, self.number)
        found = {r.id: r for r in RQ.rows(catalog, ids)}
        return [RunRecord.from_row(self.store, found[i]) for i in ids if i in found]

    @property
    def produced_by(self) -> RunRecord | None:
        """The preferred producer: a run that finished (and no run around it failed) over one
        still running over a failed one, and among equals the one that produced it last.

        It is the producer lineage queries follow by default; :attr:`producers` lists them all.
        """
        catalog = self.store.catalog
        rows = P.of(catalog, [(self.name, self.number)]).get((self.name, self.number), [])
        known = {r.id: r for r in RQ.rows(catalog, [p.run for p in rows])}
        best = P.preferred([p for p in rows if p.run in known])
        return RunRecord.from_row(self.store, known[best.run]) if best is not None else None

    @property
    def used_by(self) -> list[RunRecord]:
        """The runs that used this version, in the order they used it."""
        ids = RQ.users(self.store.catalog, self.name, self.number)
        found = {r.id: r for r in RQ.rows(self.store.catalog, ids)}
        return [RunRecord.from_row(self.store, found[i]) for i in ids if i in found]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary."""
        return {
            "name": self.name, "version": self.version, "spec": self.spec, "type": self.type, "digest": self.digest,
            "size": self.size, "file_count": self.file_count, "description": self.description,
            "metadata": dict(self.metadata), "created_at": self.created_at, "created_by": self.created_by,
            "aliases": list(self.aliases), "tags": list(self.tags), "expires_at": self.expires_at,
        }


RUNNING, FINISHED, FAILED = "running", "finished", "failed"
#: Fields of a run's start event that are not kept in :attr:`RunRecord.info`.
_OWN_FIELDS = ("id", "name", "kind", "parent", "config", "started_at")


class RunRecord:
    """A run as the store records it: what it was, what it used and what it logged.

    Read past runs with :meth:`plait.Store.get_run` or from a version (:attr:`ArtifactVersion.produced_by`);
    a live run (:func:`plait.run`) is one too.

    :ivar store: the store it is recorded in.
    :ivar id: a ULID.
    :ivar name: what the run is called (``train``, a flow or task name, …).
    :ivar kind: ``manual``, ``prefect.flow``, ``prefect.task``, ``lightning.fit``, …
    :ivar parent: the id of the run it ran inside, or ``None``.
    :ivar status: ``running``, ``finished`` or ``failed``.
    :ivar config: parameters and settings (JSON).
    :ivar info: everything recorded at start: host, user, command, git commit and dirtiness,
        Python version, and what integrations add (``info["prefect"]``, …).
    :ivar started_at: ISO UTC start time.
    :ivar ended_at: ISO UTC end time, once it ended.
    :ivar error: ``Type: message`` of what ended a failed run.
    :ivar summary: what was recorded at the end (metrics, integration facts).
    """

    store: Store
    id: str
    name: str
    kind: str
    parent: str | None
    status: str
    config: dict[str, Any]
    info: dict[str, Any]
    started_at: str
    ended_at: str | None
    error: str | None
    summary: dict[str, Any]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} {self.kind} {self.id} {self.status}>"

    def _repr_html_(self) -> str:
        from plait.tracking import html  # here: notebooks need it, commands do not

        return html.run_html(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunRecord) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @classmethod
    def from_row(cls, store: Store, row: RunRow) -> RunRecord:
        """Build a run from its index row."""
        run = RunRecord.__new__(RunRecord)
        run.store, run.id, run.name, run.kind, run.parent = store, row.id, row.name or "?", row.kind or "manual", row.parent
        run.config = row.body.get("config", {})
        run.info = {k: v for k, v in row.body.items() if k not in _OWN_FIELDS}
        run.status, run.started_at, run.ended_at = row.status, row.started_at or "", row.ended_at
        run.error, run.summary = row.finish.get("error"), row.finish.get("summary", {})
        return run

    @classmethod
    def load(cls, store: Store, run_id: str) -> RunRecord:
        """Return a run from the store's index; a unique start or end of its id (any case) is
        enough, such as the 8 characters listings print (the end).

        :raises NotFoundError: for an unknown id, or a part of one several runs share (listing them).
        """
        catalog = store.catalog
        row = RQ.run(catalog, run_id)
        if row is None and run_id and len(run_id) < 26:
            matches = RQ.ids_matching(catalog, run_id)
            if len(matches) > 1:
                named = {r.id: r.name for r in RQ.rows(catalog, matches)}
                listing = ", ".join(f"{m} ({named.get(m) or '?'})" for m in matches)
                raise NotFoundError(f"run id {run_id!r} is ambiguous: {len(matches)}{'+' if len(matches) >= 10 else ''} runs "
                                    f"start or end with it: {listing}; give more of it", name=run_id, candidates=matches)
            row = RQ.run(catalog, matches[0]) if matches else None
        if row is None:
            raise NotFoundError(f"no run {run_id!r} in {store.url} (list them with `plait runs`)", name=run_id)
        return cls.from_row(store, row)

    @property
    def inputs(self) -> list[ArtifactVersion]:
        """The versions this run used, in the order it used them."""
        return ArtifactVersion.from_rows(self.store, RQ.inputs(self.store.catalog, self.id))

    @property
    def outputs(self) -> list[ArtifactVersion]:
        """The versions this run logged, oldest first."""
        return ArtifactVersion.from_rows(self.store, V.outputs(self.store.catalog, self.id))

    @property
    def children(self) -> list[RunRecord]:
        """Runs started inside this one, oldest first."""
        return [RunRecord.from_row(self.store, r) for r in RQ.children(self.store.catalog, self.id)]

    @property
    def parent_run(self) -> RunRecord | None:
        """The run this one ran inside."""
        return RunRecord.load(self.store, self.parent) if self.parent else None

    @property
    def git_commit(self) -> str | None:
        """The git commit of the working directory when the run started."""
        return (self.info.get("git") or {}).get("commit")

    @property
    def git_dirty(self) -> bool | None:
        """Whether the git tree had uncommitted changes when the run started."""
        return (self.info.get("git") or {}).get("dirty")

    @property
    def command(self) -> str | None:
        """The command line that started the process."""
        return self.info.get("command")

    @property
    def host(self) -> str | None:
        """The host the run ran on."""
        return self.info.get("host")

    @property
    def user(self) -> str | None:
        """Who ran it."""
        return self.info.get("user")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary with inputs and outputs."""
        return {
            "id": self.id, "name": self.name, "kind": self.kind, "parent": self.parent, "status": self.status,
            "started_at": self.started_at, "ended_at": self.ended_at, "config": self.config, "info": self.info,
            "error": self.error, "summary": self.summary,
            "inputs": [v.spec for v in self.inputs], "outputs": [v.spec for v in self.outputs],
        }


def history_of(store: Store, name: str, number: int | None = None) -> list[HistoryEntry]:
    """Return every change to the versions of ``name`` (or to ``name:v<number>``), deleted ones
    included — their aliases, notes and the delete itself — ordered by when each happened.

    For one version, alias moves away from it (the alias set on another one) are included.

    :raises NotFoundError: if nothing was ever recorded about ``name`` (or that version).
    """
    out = []
    for event in E.of_name(store.catalog, name):
        d = event.data
        at = d.get("number")
        if number is not None and at != number and not (event.kind == R.ALIAS_SET and d.get("old") == number):
            continue
        out.append(HistoryEntry.of_event(event))
    if not out:
        raise store.unknown(name, "any version" if number is None else f"version v{number}")
    # by the time each change happened: events copied in by `sync` arrive later than they happened
    return sorted(out, key=lambda h: h.time)


def _flat(tags: Iterable[str | Iterable[str]]) -> list[str]:
    """Accept ``add_tags("a", "b")`` and ``add_tags(["a", "b"])`` alike."""
    out: list[str] = []
    for tag in tags:
        out.extend([tag] if isinstance(tag, str) else list(tag))
    return out


def _active_run_id(store: Store) -> str | None:
    run = ACTIVE_RUN.get()
    return run.id if run is not None and run.store == store else None

