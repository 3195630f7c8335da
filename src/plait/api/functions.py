"""The module-level API: ``plait.log``, ``plait.get``, ``plait.use``, ``plait.run``, … .

Each function works on ``store`` if given, else on the store of the active run, else on the
default store (see :func:`plait.current_store`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from plait import plugins
from plait.api import search
from plait.api.search import Found
from plait.api.store import Store, current_store
from plait.base.describe import type_name
from plait.base.paths import default_store_url
from plait.base.usersettings import trusts_store
from plait.errors import ConversionError
from plait.formats.artifact import Artifact
from plait.ops.diff import Diff
from plait.ops.diff import diff as diff_versions
from plait.store.distributed import DEFAULT_WAIT
from plait.tracking.distributed import Part
from plait.tracking.lineage import LineageGraph
from plait.tracking.nodes import ArtifactVersion, RunRecord
from plait.tracking.run import Run, implicit_run, run_for
from plait.tracking.run import active_run as _context_run


def log(obj: Any, name: str | None = None, type: str | None = None, *, aliases: Iterable[str] = (),
        description: str | None = None, metadata: Mapping[str, Any] | None = None, tags: Iterable[str] = (),
        ttl: str | float | timedelta | None = None, store: Store | str | None = None) -> ArtifactVersion:
    """Log a path, bytes, an :class:`plait.Artifact` or any object a plugin converts.

    The version is produced by the active run, or the process's implicit run. See
    :meth:`plait.Run.log` for every parameter (``tags=["eu"]``, ``ttl="30d"``).
    """
    return run_for(current_store(store)).log(obj, name=name, type=type, aliases=aliases, description=description,
                                             metadata=metadata, tags=tags, ttl=ttl)


def upsert(artifact: Artifact, *, store: Store | str | None = None, wait: float = DEFAULT_WAIT) -> Part:
    """Send a draft with a ``distributed_id`` as one part of a version several workers make.

    Call it from each worker (its own process or machine, in its own run); then call
    :func:`finish` once. The part's files are stored now and its record is created exclusively,
    so workers never overwrite each other, on S3 as on a folder. Sending the same part again (a
    worker that crashed and was retried) is harmless, and a worker may send several parts: a
    later part's file at a path replaces an earlier one's.

    :param artifact: ``plait.Artifact(name, ..., distributed_id="eval-42")`` with the worker's files.
    :param wait: if a finish began meanwhile, how long to wait for it to say whether it took the part.
    :returns: the part as stored (``.key``, ``.record``).
    :raises InvalidInputError: for a draft without a ``distributed_id``.
    :raises ConflictError: if that distributed version is finished already (the part is not kept).
    """
    return current_store(store).upsert(artifact, wait=wait)


def finish(name: str, *, distributed_id: str, aliases: Iterable[str] = (), description: str | None = None,
           metadata: Mapping[str, Any] | None = None, tags: Iterable[str] = (), ttl: str | float | None = None,
           store: Store | str | None = None, wait: float = DEFAULT_WAIT) -> ArtifactVersion:
    """Make the one version of ``name`` from every part sent with ``distributed_id``; return it.

    Exactly one version results, logged by the active (or implicit) run, with every run that sent
    a part recorded as a producer. A part sent afterwards is refused. Finishing again returns the
    same version; content equal to a live version of the name is that version, as with :func:`log`.

    :param description: overrides the parts' description.
    :param metadata: merged over the parts' metadata (which merge in the order they were sent).
    :param tags: tags to put on the version; ``ttl``: when ``plait gc --delete`` may delete it, as for :func:`log`.
    :param wait: how long to wait for a finish another process began before completing it here.
    :raises InvalidInputError: if no part was sent (nothing is written).
    """
    return current_store(store).finish(name, distributed_id=distributed_id, aliases=aliases, description=description,
                                       metadata=metadata, tags=tags, ttl=ttl, wait=wait)


def use(obj: Any, *, name: str | None = None, type: str | None = None, store: Store | str | None = None,
        upstream: Iterable[str | RunRecord] = ()) -> ArtifactVersion:
    """Record that the active run (or the implicit run) uses a version; return it.

    See :meth:`plait.Run.use`.
    """
    return run_for(current_store(store)).use(obj, name=name, type=type, upstream=upstream)


def active_run() -> Run | None:
    """Return the run that ``plait.log``/``plait.use`` record to here: the active run of this
    context, else the implicit run of the default store once it exists (after the first
    ``log``/``use`` outside any run; in a notebook, the run named after the notebook), else ``None``.

    The implicit run only collects the calls made outside any run: runs started afterwards
    (``plait.run()``, a Lightning fit, a tracked Prefect flow) are not its children.
    ``run.implicit`` tells it apart.
    """
    run = _context_run()
    if run is not None:
        return run
    return implicit_run(default_store_url())


def get(spec: str, *, store: Store | str | None = None) -> ArtifactVersion:
    """Return the version a spec names (``images``, ``images:v3``, ``images:latest``, ``images:best``).

    Reading a version does not record a use; :func:`use` does.

    :raises NotFoundError: listing what exists.
    """
    return current_store(store).get(spec)


def find(*, type: str | Iterable[str] | None = None, name: str | Iterable[str] | None = None,
         tag: str | Iterable[str] | None = None, alias: str | Iterable[str] | None = None,
         where: str | Iterable[str] | None = None, created_after: str | datetime | None = None,
         created_before: str | datetime | None = None, sort: str | Iterable[str] | None = None,
         limit: int | None = None, offset: int = 0, deleted: bool = False, digest: str | None = None,
         store: Store | str | None = None) -> Found:
    """Search versions across every name, answered from the store's index; newest first unless ``sort`` says.

    ``plait.find(type="model", tag="eu", alias="production", where="metrics.accuracy>0.9",
    created_after="2026-11-01", sort="-metrics.accuracy", limit=20)``. Every filter must hold;
    a list means "any of" for types, names and aliases, "all of" for tags and conditions.

    :param type: any of these types.
    :param name: any of these names; ``ckpt-*`` is a glob.
    :param tag: carrying every one of these tags.
    :param alias: pointed at by any of these aliases (``latest``: each name's latest version).
    :param where: conditions ``KEY OP VALUE`` with OP ``= != > >= < <= ~`` (glob), ``KEY`` (present)
        or ``!KEY`` (absent); KEY is a field (``size``, ``created_at``, …) or a metadata path.
    :param created_after: logged after: ``2026-11-01``, an ISO time, a datetime, or ``7d`` (ago).
    :param created_before: logged before.
    :param sort: sort keys, ``-`` for descending (``-metrics.accuracy``, ``name``).
    :param limit: at most this many; :param offset: skip this many (pages: ``found.total``, ``found.more``).
    :param deleted: include deleted versions.
    :param digest: only versions with this manifest digest.
    :returns: a list of versions with ``.total``, ``.offset``, ``.limit`` and ``.more``.
    :raises InvalidInputError: for a malformed condition, sort key, time, tag or page.
    """
    return search.find(current_store(store), type=type, name=name, tag=tag, alias=alias, where=where,
                       created_after=created_after, created_before=created_before, sort=sort, limit=limit,
                       offset=offset, deleted=deleted, digest=digest)


def load(spec: str, as_type: Any = None, *, store: Store | str | None = None, trusted: bool = False) -> Any:
    """Use a version and turn it into a Python object through the conversion plugins.

    Nothing read from a store is executed: models load their weights only (``torch.load(...,
    weights_only=True)``). A file that needs unpickling loads only from a store whose every
    writer you trust: say so with ``trusted=True``, or list the store under ``[load] trusted``
    in your settings file (``~/.config/plait/config.toml``). A store cannot say it of itself.

    :param as_type: the wanted type (default: a local path to the downloaded files).
    :param trusted: allow the plugins to unpickle this store's files (they may run code).
    :raises ConversionError: if no plugin makes that type, or the file needs unpickling and the
        store is not trusted.
    """
    version = get(spec, store=store)
    trusted = trusted or trusts_store(version.store.url)
    obj = plugins.artifact_to_object(version=version, as_type=as_type, trusted=trusted)
    if obj is None:
        raise ConversionError(f"no plugin turns {version.spec} ({version.type}) into a {type_name(as_type)}")
    use(version, store=current_store(version.store))  # recorded only once the object exists: a failed load uses nothing
    return obj


def diff(old: str | ArtifactVersion, new: str | ArtifactVersion, *, store: Store | str | None = None) -> Diff:
    """Compare two versions path by path: added, removed and modified files with sizes."""
    s = current_store(store)
    a = old if isinstance(old, ArtifactVersion) else s.get(old)
    b = new if isinstance(new, ArtifactVersion) else s.get(new)
    return diff_versions(a, b)


def lineage(spec: str, direction: str = "upstream", depth: int | None = None, *, producers: str = "preferred",
            store: Store | str | None = None) -> LineageGraph:
    """Return the lineage graph of a version or run.

    :param direction: ``upstream``, ``downstream`` or ``both``.
    :param depth: how many runs away to go (``None``: all).
    :param producers: ``preferred`` follows each version's preferred producer, ``all`` every run
        that produced it (a failed run and its rerun, each run of a revert).
    """
    return current_store(store).lineage(spec, direction=direction, depth=depth, producers=producers)


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
    :param parent: the parent run (default: the run active in this context, if it records to the
        same store; the implicit run is never a parent).
    :param info: extra facts to record (integrations put their ids here).
    """
    outer = _context_run()
    target = current_store(store)
    parent_id = parent.id if isinstance(parent, Run) else parent
    if parent_id is None and outer is not None and outer.store == target:
        parent_id = outer.id
    with Run(target, name, kind=kind, config=config, parent=parent_id, info=info) as current:
        yield current
