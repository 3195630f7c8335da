"""Store: the public face of a store — its records plus every verb built on them.

:class:`Store` is a :class:`~plait.store.base.BaseStore` (records, aliases, events) that also
reads versions and runs as objects, logs and uses through runs, draws lineage, and runs the
operations (gc, compact, verify). Opening one makes runs talk to the plugins
(:func:`plait.plugins.install`).

:func:`current_store` is how the API and the integrations choose a store: the one given, else
the active run's, else the default store — each URL opened once per process.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from plait import plugins
from plait.base.paths import default_store_url
from plait.formats.names import check_name
from plait.index import runs as RQ
from plait.index import versions as V
from plait.ops.compact import CompactReport, compact
from plait.ops.gc import GcReport, gc
from plait.ops.verify import VerifyReport, verify_store
from plait.storage.digest import XXH3_128
from plait.store.base import STORE_FORMAT, BaseStore
from plait.store.shared import shared
from plait.tracking.lineage import LineageGraph, lineage
from plait.tracking.nodes import ArtifactVersion, RunRecord
from plait.tracking.run import active_run, run_for

#: Key of the opened :class:`Store` in a store URL's shared state.
STORE_SLOT = "plait.store"


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

    def by_fingerprint(self, fingerprint: str, name: str | None = None) -> ArtifactVersion | None:
        """Return the live version an object with this ``plait_fingerprint`` was logged as, if any."""
        return ArtifactVersion.by_fingerprint(self, fingerprint, name)

    def find(self, digest: str) -> list[ArtifactVersion]:
        """Return the live versions whose manifest digest is ``digest``, oldest first."""
        return ArtifactVersion.from_rows(self, V.by_content(self.catalog, digest))

    # -- runs -----------------------------------------------------------------------------------

    def log(self, obj: Any, name: str | None = None, type: str | None = None, *, aliases: Iterable[str] = (),
            **kwargs: Any) -> ArtifactVersion:
        """Log a path, bytes, an :class:`~plait.Artifact` or any object a plugin converts.

        Inside a run of this store the version is that run's output; outside, the process's
        implicit run produces it. See :meth:`plait.Run.log`.
        """
        return run_for(self).log(obj, name=name, type=type, aliases=aliases, **kwargs)

    def use(self, obj: Any, **kwargs: Any) -> ArtifactVersion:
        """Record that the current run (or the process's implicit run) uses a version; return it."""
        return run_for(self).use(obj, **kwargs)

    def runs(self, name: str | None = None, kind: str | None = None, *, parent: str | None = None,
             limit: int | None = None) -> list[RunRecord]:
        """Return runs, newest first, filtered by name, kind or parent run id."""
        return [RunRecord.from_row(self, r) for r in RQ.find(self.catalog, name=name, kind=kind, parent=parent, limit=limit)]

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

    def compact(self, *, before_days: int = 2) -> CompactReport:
        """Pack the events of days older than ``before_days`` into segments. See :mod:`plait.ops.compact`."""
        return compact(self, before_days=before_days)

    def verify(self, spec: str | None = None) -> VerifyReport:
        """Check every blob of one version (or all) against its digest. See :mod:`plait.ops.verify`."""
        return verify_store(self, spec)


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
