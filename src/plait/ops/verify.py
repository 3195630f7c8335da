"""verify: re-hash stored bytes, re-read every record, and name every version, path and record that is damaged;
look every reference up.

Damaged blobs and records are the store's fault (exit 4 in the CLI); references whose source
changed, vanished, cannot be read or is not followed here are reported apart (exit 5), each
with its version, path, URI and what is wrong. References are checked by lookups, not by
reading their bytes (see :meth:`plait.store.references.ReferenceReader.check`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from plait.base.ids import ulid_time
from plait.errors import CorruptRecordError
from plait.formats import records as R
from plait.formats.treeview import TreeManifest, entry_of
from plait.index import versions as V
from plait.index.fold import IDENTITY
from plait.storage.packed import PackedBlobStore
from plait.store.base import BaseStore as Store
from plait.store.base import record_key
from plait.store.checks import Found, damaged_blobs, tree_problems
from plait.store.references import ReferenceProblem, ReferenceReader
from plait.tracking.nodes import ArtifactVersion


@dataclass
class VerifyReport:
    """What :func:`verify_store` found.

    :ivar versions: how many versions were checked.
    :ivar blobs: how many distinct blobs were read.
    :ivar events: how many event records (files and segments) were read (whole-store checks).
    :ivar problems: ``(version spec, entry path, digest, reason)`` for each broken file; a
        damaged event record is ``("events", key, "", reason)``.
    :ivar references: how many reference entries were checked.
    :ivar reference_problems: references that changed, are missing, unreadable or refused.
    """

    versions: int = 0
    blobs: int = 0
    events: int = 0
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)
    references: int = 0
    reference_problems: list[ReferenceProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing was found broken."""
        return not self.problems and not self.reference_problems

    @property
    def exit_code(self) -> int:
        """``0`` if all is well, ``4`` if stored bytes or records are damaged, else ``5`` if references are broken."""
        return 4 if self.problems else 5 if self.reference_problems else 0


def verify_store(store: Store, spec: str | None = None) -> VerifyReport:
    """Check one version (or every live version): each blob is read once and hashed.

    The version records are read too (each must be there, readable, and what the index took it
    for). A whole-store check also reads every record in ``versions/`` and every event record
    (files and segments), and lists the announcements the index refused: the index skips a
    damaged one so reads go on, and this is where it is reported.

    :param spec: a version spec; ``None`` checks the whole store.
    """
    if spec is not None:
        versions = [ArtifactVersion.load(store, spec)]
    else:
        versions = ArtifactVersion.from_rows(store, V.rows(store.catalog, V.keys(store.catalog, live_only=True)))
    report = VerifyReport(versions=len(versions))
    wanted: dict[str, list[tuple[str, str]]] = {}
    sizes: dict[str, set[int]] = {}
    refs = []
    memo: dict[str, Found] = {}
    counted = [0]
    with _packs_checked(store, report, whole=spec is None):
        _check_versions(store, report, versions, wanted, sizes, refs, memo, counted)
        report.blobs = len(wanted) + counted[0]
        for digest in sorted(damaged_blobs(store, sizes)):
            for spec_, path in wanted[digest]:
                report.problems.append((spec_, path, digest, "missing or damaged blob, or not the size the manifest says"))
    _verify_records(store, report, None if spec is None else [(v.name, v.number) for v in versions])
    if spec is None:
        _verify_events(store, report)
    report.problems.sort()
    if refs:
        report.references = len(refs)
        report.reference_problems = sorted(ReferenceReader(store).check(refs), key=lambda p: (p.version, p.path))
    return report


def _check_versions(store: Store, report: VerifyReport, versions: list[ArtifactVersion], wanted: dict[str, list[tuple[str, str]]],
                    sizes: dict[str, set[int]], refs: list, memo: dict[str, Found], counted: list[int]) -> None:
    """Check every tree (streamed) and gather the blobs of flat manifests into ``wanted`` and ``sizes``."""
    for version in versions:
        try:
            manifest = version.manifest
        except CorruptRecordError as exc:
            report.problems.append((version.spec, "", version.digest, str(exc)))
            continue
        if isinstance(manifest, TreeManifest):  # streamed; a subtree shared by versions is checked once
            problems, tree_refs = tree_problems(store, manifest.digest, memo, counted)
            report.problems += [(version.spec, path, digest, problem) for path, digest, problem in problems]
            refs += [(version.spec, entry_of(p, n, i)) for p, n, i in tree_refs]
            continue
        for entry in manifest.entries:
            if entry.ref is not None:
                refs.append((version.spec, entry))
            for digest, size in entry.blobs:
                wanted.setdefault(digest, []).append((version.spec, entry.path))
                sizes.setdefault(digest, set()).add(size)


@contextmanager
def _packs_checked(store: Store, report: VerifyReport, *, whole: bool) -> Iterator[None]:
    """A whole-store check of a packed store reads every pack once, first (name, header, every
    blob), reports the damaged ones and the damaged index files, and answers the blob checks
    that follow from what it read."""
    blobs = store.blobs
    if not whole or not isinstance(blobs, PackedBlobStore):
        yield
        return
    blobs.index.reload()  # every index file read afresh: a damaged one is named here
    checked, packs = blobs.check_all()
    for key, reason in packs:
        report.problems.append(("packs", key, "", reason))
    for name, reason in sorted(blobs.index.damaged.items()):
        report.problems.append(("index", f"index/{name}", "", reason))
    with blobs.remembering(checked):
        yield


def _verify_records(store: Store, report: VerifyReport, keys: list[tuple[str, int]] | None) -> None:
    """Add every version record that is missing, unreadable, or not what the index took it for,
    and every event whose announcement of a version the index refused.

    :param keys: the versions to check (``None``: every record in the store and every version indexed).
    """
    catalog = store.catalog
    refused = V.rejected(catalog) if keys is None else []
    if keys is None:
        stored = {found: k for k in store.backend.find("versions") if (found := record_key(k)) is not None}
        announced = {(n, v) for _, n, v, _ in refused if v is not None}
        wanted = sorted(set(stored) | set(V.keys(catalog)) | announced)
    else:
        wanted = sorted(keys)
    blobs = store.backend.read_many([R.version_key(*k) for k in wanted])
    indexed = {r.key: r for r in V.rows(catalog, wanted)}
    for name, number in wanted:
        key = R.version_key(name, number)
        spec = f"{name}:v{number}"
        if key not in blobs:
            report.problems.append((spec, key, "", f"the version record {key} is missing; restore it from a backup or copy"))
            continue
        try:
            record = R.decode_version(blobs[key], name, number)
        except CorruptRecordError as exc:
            report.problems.append((spec, key, "", str(exc)))
            continue
        row = indexed.get((name, number))
        changed = [f for f in IDENTITY if row is not None and getattr(row, f) != getattr(record, f)]
        if changed:
            report.problems.append((spec, key, "", f"the record was rewritten after it was indexed ({', '.join(changed)} "
                                                   "changed); a version record never changes: find out who wrote it"))
    for event_id, name, number, reason in refused:
        report.problems.append((f"{name}:v{number}", f"events/{ulid_time(event_id):%Y-%m-%d}/{event_id}", "",
                                f"event ignored: {reason}"))


def _verify_events(store: Store, report: VerifyReport) -> None:
    """Add every damaged event file, segment or event inside a segment to ``report``."""
    keys = [k for k in store.backend.find("events") if k.count("/") == 2 or R.parse_segment_name(k[len("events/"):])]
    blobs = store.backend.read_many(keys)
    for key, data in blobs.items():
        if key.count("/") == 2:
            try:
                R.decode(R.Event, data, key)
                report.events += 1
            except CorruptRecordError as exc:
                report.problems.append(("events", key, "", str(exc)))
            continue
        try:
            events, damaged = R.decode_segment(data, key)
        except CorruptRecordError as exc:
            report.problems.append(("events", key, "", str(exc)))
            continue
        report.events += len(events)
        if damaged:
            report.problems.append(("events", key, "", f"{damaged} damaged events in segment {key}"))
