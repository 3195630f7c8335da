"""gc: delete blobs and manifests that no live version references.

A blob younger than the grace period is always kept: a log in flight writes its blobs before
its version record, and must not lose them to a collector that ran in between.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from plait.core import records as R
from plait.core.errors import CorruptRecordError, StoreError

if TYPE_CHECKING:
    from plait.core.store import Store

#: Blobs and manifests younger than this are never collected (seconds).
DEFAULT_GRACE_SECONDS = 3600.0


@dataclass
class GcReport:
    """What :func:`gc` found or did.

    :ivar dry_run: whether anything was deleted.
    :ivar blobs: digests of unreferenced blobs (deleted unless ``dry_run``).
    :ivar manifests: digests of unreferenced manifests.
    :ivar bytes: bytes those blobs take.
    :ivar kept_young: unreferenced blobs kept because they are inside the grace period.
    :ivar temporaries: temporary files crashed writers left (local stores), older than the grace.
    """

    dry_run: bool
    blobs: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    bytes: int = 0
    kept_young: int = 0
    temporaries: list[str] = field(default_factory=list)


def gc(store: Store, *, dry_run: bool = True, grace_seconds: float | None = None) -> GcReport:
    """Find (and unless ``dry_run``, delete) what no live version references.

    :param dry_run: only report (the default).
    :param grace_seconds: keep anything modified more recently than this (default one hour).
    :returns: what was found (and deleted), with the bytes it takes.
    :raises CorruptRecordError: if a live version's manifest cannot be read (nothing is deleted).
    :raises StoreError: for a negative grace period.
    """
    grace = DEFAULT_GRACE_SECONDS if grace_seconds is None else grace_seconds
    if grace < 0:
        raise StoreError(f"the grace period must be zero or more seconds, not {grace}")
    live_manifests = {r[0] for r in store.catalog.query("SELECT DISTINCT digest FROM versions WHERE deleted = 0")}
    live_manifests |= _unannounced_versions(store)
    live_blobs: set[str] = set()
    for digest in live_manifests:
        manifest = store.manifest(digest)  # a damaged manifest stops gc before it deletes anything
        live_blobs.update(manifest.blobs())
    report = GcReport(dry_run=dry_run)
    cutoff = time.time() - grace
    for key, size in sorted(store.backend.find("blobs").items()):
        digest = key.rsplit("/", 1)[-1]
        if digest in live_blobs:
            continue
        if grace > 0 and (store.backend.modified(key) or time.time()) > cutoff:
            report.kept_young += 1
            continue
        report.blobs.append(digest)
        report.bytes += size
    for key in sorted(store.backend.find("manifests")):
        digest = key.rsplit("/", 1)[-1]
        if digest not in live_manifests and not (grace > 0 and (store.backend.modified(key) or time.time()) > cutoff):
            report.manifests.append(digest)
    for prefix in ("blobs", "manifests", "versions", "events"):
        for key, size in sorted(store.backend.stale_temporaries(prefix, cutoff).items()):
            report.temporaries.append(key)
            report.bytes += size
    if not dry_run:
        for key in report.temporaries:
            store.backend.delete(key)
        for digest in report.blobs:
            store.blobs.delete(digest)
        for digest in report.manifests:
            store.backend.delete(f"manifests/{digest[:2]}/{digest}")
    return report


def _unannounced_versions(store: Store) -> set[str]:
    """Return the manifest digests of version records the index has not seen.

    A writer that died between creating its version record and writing the event announcing
    it leaves a whole version that ``name:vN`` still resolves to; its data must stay.
    """
    known = {(n, int(v)) for n, v in store.catalog.query("SELECT name, number FROM versions")}
    keys = [k for k in store.backend.find("versions") if _record_id(k) not in known and _record_id(k) is not None]
    digests = set()
    for key, data in store.backend.read_many(keys).items():
        try:
            digests.add(R.decode(R.VersionRecord, data, key).digest)
        except CorruptRecordError:
            continue  # a damaged record protects nothing; verify reports it
    return digests


def _record_id(key: str) -> tuple[str, int] | None:
    parts = key.split("/")
    return (parts[1], int(parts[2])) if len(parts) == 3 and parts[2].isdigit() else None
