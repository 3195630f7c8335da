"""verify: re-hash stored bytes and name every version and path they break; look every reference up.

Damaged blobs and records are the store's fault (exit 4 in the CLI); references whose source
changed, vanished, cannot be read or is not followed here are reported apart (exit 5), each
with its version, path, URI and what is wrong. References are checked by lookups, not by
reading their bytes (see :meth:`plait.store.references.ReferenceReader.check`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from plait.errors import CorruptRecordError
from plait.formats import records as R
from plait.index import versions as V
from plait.store.base import BaseStore as Store
from plait.store.checks import damaged_blobs
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

    A whole-store check also reads every event record (files and segments): the index skips a
    damaged one so reads go on, and this is where it is reported.

    :param spec: a version spec; ``None`` checks the whole store.
    """
    if spec is not None:
        versions = [ArtifactVersion.load(store, spec)]
    else:
        versions = ArtifactVersion.from_rows(store, V.rows(store.catalog, V.keys(store.catalog, live_only=True)))
    report = VerifyReport(versions=len(versions))
    wanted: dict[str, list[tuple[str, str]]] = {}
    refs = []
    for version in versions:
        try:
            manifest = version.manifest
        except CorruptRecordError as exc:
            report.problems.append((version.spec, "", version.digest, str(exc)))
            continue
        for entry in manifest.entries:
            if entry.ref is not None:
                refs.append((version.spec, entry))
            for digest, _ in entry.blobs:
                wanted.setdefault(digest, []).append((version.spec, entry.path))
    report.blobs = len(wanted)
    for digest in sorted(damaged_blobs(store, wanted)):
        for spec_, path in wanted[digest]:
            report.problems.append((spec_, path, digest, "missing or damaged blob"))
    if spec is None:
        _verify_events(store, report)
    report.problems.sort()
    if refs:
        report.references = len(refs)
        report.reference_problems = sorted(ReferenceReader(store).check(refs), key=lambda p: (p.version, p.path))
    return report


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
