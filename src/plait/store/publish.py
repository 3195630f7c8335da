"""Publishing: turn an Artifact draft into stored blobs, a manifest and a new version record.

The order is what makes a crash harmless: blobs first, then the manifest, then the version
record (exclusive create allocates its number), then the event that announces it. A crash at
any point leaves unreferenced blobs at most, never a version whose data is missing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from plait.base.ids import utcnow
from plait.base.parallel import parallel_map_batched
from plait.base.progress import NO_PROGRESS, Progress
from plait.errors import CorruptRecordError, InvalidInputError, NotFoundError, StoreError
from plait.formats import records as R
from plait.formats.artifact import WRITTEN, Artifact, BytesSource, FileSource, ReferenceSource, StoredSource
from plait.formats.manifest import Entry, Manifest
from plait.formats.reference import identity_key
from plait.formats.treeview import TreeManifest
from plait.index import versions as V
from plait.index.rows import VersionRow
from plait.index.statcache import StatKey, now_settled
from plait.storage.digest import FileDigest, digest_file, hash_bytes
from plait.store.marks import protect
from plait.store.references import ReferenceReader
from plait.store.treebuild import store_blobs, store_entries
from plait.store.treestream import Done, ReusedNodeMissing, TreeStream, stat_sources

if TYPE_CHECKING:
    from plait.store.base import BaseStore as Store

#: Prefix of the per-name lock (in the store's shared state) that makes "is this content a
#: version already?" and "make it one" one step for the threads of a process.
_NAME_LOCK = "plait.publish-lock:"

#: Threads hashing and copying files. Two saturate both cores: xxh3 releases the GIL while it
#: hashes a buffer, and file reads release it too.
HASH_WORKERS = 2


def stat_files(artifact: Artifact) -> dict[str, StatKey]:
    """Return the stat key of every local file of a draft.

    :raises SourceError: for a file that no longer exists.
    """
    return stat_sources(artifact.sources, artifact.name)


def tree_signature(artifact: Artifact, stats: dict[str, StatKey], algorithm: str, settled: int) -> str | None:
    """Return a digest of where every file of a draft goes and its stat, or ``None`` when the
    draft holds anything but local files (bytes and references are not covered by a stat) or a
    file that has not settled (changed after ``settled``, an mtime from :func:`~plait.index.statcache.settled_before`).

    Equal signatures mean equal manifests, as far as the stat cache can tell (see
    :mod:`plait.index.statcache`).
    """
    files = [s for s in artifact.sources if isinstance(s, FileSource)]
    if not files or len(files) != len(artifact.sources):
        return None
    lines = [algorithm]
    for src in files:
        inode, size, mtime_ns = stats[src.local]
        if mtime_ns > settled:
            return None
        lines.append(f"{src.path}\0{src.local}\0{inode}\0{size}\0{mtime_ns}")
    return hash_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))


@dataclass(frozen=True)
class Survey:
    """The stat of every local file of a draft, the draft's tree signature (or ``None``), and the
    newest mtime among them the stat cache may trust (see :func:`~plait.index.statcache.settled_before`)."""

    stats: dict[str, StatKey]
    signature: str | None
    settled: int


def survey(artifact: Artifact, algorithm: str) -> Survey:
    """Stat every local file of a draft once, for :func:`known_manifest` and :func:`build_manifest`
    (a format-1 store; a format-2 store walks the draft folder by folder instead)."""
    settled = now_settled()
    stats = stat_files(artifact)
    return Survey(stats, tree_signature(artifact, stats, algorithm, settled), settled)


def known_manifest(store: Store, artifact: Artifact) -> tuple[str | None, Survey]:
    """Return the digest of the manifest a draft would make, when its files' stats say it is
    known without reading them, and the survey (to hand to :func:`build_manifest`); format 1."""
    found = survey(artifact, store.algorithm)
    if found.signature is None:
        return None, found
    return store.stat_cache.tree(found.signature), found


def build_manifest(store: Store, artifact: Artifact, progress: Progress = NO_PROGRESS,
                   surveyed: Survey | None = None) -> Manifest:
    """Hash every source of a draft and store the blobs the store lacks; return the manifest.

    Unchanged files (same inode, size and mtime as when last hashed) are not read again. When
    the result equals a live version's manifest, its blobs are known to be stored (gc keeps a
    live version's blobs) and the store is not asked about each one.

    :param surveyed: the files' stats and signature, if :func:`known_manifest` already took them.
    :raises SourceError: for a file that vanished, cannot be read, or changed while read.
    """
    files = [s for s in artifact.sources if isinstance(s, FileSource)]
    surveyed = survey(artifact, store.algorithm) if surveyed is None else surveyed
    stats = surveyed.stats
    cached = store.stat_cache.lookup(stats.items())
    todo = [s.local for s in files if s.local not in cached]
    progress.start("hashing", sum(stats[p][1] for p in todo))
    algorithm = store.algorithm  # once: a store not created yet reads its plait.json on each ask (a request on S3)
    hashed = parallel_map_batched(lambda p: digest_file(p, algorithm, on_bytes=progress.advance), todo, lambda p: stats[p][1], HASH_WORKERS)
    progress.finish()
    store.stat_cache.remember(((p, stats[p], fd) for p, fd in zip(todo, hashed)), settled=surveyed.settled)
    digests: dict[str, FileDigest] = {**cached, **dict(zip(todo, hashed))}

    entries = []
    for src in artifact.sources:
        if isinstance(src, FileSource):
            fd = digests[src.local]
            entries.append(Entry(path=src.path, digest=fd.digest, size=fd.size, chunks=fd.chunks))
        elif isinstance(src, BytesSource):
            entries.append(Entry(path=src.path, digest=hash_bytes(src.data, store.algorithm), size=len(src.data)))
        elif isinstance(src, (ReferenceSource, StoredSource)):
            entries.append(src.entry if src.entry.path == src.path else src.entry.model_copy(update={"path": src.path}))
    entries = _with_checksums(store, artifact, entries)
    manifest = Manifest.of(entries, store.algorithm)
    if surveyed.signature is not None:
        store.stat_cache.remember_tree(surveyed.signature, manifest.digest)
    if store.exists and V.by_content(store.catalog, manifest.digest):
        return manifest

    check_stored(store, artifact)
    store_blobs(store, files, digests, stats, progress)
    store_bytes(store, artifact)
    return manifest


def store_bytes(store: Store, artifact: Artifact) -> None:
    """Store the bytes added to a draft by value."""
    for src in artifact.added:
        if isinstance(src, BytesSource):
            store.blobs.put_bytes(src.data)


def check_stored(store: Store, artifact: Artifact, lost: Iterable[str] = ()) -> None:
    """Refuse a draft whose reused files are not in this store (another store's, or collected since).

    Files of a live version are kept by gc, so only those whose version is gone are looked up.

    :param lost: blobs a sweep took since they were found stored (see :func:`~plait.store.marks.protect`).
    :raises InvalidInputError: for files another store holds.
    :raises NotFoundError: naming the version whose files were collected.
    """
    stored = [s for s in artifact.added if isinstance(s, StoredSource)]
    if not stored:
        return
    lost = set(lost)
    by_origin: dict[str, list[StoredSource]] = {}
    for src in stored:
        if src.store_id != store.id:
            if src.origin == WRITTEN:
                raise InvalidInputError(f"{src.path!r} of the draft of {artifact.name!r} was written into another store; "
                                        "log the draft to the store it was written into")
            raise InvalidInputError(f"the draft of {artifact.name!r} reuses files of {src.origin} from another store; "
                                    f"log it to that store, or `plait sync` {src.origin} here first")
        by_origin.setdefault(src.origin, []).append(src)
    written = by_origin.pop(WRITTEN, [])
    if written:  # in packs of this process, or stored before: dropped if a pack write failed since
        digests = {d for s in written for d, _ in s.entry.blobs}
        gone = set(store.blobs.missing(digests)) | (digests & lost)
        if gone:
            paths = sorted(s.path for s in written if any(d in gone for d, _ in s.entry.blobs))
            raise StoreError(f"{len(paths)} file(s) written into the store for {artifact.name!r} were lost before its "
                             f"version was made (a pack write failed, or gc removed them): {', '.join(paths[:5])}; "
                             "write them again")
    for origin, sources in by_origin.items():
        name, _, number = origin.rpartition(":v")
        row = V.version(store.catalog, name, int(number))
        digests = {d for s in sources for d, _ in s.entry.blobs}
        gone = digests & lost if row is not None and not row.deleted else set(store.blobs.missing(digests)) | (digests & lost)
        if gone:
            raise NotFoundError(f"{origin} was deleted and gc removed {len(gone)} of the files this draft reuses; "
                                f"add those files again, or make the draft from a live version")


def _with_checksums(store: Store, artifact: Artifact, entries: list[Entry]) -> list[Entry]:
    """Record the digest of the bytes of every reference added with ``checksum=True`` (each read once;
    one whose identity is unchanged since the latest version of the name keeps its checksum)."""
    wanted = {s.path for s in artifact.added if isinstance(s, ReferenceSource) and s.checksum}
    if not wanted:
        return entries
    previous: dict[str, Entry] = {}
    row = V.latest(store.catalog, artifact.name) if store.exists else None
    if row is not None:
        previous = {identity_key(e.ref, e.size): e for e in store.manifest(row.digest).entries if e.ref is not None and e.ref.checksum}
    todo = [e for e in entries if e.path in wanted]
    done = {e.path: e for e in ReferenceReader(store).checksums(todo, artifact.name, previous)}
    return [done.get(e.path, e) for e in entries]


#: What plait writes inside a local store, and inside its cache, that is never data to log
#: (downloaded versions in the cache are: a draft may be made of them).
STORE_AREAS = ("blobs", "packs", "index", "manifests", "roots", "versions", "events", "gc")
CACHE_AREAS = ("blobs",)


def own_folders(store: Store) -> list[str]:
    """Return the local folders plait itself writes for ``store``: never data to log."""
    folders = [os.path.join(store.cache_dir, area) for area in CACHE_AREAS]
    if store.backend.is_local:
        folders += [store.backend.local_path(area) for area in STORE_AREAS]
    return folders


def check_storable(draft: Artifact, created_by: str | None) -> None:
    """Refuse a draft whose version record, or the event announcing it, a reader could not read back.

    Checked before any blob is written, with the widest digests a record can hold, so the real
    record is never larger than the one checked here.

    :raises InvalidMetadataError: saying what to change.
    """
    widest = "f" * 64
    record = R.build(
        R.VersionRecord, repr(draft.name), name=draft.name, number=10**18 - 1, type=draft.type,
        digest=widest, size=0, file_count=0, description=draft.description, metadata=draft.metadata,
        created_at=utcnow(), created_by=created_by, file_digest=widest,
    )
    R.build(R.Event, f"the event announcing {draft.name!r}", id="0" * 26, kind=R.VERSION_LOGGED, time=utcnow(),
            user="u" * 256, run=created_by, data=record.model_dump(mode="json"))


@dataclass(frozen=True)
class Content:
    """What a draft holds, once stored: its manifest's digest, size and file count and, for one
    stored file, that file's digest (so the same bytes under another file name find it)."""

    digest: str
    size: int
    file_count: int
    file_digest: str | None

    @classmethod
    def of(cls, manifest: Manifest | TreeManifest) -> Content:
        """Return the content a stored manifest describes."""
        count = len(manifest)
        first = next(iter(manifest)) if count == 1 else None
        single = first is not None and first.ref is None
        return cls(manifest.digest, manifest.size, count, first.digest if single and first is not None else None)


def store_content(store: Store, draft: Artifact, surveyed: Survey | None = None,
                  on_hashed: Callable[[], Any] | None = None) -> Content:
    """Hash a draft, store the blobs and the manifest the store lacks, and return its content.

    :param surveyed: the files' stats (format 1), if :func:`known_manifest` already took them.
    :param on_hashed: called once every file hashed and its blobs are stored, before any record.
    """
    store.blobs.begin()
    if store.format >= 2:
        return _store_tree(store, draft, stream_tree(store, draft), on_hashed)
    manifest = build_manifest(store, draft, store.progress, surveyed)
    if on_hashed is not None:
        on_hashed()
    store.put_manifest(manifest)
    lost = protect(store, manifest)
    if lost:  # a gc swept blobs this log found stored: store them again
        check_stored(store, draft, lost)
        manifest = build_manifest(store, draft, store.progress)
        protect(store, manifest)
    return Content.of(manifest)


def stream_tree(store: Store, draft: Artifact, reuse: bool = True) -> tuple[TreeStream, Done]:
    """Walk a draft into a format-2 store (see :mod:`plait.store.treestream`); return the walk and its root.

    A node the stat cache named that the store lacks is distrusted and the draft walked again.
    The root, when reused whole, is not checked yet: a live version holding it needs no check.
    """
    check_stored(store, draft)
    refs = [s.entry for s in draft.added if isinstance(s, ReferenceSource)]
    references = {e.path: e for e in _with_checksums(store, draft, refs)} if refs else {}
    distrust: frozenset[str] = frozenset()
    while True:
        stream = TreeStream(store, draft, references, reuse=reuse, distrust=distrust, progress=store.progress)
        try:
            return stream, stream.run()
        except ReusedNodeMissing as exc:
            distrust |= set(exc.digests)


def _store_tree(store: Store, draft: Artifact, walked: tuple[TreeStream, Done], on_hashed: Callable[[], Any] | None) -> Content:
    """:func:`store_content` for a format-2 store, once walked: the root known stored, then protected."""
    stream, root = walked
    assert root.node is not None
    if root.reused:
        try:
            stream.check([("", root.node[0])])
        except ReusedNodeMissing:
            stream, root = stream_tree(store, draft, reuse=False)
    if not root.reused and stream.last_node is not None:  # the root, just stored: no reading it back
        store.keep_node(stream.last_node)
    manifest = TreeManifest(root.node[0], store.algorithm, store.node)
    if on_hashed is not None:
        on_hashed()
    # with a gc mark in the store, protect walks the whole tree, folders taken from the stat cache
    # included; a sweep may have taken part of one: then every folder is built from its files
    try:
        lost = protect(store, manifest)
    except CorruptRecordError as exc:  # a node below a reused folder is gone
        lost = [exc.key or manifest.digest]
        store.blobs.forget(lost)
    if lost:
        check_stored(store, draft, lost)
        _, root = stream_tree(store, draft, reuse=False)
        assert root.node is not None
        manifest = TreeManifest(root.node[0], store.algorithm, store.node)
        protect(store, manifest)
    return Content.of(manifest)


def publish(store: Store, draft: Artifact, *, created_by: str | None,
            on_hashed: Callable[[], Any] | None = None) -> tuple[VersionRow, bool]:
    """Store a draft as a version of its name; return the version's row and whether it is new.

    When a live version of the name holds the same content (any one, not only the latest), that
    version is returned and no new one is made: the caller records itself as one more producer.
    A run handing on content that a run nested inside it logged (a Prefect task returning the
    checkpoint its Lightning fit logged) gets that version, whatever its name.

    :param created_by: the run that logs it, if any.
    :param on_hashed: called once every file hashed and its blobs are stored, before any record.
    :raises InvalidMetadataError: before anything is stored, if the version's record could not
        be stored and read back (text that is not UTF-8, metadata nested too deep, too large).
    """
    check_storable(draft, created_by)
    if draft.distributed_id is not None:
        raise InvalidInputError(f"the draft of {draft.name!r} is a part of distributed version {draft.distributed_id!r}: "
                                f"send it with plait.upsert(), then make the version with plait.finish()")
    draft.exclude(own_folders(store))
    if store.format >= 2:
        store.blobs.begin()
        walked = stream_tree(store, draft)
        root = walked[1]
        if root.reused and root.node is not None and store.exists:  # unchanged files: nothing written
            row = V.live_named(store.catalog, draft.name, root.node[0])
            if row is not None:  # a live version's blobs and nodes are stored (gc keeps them)
                if on_hashed is not None:
                    on_hashed()
                return row, False
        return _make(store, draft, _store_tree(store, draft, walked, on_hashed), created_by)
    known, surveyed = known_manifest(store, draft)
    if known is not None and store.exists:  # unchanged files: no manifest to build if a version holds them
        row = V.live_named(store.catalog, draft.name, known)
        if row is not None:  # a live version's blobs and manifest are stored (gc keeps them)
            if on_hashed is not None:
                on_hashed()
            return row, False
    content = store_content(store, draft, surveyed, on_hashed)
    return _make(store, draft, content, created_by)


def store_manifest(store: Store, entries: Iterable[Entry]) -> Manifest | TreeManifest:
    """Store the manifest of entries whose blobs are stored (a flat one, or a tree's nodes on a
    format-2 store) and return it."""
    if store.format >= 2:
        return store_entries(store, entries)
    manifest = Manifest.of(list(entries), store.algorithm)
    store.put_manifest(manifest)
    return manifest


def publish_manifest(store: Store, draft: Artifact, manifest: Manifest | TreeManifest, *,
                     created_by: str | None) -> tuple[VersionRow, bool]:
    """Make a version of a manifest whose blobs are all stored (the merged parts of a distributed
    version); return its row and whether it is new, as :func:`publish`.

    :param draft: the name, type, description and metadata (its sources are not read).
    :raises NotFoundError: if a gc took some of the manifest's blobs since they were stored.
    """
    check_storable(draft, created_by)
    if isinstance(manifest, Manifest):
        store.put_manifest(manifest)
    lost = protect(store, manifest)
    if lost:
        raise NotFoundError(f"gc removed {len(lost)} blobs of {draft.name!r} before its version was made; send the parts again")
    return _make(store, draft, Content.of(manifest), created_by)


def _make(store: Store, draft: Artifact, content: Content, created_by: str | None) -> tuple[VersionRow, bool]:
    """Return the live version of the draft's name holding ``content``, else create it."""
    # threads of one process logging the same content at once (Prefect tasks) make one version
    with store.shared.slot(f"{_NAME_LOCK}{draft.name}", threading.Lock):
        catalog = store.catalog
        row = V.live_named(catalog, draft.name, content.digest)
        if row is not None:
            return row, False
        if created_by is not None:
            # a task handing on the checkpoint its own training logged is that version, not a copy
            nested = V.logged_inside(catalog, created_by, content.digest, content.file_digest)
            if nested is not None:
                return nested, False
        return _create(store, draft, content, created_by)


def match_content(store: Store, draft: Artifact, choose: Callable[[list[VersionRow]], VersionRow]) -> tuple[VersionRow, bool]:
    """Return the live version holding a draft's content (any name), else store it as a new
    version nobody produced; and whether it is new.

    :param choose: picks one of several live versions with the content (see
        :func:`plait.index.producers.handoff`); they come oldest first, exact manifests first.
    :raises InvalidMetadataError: as :func:`publish`, before anything is stored.
    """
    check_storable(draft, None)
    draft.exclude(own_folders(store))
    if store.format >= 2:
        store.blobs.begin()
        walked = stream_tree(store, draft)
        node = walked[1].node
        if walked[1].reused and node is not None and store.exists and V.by_content(store.catalog, node[0]):
            content = Content.of(store.manifest(node[0]))  # stored: a live version holds it
        else:
            content = _store_tree(store, draft, walked, None)
    else:
        known, surveyed = known_manifest(store, draft)
        if known is not None and store.exists and V.by_content(store.catalog, known):
            content = Content.of(store.manifest(known))  # stored: a live version holds it
        else:
            content = store_content(store, draft, surveyed)
    rows = V.by_content(store.catalog, content.digest, content.file_digest)
    if not rows and store.catalog.sync_interval:  # listed up to a second ago: another process may have just logged it
        store.refresh()
        rows = V.by_content(store.catalog, content.digest, content.file_digest)
    if rows:
        return choose(rows), False
    return _create(store, draft, content, None)


def _create(store: Store, draft: Artifact, content: Content, created_by: str | None) -> tuple[VersionRow, bool]:
    """Create the version, or take the one another writer made of the same content a moment ago;
    return it and whether it is new."""
    record, created = store.create_or_find_version({
        "name": draft.name, "type": draft.type, "digest": content.digest, "size": content.size,
        "file_count": content.file_count,
        "description": draft.description, "metadata": draft.metadata,
        "created_at": utcnow(), "created_by": created_by, "file_digest": content.file_digest,
    })
    if created:
        store.write_event(R.VERSION_LOGGED, record.model_dump(mode="json"), run=created_by)
    row = V.version(store.catalog, record.name, record.number)
    assert row is not None
    return row, created
