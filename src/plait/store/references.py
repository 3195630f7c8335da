"""Reading references: exactly the bytes that were logged, or a clear refusal — one rule for every read.

Every read of a reference (a download, :meth:`plait.ArtifactVersion.open` and ``read_bytes``,
``plait.load`` and ``plait get``, which download, the checksum pass of a log) goes through a
:class:`ReferenceReader`:

1. the reader's rules (:mod:`plait.store.refpolicy`) decide whether and how each reference may be
   read, for every entry of the operation before anything is read;
2. a recorded VersionId is read as that version; otherwise the object is read only if its
   identity (ETag, size, mtime, inode, …) still matches the record, checked on the answer before a
   byte is kept (and after the last, where the source allows) — else
   :class:`~plait.errors.ReferenceChangedError` names the version, the path and what changed (a
   deleted object is a change too);
3. when a checksum was recorded, the bytes read must hash to it;
4. the local copy that ``open`` reads is kept under the reference's identity key and served only
   once the source confirms that identity (a lookup), so it never serves bytes the source no
   longer has.

``plait verify`` checks references by lookups only (:meth:`ReferenceReader.check`): one listing
for many references below one S3 prefix, concurrent lookups otherwise. It reports changed,
missing, unreadable and refused references apart from damaged blobs.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait.base.parallel import parallel_map
from plait.errors import NotFoundError, ReferenceChangedError, ReferenceRefusedError, SourceError
from plait.formats.manifest import Entry
from plait.formats.reference import Reference, changes, identity_key
from plait.storage.backend import temporary_name, unlink_quietly
from plait.storage.digest import new_hasher
from plait.storage.sources import ObjectInfo
from plait.store.refpolicy import Plan, policy_for

if TYPE_CHECKING:
    from plait.storage.s3source import S3Source
    from plait.store.base import BaseStore

#: At least this many references below one S3 prefix are checked with one listing instead of HEADs.
LISTING_MIN = 64
#: References read at once by a checksum pass.
READ_WORKERS = 8


@dataclass(frozen=True)
class ReferenceProblem:
    """A reference ``plait verify`` found broken.

    :ivar version: ``name:vN``.
    :ivar path: the entry path.
    :ivar uri: the reference's URI.
    :ivar kind: ``changed``, ``missing``, ``unreadable`` or ``refused``.
    :ivar detail: what changed, or why it could not be checked.
    """

    version: str
    path: str
    uri: str
    kind: str
    detail: str


class _Sink:
    """Where read bytes go: a file (or nowhere), hashed on the way when a checksum is wanted."""

    def __init__(self, fileobj: Any, algorithm: str | None) -> None:
        self.fileobj = fileobj
        self.hasher = new_hasher(algorithm) if algorithm else None
        self.size = 0

    def write(self, data: bytes | memoryview) -> int:
        if self.hasher is not None:
            self.hasher.update(data)
        if self.fileobj is not None:
            self.fileobj.write(data)
        self.size += len(data)
        return len(data)


class ReferenceReader:
    """Reads the references of one store for one operation, under its reader's rules.

    :param store: the store the versions belong to (its user settings and options decide).
    :raises SettingsError: for a malformed user settings file.
    """

    def __init__(self, store: BaseStore) -> None:
        self.store = store
        self.policy = policy_for(store)

    def plans(self, entries: Iterable[Entry], label: str) -> list[Plan]:
        """Decide how to read each reference entry; refuse before anything is read.

        :raises ReferenceRefusedError: for the first one this machine does not follow.
        """
        return [self.policy.plan(e, label) for e in entries]

    def fetch(self, entry: Entry, plan: Plan, target: str, label: str) -> None:
        """Write a reference's bytes to ``target`` (whole, or nothing), checked as the module says.

        :raises ReferenceChangedError: if the source no longer has what was logged.
        :raises SourceError: if it cannot be read.
        """
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        tmp = temporary_name(target)
        try:
            with open(tmp, "wb") as f:
                self._read(entry, plan, f, label)
            os.replace(tmp, target)
        finally:
            unlink_quietly(tmp)

    def local_copy(self, entry: Entry, label: str) -> str:
        """Return a local file holding a reference's bytes, kept in the cache under its identity.

        :raises ReferenceRefusedError: if this machine does not follow it.
        :raises ReferenceChangedError: if the source no longer has what was logged.
        """
        plan = self.policy.plan(entry, label)
        target = os.path.join(self.store.files_cache_dir, "refs", plan.key[:2], plan.key)
        try:
            cached = os.path.getsize(target) == entry.size
        except FileNotFoundError:
            cached = False
        if cached:
            self._confirm(entry, plan, label)
        else:
            self.fetch(entry, plan, target, label)
        return target

    def _confirm(self, entry: Entry, plan: Plan, label: str) -> None:
        """Check that the source still has what was logged (one lookup), or raise."""
        assert entry.ref is not None
        now = self.policy.source(plan).head(plan.uri, entry.ref.version_id)
        if now is None:
            raise _deleted(entry, label)
        found = changes(entry.ref, entry.size, now)
        if found:
            raise _changed(entry, label, found)

    def _read(self, entry: Entry, plan: Plan, out: Any, label: str) -> str | None:
        """Copy one reference to ``out``; return the digest of its bytes when a checksum is wanted."""
        ref = entry.ref
        assert ref is not None
        algorithm = self.store.algorithm if ref.checksum or out is None else None
        sink = _Sink(out, algorithm)

        def check(now: ObjectInfo) -> None:
            found = changes(ref, entry.size, now)
            if found:
                raise _changed(entry, label, found)

        try:
            self.policy.source(plan).read(plan.uri, sink, check, version_id=ref.version_id, etag=ref.etag)  # type: ignore[arg-type]
        except NotFoundError:
            raise _deleted(entry, label) from None
        if sink.size != entry.size:
            raise _changed(entry, label, [f"size {entry.size} -> {sink.size}"])
        digest = sink.hasher.hexdigest() if sink.hasher is not None else None
        if ref.checksum and digest != ref.checksum:
            raise _changed(entry, label, [f"its bytes hash to {digest}, not the recorded {ref.checksum}"])
        return digest

    # -- logging: checksums ---------------------------------------------------------------------

    def checksums(self, entries: list[Entry], label: str, previous: dict[str, Entry]) -> list[Entry]:
        """Return ``entries`` with the digest of each one's bytes recorded (read once, concurrently).

        :param previous: entries of an earlier version by identity key: an object whose identity
            is unchanged keeps its checksum without being read again.
        :raises ReferenceChangedError: if an object changed since it was listed.
        """

        def one(entry: Entry) -> Entry:
            assert entry.ref is not None
            known = previous.get(identity_key(entry.ref, entry.size))
            if known is not None and known.ref is not None and known.ref.checksum:
                digest = known.ref.checksum
            else:
                digest = self._read(entry, self.policy.plan(entry, label, trusted=True), None, label)
            return entry.model_copy(update={"ref": entry.ref.model_copy(update={"checksum": digest})})

        return parallel_map(one, entries, READ_WORKERS)

    # -- verify ---------------------------------------------------------------------------------

    def check(self, items: list[tuple[str, Entry]]) -> list[ReferenceProblem]:
        """Look every reference up and return those that changed, are gone, or cannot be checked.

        :param items: ``(version spec, entry)`` pairs; an object shared by several is looked up once.
        """
        problems: list[ReferenceProblem] = []
        todo: dict[str, list[_Lookup]] = {}  # by source
        seen: dict[str, _Lookup] = {}
        for spec, entry in items:
            assert entry.ref is not None
            try:
                plan = self.policy.plan(entry, spec)
            except (ReferenceRefusedError, SourceError) as exc:
                problems.append(ReferenceProblem(spec, entry.path, entry.ref.uri, "refused", str(exc)))
                continue
            if plan.key in seen:
                seen[plan.key].owners.append((spec, entry.path))
                continue
            lookup = seen[plan.key] = _Lookup(entry, plan, [(spec, entry.path)])
            todo.setdefault(repr((plan.scheme, sorted(plan.options.items(), key=str))), []).append(lookup)
        for group in todo.values():
            problems.extend(self._check_group(group))
        return problems

    def _check_group(self, group: list[_Lookup]) -> list[ReferenceProblem]:
        source = self.policy.source(group[0].plan)
        try:
            seen = _listed(source, group) if _is_s3(source) and len(group) >= LISTING_MIN else {}
        except SourceError:
            seen = {}  # the listing failed: look each one up, so each gets its own answer
        rest = [i for i in range(len(group)) if i not in seen]
        found = source.heads([(group[i].plan.uri, group[i].ref.version_id) for i in rest])
        seen.update(zip(rest, found))
        out = []
        for i, lookup in enumerate(group):
            now = seen[i]
            if isinstance(now, SourceError):
                kind, detail = "unreadable", str(now)
            elif now is None:
                kind, detail = "missing", _deleted(lookup.entry, lookup.owners[0][0]).changes[0]
            else:
                found_changes = changes(lookup.ref, lookup.entry.size, now)
                if not found_changes:
                    continue
                kind, detail = "changed", ", ".join(found_changes)
            out.extend(ReferenceProblem(spec, path, lookup.ref.uri, kind, detail) for spec, path in lookup.owners)
        return out


@dataclass
class _Lookup:
    """One object to look up for ``verify``, and the ``(version, path)`` entries that reference it."""

    entry: Entry
    plan: Plan
    owners: list[tuple[str, str]]

    @property
    def ref(self) -> Reference:
        assert self.entry.ref is not None
        return self.entry.ref


def _is_s3(source: object) -> bool:
    """Tell whether ``source`` reads S3 (which lists a folder cheaper than it heads its files); its
    module is looked up, not imported: a process that never opened S3 holds no S3 source."""
    module = sys.modules.get("plait.storage.s3source")
    return module is not None and isinstance(source, module.S3Source)


def _listed(source: S3Source, group: list[_Lookup]) -> dict[int, ObjectInfo | None | SourceError]:
    """Find the objects of ``group`` in one listing of their common prefix; what is not there is left out."""
    prefix = os.path.commonprefix([g.plan.uri for g in group])
    prefix = prefix[: prefix.rfind("/") + 1]
    pinned = any(g.ref.version_id for g in group)
    listing = source.listing(prefix, versions=pinned, limit=max(2 * len(group), len(group) + 10_000))
    if listing is None:
        return {}
    latest = {o.uri: o for o in listing if o.latest}
    versions = {(o.uri, o.version_id): o for o in listing}
    out: dict[int, ObjectInfo | None | SourceError] = {}
    for i, g in enumerate(group):
        hit = versions.get((g.plan.uri, g.ref.version_id)) if g.ref.version_id else latest.get(g.plan.uri)
        if hit is not None:
            out[i] = hit
    return out


def _changed(entry: Entry, label: str, found: list[str]) -> ReferenceChangedError:
    assert entry.ref is not None
    return ReferenceChangedError(
        f"{label}/{entry.path}: {entry.ref.uri} changed since it was logged ({'; '.join(found)}); log it again to "
        "record what is there now", version=label, path=entry.path, uri=entry.ref.uri, changes=found)


def _deleted(entry: Entry, label: str) -> ReferenceChangedError:
    assert entry.ref is not None
    what = f"version {entry.ref.version_id} of {entry.ref.uri}" if entry.ref.version_id else entry.ref.uri
    return ReferenceChangedError(
        f"{label}/{entry.path}: {what} was deleted since it was logged", version=label, path=entry.path,
        uri=entry.ref.uri, changes=[f"{what} was deleted"])
