"""Store: the public face of a store — its records plus every verb built on them.

:class:`Store` is a :class:`~plait.store.base.BaseStore` (records, aliases, events) that also
reads versions and runs as objects, logs and uses through runs, draws lineage, and runs the
operations (gc, compact, verify). Opening one makes runs talk to the plugins
(:func:`plait.plugins.install`).

:func:`current_store` is how the API and the integrations choose a store: the one given, else
the active run's, else the default store — each URL opened once per process.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, BinaryIO

from plait import plugins
from plait.api.search import Found, find
from plait.base.paths import default_store_url
from plait.errors import InvalidInputError
from plait.formats.artifact import WRITTEN, Artifact
from plait.formats.manifest import Entry
from plait.formats.names import check_entry_path, check_name
from plait.formats.retention import RetentionPolicy
from plait.index import runs as RQ
from plait.index import tags as T
from plait.index import versions as V
from plait.ops.compact import CompactReport, compact
from plait.ops.gc import GcReport, gc
from plait.ops.migrate import MigrateReport, migrate
from plait.ops.packgc import rebuild_index as rebuild_index_from_packs
from plait.ops.retention import RetentionReport, expire, policies, set_policy
from plait.ops.stats import StatsReport
from plait.ops.stats import stats as stats_of
from plait.ops.verify import VerifyReport, verify_store
from plait.storage.digest import XXH3_128
from plait.storage.filewriter import FileWriter
from plait.store.base import STORE_FORMAT, BaseStore
from plait.store.distributed import DEFAULT_WAIT
from plait.store.shared import shared
from plait.tracking.distributed import Part
from plait.tracking.distributed import finish as finish_parts
from plait.tracking.distributed import upsert as upsert_part
from plait.tracking.lineage import LineageGraph, lineage
from plait.tracking.nodes import ArtifactVersion, RunRecord
from plait.tracking.run import active_run, run_for

#: Key of the opened :class:`Store` in a store URL's shared state.
STORE_SLOT = "plait.store"
_INFO_KEY = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


class Store(BaseStore):
    """A plait store at any fsspec URL.

    :param url: a local folder (default: ``$PLAIT_STORE``, else the nearest ``.plait/``, else
        ``./.plait``), ``memory://name``, ``s3://bucket/prefix``, ``gs://…``, ``az://…``.
    :param storage_options: passed to fsspec (credentials, ``endpoint_url``, …).
    :param hash: the hash algorithm for a new store (``xxh3-128`` or ``blake3``); an existing
        store keeps its own.
    :param allow_references: local folders and URL prefixes references may read, beyond your
        settings' ``[references] allow`` (``["/data/raw", "https://datasets.example.org/"]``).
    :param reference_options: fsspec options for reading references, by URL prefix (``""``:
        every reference), over your settings' ``[storage."prefix"]`` tables.
    :param format: the format of a new store (default 2: versions as trees of nodes; 1: flat
        manifests, for teammates on an older plait); an existing store keeps its own.
    :raises UnsupportedStoreError: for an unknown protocol (with the ``pip install`` hint).
    """

    def __init__(self, url: str | os.PathLike[str] | None = None, *, storage_options: Mapping[str, Any] | None = None,
                 hash: str = XXH3_128, allow_references: Iterable[str] = (),
                 reference_options: Mapping[str, Mapping[str, Any]] | None = None, format: int = STORE_FORMAT) -> None:
        super().__init__(url, storage_options=storage_options, hash=hash, allow_references=allow_references,
                         reference_options=reference_options, format=format)
        plugins.install()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        """Pickle as what opens this store again: its URL (a local path made absolute), storage
        options, hash, format and reference settings; another process reopens it with :func:`reopen`
        (a task runner's worker, a process pool). The storage options travel with it, credentials
        included."""
        url = self.url
        if self.backend.is_local and "://" not in url:  # a worker may run in another folder
            url = os.path.abspath(os.path.expanduser(url))
        allow, reference_options = self._reader_overrides
        return reopen, (url, self.storage_options, self.requested_hash, allow, reference_options, self.requested_format)

    # -- versions -------------------------------------------------------------------------------

    def get(self, spec: str) -> ArtifactVersion:
        """Return the version a spec names: ``name``, ``name:v3``, ``name:latest``, ``name:<alias>``.

        :raises NotFoundError: listing what exists.
        """
        return ArtifactVersion.load(self, spec)

    def versions(self, name: str) -> list[ArtifactVersion]:
        """Return every live version of ``name``, oldest first.

        :raises NotFoundError: if there is no such artifact.
        """
        rows = V.live(self.catalog, check_name(name))
        if not rows:
            raise self.unknown(name, "any version")
        return ArtifactVersion.from_rows(self, rows)

    def artifacts(self, type: str | None = None) -> list[ArtifactVersion]:
        """Return the latest version of every artifact (of one ``type``), by name."""
        return ArtifactVersion.from_rows(self, V.latest_of_each(self.catalog, type))

    def tag_counts(self, name: str | None = None) -> dict[str, int]:
        """Return ``{tag: how many live versions carry it}`` (of ``name``, if given), by tag."""
        return T.counts(self.catalog, None if name is None else check_name(name))

    def by_fingerprint(self, fingerprint: str, name: str | None = None) -> ArtifactVersion | None:
        """Return the live version an object with this ``plait_fingerprint`` was logged as, if any."""
        return ArtifactVersion.by_fingerprint(self, fingerprint, name)

    def find(self, **filters: Any) -> Found:
        """Search the versions of this store, newest first: by ``type``, ``name`` (globs), ``tag``,
        ``alias``, ``where`` conditions on metadata (``metrics.accuracy>0.9``), ``created_after`` /
        ``created_before``, ``digest``; ``sort``, ``limit``, ``offset``. See :func:`plait.find`.

        :raises InvalidInputError: for a malformed filter.
        """
        return find(self, **filters)

    # -- runs -----------------------------------------------------------------------------------

    @contextmanager
    def write_file(self, draft: Artifact, path: str) -> Iterator[BinaryIO]:
        """Write a file of ``draft`` straight into this store: yield a binary file to write to.

        Its bytes are cut, hashed and stored as they come, with no local copy and no second read
        (see :mod:`plait.storage.filewriter`); when the block ends the file is in the draft at
        ``path``, for logging to this store::

            draft = plait.Artifact("classifier", type="model")
            with store.write_file(draft, "model.pt") as f:
                torch.save(model.state_dict(), f)
            store.log(draft)

        The file gets the digest and chunks the same bytes logged from disk would get. An error
        inside the block adds nothing to the draft (the bytes stored so far are gc's garbage).

        :param draft: the draft the file goes into.
        :param path: its path inside the version (relative, ``/``-separated).
        :raises InvalidPathError: for a path that would escape the version, before anything is written.
        :raises StoreError: when the draft is logged, if the bytes were lost meanwhile (a failed
            pack write dropped them): write the file again.
        """
        entry_path = check_entry_path(path)
        self.init()  # plait.json before the first blob
        self.blobs.missing(())  # one listing of the index files: blobs other writers stored are not stored again
        writer = FileWriter(self.algorithm, self.blobs.put_verified)
        try:
            yield writer  # type: ignore[misc]
        except BaseException:
            writer.discard()
            raise
        writer.close()
        found = writer.result
        assert found is not None
        draft.add_stored([Entry.trusted(entry_path, found.digest, found.size, found.chunks)], WRITTEN, self.id)

    def log(self, obj: Any, name: str | None = None, type: str | None = None, *, aliases: Iterable[str] = (),
            **kwargs: Any) -> ArtifactVersion:
        """Log a path, bytes, an :class:`~plait.Artifact` or any object a plugin converts.

        Inside a run of this store the version is that run's output; outside, the process's
        implicit run produces it. See :meth:`plait.Run.log`.
        """
        return run_for(self).log(obj, name=name, type=type, aliases=aliases, **kwargs)

    def upsert(self, artifact: Artifact, *, wait: float = DEFAULT_WAIT) -> Part:
        """Send a part of a distributed version to this store (see :func:`plait.upsert`)."""
        return upsert_part(run_for(self), artifact, wait=wait)

    def finish(self, name: str, *, distributed_id: str, aliases: Iterable[str] = (), description: str | None = None,
               metadata: Mapping[str, Any] | None = None, tags: Iterable[str] = (), ttl: str | float | None = None,
               wait: float = DEFAULT_WAIT) -> ArtifactVersion:
        """Make the one version of a distributed version in this store (see :func:`plait.finish`)."""
        return finish_parts(run_for(self), name, distributed_id, aliases=aliases, description=description,
                            metadata=metadata, tags=tags, ttl=ttl, wait=wait)

    def use(self, obj: Any, **kwargs: Any) -> ArtifactVersion:
        """Record that the current run (or the process's implicit run) uses a version; return it."""
        return run_for(self).use(obj, **kwargs)

    def runs(self, name: str | None = None, kind: str | None = None, *, parent: str | None = None,
             limit: int | None = None, info: Mapping[str, Any] | None = None) -> list[RunRecord]:
        """Return runs, newest first, filtered by name, kind, parent run id or what their ``info`` holds.

        :param info: ``{dotted key: value or list of values}``: keep runs whose ``info`` holds
            (one of) the value(s) at that key, e.g. ``{"prefect.task_run_id": [id1, id2]}``.
        :raises InvalidInputError: for a key that is not dotted words (``prefect.task_run_id``).
        """
        wanted = {_info_key(key): [value] if isinstance(value, (str, int, float)) else list(value)
                  for key, value in (info or {}).items()}
        rows = RQ.find(self.catalog, name=name, kind=kind, parent=parent, limit=limit, info=wanted)
        return [RunRecord.from_row(self, r) for r in rows]

    def get_run(self, run_id: str) -> RunRecord:
        """Return the run with this id (a unique prefix is enough).

        :raises NotFoundError: for an unknown id, or a prefix several runs share.
        """
        return RunRecord.load(self, run_id)

    def lineage(self, spec: str, direction: str = "upstream", depth: int | None = None, *,
                producers: str = "preferred") -> LineageGraph:
        """Return the lineage graph of a version (``name:v3``) or a run (its id). See :func:`plait.lineage`."""
        return lineage(self, spec, direction=direction, depth=depth, producers=producers)

    # -- operations -----------------------------------------------------------------------------

    def gc(self, *, dry_run: bool = True, grace_seconds: float | None = None) -> GcReport:
        """Delete blobs and manifests no live version references. See :func:`plait.ops.gc.gc`."""
        return gc(self, dry_run=dry_run, grace_seconds=grace_seconds)

    def expire(self, *, dry_run: bool = True) -> RetentionReport:
        """Delete the versions whose TTL passed or that their name's retention policy expires
        (only report them in a dry run). ``plait gc`` does this first. See :mod:`plait.ops.retention`."""
        return expire(self, dry_run=dry_run)

    def retention(self) -> dict[str, RetentionPolicy]:
        """Return the retention policies of this store, by artifact name."""
        return policies(self)

    def retain(self, name: str, *, keep_last: int | None = None, keep_aliased: bool = True,
               keep_tagged: Iterable[str] = (), older_than: str | None = None) -> RetentionReport:
        """Set the retention policy of ``name`` (a store setting everyone shares); return what it would expire now.

        :param keep_last: keep this many versions logged most recently.
        :param keep_aliased: keep every version an alias points at.
        :param keep_tagged: keep every version carrying one of these tags.
        :param older_than: expire only versions last logged longer ago than this (``30d``).
        :raises InvalidInputError: for a malformed policy, one that says neither ``keep_last`` nor
            ``older_than``, or one that would expire every version of ``name`` (nothing is set then).
        """
        policy = RetentionPolicy.parse({"keep_last": keep_last, "keep_aliased": keep_aliased,
                                        "keep_tagged": list(keep_tagged), "older_than": older_than}, name)
        return set_policy(self, check_name(name), policy)

    def forget_retention(self, name: str) -> None:
        """Remove the retention policy of ``name`` (its versions no longer expire by policy)."""
        set_policy(self, check_name(name), None)

    def compact(self, *, before_days: int = 2) -> CompactReport:
        """Pack the events of days older than ``before_days`` into segments. See :mod:`plait.ops.compact`."""
        return compact(self, before_days=before_days)

    def migrate(self) -> MigrateReport:
        """Convert a format-1 store to format 2 in place (resumable). See :mod:`plait.ops.migrate`."""
        return migrate(self)

    def stats(self, name: str | None = None) -> StatsReport:
        """Count the bytes logged and stored, per name (or for ``name``) and for the store (see :mod:`plait.ops.stats`)."""
        if name is not None:
            self.versions(name)  # an unknown name says so, listing what exists
        return stats_of(self, name)

    def verify(self, spec: str | None = None, *, rebuild_index: bool = False) -> VerifyReport:
        """Check every blob of one version (or all) against its digest. See :mod:`plait.ops.verify`.

        :param rebuild_index: first rebuild the pack index from the packs alone (a format-2 store
            whose index files are damaged or lost).
        """
        if rebuild_index and self.format == 2:
            rebuild_index_from_packs(self)
        return verify_store(self, spec)


def _info_key(key: str) -> str:
    if not isinstance(key, str) or not _INFO_KEY.fullmatch(key):
        raise InvalidInputError(f"runs(info=...) takes dotted keys of words like 'prefect.task_run_id', not {key!r}")
    return key


def reopen(url: str, storage_options: Mapping[str, Any] | None = None, hash: str = XXH3_128,
           allow_references: Iterable[str] = (), reference_options: Mapping[str, Mapping[str, Any]] | None = None,
           format: int = STORE_FORMAT) -> Store:
    """Return this process's :class:`Store` for ``url`` opened with these arguments: what an
    unpickled store becomes, opened once per process (a store's first open reads its config and
    index: about 100 ms on a local folder, a second or two on S3).

    :param url: the store URL (a local path should be absolute).
    :param storage_options: passed to fsspec.
    :param hash: the hash algorithm, should the store not exist yet.
    :param allow_references: as :class:`Store`'s.
    :param reference_options: as :class:`Store`'s.
    :param format: the store format, should the store not exist yet.
    """
    options = dict(storage_options or {})
    overrides = (tuple(allow_references), dict(reference_options or {}))

    def make() -> Store:
        return Store(url, storage_options=options, hash=hash, allow_references=overrides[0], reference_options=overrides[1],
                     format=format)

    state = shared(url)
    store = state.slot(STORE_SLOT, make)
    if store.storage_options == options and store._reader_overrides == overrides:
        return store
    # the same URL already open with other options (other credentials, say): one per options
    key = f"{STORE_SLOT} {json.dumps([options, overrides], sort_keys=True, default=repr)}"
    return state.slot(key, make)


def current_store(store: Store | BaseStore | str | os.PathLike[str] | None = None) -> Store:
    """Return the store to work on: ``store`` if given, else the active run's, else the default store.

    A URL is opened once per process and the same :class:`Store` returned each time.

    :param store: a :class:`Store`, a URL or path, or ``None``.
    :returns: the store.
    """
    if isinstance(store, Store):
        return store
    if isinstance(store, BaseStore):
        url = store.url
    elif store is None:
        run = active_run()
        if run is not None and isinstance(run.store, Store):
            return run.store
        url = run.store.url if run is not None else default_store_url()
    else:
        url = os.fspath(store)
    return shared(url).slot(STORE_SLOT, lambda: Store(url))
