"""Run: a live unit of work that uses and logs versions, and the active run of the current context.

``with plait.run("train") as run:`` makes ``run`` the active run of the current context (a
:mod:`contextvars` variable, so threads started with a copied context and asyncio tasks see it);
runs started inside it record it as their parent. Outside any run, ``plait.log``/``plait.use``
go to an implicit run for the process (named after the script, or the notebook), finished when
the process exits. When the implicit run uses a version made from its own outputs (a notebook
that tracks ``a``, derives ``b`` from it and loads ``b``), it finishes and a new segment goes on
(``info["previous"]``), so the lineage does not loop; a run you start records such a use as is.

Every start, finish, use and log is an event in the store; a run's record is their fold.

A run tells the plugins what happens and asks them to convert objects through a
:class:`HookRelay`. This layer knows no plugin manager: the plugin layer installs its relay
(:func:`install_hook_relay`) when a :class:`plait.Store` is opened; until then the relay is a
null object that notifies no one and converts nothing.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from plait.base.describe import type_name
from plait.base.ids import new_ulid, utcnow
from plait.base.times import parse_duration
from plait.errors import ConversionError, InvalidNameError, NotFoundError, StoreError
from plait.formats import records as R
from plait.formats.artifact import Artifact
from plait.formats.names import check_alias, check_name, check_tags, parse_spec, safe_name
from plait.formats.records import check_json
from plait.index import graph as G
from plait.index import producers as P
from plait.index import versions as V
from plait.index.rows import VersionRow
from plait.store.base import BaseStore as Store
from plait.store.labels import change_tags, set_ttl
from plait.store.publish import match_content, publish
from plait.store.shared import at_exit, forked, shared, states
from plait.tracking.environment import environment, program_name
from plait.tracking.nodes import ACTIVE_RUN, FAILED, FINISHED, RUNNING, ArtifactVersion, RunRecord
from plait.tracking.processes import at_pool_exit, hint_unlinked, pool_parent

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["FAILED", "FINISHED", "RUNNING", "HookRelay", "Run", "active_run", "implicit_run", "install_hook_relay", "run_for"]

#: Key of the implicit run in a store's shared state.
IMPLICIT_SLOT = "plait.implicit-run"


class HookRelay:
    """What a run tells the plugins and asks of them. This base class is the null relay.

    The plugin layer subclasses it to call the ``plait_*`` hooks (see :mod:`plait.hookspecs`).
    """

    def run_started(self, run: Run) -> None:
        """A run started (its start event is queued)."""

    def run_finished(self, run: Run, error: BaseException | None) -> None:
        """A run ended (its end event is queued)."""

    def artifact_used(self, run: Run, version: ArtifactVersion) -> None:
        """A run recorded a use."""

    def artifact_logged(self, run: Run, version: ArtifactVersion, created: bool) -> None:
        """A run logged a version (``created``: a new one, not an existing one with that content)."""

    def object_to_artifact(self, obj: Any, name: str | None, type: str | None, store: Store) -> Artifact | None:
        """Return a draft for ``obj``, or ``None`` if no plugin converts it."""
        return None

    def fingerprint(self, obj: Any) -> str | None:
        """Return a cheap identity for ``obj``, or ``None``."""
        return None


_relay: HookRelay = HookRelay()


def install_hook_relay(relay: HookRelay) -> None:
    """Make ``relay`` the one every run talks to (the plugin layer calls this)."""
    global _relay
    _relay = relay


def hook_relay() -> HookRelay:
    """Return the relay runs talk to."""
    return _relay


def active_run() -> Run | None:
    """Return the active run of the current context, or ``None``."""
    return cast("Run | None", ACTIVE_RUN.get())


class Run(RunRecord):
    """A live unit of work, with what it uses and what it logs.

    Start runs with :func:`plait.run` (or use one as a context manager); past runs are
    :class:`RunRecord` objects.

    :param store: the store to record to.
    :param name: what the run is called.
    :param kind: ``manual`` unless an integration says otherwise.
    :param config: parameters and settings (JSON).
    :param parent: the id of the run it runs inside.
    :param info: facts to record at start (integrations put their ids here).
    :param run_id: the id to use (default: a new ULID).
    """

    def __init__(self, store: Store, name: str, *, kind: str = "manual", config: Mapping[str, Any] | None = None,
                 parent: str | None = None, info: Mapping[str, Any] | None = None, run_id: str | None = None) -> None:
        self.store = store
        self.id = run_id or new_ulid()
        self.name = check_name(name, what="run name")
        self.kind = kind
        self.parent = parent
        self.config = dict(check_json(dict(config or {}), what="run config"))
        self.info = dict(info or {})
        self.status = RUNNING
        self.started_at = ""
        self.ended_at = None
        self.error = None
        self.summary = {}
        self._token: contextvars.Token[RunRecord | None] | None = None
        self._started = False
        self._environment: dict[str, Any] = {}
        self._successor: Run | None = None  # an implicit run's next segment (see use())
        self._home_pid = os.getpid()  # the process that started it; elsewhere its events are written at once
        self._flush_each = False  # write its events at once even at home (an implicit run in a pool child)

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the run's start is recorded."""
        return self._started

    def start(self) -> Run:
        """Record the start of the run in the store and notify plugins; return the run."""
        if self._started:
            return self
        self.store.init()  # an unwritable or unreachable store fails here, not later on the writer thread
        self._started = True
        self._home_pid = os.getpid()
        self.started_at = utcnow()
        outer = ACTIVE_RUN.get()
        nested = isinstance(outer, Run) and outer.id == self.parent and outer._environment and not outer.away
        self._environment = outer._environment if nested else environment()  # type: ignore[union-attr]
        body = {
            "id": self.id, "name": self.name, "kind": self.kind, "parent": self.parent, "config": self.config,
            "started_at": self.started_at, **self._environment, **self.info,
        }
        self.info = {k: v for k, v in body.items() if k not in ("id", "name", "kind", "parent", "config", "started_at")}
        self.store.write_event(R.RUN_STARTED, check_json(body, what="run info"), run=self.id, background=True)
        _relay.run_started(run=self)
        return self

    def finish(self, error: BaseException | None = None, *, status: str | None = None, summary: Mapping[str, Any] | None = None) -> None:
        """Record the end of the run: ``failed`` if ``error`` is given, else ``finished``."""
        if self.status != RUNNING:
            return
        self.status = status or (FAILED if error is not None else FINISHED)
        self.ended_at = utcnow()
        self.error = f"{type(error).__name__}: {error}" if error is not None else None
        self.summary.update(check_json(dict(summary or {}), what="run summary"))
        data = {"id": self.id, "status": self.status, "ended_at": self.ended_at, "error": self.error, "summary": self.summary}
        self.store.write_event(R.RUN_FINISHED, data, run=self.id, background=True)
        _relay.run_finished(run=self, error=error)

    def __enter__(self) -> Run:
        self.start()
        self._token = ACTIVE_RUN.set(self)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._token is not None:
            ACTIVE_RUN.reset(self._token)
            self._token = None
        self.finish(exc)
        outer = ACTIVE_RUN.get()
        # a top-level run (or one inside a run from another process): its record is complete on disk
        if outer is None or outer.store != self.store or (isinstance(outer, Run) and outer.away):
            try:
                self.store.flush()
            except StoreError:
                if exc is None:
                    raise
                # the block's own error matters more; the events stay queued for the exit flush

    @property
    def away(self) -> bool:
        """Whether this run records from a process it was not started in (a ``fork`` child, a
        worker given :func:`plait.carry`); there every use and log writes its events before it
        returns, since such processes often end with ``os._exit`` or ``SIGTERM``."""
        return self._home_pid != os.getpid()

    def _settle(self) -> None:
        """Write the queued events now if this process may end without writing them."""
        if self._flush_each or self.away:
            self.store.flush()

    # -- use and log ----------------------------------------------------------------------------

    @property
    def implicit(self) -> bool:
        """Whether this is the implicit run that calls outside any ``plait.run()`` go to."""
        return self.info.get("implicit") is True

    def current(self) -> Run:
        """Return the run that records now: this one, or for an implicit run that rolled over, its newest segment."""
        run = self
        while run._successor is not None:
            run = run._successor
        return run

    def use(self, obj: Any, *, name: str | None = None, type: str | None = None,
            upstream: Iterable[str | RunRecord] = ()) -> ArtifactVersion:
        """Record that this run uses a version, and return it.

        ``obj`` may be a spec (``"raw:latest"``), an :class:`ArtifactVersion`, a local path, bytes,
        or any object a plugin converts. For anything but a spec or a version, the content is
        hashed and linked to a live version with the same content, whatever its name; when
        several hold it, the hand-off follows the pipeline: a version an ``upstream`` run logged
        (the newest), else the version logged last inside this run's top-level run, else the
        oldest. If no version holds it, it is logged first as a new version nobody produced.

        Using a version this run logged is not an input. A run may use a version made from its
        own outputs (the lineage then holds a loop; every query stays finite, and an output
        depends only on what its run used before logging it). The implicit run does not loop:
        it finishes and a new segment (``info["previous"]`` = the old id) records the use.

        :param upstream: ids (or runs) of the runs this run received ``obj`` from, e.g. the task
            runs a Prefect task's arguments came from.
        :raises NotFoundError: for an unknown spec.
        :raises ConversionError: if no plugin can turn ``obj`` into an artifact.
        """
        run = self.current()
        if run is not self:
            return run.use(obj, name=name, type=type, upstream=upstream)
        version = self._resolve_used(obj, name, type, [u.id if isinstance(u, RunRecord) else str(u) for u in upstream])
        catalog = self.store.catalog
        if self.id in P.runs_of(catalog, version.name, version.number):
            return version  # reading back one's own output is not an input
        # a forked child records the use (a loop) instead: its parent holds the implicit run and goes on in it
        if (self.implicit and not self.away and G.logged_by_run(catalog, self.id)
                and G.derived_from_run(catalog, self.id, version.name, version.number)):
            return self._roll_over().use(version)
        self.start()
        self.store.write_event(R.VERSION_USED, {"name": version.name, "number": version.number, "digest": version.digest},
                               run=self.id, background=True)
        _relay.artifact_used(run=self, version=version)
        self._settle()
        return version

    def _roll_over(self) -> Run:
        """Finish this implicit run and return its next segment, which goes on from it."""
        successor = Run(self.store, self.name, kind=self.kind, parent=self.parent,
                        info={"implicit": True, "previous": self.id})
        successor._flush_each = self._flush_each
        self._successor = self.store.shared.swap(IMPLICIT_SLOT, self, successor) or successor
        self.finish()
        return self._successor

    def _resolve_used(self, obj: Any, name: str | None, type: str | None, upstream: list[str]) -> ArtifactVersion:
        if isinstance(obj, ArtifactVersion):
            return obj if obj.store == self.store else self._match_or_import(obj, name, type, upstream)
        if isinstance(obj, str) and not os.path.exists(obj):
            try:
                parse_spec(obj)
            except InvalidNameError:
                raise NotFoundError(f"{obj!r} is neither an existing path nor a version spec like 'name:v3'", name=obj) from None
            return ArtifactVersion.load(self.store, obj)
        if isinstance(obj, str):
            try:
                return ArtifactVersion.load(self.store, obj)  # a valid spec that exists wins over a same-named path
            except (InvalidNameError, NotFoundError):
                pass
        return self._match_or_import(obj, name, type, upstream)

    def _match_or_import(self, obj: Any, name: str | None, type: str | None, upstream: list[str]) -> ArtifactVersion:
        def choose(rows: list[VersionRow]) -> VersionRow:
            return P.handoff(self.store.catalog, rows, upstream, self._top_level())

        fingerprint = _fingerprint(obj)
        known = self.store_fingerprint(fingerprint)
        if known is not None:  # its content is known without hashing; the hand-off still chooses
            row = choose(V.by_content(self.store.catalog, known.digest))
            return known if row.key == (known.name, known.number) else ArtifactVersion.from_row(self.store, row)
        draft = _draft_from_version(obj) if isinstance(obj, ArtifactVersion) else to_artifact(obj, name, type, self.store)
        row, _ = match_content(self.store, draft, choose)
        version = ArtifactVersion.from_row(self.store, row)
        self._remember_fingerprint(fingerprint, version)
        return version

    def _top_level(self) -> set[str]:
        """Return the outermost runs around this one (itself, if there is none)."""
        ids = [i for i in (self.id, self.parent, self.info.get("previous")) if isinstance(i, str)]
        return P.roots(self.store.catalog, ids) or {self.id}

    def log(self, obj: Any, name: str | None = None, type: str | None = None, *, aliases: Iterable[str] = (),
            description: str | None = None, metadata: Mapping[str, Any] | None = None, tags: Iterable[str] = (),
            ttl: str | float | timedelta | None = None) -> ArtifactVersion:
        """Log an object as a version produced by this run, and return the version.

        ``obj`` may be a local path (file or folder), bytes, an :class:`Artifact` draft, an
        :class:`ArtifactVersion` (recorded as is), or anything a plugin converts. If the content
        equals a live version of the name (any one, not only the latest), that version is
        returned, no new one is made, and this run is recorded as one more of its producers; it
        becomes the name's ``latest`` (a revert moves ``latest`` back). Aliases are applied either way.

        :param name: the artifact name (default: from the object, e.g. a path's base name).
        :param type: the artifact type (default: from the object, ``dataset`` for paths).
        :param aliases: aliases to point at the version.
        :param description: overrides the draft's description. If the content was logged before,
            a new description is applied to that version as an update (in its history); a draft's
            own description is not.
        :param metadata: merged into the draft's metadata; on content logged before, new keys or
            values are merged into that version as an update, as for ``description``.
        :param tags: tags to put on the version (see :meth:`ArtifactVersion.add_tags`).
        :param ttl: let ``plait gc --delete`` delete the version this long from now (``30d``,
            seconds, a :class:`~datetime.timedelta`); see :meth:`ArtifactVersion.set_ttl`.
        :raises ConversionError: if no plugin can turn ``obj`` into an artifact.
        :raises InvalidInputError: for a malformed tag or TTL (checked before anything is stored).
        :raises ProtectedAliasError: if one of ``aliases`` is protected (store setting
            ``aliases.protected``) and would change: the version is logged, the alias is not set;
            set it with ``version.set_alias(alias, force_protected=True)``.
        """
        run = self.current()
        if run is not self:
            return run.log(obj, name, type, aliases=aliases, description=description, metadata=metadata, tags=tags, ttl=ttl)
        aliases, tags = check_labels(aliases, tags, ttl)
        notes = (str(description) if description is not None else "", check_json(dict(metadata)) if metadata else {})
        if isinstance(obj, ArtifactVersion) and obj.store == self.store:
            self.start()
            version, created = _apply_notes(obj, *notes, self.id), False
        else:
            fingerprint = _fingerprint(obj)
            known = self.store_fingerprint(fingerprint, name)
            if known is not None:  # the object logged before: new notes are an update, as for the same content
                self.start()
                version, created = _apply_notes(known, *notes, self.id), False
            else:
                draft = _draft_from_version(obj) if isinstance(obj, ArtifactVersion) else to_artifact(obj, name, type, self.store)
                if name is not None and draft.name != name:
                    draft.name = check_name(name)
                if description is not None:
                    draft.description = str(description)
                if metadata:
                    draft.metadata.update(notes[1])
                # started only once the files hashed: bad input leaves no trace in the store
                row, created = publish(self.store, draft, created_by=self.id, on_hashed=self.start)
                version = ArtifactVersion.from_row(self.store, row)
                self._remember_fingerprint(fingerprint, version)
                if not created and version.name == draft.name:  # new notes on the same content: an update
                    version = _apply_notes(version, *notes, self.id)
            if not created and self._produced_again(version):
                version = version.refresh()
        version = apply_labels(version, aliases, tags, ttl, run=self.id)
        _relay.artifact_logged(run=self, version=version, created=created)
        self._settle()
        return version

    def _produced_again(self, version: ArtifactVersion) -> bool:
        """Record this run as one more producer of an existing version; return whether it was recorded.

        Nothing is recorded when a run inside this one produced it (the task handing on its
        fit's checkpoint did not make it), or when this run already did and it is still ``latest``.
        """
        catalog = self.store.catalog
        producers = P.runs_of(catalog, version.name, version.number)
        if self.id in producers:
            if V.latest_number(catalog, version.name) == version.number:
                return False
        elif producers and P.inside(catalog, producers, self.id):
            return False
        data = {"name": version.name, "number": version.number, "digest": version.digest}
        self.store.write_event(R.VERSION_PRODUCED, data, run=self.id, background=True)
        return True

    def store_fingerprint(self, fingerprint: str | None, name: str | None = None) -> ArtifactVersion | None:
        """Return the version a fingerprint was last logged as (of ``name``, if given), if any."""
        return None if fingerprint is None else ArtifactVersion.by_fingerprint(self.store, fingerprint, name)

    def _remember_fingerprint(self, fingerprint: str | None, version: ArtifactVersion) -> None:
        if fingerprint is not None:
            V.remember_fingerprint(self.store.catalog, fingerprint, version.name, version.number)


# -- helpers ----------------------------------------------------------------------------------------


def to_artifact(obj: Any, name: str | None, type: str | None, store: Store) -> Artifact:
    """Turn any object into a draft through the conversion hooks.

    :raises ConversionError: naming the type when no plugin handles it.
    """
    draft = _relay.object_to_artifact(obj=obj, name=name, type=type, store=store)
    if draft is None:
        raise ConversionError(
            f"plait does not know how to log a {type_name(obj)}: pass a path, bytes or a plait.Artifact, "
            "or install the plugin for it (e.g. pip install 'plait[huggingface]')"
        )
    if name is not None and draft.name != name:
        draft.name = check_name(name)
    return draft


def check_labels(aliases: Iterable[str], tags: Iterable[str] | str,
                 ttl: str | float | timedelta | None) -> tuple[list[str], list[str]]:
    """Check the aliases, tags and TTL a log (or a finish) will put on its version, before anything is written.

    :returns: the aliases and tags, as lists.
    :raises InvalidNameError: for a malformed alias or tag; :raises InvalidInputError: for a bad TTL.
    """
    checked = [check_alias(a) for a in aliases], check_tags(tags if isinstance(tags, str) else list(tags))
    if ttl is not None:
        parse_duration(ttl, what="TTL")
    return checked


def apply_labels(version: ArtifactVersion, aliases: Iterable[str], tags: Iterable[str],
                 ttl: str | float | timedelta | None, *, run: str) -> ArtifactVersion:
    """Set the aliases, add the tags (one event, only those it lacks) and the TTL; return the version as it is now."""
    store = version.store
    aliases = list(aliases)
    for alias in aliases:
        store.set_alias(version.spec, alias, run=run)
    fresh = [t for t in tags if t not in version.tags]
    if fresh:
        change_tags(store, version.name, version.number, add=fresh, run=run)
    if ttl is not None:
        set_ttl(store, version.name, version.number, ttl, run=run)
    return version.refresh() if aliases or fresh or ttl is not None else version


def _apply_notes(version: ArtifactVersion, description: str, metadata: Mapping[str, Any], run: str) -> ArtifactVersion:
    """Apply the ``description=`` (if any) and ``metadata=`` (merged) a re-log was given to the version it matched.

    Only what the caller passed to ``log``: a draft's own notes describe the content as it was
    built (a converter's, a Lightning checkpoint's file name) and do not rewrite the version that
    already holds that content.
    """
    metadata = metadata if any(version.metadata.get(k, _MISSING) != v for k, v in metadata.items()) else None
    description = description if description and description != version.description else None
    if metadata is None and description is None:
        return version
    return version.update_by(run, metadata=metadata, description=description)


_MISSING = object()


def _fingerprint(obj: Any) -> str | None:
    if isinstance(obj, (str, bytes, os.PathLike)):
        return None
    fp = _relay.fingerprint(obj=obj)
    return f"{type_name(obj)}:{fp}" if fp else None


def _draft_from_version(version: ArtifactVersion) -> Artifact:
    draft = Artifact(version.name, type=version.type, description=version.description, metadata=version.metadata)
    folder = version.download()
    for entry in version.files():
        draft.add_file(os.path.join(folder, *entry.path.split("/")), name=entry.path)
    return draft


def run_for(store: Store, make_name: Callable[[], str] = program_name) -> Run:
    """Return the active run if it records to ``store``, else the process's implicit run there.

    :param make_name: names the implicit run when it is made.
    """
    run = active_run()
    if run is not None and run.store == store:
        return run

    def make() -> Run:
        _register_exit_hook()
        implicit = Run(store, safe_name(make_name() or "python"), kind="manual", info={"implicit": True})
        pool = pool_parent()
        if pool is not None:  # this child may end with os._exit or SIGTERM, past any atexit
            implicit._flush_each = True
            at_pool_exit(end_implicit_runs)
            if not forked():  # a forked child would have inherited its parent's active run
                hint_unlinked(implicit.name, implicit.id, pool)
        return implicit

    return cast(Run, store.shared.slot(IMPLICIT_SLOT, make)).current()


def implicit_run(url: str) -> Run | None:
    """Return the current segment of the implicit run of the store at ``url``, if one was made."""
    run = shared(url).get(IMPLICIT_SLOT)
    return run.current() if isinstance(run, Run) else None


_exit_hook_registered = False


def _register_exit_hook() -> None:
    global _exit_hook_registered
    if not _exit_hook_registered:
        at_exit(end_implicit_runs)  # registered after the stores' flush: runs before it
        _exit_hook_registered = True


def implicit_runs() -> list[Run]:
    """Return the implicit runs this process holds now (one per store it logged to outside a run)."""
    return [run for state in states() if (run := state.get(IMPLICIT_SLOT)) is not None]


def end_implicit_runs(error: BaseException | None = None, *, keep: Iterable[Run] = ()) -> None:
    """Finish the process's implicit runs and write their last events.

    Called at exit, and by the command line when a command ends; tests and notebooks may call it.

    :param error: what ended the work, if it failed (the runs are marked ``failed``).
    :param keep: implicit runs to leave going (those that were there before a command began).
    """
    kept = {id(run) for run in keep}
    for state in states():
        if id(state.get(IMPLICIT_SLOT)) in kept:
            continue
        implicit = state.pop(IMPLICIT_SLOT)
        if implicit is not None and implicit.started and not implicit.away:  # a forked child leaves its parent's run alone
            try:
                implicit.finish(error)
                implicit.store.flush()
            except Exception:  # at exit there is nobody left to tell
                pass
