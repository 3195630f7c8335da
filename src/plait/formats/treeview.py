"""TreeManifest: a version's files read lazily from its tree, node by node.

It answers what a :class:`~plait.formats.manifest.Manifest` answers (``len``, ``size``,
iteration, ``get``, ``blobs``) without holding every entry: iteration streams entries in path
order, ``get`` descends one path, ``len`` and ``size`` come from the root. ``entries``
materializes every entry (O(files); for compatibility).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import Any, overload

from plait.errors import CorruptRecordError
from plait.formats.manifest import Entry, Manifest
from plait.formats.names import MAX_PATH_LENGTH, check_entry_path
from plait.formats.tree import CHUNKED, FOLDER, NODE_KINDS, REFERENCE, SHARD, Node

TREE_FORMAT = 2

#: One file as internal batch paths see it, without building an :class:`Entry`:
#: ``(path, node, index in node)``.
Item = tuple[str, Node, int]


def entry_of(path: str, node: Node, i: int) -> Entry:
    """Return the :class:`Entry` for entry ``i`` of ``node`` at ``path`` (already validated)."""
    kind = node.kinds[i]
    return Entry.trusted(path, node.digests[i], node.sizes[i], node.chunks.get(i) if kind == CHUNKED else None,
                         node.refs.get(i) if kind == REFERENCE else None)


def item_blobs(node: Node, i: int) -> tuple[tuple[str, int], ...]:
    """Return the ``(digest, size)`` blobs holding entry ``i`` of ``node`` (none for a reference)."""
    kind = node.kinds[i]
    if kind == REFERENCE:
        return ()
    if kind == CHUNKED:
        return node.chunks[i]
    return ((node.digests[i], node.sizes[i]),)


class TreeManifest:
    """The files of one version, stored as a tree of nodes.

    :param digest: the root node's digest (the version's digest).
    :param algorithm: the store's hash algorithm.
    :param load: returns the decoded, verified node with a digest (raises when it is missing
        or damaged).
    """

    format = TREE_FORMAT

    def __init__(self, digest: str, algorithm: str, load: Callable[[str], Node]) -> None:
        self.digest = digest
        self.algorithm = algorithm
        self.load = load
        self.root = load(digest)

    def __repr__(self) -> str:
        return f"TreeManifest({self.digest!r}, {len(self)} files)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TreeManifest) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def size(self) -> int:
        """Total bytes of all files."""
        return sum(self.root.sizes)

    def __len__(self) -> int:
        return sum(self.root.files(i) for i in range(len(self.root)))

    def __iter__(self) -> Iterator[Entry]:
        return (entry_of(path, node, i) for path, node, i in self.items())

    @property
    def entries(self) -> tuple[Entry, ...]:
        """Every entry, sorted by path (reads the whole tree: O(files))."""
        return tuple(self)

    def items(self, prefix: str = "", start: Node | None = None) -> Iterator[Item]:
        """Yield ``(path, node, index)`` for every file, in path order, reading nodes as it goes.

        :param prefix: only files below this folder (``""``: all).
        :param start: the node of that folder, when the caller has it.
        :raises CorruptRecordError: for a node that is missing, damaged or malformed.
        """
        for path, node, i, _ in self.walk(prefix, start=start):
            if node.kinds[i] not in NODE_KINDS:
                yield path, node, i

    def walk(self, prefix: str = "", descend: Callable[[str, str], bool] | None = None,
             start: Node | None = None) -> Iterator[tuple[str, Node, int, bool]]:
        """Yield ``(path, node, index, top)`` for every entry of every node, depth first in path order.

        Folders are yielded before their contents (with their path, no trailing ``/``); shard
        entries are yielded too. ``top`` is true for the entries of the node being walked from.

        :param prefix: start at this folder instead of the root.
        :param descend: called with ``(path, node digest)`` for each folder or shard; return
            false to skip what is below it.
        :param start: the node of the ``prefix`` folder, when the caller has it.
        """
        if start is None:
            start = self.root if not prefix else self.folder_node(check_entry_path(prefix))
        if start is None:
            return
        base = prefix.strip("/") + "/" if prefix else ""
        stack: list[tuple[str, Node, int]] = [(base, start, 0)]
        while stack:
            base, node, i = stack[-1]
            if i >= len(node):
                stack.pop()
                continue
            stack[-1] = (base, node, i + 1)
            kind = node.kinds[i]
            name = node.names[i]
            path = base if kind == SHARD else base + name
            if base == "" and kind != SHARD:
                self._check_top(name, node)
            if len(path) > MAX_PATH_LENGTH:
                raise CorruptRecordError(f"tree {self.digest} holds a path longer than {MAX_PATH_LENGTH} characters; the store is damaged", key=node.digest)
            yield path.rstrip("/") if kind == SHARD else path, node, i, len(stack) == 1
            if kind in NODE_KINDS and (descend is None or descend(path, node.digests[i])):
                child = self.child(node, i)
                stack.append((base if kind == SHARD else path + "/", child, 0))

    def child(self, node: Node, i: int) -> Node:
        """Load the node entry ``i`` of ``node`` points at, checking it fits there.

        :raises CorruptRecordError: if it is missing, damaged, empty, or its entries do not
            belong at that place (a shard's first key differs from its name, or runs past the next).
        """
        child = self.load(node.digests[i])
        kind = node.kinds[i]
        if not len(child):
            raise CorruptRecordError(f"tree node {child.digest} is empty but is not a root; the store is damaged", key=child.digest)
        if kind == SHARD:
            first = child.names[0] if child.is_index else child.key(0)
            last = child.key(len(child) - 1)
            following = node.key(i + 1) if i + 1 < len(node) else None
            if first != node.names[i] or (following is not None and last >= following):
                raise CorruptRecordError(f"tree node {child.digest} is not the shard its parent names; the store is damaged", key=child.digest)
        elif child.is_index and kind != FOLDER:
            raise CorruptRecordError(f"tree node {child.digest} is malformed; the store is damaged", key=child.digest)
        return child

    def _check_top(self, name: str, node: Node) -> None:
        if len(name) >= 2 and name[1] == ":" and name[0].isascii() and name[0].isalpha():
            raise CorruptRecordError(f"tree node {node.digest} names {name!r}, which would be a drive; the store is damaged", key=node.digest)

    def folder_node(self, path: str) -> Node | None:
        """Return the node of the folder at ``path`` (``""``: the root), or ``None`` if there is none."""
        if not path:
            return self.root
        node = self.root
        for part in path.split("/"):
            found = self._find(node, part, FOLDER)
            if found is None:
                return None
            node, i = found
            node = self.child(node, i)
        return node

    def _find(self, node: Node, name: str, kind: int) -> tuple[Node, int] | None:
        """Find entry ``name`` (a folder when ``kind`` is FOLDER, else a file) in a folder's node."""
        key = name + "/" if kind == FOLDER else name
        while node.is_index:
            keys = node.names
            i = bisect.bisect_right(keys, key) - 1
            if i < 0:
                return None
            node = self.child(node, i)
        keys = [node.key(j) for j in range(len(node))]
        i = bisect.bisect_left(keys, key)
        if i < len(node) and keys[i] == key:
            return node, i
        return None

    def get(self, path: str) -> Entry | None:
        """Return the entry at ``path``, or ``None`` (reads the nodes on its way only)."""
        path = check_entry_path(path)
        folder, _, name = path.rpartition("/")
        node = self.folder_node(folder) if folder else self.root
        if node is None:
            return None
        found = self._find(node, name, -1)
        if found is None or found[0].kinds[found[1]] in NODE_KINDS:
            return None
        return entry_of(path, *found)

    def nodes(self) -> Iterator[tuple[str, int]]:
        """Yield ``(digest, size)`` of every node, each once, children before their parents."""
        seen: set[str] = set()
        order: list[tuple[str, int]] = []
        stack: list[tuple[Node, int]] = [(self.root, 0)]
        while stack:
            node, i = stack[-1]
            if i >= len(node):
                stack.pop()
                if node.digest not in seen:
                    seen.add(node.digest)
                    order.append((node.digest, node.raw_size))
                continue
            stack[-1] = (node, i + 1)
            if node.kinds[i] in NODE_KINDS and node.digests[i] not in seen:
                stack.append((self.child(node, i), 0))
        return iter(order)

    def blobs(self) -> dict[str, int]:
        """Return every blob this version needs in the store, with its size: file contents and
        chunks, and the tree's own nodes."""
        out: dict[str, Any] = {}
        for _, node, i in self.items():
            for d, s in item_blobs(node, i):
                out[d] = s
        out.update(self.nodes())
        return out


class FileList(Sequence[Entry]):
    """A version's entries as a read-only sequence that reads its tree only as far as it is used.

    Iterating streams entries node by node; ``len`` comes from the root; ``files[:200]`` reads
    the nodes of the first 200 entries only. Indexing past the start walks up to that entry.

    :param manifest: a flat manifest or a tree.
    """

    def __init__(self, manifest: Manifest | TreeManifest) -> None:
        self.manifest = manifest

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.manifest)

    def __len__(self) -> int:
        return len(self.manifest)

    @overload
    def __getitem__(self, index: int) -> Entry: ...

    @overload
    def __getitem__(self, index: slice) -> list[Entry]: ...

    def __getitem__(self, index: int | slice) -> Entry | list[Entry]:
        if isinstance(self.manifest, Manifest):
            found = self.manifest.entries[index]
            return list(found) if isinstance(index, slice) else found
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step < 0:
                return list(self)[index]
            return list(islice(self, start, stop, step))
        at = index + len(self) if index < 0 else index
        if not 0 <= at < len(self):
            raise IndexError("file index out of range")
        return next(islice(self, at, None))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (FileList, list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FileList({len(self)} files)"
