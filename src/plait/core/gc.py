"""gc: delete blobs and manifests that no live version references.

A blob younger than the grace period is always kept: a log in flight writes its blobs before
its version record, and must not lose them to a collector that ran in between.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING




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
    """

    dry_run: bool
    blobs: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    bytes: int = 0
    kept_young: int = 0


def gc(store: Store, *, dry_run: bool = True, grace_seconds: float | None = None) -> GcReport:
    """Find (and unless ``dry_run``, delete) what no live version references.

    :param dry_run: only report (the default).
    :param grace_seconds: keep anything modified more recently than this (default one hour).
    :raises CorruptRecordError: if a live version's manifest cannot be read (nothing is deleted).
    """
    grace = DEFAULT_GRACE_SECONDS if grace_seconds is None else grace_seconds
    live_manifests = {r[0] for r in store.catalog.query("SELECT DISTINCT digest FROM versions WHERE deleted = 0")}
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
    if not dry_run:
        for digest in report.blobs:
            store.blobs.delete(digest)
        for digest in report.manifests:
            store.backend.delete(f"manifests/{digest[:2]}/{digest}")
    return report



