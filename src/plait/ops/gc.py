"""gc: delete blobs and manifests that no live version references, in two phases.

A writer stores its blobs and manifest before its version record, and skips a blob (or
manifest) that is already stored. So "unreferenced now" is not "dead": a log in flight may be
about to reference it. gc is therefore mark-and-sweep across runs:

What is live comes from the version records (``versions/<name>/<n>``), every one of them read
by each gc, and from the index; events only say which versions were deleted.

1. **Mark.** Every ``gc(dry_run=False)`` lists what it found unreferenced (and older than the
   grace period) in one immutable record, ``gc/<ulid>`` (zlib JSON; ~1.8 MB for 100k digests).
   A gc with nothing to list and nothing to sweep writes none.
2. **Sweep.** A later gc deletes a blob only if it is unreferenced now, was listed by a mark at
   least ``grace_seconds`` old, and was not modified since that mark.
3. **Protect.** A writer that reuses a stored blob or manifest listed by any mark touches it
   (:func:`protect`) before it creates its version record; a touched blob is newer than the mark
   and is kept. One that a sweep already took is stored again.

What this assumes, as the grace period always did: a log takes less than ``grace_seconds``
from checking its blobs to creating its version record, and one gc runs at a time. A mark
stays readable until the mark of the gc that swept it is itself ``grace_seconds`` old, so every
writer that saw a blob before the sweep still finds the mark when it protects. The one window
left is a writer's touch landing between a sweep's last look at a blob and its delete.

``grace_seconds=0`` deletes at once, without marks (only safe when nothing is writing).
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from plait.base.ids import new_ulid
from plait.errors import CorruptRecordError, StoreError
from plait.formats import records as R
from plait.formats.treeview import TreeManifest
from plait.index import versions as V
from plait.ops.liveset import LiveSet
from plait.ops.packgc import (
    COMPACT_ABOVE,
    PackPlan,
    compact_index,
    condemned_packs,
    delete_index_files,
    delete_packs,
    dropped,
    plan_packs,
    repack,
    still_needed,
    superseded_index_files,
)
from plait.storage.blobs import blob_key
from plait.storage.packed import PackedBlobStore
from plait.storage.packindex import INDEX_PREFIX
from plait.storage.packs import PACKS_PREFIX
from plait.store.base import BaseStore as Store
from plait.store.base import manifest_key, record_key
from plait.store.distributed import pending_manifests
from plait.store.marks import MARK_FORMAT, MARKS_PREFIX, Mark, read_marks

#: Blobs and manifests are deleted at the earliest this long after a gc first marked them (seconds).
DEFAULT_GRACE_SECONDS = 3600.0


@dataclass
class GcReport:
    """What :func:`gc` found or did.

    :ivar dry_run: whether anything was deleted or marked.
    :ivar blobs: digests of blobs deleted now (or that would be, in a dry run).
    :ivar manifests: digests of manifests deleted now (or that would be).
    :ivar bytes: bytes those blobs and temporaries take.
    :ivar marked_blobs: unreferenced blobs recorded in this gc's mark; a later gc deletes them.
    :ivar marked_manifests: unreferenced manifests recorded in this gc's mark.
    :ivar marked_bytes: bytes the marked blobs take.
    :ivar deletable_after: ISO time after which a gc may delete what this one marked.
    :ivar kept_young: unreferenced blobs kept unmarked because they were written within the grace.
    :ivar temporaries: temporary files crashed writers left (local stores), older than the grace.
    :ivar marks_removed: earlier marks this gc removed because their sweep is old enough.
    :ivar packs: packs deleted now (or that would be); the dead blobs in them are in ``blobs``.
    :ivar repacked: packs whose live blobs were copied into new packs (they are marked, or
        deleted at once with no grace period).
    :ivar marked_packs: packs recorded in this gc's mark; a later gc deletes them.
    :ivar index_files: superseded index files deleted (a compacted index file replaced them).
    """

    dry_run: bool
    blobs: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)
    bytes: int = 0
    marked_blobs: list[str] = field(default_factory=list)
    marked_manifests: list[str] = field(default_factory=list)
    marked_bytes: int = 0
    deletable_after: str | None = None
    kept_young: int = 0
    temporaries: list[str] = field(default_factory=list)
    marks_removed: int = 0
    packs: list[str] = field(default_factory=list)
    repacked: list[str] = field(default_factory=list)
    marked_packs: list[str] = field(default_factory=list)
    index_files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready counts (what ``plait gc --json`` prints)."""
        return {
            "dry_run": self.dry_run, "blobs": len(self.blobs), "manifests": len(self.manifests), "bytes": self.bytes,
            "marked_blobs": len(self.marked_blobs), "marked_manifests": len(self.marked_manifests),
            "marked_bytes": self.marked_bytes, "deletable_after": self.deletable_after,
            "kept_young": self.kept_young, "temporaries": len(self.temporaries), "marks_removed": self.marks_removed,
            "packs": len(self.packs), "repacked": len(self.repacked), "marked_packs": len(self.marked_packs),
            "index_files": len(self.index_files),
        }


def gc(store: Store, *, dry_run: bool = True, grace_seconds: float | None = None) -> GcReport:
    """Mark what no live version references and delete what an earlier gc marked.

    :param dry_run: only report what a real run would delete and mark (the default).
    :param grace_seconds: how long a mark must be before what it lists is deleted, and how
        young an unreferenced blob is kept unmarked (default one hour; 0 deletes at once).
    :returns: what was deleted, marked and kept, with the bytes involved.
    :raises CorruptRecordError: if a live version's manifest cannot be read (nothing is deleted).
    :raises StoreError: for a negative grace period.
    """
    grace = DEFAULT_GRACE_SECONDS if grace_seconds is None else grace_seconds
    if grace < 0:
        raise StoreError(f"the grace period must be zero or more seconds, not {grace}")
    # parts of a distributed version not finished yet are kept whole: the finish needs them
    live_manifests = V.live_digests(store.catalog) | _recorded_digests(store) | pending_manifests(store)
    now = time.time()  # before the walk: what is written meanwhile is younger, so kept
    marks = read_marks(store) if grace > 0 else []
    packed = isinstance(store.blobs, PackedBlobStore)
    if packed:
        store.blobs.index.refresh()  # type: ignore[attr-defined]
    live_blobs = LiveSet(store.blobs.index.active if packed else (),  # type: ignore[attr-defined]
                         condemned_packs(_ripe(marks, now, grace)) if grace else ())
    for digest in live_manifests:
        manifest = store.manifest(digest)  # a damaged manifest stops gc before it deletes anything
        if isinstance(manifest, TreeManifest):
            live_blobs.add_tree(manifest.digest, store.node)
        else:
            for blob in manifest.blobs():
                live_blobs.add(blob)
    live_blobs.finish()
    report = GcReport(dry_run=dry_run)
    plan = plan_packs(store, live_blobs, now, grace) if packed else None
    # the live blobs no index file lists: a format-1 blob copied into a pack is a dead duplicate
    loose_live = live_blobs.loose
    blob_sizes = {k.rsplit("/", 1)[-1]: n for k, n in store.backend.find("blobs").items()}
    manifest_keys = {k.rsplit("/", 1)[-1]: k for k in store.backend.find("manifests")}
    _sort(store, report, marks, blob_sizes, loose_live, now, grace, is_blob=True)
    _sort(store, report, marks, manifest_keys, live_manifests, now, grace, is_blob=False)
    if plan is not None:
        _judge_packs(store, report, plan, marks, live_blobs, now, grace)
    for prefix in ("blobs", PACKS_PREFIX, INDEX_PREFIX, "manifests", "versions", "events"):
        for key, size in sorted(store.backend.stale_temporaries(prefix, now - grace).items()):
            report.temporaries.append(key)
            report.bytes += size
    if grace > 0 and (report.marked_blobs or report.marked_manifests or report.marked_packs):
        report.deletable_after = datetime.fromtimestamp(now + grace, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not dry_run:
        _sweep(store, report, marks, blob_sizes)
        if plan is not None:
            _sweep_packs(store, report, plan, live_blobs, now, grace)
        # a sweep leaves a mark even when it marks nothing: once that is a grace old, the
        # marks it swept are removed
        if grace > 0 and (report.marked_blobs or report.marked_manifests or report.marked_packs or _ripe(marks, now, grace)):
            _write_mark(store, report)
            report.marks_removed = _remove_spent_marks(store, marks, time.time(), grace)
    return report


def _sort(store: Store, report: GcReport, marks: list[Mark], found: dict[str, Any], live: set[str],
          now: float, grace: float, *, is_blob: bool) -> None:
    """File each unreferenced blob (or manifest) as deletable now, to mark, or young."""
    deletable, marked = (report.blobs, report.marked_blobs) if is_blob else (report.manifests, report.marked_manifests)
    condemned = _condemned(marks, now, grace, is_blob)
    for digest in sorted(found):
        if digest in live:
            continue
        key = blob_key(digest) if is_blob else found[digest]
        mtime = store.backend.modified(key) if grace > 0 else None
        if grace == 0 or (digest in condemned and mtime is not None and mtime < condemned[digest]):
            deletable.append(digest)
            report.bytes += found[digest] if is_blob else 0
        elif mtime is None or mtime > now - grace:
            if is_blob:
                report.kept_young += 1
        else:
            marked.append(digest)
            report.marked_bytes += found[digest] if is_blob else 0


def _judge_packs(store: Store, report: GcReport, plan: PackPlan, marks: list[Mark], live: LiveSet,
                 now: float, grace: float) -> None:
    """File packs as deletable now (with no grace, or marked by a ripe mark), to repack, or to mark."""
    report.kept_young += plan.young
    stored = set(plan.dead) | set(plan.repack) | plan.listed
    condemned = condemned_packs(_ripe(marks, now, grace)) & stored if grace else set()
    judged = set(plan.dead) | set(plan.repack)
    if grace == 0:
        report.packs = sorted(judged)
        report.repacked = sorted(plan.repack)
    else:
        report.packs = sorted(condemned)
        report.repacked = sorted(set(plan.repack) - condemned)
        report.marked_packs = sorted(judged - condemned)
        marked = dropped(plan, set(report.marked_packs), live)
        report.marked_blobs.extend(sorted(set(marked) - set(report.marked_blobs)))
        report.marked_bytes += sum(marked.values())
    gone = dropped(plan, set(report.packs), live)
    report.blobs.extend(sorted(set(gone) - set(report.blobs)))
    report.bytes += sum(gone.values())


def _sweep_packs(store: Store, report: GcReport, plan: PackPlan, live: LiveSet, now: float, grace: float) -> None:
    """Repack, then delete the packs found deletable (each checked once more), then old index files."""
    if report.repacked:
        repack(store, plan, live, set(report.repacked) | set(plan.dead))
    if report.packs:
        keep = still_needed(store, plan, set(report.packs), live)  # a writer reused a blob since: it wrote a copy, or keep
        for pack_id in keep:
            report.packs.remove(pack_id)
            gone = dropped(plan, {pack_id}, live)
            report.blobs = [d for d in report.blobs if d not in gone]
            report.bytes -= sum(gone.values())
        delete_packs(store, set(report.packs))
        index = store.blobs.index  # type: ignore[attr-defined]
        gone = dropped(plan, set(report.packs), live)
        for digest in [d for d in report.blobs if d in index]:  # a copy in a pack that stays (repacked, or protected)
            report.blobs.remove(digest)
            report.bytes -= gone.get(digest, 0)
    elif len(store.blobs.index.files) > COMPACT_ABOVE:  # type: ignore[attr-defined]
        compact_index(store)
    report.index_files = superseded_index_files(store, time.time(), grace)
    delete_index_files(store, report.index_files)


def _ripe(marks: list[Mark], now: float, grace: float) -> list[Mark]:
    """Return the marks that let this gc delete what they list.

    A mark does once it is ``grace`` old, and only until a later gc has swept it (a mark at
    least ``grace`` newer): writers that saw that sweep coming still read it to protect.
    """
    return [m for m in marks if m.time <= now - grace and not any(o.time >= m.time + grace for o in marks)]


def _condemned(marks: list[Mark], now: float, grace: float, is_blob: bool) -> dict[str, float]:
    """Return ``{digest: time of the newest ripe mark listing it}``."""
    result: dict[str, float] = {}
    for mark in _ripe(marks, now, grace):
        for digest in mark.blobs if is_blob else mark.manifests:
            result[digest] = max(result.get(digest, 0.0), mark.time)
    return result


def _sweep(store: Store, report: GcReport, marks: list[Mark], blob_sizes: dict[str, int]) -> None:
    """Delete what the report found deletable, looking at each blob once more just before."""
    for key in report.temporaries:
        store.backend.delete(key)
    grace_marks = {m.key for m in marks}
    for digest in [d for d in report.blobs if d in blob_sizes]:  # loose blobs (packed ones go with their pack)
        key = blob_key(digest)
        if grace_marks and not _still_condemned(store, key, digest, marks, is_blob=True):
            report.blobs.remove(digest)  # a writer touched it since: it is reused, keep it
            report.bytes -= blob_sizes.get(digest, 0)
            continue
        store.blobs.delete(digest)
    for digest in list(report.manifests):
        key = manifest_key(digest)
        if grace_marks and not _still_condemned(store, key, digest, marks, is_blob=False):
            report.manifests.remove(digest)
            continue
        store.backend.delete(key)


def _still_condemned(store: Store, key: str, digest: str, marks: list[Mark], *, is_blob: bool) -> bool:
    mtime = store.backend.modified(key)
    newest = max((m.time for m in marks if digest in (m.blobs if is_blob else m.manifests)), default=0.0)
    return mtime is not None and mtime < newest


def _write_mark(store: Store, report: GcReport) -> None:
    body = {"format": MARK_FORMAT, "blobs": report.marked_blobs, "manifests": report.marked_manifests,
            "packs": report.marked_packs}
    store.backend.create(f"{MARKS_PREFIX}/{new_ulid()}", zlib.compress(json.dumps(body).encode(), 6))


def _remove_spent_marks(store: Store, marks: list[Mark], now: float, grace: float) -> int:
    """Delete marks a later gc swept at least ``grace`` ago; no writer in flight needs them."""
    spent = [m for m in marks if any(o.time >= m.time + grace and o.time <= now - grace for o in marks)]
    for mark in spent:
        store.backend.delete(mark.key)
        store.shared.marks.pop(mark.key, None)
    return len(spent)


def _recorded_digests(store: Store) -> set[str]:
    """Return the manifest digests of every version record in the store not deleted.

    Liveness comes from the records themselves, not from what events say: a record that no
    event announced (its writer died in between), or one an event misdescribes, keeps its data.
    """
    deleted = set(V.keys(store.catalog)) - set(V.keys(store.catalog, live_only=True))
    keys = {found: k for k in store.backend.find("versions") if (found := record_key(k)) is not None and found not in deleted}
    digests = set()
    for key, data in store.backend.read_many(list(keys.values())).items():
        found = record_key(key)
        assert found is not None
        try:
            digests.add(R.decode_version(data, *found).digest)
        except CorruptRecordError:
            continue  # a damaged record protects nothing by itself; verify reports it
    return digests
