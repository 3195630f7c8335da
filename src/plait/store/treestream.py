"""Logging a draft to a format-2 store as a stream: one folder at a time, memory flat in the file count.

The draft is walked post-order (:meth:`plait.Artifact.walk`). Each folder is signed as it
finishes: one hash over its local folder, its files' names and stats packed into one buffer,
and its subfolders' signatures (a Merkle tree of stats). The stat cache maps a signature to the
node it made (looked up a few hundred folders at a time), so an unchanged folder is reused by
its digest without opening a file or reading a node; a changed one waits in a batch
(:data:`BATCH_FILES` files at most) whose files are then hashed and stored in one pass, and
whose nodes are built and stored children first. Only the files of the batch and of the
folders on the walk's current path are held, never a list of the draft's files.

The write order keeps a crash harmless and makes "a stored node has all it needs" true: file
blobs first, then nodes, children before their parents; the version record comes after. A node
taken from the stat cache below a new one is first checked to be stored: one the latest version
of the name holds at the same place is (gc keeps a live version's nodes), the others are looked
up in one batch; one that is not stored (a gc took it) is distrusted and the walk starts over.
"""

from __future__ import annotations

import os
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from plait.base.progress import NO_PROGRESS, Progress
from plait.errors import CorruptRecordError, SourceError
from plait.formats.artifact import Artifact, BytesSource, FileSource, Source
from plait.formats.manifest import Entry
from plait.formats.tree import FOLDER, NODE_VERSION, SHARD, child_key, digest_bytes_of
from plait.formats.tree import build_folder as encode_folder
from plait.formats.treeview import TreeManifest
from plait.formats.walk import DraftWalk, Listing
from plait.index import versions as V
from plait.index.statcache import FolderNode, StatKey, settled_before
from plait.storage.digest import FileDigest, hash_bytes, stat_key
from plait.store.treebuild import REMEMBER_FOLDERS_FROM, _child, _hash_files, store_blobs

if TYPE_CHECKING:
    from plait.store.base import BaseStore as Store

#: A batch of changed folders is hashed and stored once it holds this many files (or at the end):
#: big enough that the per-batch costs (a pack index refresh, thread hand-offs) vanish, small
#: enough that its per-file state stays a few MiB.
BATCH_FILES = 8192
#: Folders walked are looked up in the stat cache this many at a time (one query, not one a folder).
DECIDE_FOLDERS = 256
#: A long log seals what it stored into a local index every this many files
#: (:meth:`~plait.storage.packed.PackedBlobStore.checkpoint`): a pack store keeps ~200 bytes a
#: blob until then (36 from then on), so a million files would otherwise hold ~200 MiB. The
#: store gets one index file for the whole log, when its version is made.
COMMIT_FILES = 65536


class ReusedNodeMissing(Exception):
    """A node the stat cache named is not in the store any more (a gc took it): walk again without it."""

    def __init__(self, digests: list[str]) -> None:
        super().__init__(f"{len(digests)} reused node(s) are gone")
        self.digests = digests


@dataclass(slots=True)
class Done:
    """A folder once walked: its signature, its node (``None`` while its batch is open), the files
    below it, whether its node came from the stat cache, and whether that is still to be looked up."""

    signature: str | None
    node: FolderNode | None
    files: int
    reused: bool
    waiting: bool = False


@dataclass(slots=True)
class _Pending:
    listing: Listing
    children: list[tuple[str, Done]]
    done: Done
    added_stats: dict[str, StatKey]
    files: int  # in the folder itself


@dataclass
class TreeStream:
    """One streaming build of a draft's tree (see the module docstring).

    :param references: the entries of the draft's references, by path (with their checksums).
    :param reuse: take unchanged folders from the stat cache.
    :param distrust: node digests not to take from the stat cache (found missing before).
    :ivar built: how many nodes were built (reused folders are not).
    """

    store: Store
    draft: Artifact
    references: dict[str, Entry] = field(default_factory=dict)
    reuse: bool = True
    distrust: frozenset[str] = frozenset()
    progress: Progress = NO_PROGRESS
    built: int = 0

    def __post_init__(self) -> None:
        self.algorithm = self.store.algorithm  # once: a store not created yet reads its plait.json on each ask
        self.header = f"{self.algorithm}\0PTN{NODE_VERSION}\0".encode()
        self.pending: list[_Pending] = []
        self.pending_files = 0
        self.undecided: list[_Pending] = []  # folders walked, their signatures not yet looked up
        self.undecided_files = 0
        self.uncommitted = 0
        self.candidates: list[tuple[str, str]] = []  # (parent folder, node digest) of reused folders below new ones
        self._previous: TreeManifest | None | bool = False  # the latest version's tree, read once when needed
        self.last_node: bytes | None = None  # the bytes of the node stored last
        self._walk: DraftWalk | None = None  # the walk run() is on: when its stats were taken

    def run(self) -> Done:
        """Walk the draft, store every new folder's files and node; return the root.

        A reused root is not checked to be stored (the caller knows whether a live version
        holds it; else :meth:`check` it).

        :raises SourceError: for a folder or file that cannot be read, or changed while read.
        :raises InvalidPathError: for a path that is both a file and a folder, or a bad name.
        :raises ReusedNodeMissing: for a reused node the store lacks.
        """
        results: dict[str, Done] = {}
        self._walk = self.draft.walk()
        for listing in self._walk:
            base = listing.path + "/" if listing.path else ""
            below = [(name, results.pop(base + name)) for name in listing.subfolders]
            if any(d.waiting for _, d in below):
                self._decide()
            children = [(name, d) for name, d in below if d.files]
            here = sum(len(g.names) for g in listing.groups) + len(listing.added)
            total = here + sum(d.files for _, d in children)
            if not total and listing.path:
                results[listing.path] = Done(None, None, 0, False)  # an empty folder is no entry
                continue
            added_stats = stat_sources(listing.added, self.draft.name)
            done = results[listing.path] = Done(self._sign(listing, children, added_stats), None, total, False, True)
            self.undecided.append(_Pending(listing, children, done, added_stats, here))
            self.undecided_files += here
            if len(self.undecided) >= DECIDE_FOLDERS or self.undecided_files >= BATCH_FILES:
                self._decide()
        self._decide()
        root = results.pop("")
        if root.node is None:
            self.flush()
        return root

    def _decide(self) -> None:
        """Look the signatures of the folders walked since the last call up in the stat cache (one
        query): reuse those known, queue the others in the batch to store."""
        undecided, self.undecided, self.undecided_files = self.undecided, [], 0
        signatures = {p.done.signature for p in undecided if p.done.signature is not None}
        known = self.store.stat_cache.folders(signatures) if self.reuse and signatures else {}
        for p in undecided:
            done = p.done
            done.waiting = False
            node = known.get(done.signature) if done.signature is not None else None
            if node is not None and node[0] not in self.distrust:
                done.node, done.files, done.reused = node, node[2], True
                continue
            self.candidates += [(p.listing.path, d.node[0]) for _, d in p.children if d.reused and d.node is not None]
            self.pending.append(p)
            self.pending_files += p.files
            if self.pending_files >= BATCH_FILES:
                self.flush()

    def _settled(self) -> int:
        """The newest mtime the stat cache may trust in this walk's stats (see :func:`settled_before`)."""
        assert self._walk is not None, "only while run() walks"
        return settled_before(self._walk.since_ns)

    def _sign(self, listing: Listing, children: list[tuple[str, Done]], added_stats: dict[str, StatKey]) -> str | None:
        """Return the folder's signature, or ``None`` when it holds anything but local files or a
        file that has not settled (its node is then built, and neither it nor a folder above is
        remembered)."""
        settled = self._settled()
        if any(max(g.stats[2::3], default=0) > settled for g in listing.groups) or any(
                key[2] > settled for key in added_stats.values()):
            return None
        parts = [self.header]
        for group in listing.groups:
            try:
                numbers = (group.stats if isinstance(group.stats, array) else array("q", group.stats)).tobytes()
            except OverflowError:  # an inode past 2**63: spelled out
                numbers = repr(group.stats).encode()
            parts += [group.local.encode("utf-8", "surrogateescape"), "\0".join(group.names).encode("utf-8", "surrogateescape"), numbers]
        for src in listing.added:
            if not isinstance(src, FileSource):
                return None
            parts.append(f"{src.path.rpartition('/')[2]}\0{src.local}\0{added_stats[src.local]}".encode("utf-8", "surrogateescape"))
        for name, done in children:
            if done.signature is None:
                return None
            parts.append(f"{name}/\0{done.signature}".encode("utf-8", "surrogateescape"))
        return hash_bytes(b"\n\1".join(parts), self.algorithm)

    def check(self, reused: list[tuple[str, str]]) -> None:
        """Refuse reused nodes the store does not hold: those the latest version holds in the same
        folder are stored, the others are looked up in one batch.

        :param reused: ``(parent folder, node digest)`` of each (``("", root)`` for the root).
        :raises ReusedNodeMissing: naming those missing.
        """
        if not reused:
            return
        if self._previous is False:
            self._previous = _latest_tree(self.store, self.draft.name)
        previous = self._previous if isinstance(self._previous, TreeManifest) else None
        stored = _children_in(previous, {parent for parent, _ in reused}) | ({previous.digest} if previous else set())
        missing = self.store.blobs.missing(d for _, d in reused if d not in stored)
        if missing:
            raise ReusedNodeMissing(missing)

    def flush(self) -> None:
        """Hash and store the files of the open batch, then build and store its nodes, children first."""
        self.check(self.candidates)
        self.candidates = []
        files: list[FileSource] = []
        stats: dict[str, StatKey] = {}
        crowded: set[str] = set()
        for p in self.pending:
            base = p.listing.path + "/" if p.listing.path else ""
            start = len(files)
            for group in p.listing.groups:
                prefix = os.path.join(group.local, "")
                for i, name in enumerate(group.names):
                    local = prefix + name
                    files.append(FileSource(base + name, local))
                    stats[local] = group.key(i)
            for src in p.listing.added:
                if isinstance(src, FileSource):
                    files.append(src)
                    stats[src.local] = p.added_stats[src.local]
            if len(files) - start > REMEMBER_FOLDERS_FROM:
                crowded.update(s.local for s in files[start:])
        digests = _hash_files(self.store, files, stats, self.progress, crowded, self._settled())
        store_blobs(self.store, files, digests, stats, self.progress)
        dlen = digest_bytes_of(self.algorithm)
        remember = []
        for p in self.pending:
            p.done.node = self._build(p, digests, dlen)
            if p.done.signature is not None:
                remember.append((p.done.signature, p.done.node))
        self.store.stat_cache.remember_folders(remember)
        self.pending = []
        self.pending_files = 0
        self.uncommitted += len(files)
        checkpoint = getattr(self.store.blobs, "checkpoint", None)
        if self.uncommitted >= COMMIT_FILES and checkpoint is not None:
            checkpoint()
            self.uncommitted = 0

    def _build(self, p: _Pending, digests: dict[str, FileDigest], dlen: int) -> FolderNode:
        """Build and store one folder's node (its children's are stored already)."""
        listing = p.listing
        base = listing.path + "/" if listing.path else ""
        children = []
        for group in listing.groups:
            prefix = os.path.join(group.local, "")
            children += [_child(FileSource(base + n, prefix + n), digests, self.references, self.algorithm) for n in group.names]
        for src in listing.added:
            if isinstance(src, BytesSource):
                self.store.blobs.put_bytes(src.data)
            children.append(_child(src, digests, self.references, self.algorithm))
        for name, done in p.children:
            assert done.node is not None
            digest, size, count = done.node
            children.append((name, FOLDER, size, digest, count))
        children.sort(key=lambda c: child_key(c[0], c[1]))
        self.built += 1
        return encode_folder(children, dlen, self._put)

    def _put(self, data: bytes) -> str:
        self.last_node = data  # the root, once the walk ends: kept for reading back without a request
        return self.store.blobs.put_bytes(data, kind="tree")


def stat_sources(added: list[Source], name: str) -> dict[str, StatKey]:
    """Return the stat key of each local file among ``added`` (a folder's named sources, or a draft's).

    :raises SourceError: for one that no longer exists.
    """
    out = {}
    for src in added:
        if isinstance(src, FileSource):
            try:
                out[src.local] = stat_key(os.stat(src.local))
            except FileNotFoundError:
                raise SourceError(f"{src.local} was added to {name!r} but no longer exists", path=src.local) from None
    return out


def _latest_tree(store: Store, name: str) -> TreeManifest | None:
    """Return the tree of the latest live version of ``name``, if there is one to read."""
    if not store.exists:
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
