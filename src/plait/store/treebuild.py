"""Building a version's tree (format-2 stores): hashing and storing files, one node per folder.

A draft is logged by :mod:`plait.store.treestream`, which walks it folder by folder and calls
these; :func:`store_entries` builds the tree of entries already stored (a flat manifest turned
into a tree, the merged parts of a distributed version).

The write order keeps a crash harmless and makes "a stored node has all it needs" true: file
blobs first, then nodes, children before their parents; the version record comes after.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from plait.base.parallel import parallel_map, parallel_map_batched
from plait.base.progress import Progress
from plait.errors import InvalidPathError
from plait.formats.artifact import BytesSource, FileSource, ReferenceSource, Source, StoredSource
from plait.formats.manifest import Entry
from plait.formats.tree import (
    CHUNKED,
    FILE,
    FOLDER,
    REFERENCE,
    Child,
    build_folder,
    child_key,
    digest_bytes_of,
)
from plait.formats.treeview import TreeManifest
from plait.index.statcache import FolderNode, StatKey
from plait.storage.digest import CHUNK_THRESHOLD, FileDigest, digest_file, hash_bytes

if TYPE_CHECKING:
    from plait.store.base import BaseStore as Store

#: Files at least this large keep a row in the stat cache; smaller ones of a changed folder are
#: simply read again (reading 100 files of 1 KiB costs about what looking them up does) …
REMEMBER_FILES_FROM = 64 << 10
#: … unless their folder holds more files than this (one change must not re-read a huge folder).
REMEMBER_FOLDERS_FROM = 256
#: Threads hashing and copying files (see :data:`plait.store.publish.HASH_WORKERS`).
HASH_WORKERS = 2


def _child(src: Source, digests: dict[str, FileDigest], refs: dict[str, Entry], algorithm: str) -> Child:
    name = src.path.rpartition("/")[2]
    if isinstance(src, FileSource):
        fd = digests[src.local]
        return (name, CHUNKED if fd.chunks is not None else FILE, fd.size, fd.digest, fd.chunks)
    if isinstance(src, BytesSource):
        return (name, FILE, len(src.data), hash_bytes(src.data, algorithm), None)
    if isinstance(src, StoredSource):  # a file of a stored version (a draft made from it): its entry as it is
        return _entry_child(src.entry, name)
    assert isinstance(src, ReferenceSource)
    entry = refs.get(src.path, src.entry)
    return (name, REFERENCE, entry.size, entry.digest, entry.ref)


def _hash_files(store: Store, files: list[FileSource], stats: dict[str, StatKey], progress: Progress,
                crowded: set[str], settled: int) -> dict[str, FileDigest]:
    """Return the digest of every file: from the stat cache for large unchanged ones (and those of
    crowded folders), else read.

    :param crowded: the files of folders too large to re-read whole.
    :param settled: the newest mtime the stat cache may remember (see
        :func:`~plait.index.statcache.settled_before`).
    """
    def kept(path: str) -> bool:
        return stats[path][1] >= REMEMBER_FILES_FROM or path in crowded

    cached = store.stat_cache.lookup([(s.local, stats[s.local]) for s in files if kept(s.local)])
    todo = [s.local for s in files if s.local not in cached]
    progress.start("hashing", sum(stats[p][1] for p in todo))
    algorithm = store.algorithm  # once: a store not created yet reads its plait.json on each ask (a request on S3)
    out: dict[str, FileDigest] = dict(cached)
    ingest = getattr(store.blobs, "ingest", None)
    def hash_one(p: str) -> FileDigest:
        return digest_file(p, algorithm, on_bytes=progress.advance)

    if ingest is not None and todo:  # a packed store: every file is read once, hashed and appended to a pack in one pass
        store.init()  # plait.json before the first blob: a crash never leaves blobs in a folder that is no store
        small = [p for p in todo if stats[p][1] < CHUNK_THRESHOLD]
        if small:
            for p, digest in zip(small, ingest([(p, stats[p]) for p in small], progress.advance)):
                out[p] = FileDigest(digest, stats[p][1])
            todo = [p for p in todo if p not in out]
        def hash_one(p: str) -> FileDigest:  # large files: cut, hashed and appended as read
            return store.blobs.ingest_file(p, progress.advance)

    hashed = parallel_map_batched(hash_one, todo, lambda p: stats[p][1], HASH_WORKERS)
    progress.finish()
    out.update(zip(todo, hashed))
    store.stat_cache.remember(((p, stats[p], out[p]) for p in out if p not in cached and kept(p)), settled=settled)
    return out


def store_blobs(store: Store, files: list[FileSource], digests: dict[str, FileDigest],
                stats: dict[str, StatKey], progress: Progress) -> None:
    """Store the blobs of ``files`` (hashed into ``digests``) the store lacks."""
    store.init()  # plait.json before the first blob: a crash never leaves blobs in a folder that is no store
    need = set(store.blobs.missing(d for s in files for d, _ in digests[s.local].blobs))
    uploads = list({s.local: s for s in files if any(d in need for d, _ in digests[s.local].blobs)}.values())
    progress.start("storing", sum(digests[s.local].size for s in uploads))

    def put(s: FileSource) -> int:
        return store.blobs.put_file(s.local, digests[s.local], progress.advance)

    if store.blobs.backend.is_local:
        parallel_map_batched(put, uploads, lambda s: stats[s.local][1], store.blobs.workers)
    else:
        parallel_map(put, uploads, store.blobs.workers)
    progress.finish()


def store_entries(store: Store, entries: Iterable[Entry]) -> TreeManifest:
    """Build and store the tree of entries whose blobs the store already holds (a flat manifest
    turned into a tree, a version written by hand); return it.

    :raises InvalidPathError: for a path that is both a file and a folder, or that appears twice.
    """
    folders: dict[str, list[Child]] = {"": []}
    subfolders: dict[str, set[str]] = {"": set()}
    for e in entries:
        parent = e.path.rpartition("/")[0]
        while parent not in folders:
            folders[parent], subfolders[parent] = [], set()
            above, _, below = parent.rpartition("/")
            subfolders.setdefault(above, set()).add(below)
            parent = above
        folders[e.path.rpartition("/")[0]].append(_entry_child(e))
    dlen = digest_bytes_of(store.algorithm)
    made: dict[str, FolderNode] = {}
    for path in sorted(folders, key=lambda p: -p.count("/") if p else 1):
        base = path + "/" if path else ""
        children = folders[path] + [(n, FOLDER, *_sized(made[base + n])) for n in subfolders.get(path, ())]
        children.sort(key=lambda c: child_key(c[0], c[1]))
        keys = [child_key(c[0], c[1]) for c in children]
        known = set(keys)
        twice = [a for a, b in zip(keys, keys[1:]) if a == b]
        clash = twice[0] if twice else next((k for k in keys if k + "/" in known), None)
        if clash is not None:
            raise InvalidPathError(f"entry {base + clash!r} is both a file and a folder, or appears twice", path=base + clash)
        made[path] = build_folder(children, dlen, lambda data: store.blobs.put_bytes(data, kind="tree"))
    return TreeManifest(made[""][0], store.algorithm, store.node)


def _sized(node: FolderNode) -> tuple[int, str, int]:
    digest, size, files = node
    return size, digest, files


def _entry_child(e: Entry, name: str | None = None) -> Child:
    name = e.path.rpartition("/")[2] if name is None else name
    if e.ref is not None:
        return (name, REFERENCE, e.size, e.digest, e.ref)
    if e.chunks is not None:
        return (name, CHUNKED, e.size, e.digest, e.chunks)
    return (name, FILE, e.size, e.digest, None)
