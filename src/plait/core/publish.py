"""publish: turn an Artifact draft into stored blobs, a manifest and a new version record.

The order is what makes a crash harmless: blobs first, then the manifest, then the version
record (exclusive create allocates its number), then the event that announces it. A crash at
any point leaves unreferenced blobs at most, never a version whose data is missing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plait.core.artifact import Artifact, BytesSource, FileSource, ReferenceSource
from plait.core.digest import FileDigest, digest_file, hash_bytes, stat_key
from plait.core.errors import SourceError
from plait.core.manifest import Entry, Manifest
from plait.core.parallel import parallel_map, parallel_map_batched
from plait.core.progress import NO_PROGRESS, Progress
from plait.core.statcache import StatKey

if TYPE_CHECKING:
    from plait.core.store import Store

#: Threads hashing and copying files. Two saturate both cores: xxh3 releases the GIL while it
#: hashes a buffer, and file reads release it too.
HASH_WORKERS = 2


def stat_files(artifact: Artifact) -> dict[str, StatKey]:
    """Return the stat key of every local file of a draft.

    :raises SourceError: for a file that no longer exists.
    """
    stats = {}
    for src in artifact.sources:
        if isinstance(src, FileSource):
            try:
                stats[src.local] = stat_key(os.stat(src.local))
            except FileNotFoundError:
                raise SourceError(f"{src.local} was added to {artifact.name!r} but no longer exists", path=src.local) from None
    return stats


def tree_signature(artifact: Artifact, stats: dict[str, StatKey], algorithm: str) -> str | None:
    """Return a digest of where every file of a draft goes and its stat, or ``None`` when the
    draft holds anything but local files (bytes and references are not covered by a stat).

    Equal signatures mean equal manifests, as far as the stat cache can tell (see
    :mod:`plait.core.statcache`).
    """
    files = [s for s in artifact.sources if isinstance(s, FileSource)]
    if not files or len(files) != len(artifact.sources):
        return None
    lines = [algorithm]
    for src in files:
        inode, size, mtime_ns = stats[src.local]
        lines.append(f"{src.path}\0{src.local}\0{inode}\0{size}\0{mtime_ns}")
    return hash_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))


@dataclass(frozen=True)
class Survey:
    """The stat of every local file of a draft, and the draft's tree signature (or ``None``)."""

    stats: dict[str, StatKey]
    signature: str | None


def survey(artifact: Artifact, algorithm: str) -> Survey:
    """Stat every local file of a draft once, for :func:`known_manifest` and :func:`build_manifest`."""
    stats = stat_files(artifact)
    return Survey(stats, tree_signature(artifact, stats, algorithm))


def known_manifest(store: Store, artifact: Artifact) -> tuple[str | None, Survey]:
    """Return the digest of the manifest a draft would make, when its files' stats say it is
    known without reading them, and the survey (to hand to :func:`build_manifest`)."""
    found = survey(artifact, store.algorithm)
    return (store.stat_cache.tree(found.signature) if found.signature else None), found


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
    hashed = parallel_map_batched(lambda p: digest_file(p, store.algorithm, on_bytes=progress.advance), todo, lambda p: stats[p][1], HASH_WORKERS)
    progress.finish()
    store.stat_cache.remember((p, stats[p], fd) for p, fd in zip(todo, hashed))
    digests: dict[str, FileDigest] = {**cached, **dict(zip(todo, hashed))}

    entries = []
    for src in artifact.sources:
        if isinstance(src, FileSource):
            fd = digests[src.local]
            # (Entry.model_construct measured no faster than validation: 20,000 entries ~1.0 s each way
            # on the loaded bench machine, so the validated constructor stays)
            entries.append(Entry(path=src.path, digest=fd.digest, size=fd.size, chunks=fd.chunks))
        elif isinstance(src, BytesSource):
            entries.append(Entry(path=src.path, digest=hash_bytes(src.data, store.algorithm), size=len(src.data)))
        elif isinstance(src, ReferenceSource):
            entries.append(src.entry)
    manifest = Manifest.of(entries, store.algorithm)
    if surveyed.signature is not None:
        store.stat_cache.remember_tree(surveyed.signature, manifest.digest)
    if store.exists and store.catalog.by_digest(manifest.digest):
        return manifest

    store.init()  # plait.json before the first blob: a crash never leaves blobs in a folder that is no store
    need = set(store.blobs.missing(d for fd in digests.values() for d, _ in fd.blobs))
    uploads = list({s.local: s for s in files if any(d in need for d, _ in digests[s.local].blobs)}.values())
    progress.start("storing", sum(digests[s.local].size for s in uploads))

    def put(s: FileSource) -> int:
        return store.blobs.put_file(s.local, digests[s.local], stats[s.local], progress.advance)

    if store.blobs.backend.is_local:
        parallel_map_batched(put, uploads, lambda s: stats[s.local][1], store.blobs.workers)
    else:
        parallel_map(put, uploads, store.blobs.workers)
    progress.finish()
    for src in artifact.sources:
        if isinstance(src, BytesSource):
            store.blobs.put_bytes(src.data)
    return manifest
