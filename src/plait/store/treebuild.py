"""Building a version's tree (format-2 stores): one node per folder, unchanged folders reused.

Every folder of a draft gets a *signature*: the hash of its files' names, local paths and stats
and of its subfolders' signatures (a Merkle tree of stats). The stat cache maps a signature to
the node it made, so a re-log reuses every unchanged folder by its digest, without opening a
file or reading a node: a re-log with one changed file hashes that folder's files and writes
the nodes on its path only.

The write order keeps a crash harmless and makes "a stored node has all it needs" true: file
blobs first, then nodes, children before their parents; the version record comes after.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from plait.base.parallel import parallel_map, parallel_map_batched
from plait.base.progress import NO_PROGRESS, Progress
from plait.errors import CorruptRecordError, InvalidPathError
from plait.formats.artifact import Artifact, BytesSource, FileSource, ReferenceSource, Source, StoredSource
from plait.formats.manifest import Entry
from plait.formats.tree import (
    CHUNKED,
    FILE,
    FOLDER,
    NODE_VERSION,
    REFERENCE,
    SHARD,
    Child,
    build_folder,
    child_key,
    digest_bytes_of,
)
from plait.formats.treeview import TreeManifest
from plait.index import versions as V
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


@dataclass
class Folder:
    """One folder of a draft: its own sources and subfolders, and its stat signature."""

    path: str
    sources: list[Source] = field(default_factory=list)
    subfolders: list[str] = field(default_factory=list)
    signature: str | None = None


@dataclass(frozen=True)
class TreePlan:
    """A draft's folders, deepest first (children before parents), with their signatures."""

    folders: dict[str, Folder]
    order: list[str]

    @property
    def root_signature(self) -> str | None:
        """The signature of the whole draft, or ``None`` when it holds anything but local files."""
        return self.folders[""].signature


def plan_tree(artifact: Artifact, stats: dict[str, StatKey], algorithm: str) -> TreePlan:
    """Group a draft's sources by folder and sign every folder whose files are all local.

    :raises InvalidPathError: for a path that is both a file and a folder.
    """
    folders: dict[str, Folder] = {"": Folder("")}
    for src in artifact.sources:
        parent = src.path.rpartition("/")[0]
        folder = folders.get(parent)
        if folder is None:
            folder = _add_folder(folders, parent)
        folder.sources.append(src)
    for src in artifact.sources:
        if src.path in folders:
            inside = next(s.path for s in artifact.sources if s.path.startswith(src.path + "/"))
            raise InvalidPathError(f"entry {src.path!r} is both a file and a folder (the draft also holds {inside!r})", path=src.path)
    order = sorted(folders, key=lambda p: -p.count("/") if p else 1)
    for path in order:
        folders[path].signature = _signature(folders, folders[path], stats, algorithm)
    return TreePlan(folders, order)


def _add_folder(folders: dict[str, Folder], path: str) -> Folder:
    folder = folders[path] = Folder(path)
    parent, _, name = path.rpartition("/")
    above = folders.get(parent)
    if above is None:
        above = _add_folder(folders, parent)
    above.subfolders.append(name)
    return folder


def _signature(folders: dict[str, Folder], folder: Folder, stats: dict[str, StatKey], algorithm: str) -> str | None:
    lines = [f"{algorithm}\0PTN{NODE_VERSION}"]
    for src in folder.sources:
        if not isinstance(src, FileSource):
            return None
        inode, size, mtime_ns = stats[src.local]
        lines.append(f"{src.path.rpartition('/')[2]}\0{src.local}\0{inode}\0{size}\0{mtime_ns}")
    base = folder.path + "/" if folder.path else ""
    for name in sorted(folder.subfolders):
        sub = folders[base + name].signature
        if sub is None:
            return None
        lines.append(f"{name}/\0{sub}")
    return hash_bytes("\n".join(lines).encode("utf-8", "surrogateescape"))


def reusable(store: Store, plan: TreePlan, name: str | None = None) -> dict[str, FolderNode]:
    """Return the folders a re-log can take whole from the stat cache, topmost only, whose
    node the store still holds: ``{folder path: (node digest, bytes, files)}``.

    A node the latest version of ``name`` holds at the same place is stored (gc keeps a live
    version's nodes): the store is asked only about the others, so a re-log with one changed
    file asks nothing per unchanged folder (one request each on S3).
    """
    known = store.stat_cache.folders(f.signature for f in plan.folders.values() if f.signature is not None)
    if not known:
        return {}
    previous = _latest_tree(store, name)
    chosen: dict[str, FolderNode] = {}
    frontier = [""]
    while frontier:
        hits = {p: known[s] for p in frontier if (s := plan.folders[p].signature) in known}
        stored = _children_in(previous, {p.rpartition("/")[0] for p in hits if p}) | ({previous.digest} if previous else set())
        missing = set(store.blobs.missing(n[0] for n in hits.values() if n[0] not in stored))
        below = []
        for path in frontier:
            if path in hits and hits[path][0] not in missing:
                chosen[path] = hits[path]
            else:
                base = path + "/" if path else ""
                below += [base + name for name in plan.folders[path].subfolders]
        frontier = below
    return chosen


def _latest_tree(store: Store, name: str | None) -> TreeManifest | None:
    """Return the tree of the latest live version of ``name``, if there is one to read."""
    if name is None or not store.exists:
        return None
    row = V.latest(store.catalog, name)
    if row is None:
        return None
    try:
        manifest = store.manifest(row.digest)
    except CorruptRecordError:
        return None
    return manifest if isinstance(manifest, TreeManifest) else None


def _children_in(tree: TreeManifest | None, folders: set[str]) -> set[str]:
    """Return the digests of the subfolders ``tree`` holds in each of ``folders`` (read on their paths)."""
    out: set[str] = set()
    if tree is None:
        return out
    for folder in folders:
        try:
            node = tree.folder_node(folder)
            stack = [node] if node is not None else []
            while stack:
                node = stack.pop()
                for i in range(len(node)):
                    if node.kinds[i] == SHARD:
                        stack.append(tree.child(node, i))
                    elif node.kinds[i] == FOLDER:
                        out.add(node.digests[i])
        except CorruptRecordError:
            continue
    return out


def build_tree(store: Store, artifact: Artifact, plan: TreePlan, stats: dict[str, StatKey], *,
               reuse: bool = True, progress: Progress = NO_PROGRESS,
               references: dict[str, Entry] | None = None) -> TreeManifest:
    """Hash a draft's new files, store the blobs and nodes the store lacks; return its tree.

    :param plan: the draft's folders (:func:`plan_tree`).
    :param stats: the stat of every local file.
    :param reuse: take unchanged folders from the stat cache (off when a gc mark exists: what a
        mark lists must be checked blob by blob).
    :param references: the entries of the draft's references, by path (with their checksums).
    :raises SourceError: for a file that vanished, cannot be read, or changed while read.
    """
    taken = reusable(store, plan, artifact.name) if reuse else {}
    nodes: dict[str, bytes] = {}
    algorithm = store.algorithm

    def put(data: bytes) -> str:
        digest = hash_bytes(data, algorithm)
        nodes.setdefault(digest, data)
        return digest

    if "" in taken:
        return TreeManifest(taken[""][0], store.algorithm, store.node)
    inside = [p for p in plan.order if not _below_any(p, taken)]
    files = [s for p in inside for s in plan.folders[p].sources if isinstance(s, FileSource)]
    crowded = {s.local for p in inside if len(plan.folders[p].sources) > REMEMBER_FOLDERS_FROM
               for s in plan.folders[p].sources if isinstance(s, FileSource)}
    digests = _hash_files(store, files, stats, progress, crowded)
    dlen = digest_bytes_of(algorithm)
    made: dict[str, FolderNode] = dict(taken)
    refs = references or {}
    for path in inside:
        folder = plan.folders[path]
        children = [_child(s, digests, refs, algorithm) for s in folder.sources]
        base = path + "/" if path else ""
        for name in folder.subfolders:
            digest, size, count = made[base + name]
            children.append((name, FOLDER, size, digest, count))
        children.sort(key=lambda c: child_key(c[0], c[1]))
        made[path] = build_folder(children, dlen, put)
    root = made[""][0]
    store.stat_cache.remember_folders((plan.folders[p].signature, made[p]) for p in inside if plan.folders[p].signature)
    if store.exists and V.by_content(store.catalog, root):  # a live version holds it: all of it is stored
        return TreeManifest(root, store.algorithm, store.node)
    store_blobs(store, artifact, files, digests, stats, progress)
    for digest in store.blobs.missing(list(nodes)):  # children were added before their parents
        store.blobs.put_bytes(nodes[digest], kind="tree")
    return TreeManifest(root, store.algorithm, store.node)


def _below_any(path: str, taken: dict[str, FolderNode]) -> bool:
    """Tell whether ``path`` is a taken folder or lies below one."""
    while path:
        if path in taken:
            return True
        path = path.rpartition("/")[0]
    return False


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
                crowded: set[str]) -> dict[str, FileDigest]:
    """Return the digest of every file: from the stat cache for large unchanged ones (and those of
    crowded folders), else read.

    :param crowded: the files of folders too large to re-read whole.
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
    store.stat_cache.remember((p, stats[p], out[p]) for p in out if p not in cached and kept(p))
    return out


def store_blobs(store: Store, artifact: Artifact, files: list[FileSource], digests: dict[str, FileDigest],
                stats: dict[str, StatKey], progress: Progress) -> None:
    """Store the blobs of ``files`` (hashed into ``digests``) the store lacks, and the draft's bytes."""
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
    for src in artifact.sources:
        if isinstance(src, BytesSource):
            store.blobs.put_bytes(src.data)


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
