"""Run: a unit of work that uses and logs versions, and the active run of the current context.

``with plait.run("train") as run:`` makes ``run`` the active run of the current context (a
:mod:`contextvars` variable, so threads started with a copied context and asyncio tasks see it);
runs started inside it record it as their parent. Outside any run, ``plait.log``/``plait.use``
go to an implicit run for the process, finished when the process exits.

Every start, finish, use and log is an event in the store; a run's record is their fold.
"""

from __future__ import annotations

import atexit
import contextvars
import functools
import json
import os
import platform
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plait.core import records as R
from plait.core.errors import ConversionError, InvalidNameError, LineageError, NotFoundError, StoreError
from plait.core.ids import new_ulid, utcnow
from plait.core.names import check_alias, check_name, parse_spec
from plait.core.records import check_json

if TYPE_CHECKING:
    from plait.core.artifact import Artifact
    from plait.core.store import Store
    from plait.core.version import ArtifactVersion

RUNNING, FINISHED, FAILED = "running", "finished", "failed"

_active: contextvars.ContextVar[Run | None] = contextvars.ContextVar("plait_active_run", default=None)
_implicit: dict[str, Run] = {}
_implicit_lock = threading.Lock()


def active_run() -> Run | None:
    """Return the active run of the current context, or ``None``."""
    return _active.get()


class Run:
    """A unit of work, with what it used and what it logged.

    Create runs with :func:`plait.run`; read past runs with :meth:`Store.get_run`.

    :ivar id: a ULID.
    :ivar name: what the run is called (``train``, a flow or task name, …).
    :ivar kind: ``manual``, ``prefect.flow``, ``prefect.task``, ``lightning.fit``, …
    :ivar parent: the id of the run it ran inside, or ``None``.
    :ivar status: ``running``, ``finished`` or ``failed``.
    :ivar config: parameters and settings (JSON).
    :ivar info: everything recorded at start: host, user, command, git commit and dirtiness,
        Python version, and what integrations add (``info["prefect"]``, …).
    """

    def __init__(self, store: Store, name: str, *, kind: str = "manual", config: Mapping[str, Any] | None = None,
                 parent: str | None = None, info: Mapping[str, Any] | None = None, run_id: str | None = None) -> None:
        self.store = store
        self.id = run_id or new_ulid()
        self.name = check_name(name, what="run name")
        self.kind = kind
        self.parent = parent
        self.config: dict[str, Any] = dict(check_json(dict(config or {}), what="run config"))
        self.info: dict[str, Any] = dict(info or {})
        self.status = RUNNING
        self.started_at = ""
        self.ended_at: str | None = None
        self.error: str | None = None
        self.summary: dict[str, Any] = {}
        self._token: contextvars.Token[Run | None] | None = None
        self._started = False
        self._environment: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Run {self.name!r} {self.kind} {self.id} {self.status}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> Run:
        """Record the start of the run in the store and notify plugins; return the run."""
        from plait.plugins import notify

        if self._started:
            return self
        self.store.init()  # an unwritable or unreachable store fails here, not later on the writer thread
        self._started = True
        self.started_at = utcnow()
        outer = _active.get()
        nested = outer is not None and outer.id == self.parent and outer._environment
        self._environment = outer._environment if nested else _environment()  # type: ignore[union-attr]
        body = {
            "id": self.id, "name": self.name, "kind": self.kind, "parent": self.parent, "config": self.config,
            "started_at": self.started_at, **self._environment, **self.info,
        }
        self.info = {k: v for k, v in body.items() if k not in ("id", "name", "kind", "parent", "config", "started_at")}
        self.store.write_event(R.RUN_STARTED, check_json(body, what="run info"), run=self.id, background=True)
        notify("plait_run_started", run=self)
        return self

    def finish(self, error: BaseException | None = None, *, status: str | None = None, summary: Mapping[str, Any] | None = None) -> None:
        """Record the end of the run: ``failed`` if ``error`` is given, else ``finished``."""
        from plait.plugins import notify

        if self.status != RUNNING:
            return
        self.status = status or (FAILED if error is not None else FINISHED)
        self.ended_at = utcnow()
        self.error = f"{type(error).__name__}: {error}" if error is not None else None
        self.summary.update(check_json(dict(summary or {}), what="run summary"))
        data = {"id": self.id, "status": self.status, "ended_at": self.ended_at, "error": self.error, "summary": self.summary}
        self.store.write_event(R.RUN_FINISHED, data, run=self.id, background=True)
        notify("plait_run_finished", run=self, error=error)

    def __enter__(self) -> Run:
        self.start()
        self._token = _active.set(self)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._token is not None:
            _active.reset(self._token)
            self._token = None
        self.finish(exc)
        outer = _active.get()
        if outer is None or outer.store != self.store:  # a top-level run: its record is complete on disk
            try:
                self.store.flush()
            except StoreError:
                if exc is None:
                    raise
                # the block's own error matters more; the events stay queued for the exit flush

    # -- use and log ----------------------------------------------------------------------------

    def use(self, obj: Any, *, name: str | None = None, type: str | None = None) -> ArtifactVersion:
        """Record that this run uses a version, and return it.

        ``obj`` may be a spec (``"raw:latest"``), an :class:`ArtifactVersion`, a local path, bytes,
        or any object a plugin converts. For anything but a spec or a version, the content is
        hashed and linked to an existing version with the same manifest digest (whatever its
        name); if there is none, it is logged first as a new version with no producing run.

        :raises NotFoundError: for an unknown spec.
        :raises LineageError: if the version was produced downstream of this run (a cycle).
        :raises ConversionError: if no plugin can turn ``obj`` into an artifact.
        """
        version = self._resolve_used(obj, name, type)
        if version.created_by == self.id:
            return version  # reading back one's own output is not an input
        self._check_acyclic(version)
        self.start()
        self.store.write_event(R.VERSION_USED, {"name": version.name, "number": version.number, "digest": version.digest},
                               run=self.id, background=True)
        from plait.plugins import notify

        notify("plait_artifact_used", run=self, version=version)
        return version

    def _resolve_used(self, obj: Any, name: str | None, type: str | None) -> ArtifactVersion:
        from plait.core.version import ArtifactVersion

        if isinstance(obj, ArtifactVersion):
            return obj if obj.store == self.store else self._match_or_import(obj, name, type)
        if isinstance(obj, str) and not os.path.exists(obj):
            try:
                parse_spec(obj)
            except InvalidNameError:
                raise NotFoundError(f"{obj!r} is neither an existing path nor a version spec like 'name:v3'", name=obj) from None
            return self.store.get(obj)
        if isinstance(obj, str):
            try:
                return self.store.get(obj)  # a valid spec that exists wins over a same-named path
            except (InvalidNameError, NotFoundError):
                pass
        return self._match_or_import(obj, name, type)

    def _match_or_import(self, obj: Any, name: str | None, type: str | None) -> ArtifactVersion:
        from plait.core.version import ArtifactVersion

        fingerprint = _fingerprint(obj)
        known = self.store_fingerprint(fingerprint)
        if known is not None:
            return known
        if isinstance(obj, ArtifactVersion):
            draft = _draft_from_version(obj)
        else:
            draft = to_artifact(obj, name, type, self.store)
        version, _ = _publish(self.store, draft, created_by=None, prefer_existing=True)
        self._remember_fingerprint(fingerprint, version)
        return version

    def log(self, obj: Any, name: str | None = None, type: str | None = None, *, aliases: Iterable[str] = (),
            description: str | None = None, metadata: Mapping[str, Any] | None = None) -> ArtifactVersion:
        """Log an object as a new version produced by this run, and return the version.

        ``obj`` may be a local path (file or folder), bytes, an :class:`Artifact` draft, an
        :class:`ArtifactVersion` (recorded as is), or anything a plugin converts. If the content
        equals the latest version of the name, that version is returned and no new one is made
        (aliases are still applied).

        :param name: the artifact name (default: from the object, e.g. a path's base name).
        :param type: the artifact type (default: from the object, ``dataset`` for paths).
        :param aliases: aliases to point at the version.
        :param description: overrides the draft's description.
        :param metadata: merged into the draft's metadata.
        :raises ConversionError: if no plugin can turn ``obj`` into an artifact.
        """
        from plait.core.version import ArtifactVersion
        from plait.plugins import notify

        aliases = [check_alias(a) for a in aliases]
        if isinstance(obj, ArtifactVersion) and obj.store == self.store:
            self.start()
            version, created = obj, False
        else:
            fingerprint = _fingerprint(obj)
            known = self.store_fingerprint(fingerprint, name)
            if known is not None and known.number == self.store.catalog.latest_number(known.name):
                self.start()
                version, created = known, False  # as for equal content: only the latest is reused
            else:
                draft = _draft_from_version(obj) if isinstance(obj, ArtifactVersion) else to_artifact(obj, name, type, self.store)
                if name is not None and draft.name != name:
                    draft.name = check_name(name)
                if description is not None:
                    draft.description = str(description)
                if metadata:
                    draft.metadata.update(check_json(dict(metadata)))
                # started only once the files hashed: bad input leaves no trace in the store
                version, created = _publish(self.store, draft, created_by=self.id, on_hashed=self.start)
                self._remember_fingerprint(fingerprint, version)
        for alias in aliases:
            self.store.set_alias(version.spec, alias, run=self.id)
        if aliases:
            version = version.refresh()
        notify("plait_artifact_logged", run=self, version=version, created=created)
        return version

    def store_fingerprint(self, fingerprint: str | None, name: str | None = None) -> ArtifactVersion | None:
        """Return the version a fingerprint was last logged as (of ``name``, if given), if any."""
        if fingerprint is None:
            return None
        rows = self.store.catalog.query("SELECT name, number FROM fingerprints WHERE fingerprint = ?", (fingerprint,))
        for row_name, number in rows:
            if name is not None and row_name != name:
                continue
            row = self.store.catalog.version(row_name, number)
            if row is not None and not row[12]:
                from plait.core.version import ArtifactVersion

                return ArtifactVersion.from_row(self.store, row)
        return None

    def _remember_fingerprint(self, fingerprint: str | None, version: ArtifactVersion) -> None:
        if fingerprint is not None:
            self.store.catalog.remember_fingerprint(fingerprint, version.name, version.number)

    def _check_acyclic(self, version: ArtifactVersion) -> None:
        from plait.core.lineage import produced_downstream_of

        if version.created_by and produced_downstream_of(self.store, self.id, version.name, version.number):
            raise LineageError(
                f"run {self.name!r} ({self.id}) cannot use {version.spec}: that version was made from this "
                "run's own outputs, so using it would make the lineage graph circular"
            )

    # -- reading back ---------------------------------------------------------------------------

    @classmethod
    def load(cls, store: Store, run_id: str) -> Run:
        """Return a past run from the store's index (a unique id prefix is enough).

        :raises NotFoundError: for an unknown or ambiguous id.
        """
        catalog = store.catalog
        row = catalog.run_row(run_id)
        if row is None and run_id and len(run_id) < 26:
            matches = catalog.query("SELECT id FROM runs WHERE id LIKE ? LIMIT 2", (run_id.upper() + "%",))
            if len(matches) == 1:
                row = catalog.run_row(matches[0][0])
        if row is None:
            raise NotFoundError(f"no run {run_id!r} in {store.url} (list them with `plait runs`)", name=run_id)
        return cls.from_row(store, row)

    @classmethod
    def from_row(cls, store: Store, row: tuple) -> Run:
        """Build a past run from its index row (see :meth:`Catalog.run_row`)."""
        rid, name, kind, parent, status, started_at, ended_at, body, finish = row
        body, finish = json.loads(body), json.loads(finish)
        run = cls.__new__(cls)
        run.store, run.id, run.name, run.kind, run.parent = store, rid, name or "?", kind or "manual", parent
        run.config = body.get("config", {})
        run.info = {k: v for k, v in body.items() if k not in ("id", "name", "kind", "parent", "config", "started_at")}
        run.status, run.started_at, run.ended_at = status, started_at or "", ended_at
        run.error, run.summary = finish.get("error"), finish.get("summary", {})
        run._token, run._started = None, True
        return run

    @property
    def inputs(self) -> list[ArtifactVersion]:
        """The versions this run used, in the order it used them."""
        from plait.core.catalog import version_columns
        from plait.core.version import ArtifactVersion

        rows = self.store.catalog.query(
            f"SELECT {version_columns('v.')} FROM uses u JOIN versions v ON v.name = u.name AND v.number = u.number "
            "WHERE u.run = ? ORDER BY u.event_id",
            (self.id,),
        )
        return [ArtifactVersion.from_row(self.store, r) for r in rows]

    @property
    def outputs(self) -> list[ArtifactVersion]:
        """The versions this run logged, oldest first."""
        from plait.core.version import ArtifactVersion
        from plait.core.catalog import VERSION_COLUMNS

        rows = self.store.catalog.query(f"SELECT {VERSION_COLUMNS} FROM versions WHERE created_by = ? ORDER BY created_at, name, number", (self.id,))
        return [ArtifactVersion.from_row(self.store, r) for r in rows]

    @property
    def children(self) -> list[Run]:
        """Runs started inside this one, oldest first."""
        return [Run.load(self.store, r[0]) for r in self.store.catalog.query("SELECT id FROM runs WHERE parent = ? ORDER BY id", (self.id,))]

    @property
    def parent_run(self) -> Run | None:
        """The run this one ran inside."""
        return Run.load(self.store, self.parent) if self.parent else None

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


# -- helpers ----------------------------------------------------------------------------------------


def to_artifact(obj: Any, name: str | None, type: str | None, store: Store) -> Artifact:
    """Turn any object into a draft through the conversion hooks.

    :raises ConversionError: naming the type when no plugin handles it.
    """
    from plait.plugins import convert

    draft = convert("plait_object_to_artifact", obj=obj, name=name, type=type, store=store)
    if draft is None:
        raise ConversionError(
            f"plait does not know how to log a {type_name(obj)}: pass a path, bytes or a plait.Artifact, "
            "or install the plugin for it (e.g. pip install 'plait[huggingface]')"
        )
    if name is not None and draft.name != name:
        draft.name = check_name(name)
    return draft


def type_name(obj: Any) -> str:
    """Return ``module.Class`` of an object, for messages."""
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}" if cls.__module__ != "builtins" else cls.__qualname__


def _fingerprint(obj: Any) -> str | None:
    from plait.plugins import convert

    if isinstance(obj, (str, bytes, os.PathLike)):
        return None
    fp = convert("plait_fingerprint", obj=obj)
    return f"{type_name(obj)}:{fp}" if fp else None


def _draft_from_version(version: ArtifactVersion) -> Artifact:
    from plait.core.artifact import Artifact

    draft = Artifact(version.name, type=version.type, description=version.description, metadata=version.metadata)
    folder = version.download()
    for entry in version.files():
        draft.add_file(os.path.join(folder, *entry.path.split("/")), name=entry.path)
    return draft


def _publish(store: Store, draft: Artifact, *, created_by: str | None, prefer_existing: bool = False,
             on_hashed: Any = None) -> tuple[ArtifactVersion, bool]:
    """Store a draft; return ``(version, created)``.

    The latest version of the draft's name with the same digest is returned instead of a new
    one. With ``prefer_existing`` any live version with that digest is (for ``use``).
    ``on_hashed`` is called once every file hashed and its blobs are stored, before any record.
    """
    from plait.core.gc import protect
    from plait.core.publish import build_manifest, known_manifest
    from plait.core.version import ArtifactVersion

    known, surveyed = known_manifest(store, draft)
    if known is not None and store.exists:  # unchanged files: no manifest to build if it is the latest
        row = _latest_row(store.catalog, draft.name)
        if row is not None and row[3] == known:  # a live version's blobs and manifest are stored (gc keeps them)
            if on_hashed is not None:
                on_hashed()
            return ArtifactVersion.from_row(store, row), False
    manifest = build_manifest(store, draft, store.progress, surveyed)
    if on_hashed is not None:
        on_hashed()
    digest = store.put_manifest(manifest)
    if protect(store, manifest):  # a gc swept blobs this log found stored: store them again
        manifest = build_manifest(store, draft, store.progress)
        protect(store, manifest)
    catalog = store.catalog
    row = _latest_row(catalog, draft.name)
    if row is not None and row[3] == digest:
        return ArtifactVersion.from_row(store, row), False
    file_digest = manifest.entries[0].digest if len(manifest) == 1 and manifest.entries[0].ref is None else None
    if prefer_existing:
        rows = catalog.by_content(digest, file_digest)
        if rows:
            return ArtifactVersion.from_row(store, rows[0]), False
    elif created_by is not None:
        # a task handing on the checkpoint its own training logged is that version, not a copy
        nested = _logged_inside(catalog, created_by, digest, file_digest)
        if nested is not None:
            return ArtifactVersion.from_row(store, nested), False
    record = store.create_version({
        "name": draft.name, "type": draft.type, "digest": digest, "size": manifest.size,
        "file_count": len(manifest), "description": draft.description, "metadata": draft.metadata,
        "created_at": utcnow(), "created_by": created_by, "file_digest": file_digest,
    })
    store.write_event(R.VERSION_LOGGED, record.model_dump(mode="json"), run=created_by)
    return ArtifactVersion.from_row(store, catalog.version(record.name, record.number)), True


def _latest_row(catalog: Any, name: str) -> tuple | None:
    """Return the row of the latest live version of ``name``, or ``None``."""
    latest = catalog.latest_number(name)
    return None if latest is None else catalog.version(name, latest)


def _logged_inside(catalog: Any, run_id: str, digest: str, file_digest: str | None) -> tuple | None:
    """Return the newest live version with this content logged by a run nested inside ``run_id``."""
    from plait.core.catalog import version_columns

    rows = catalog.query(
        f"SELECT {version_columns('v.')} FROM versions v JOIN run_scope s ON s.run = v.created_by "
        "WHERE s.scope = ? AND s.run != ? AND v.deleted = 0 AND (v.digest = ? OR (? IS NOT NULL AND v.file_digest = ?)) "
        "ORDER BY v.created_at DESC LIMIT 1",
        (run_id, run_id, digest, file_digest, file_digest),
    )
    return rows[0] if rows else None


@functools.lru_cache(maxsize=8)
def _git(cwd: str) -> dict[str, Any] | None:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd, capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def _environment() -> dict[str, Any]:
    """Where a run runs: host, user, pid, command, cwd, Python, git (a nested run shares its parent's)."""
    from plait.core.store import current_user

    cwd = os.getcwd()
    return {
        "host": platform.node(), "user": current_user(), "pid": os.getpid(),
        "command": " ".join([Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]])[:4000],
        "cwd": cwd, "python": platform.python_version(), "git": _git(cwd),
    }


def run_for(store: Store) -> Run:
    """Return the active run if it records to ``store``, else the process's implicit run there."""
    run = _active.get()
    if run is not None and run.store == store:
        return run
    with _implicit_lock:
        implicit = _implicit.get(store.url)
        if implicit is None:
            name = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "python"
            implicit = Run(store, _safe_run_name(name), kind="manual", parent=run.id if run and run.store == store else None,
                           info={"implicit": True})
            if not _implicit:
                atexit.register(end_implicit_runs)
            _implicit[store.url] = implicit
    return implicit


def end_implicit_runs() -> None:
    """Finish the process's implicit runs (called at exit; tests and notebooks may call it)."""
    with _implicit_lock:
        runs = list(_implicit.values())
        _implicit.clear()
    for implicit in runs:
        if implicit._started:
            try:
                implicit.finish()
                implicit.store.flush()
            except Exception:  # at exit there is nobody left to tell
                pass


def _safe_run_name(name: str) -> str:
    from plait.builtin import name_for_path

    return name_for_path(name or "python")


@contextmanager
def run(name: str, *, config: Mapping[str, Any] | None = None, kind: str = "manual", store: Store | str | None = None,
        parent: Run | str | None = None, info: Mapping[str, Any] | None = None) -> Iterator[Run]:
    """Start a run and make it the active run of this context until the block ends.

    An exception inside the block marks the run ``failed`` (keeping what it used and logged)
    and propagates.

    :param name: the run's name.
    :param config: parameters to record (JSON).
    :param kind: ``manual`` unless an integration says otherwise.
    :param store: the store (default: the active run's, else the default store).
    :param parent: the parent run (default: the active run).
    :param info: extra facts to record (integrations put their ids here).
    """
    from plait.core.store import Store

    outer = _active.get()
    if store is None:
        target = outer.store if outer is not None else Store()
    else:
        target = store if isinstance(store, Store) else Store(store)
    parent_id = parent.id if isinstance(parent, Run) else parent
    if parent_id is None and outer is not None and outer.store == target:
        parent_id = outer.id
    with Run(target, name, kind=kind, config=config, parent=parent_id, info=info) as current:
        yield current
